"""Distill: a small student generator trained to translate as a frozen teacher translator does (GAN Compression, Li et
al. 2020, without its supernet search: the student's widths are chosen by measured speed, ``docs/distill.md``).

The teacher is any translator's checkpoint or ``.safetensors`` export (CycleGAN either direction, CUT, pix2pix, UNSB,
another student). The student learns, on the teacher's data:

* a **reconstruction** loss: L1 to the teacher's output for the same input (UNSB's: all its bridge steps, learnt in
  one pass);
* **feature distillation**: its activations at a few stages, mapped onto the teacher's by learned 1x1 convolutions,
  against the teacher's (``nn/distillation.py``; teachers whose ``translate`` is one pass of a generator);
* an **adversarial** loss from a PatchGAN that starts from the teacher's discriminator when the file has one;
* for a teacher trained on pairs (pix2pix), L1 to the **ground truth** too, and a discriminator that judges
  (input, output) pairs, as the teacher's did.

The student is a normal translator once trained: its checkpoint rebuilds without the teacher's file (the teacher's
facts are in ``teacher_info``: file, SHA-256, model, direction, stage channels), and ``translate``, ``serve``,
``evaluate`` and ``export`` take it as they take any translator.

Reading the teacher's file belongs to the artifacts band, which sits above the models: it registers its reader here
(:func:`use_teacher_loader`) when imported, so this module never imports it.
"""

from __future__ import annotations

import contextvars
import importlib
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gan_translate.core.errors import CheckpointError, UserError
from gan_translate.core.grids import make_grid
from gan_translate.core.images import match_channels, tensor_to_uint8, to_unit_range
from gan_translate.losses import discriminator_loss, l1
from gan_translate.metrics import paired_metrics
from gan_translate.models.base import GANModule, frozen
from gan_translate.models.registry import register_model
from gan_translate.models.translation import AdversarialTranslationGAN
from gan_translate.nn.distillation import FeatureAdapters, captured_outputs, distillation_stages, stage_points, stage_shapes

__all__ = ["Distill", "Teacher", "TeacherLoader", "load_teacher", "use_teacher_loader"]

#: Discriminator options a student takes from the teacher's when they are left unset (``None``).
_DISCRIMINATOR_DEFAULTS: dict[str, Any] = {"discriminator": "patchgan", "discriminator_args": None, "ndf": 64,
                                           "gan_loss": "lsgan"}


@dataclass(frozen=True)
class Teacher:
    """A teacher read from its file: the rebuilt model (eval mode) and the facts a student records about it."""

    model: GANModule
    path: str
    sha256: str
    has_discriminators: bool
    """The file holds the discriminators' weights (a ``fit`` checkpoint; an export holds generators only)."""
    data_root: str | None = None
    """The folder the teacher was trained on, when its checkpoint says (to warn about distilling on other data)."""


TeacherLoader = Callable[[str], Teacher]
_teacher_loader: TeacherLoader | None = None


def use_teacher_loader(loader: TeacherLoader) -> None:
    """Set how a teacher file is read (``gan_translate.artifacts`` registers its safe reader when imported)."""
    global _teacher_loader
    _teacher_loader = loader


def load_teacher(path: str) -> Teacher:
    """The teacher in ``path`` (a ``.ckpt``, ``.safetensors`` or run folder), through the registered reader."""
    if _teacher_loader is None:
        # Importing the artifacts band registers its reader (use_teacher_loader): by name, so that this band keeps
        # no import of the one above it.
        importlib.import_module("gan_translate.artifacts")
    assert _teacher_loader is not None, "gan_translate.artifacts registers the teacher loader on import"
    # In an empty context: LightningCLI builds the student inside a context variable holding the student's arguments,
    # which save_hyperparameters would otherwise give the teacher's model too (Lightning's _given_hyperparameters).
    teacher = contextvars.Context().run(_teacher_loader, path)
    teacher.model.requires_grad_(False)  # frozen: no call into it ever builds a graph or takes a gradient
    return teacher


@register_model("distill")
class Distill(AdversarialTranslationGAN):
    """A student generator distilled from a frozen teacher translator (see the module's text for the losses).

    The student's network options are those of every translator (``generator``, ``generator_args``, ``ngf``,
    ``norm``, ...); the defaults build a plain ResNet-9 of width 12 (1.93 G MACs at 256 px against the ResNet-9
    teacher's 49.6 G, 11x faster on two CPU cores; ``benchmarks/RESULTS.md``, issue 28, for each student). The
    discriminator options left unset are the teacher's, so that its weights can start the student's discriminator.

    Args:
        teacher: the teacher's ``.ckpt``, ``.safetensors`` export or run folder (needed to train; a trained student
            translates without it).
        direction: the teacher's direction to distil (``AtoB``, or ``BtoA`` for a CycleGAN teacher); the student
            translates that direction only.
        teacher_settings: the teacher's inference settings (UNSB: ``{steps: 5, seed: 0}``), as ``translate`` takes them.
        lambda_recon: weight of the L1 between the student's and the teacher's outputs.
        lambda_distill: weight of the feature distillation loss (mean squared error at the matched stages).
        lambda_gan: weight of the student's adversarial loss.
        lambda_gt: weight of the L1 to the ground truth (teachers trained on pairs only).
        distill_points: stages compared by feature distillation (0: none; the output alone is distilled).
        paired: the data are aligned pairs (ground truth and a pair discriminator); unset: as the teacher was trained.
        discriminator: discriminator name; unset: the teacher's (``patchgan`` when it has no plain one: UNSB).
        discriminator_args: its extra arguments; unset: the teacher's (with its norm).
        ndf: its width; unset: the teacher's.
        gan_loss: ``lsgan``, ``vanilla`` or ``hinge``; unset: the teacher's.
        teacher_info: written by the model when it first reads the teacher (file, SHA-256, model, stage channels):
            what a saved student knows of its teacher. Leave it unset.
    """

    capabilities = frozenset({"translate"})
    translators = {"AtoB": "student"}  # per instance: the direction distilled (see __init__)
    direction_hint = ": it learnt its teacher's {direction} generator only; distil the other one with --model.direction {other}"
    # The teacher's file may move between a run and its resume: the SHA-256 recorded in teacher_info is checked.
    checkpoint_overridable_hparams = GANModule.checkpoint_overridable_hparams | {"teacher"}

    def __init__(
        self,
        teacher: str | None = None,
        direction: str = "AtoB",
        teacher_settings: dict[str, Any] | None = None,
        lambda_recon: float = 10.0,
        lambda_distill: float = 1.0,
        lambda_gan: float = 1.0,
        lambda_gt: float = 10.0,
        distill_points: int = 4,
        paired: bool | None = None,
        generator: str = "resnet",
        ngf: int = 12,
        discriminator: str | None = None,
        discriminator_args: dict[str, Any] | None = None,
        ndf: int | None = None,
        gan_loss: str | None = None,
        teacher_info: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise UserError(f"model.direction must be AtoB or BtoA, got {direction!r}")
        for name, value in (("lambda_recon", lambda_recon), ("lambda_distill", lambda_distill),
                            ("lambda_gan", lambda_gan), ("lambda_gt", lambda_gt), ("distill_points", distill_points)):
            if value < 0:
                raise UserError(f"model.{name} must be >= 0, got {value}")
        # A new distillation reads the teacher now: its channels, discriminator options and stages shape the student's
        # networks. A saved student has all of that in teacher_info and is rebuilt without the file.
        fresh = teacher_info is None and teacher is not None
        loaded = load_teacher(teacher) if fresh else None
        chosen = {"discriminator": discriminator, "discriminator_args": discriminator_args, "ndf": ndf, "gan_loss": gan_loss}
        resolved = self._resolve_from_teacher(loaded, direction, chosen, paired, kwargs)
        super().__init__(generator=generator, ngf=ngf, **{k: resolved[k] for k in _DISCRIMINATOR_DEFAULTS}, **kwargs)
        self.hparams.update(resolved)  # the resolved values are what a checkpoint rebuilds from
        hp = self.hparams
        # Per instance: the direction distilled, and (for a student used as a teacher) its discriminator and pairing.
        self.translators = {direction: "student"}
        self.discriminators = {direction: "discriminator"}
        self.trains_on_pairs = bool(hp.paired)
        self.direction_hint = type(self).direction_hint.format(direction=direction,
                                                                other="BtoA" if direction == "AtoB" else "AtoB")
        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        self.source_domain, self.target_domain = source, target
        source_channels, target_channels = self.image_channels(source), self.image_channels(target)

        self.student = self.make_generator(source_channels, target_channels)
        self.discriminator = self.make_discriminator(target_channels + (source_channels if hp.paired else 0))
        self._teacher: Teacher | None = None  # not a submodule: never in the state dict, DDP or the optimisers
        if loaded is not None:
            hp.teacher_info = self._describe_teacher(loaded, direction)
            self._take_teacher_discriminator(loaded, direction)
            self._teacher = loaded
        info = hp.teacher_info or {}
        self.student_points = self._student_points(len(info.get("stage_channels", [])))
        student_channels = [int(shape[1]) for shape in self._student_stage_shapes(self.student_points)]
        self.adapters = FeatureAdapters(student_channels, info.get("stage_channels", []))

        postfix = "_ab" if direction == "AtoB" else "_ba"
        self.val_metrics = paired_metrics(prefix="val/", postfix=postfix)
        self.val_teacher = paired_metrics(prefix="val/", postfix=f"_teacher{postfix}")  # the bar the student aims at
        self.val_fidelity = paired_metrics(prefix="val/", postfix=f"_to_teacher{postfix}")  # student against teacher

    # --- the teacher ---------------------------------------------------------------------------------------------
    @staticmethod
    def _resolve_from_teacher(teacher: Teacher | None, direction: str, chosen: dict[str, Any], paired: bool | None,
                              kwargs: dict[str, Any]) -> dict[str, Any]:
        """The options a student takes from its teacher: image channels, whether the data are pairs, and each
        discriminator option left unset (the teacher's when it has a plain discriminator for ``direction``)."""
        resolved = {k: (v if v is not None else _DISCRIMINATOR_DEFAULTS[k]) for k, v in chosen.items()}
        resolved["paired"] = bool(paired)
        if teacher is None:
            return resolved
        model = teacher.model
        if direction not in model.translators:
            raise UserError(f"{teacher.path} is a {model.model_name} model that translates "
                            f"{', '.join(model.translators)} only, not model.direction {direction}")
        th = model.hparams
        resolved["paired"] = bool(model.trains_on_pairs) if paired is None else bool(paired)
        for domain, key in (("A", "in_channels"), ("B", "out_channels")):
            given = kwargs.get(key)
            if given is not None and given != model.image_channels(domain):
                raise UserError(f"model.{key} {given} differs from the teacher's domain {domain} channels "
                                f"({model.image_channels(domain)}): leave it unset")
            kwargs[key] = resolved[key] = model.image_channels(domain)
        # The teacher's discriminator options, norm included: its weights then fit (when the model declares a plain
        # discriminator for the direction), and otherwise its size still suits the task (UNSB's judges the time step
        # too: its width and depth without its weights; a default 70x70 PatchGAN made that student 1.22x the
        # teacher's L1 against 1.06x: benchmarks/RESULTS.md, issue 28).
        has_plain = direction in model.discriminators
        teachers = {"discriminator": th.get("discriminator") if has_plain else None, "ndf": th.get("ndf"),
                    "gan_loss": th.get("gan_loss"),
                    "discriminator_args": {"norm": th.get("norm", "instance"), **(th.get("discriminator_args") or {})}}
        for key, value in teachers.items():
            if chosen[key] is None and value is not None:
                resolved[key] = value
        return resolved

    def _describe_teacher(self, teacher: Teacher, direction: str) -> dict[str, Any]:
        """What the student records of its teacher (``teacher_info``), stage channels included (from shapes only)."""
        hp = self.hparams
        network = teacher.model.translator(direction)
        stages = (self._teacher_stages(teacher, direction, self._teacher_inference(teacher, direction))
                  if hp.distill_points > 0 else [])
        points = stage_points(len(stages), hp.distill_points)
        size = self._probe_size(network)
        teacher_shapes = stage_shapes(network, [stages[i] for i in points],
                                      (1, self.image_channels(self.source_domain), size, size)) if points else []
        student_points = self._student_points(len(points))
        if points and len(student_points) != len(points):
            raise UserError(f"feature distillation compares {len(points)} teacher stages, but the student "
                            f"{hp.generator!r} has {len(distillation_stages(self.student))} (model.distill_points "
                            f"{len(student_points) or 0} or fewer, or 0 to distil the output only)")
        student_shapes = self._student_stage_shapes(student_points, size)
        for index, (s, t) in enumerate(zip(student_shapes, teacher_shapes)):
            if s[2:] != t[2:]:
                raise UserError(
                    f"feature distillation: the student's stage {index + 1} is {s[2]}x{s[3]} where the teacher's is "
                    f"{t[2]}x{t[3]} (at {size} px): use a student of the teacher's kind ({teacher.model.hparams.get('generator')!r} "
                    "layout, e.g. the same downsampling), or model.distill_points 0 to distil the output only"
                )
        return {
            "path": teacher.path,
            "sha256": teacher.sha256,
            "model": teacher.model.model_name,
            "direction": direction,
            "settings": dict(hp.teacher_settings or {}),
            "stage_channels": [int(shape[1]) for shape in teacher_shapes],
            "discriminator_from_teacher": False,  # set by _take_teacher_discriminator
            "data_root": teacher.data_root,
        }

    def _teacher_inference(self, teacher: Teacher, direction: str) -> nn.Module:
        """What the teacher's ``translate`` runs for ``direction``, with the configured settings."""
        return teacher.model.inference_network(direction, **(self.hparams.teacher_settings or {}))

    @staticmethod
    def _teacher_stages(teacher: Teacher, direction: str, inference: nn.Module) -> list[nn.Module]:
        """The teacher's stages, when its ``translate`` (``inference``) is one pass of its generator (so hooks see each
        stage once); none for a bridge (UNSB: several passes, of states that are not the input) or a test-time wrapper."""
        network = teacher.model.translator(direction)
        return distillation_stages(network) if inference is network else []

    def _student_points(self, points: int) -> list[int]:
        return stage_points(len(distillation_stages(self.student)), points)

    def _student_stage_shapes(self, points: list[int], size: int | None = None) -> list[torch.Size]:
        if not points:
            return []
        stages = distillation_stages(self.student)
        size = size or self._probe_size(self.student)
        return stage_shapes(self.student, [stages[i] for i in points], (1, self.image_channels(self.source_domain), size, size))

    def _probe_size(self, network: nn.Module) -> int:
        """A side every network involved takes (a multiple of each one's size multiple, above each one's minimum)."""
        networks = (network, self.student)
        step = math.lcm(*(int(getattr(n, "size_multiple", 1)) for n in networks))
        least = max(16, *(int(getattr(n, "min_size", 1)) for n in networks))
        return step * math.ceil(least / step)

    def _take_teacher_discriminator(self, teacher: Teacher, direction: str) -> None:
        """Start the discriminator from the teacher's for ``direction`` when the file holds it and it fits."""
        attribute = teacher.model.discriminators.get(direction)
        if attribute is None or not teacher.has_discriminators:
            return
        try:
            self.discriminator.load_state_dict(getattr(teacher.model, attribute).state_dict())
        except RuntimeError:
            print(f"note: model.discriminator options differ from the teacher's ({teacher.path}): the student's "
                  "discriminator starts from random weights", file=sys.stderr)
            return
        self.hparams.teacher_info["discriminator_from_teacher"] = True

    def teacher(self) -> Teacher:
        """The teacher, read from ``model.teacher`` the first time a run needs it (a rebuilt student: its SHA-256 must
        be the recorded one), and on this model's device."""
        if self._teacher is None:
            hp = self.hparams
            if not hp.teacher:
                raise UserError("Distill needs model.teacher: the .ckpt or .safetensors of the translator to distil "
                                "(gan-translate fit --config configs/distill/quickstart.yaml --model.teacher PATH)")
            loaded = load_teacher(hp.teacher)
            recorded = (hp.teacher_info or {}).get("sha256")
            if recorded and loaded.sha256 != recorded:
                raise CheckpointError(f"model.teacher {loaded.path} is not the teacher this student was distilled from "
                                      f"(SHA-256 {loaded.sha256[:12]}..., recorded {recorded[:12]}...)")
            self._teacher = loaded
        model = self._teacher.model
        if model.device != self.device:
            model.to(self.device)
        return self._teacher

    def teach(self, source: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The teacher's translation of ``source`` and its activations at the distillation points (no graph)."""
        teacher, direction = self.teacher(), self.hparams.direction
        network = self._teacher_inference(teacher, direction)
        stages = self._teacher_stages(teacher, direction, network) if len(self.adapters) else []
        points = stage_points(len(stages), len(self.adapters)) if stages else []
        with torch.no_grad(), captured_outputs([stages[i] for i in points]) as features:
            output = network(source)
        return output, list(features)

    # --- training ------------------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        opt_g = self.adam([*self.student.parameters(), *self.adapters.parameters()])
        opt_d = self.adam(self.discriminator.parameters())
        return [opt_g, opt_d], self.linear_decay([opt_g, opt_d])

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":
            self.teacher()  # a missing or changed teacher file fails here, before the first batch

    def sides(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """The batch's inputs (the distilled direction's source domain) and its target-domain images (with pairs: the
        ground truth of each input)."""
        return batch[self.source_domain], batch[self.target_domain]

    def judge(self, source: Tensor, image: Tensor) -> Tensor:
        """Discriminator logits for ``image`` (paired: for the pair (source, image), as pix2pix's)."""
        return self.discriminator(torch.cat([source, image], dim=1) if self.hparams.paired else image)

    def student_pass(self, source: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The student's translation and its activations at the distillation points."""
        stages = distillation_stages(self.student)
        with captured_outputs([stages[i] for i in self.student_points] if len(self.adapters) else []) as features:
            output = self.student(source)
        return output, list(features)

    def student_losses(self, source: Tensor, target: Tensor, fake: Tensor, features: list[Tensor],
                       teacher_output: Tensor, teacher_features: list[Tensor]) -> dict[str, Tensor]:
        hp = self.hparams
        losses = {"recon": l1(fake, teacher_output) * hp.lambda_recon}
        if len(self.adapters) and hp.lambda_distill > 0:
            losses["distill"] = self.adapters(features, teacher_features) * hp.lambda_distill
        if hp.lambda_gan > 0:
            losses["g_adv"] = self.gan_loss.generator(self.judge(source, fake)) * hp.lambda_gan
        if hp.paired and hp.lambda_gt > 0:
            losses["gt"] = l1(fake, target) * hp.lambda_gt
        return losses

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        source, target = self.sides(batch)
        teacher_output, teacher_features = self.teach(source)
        fake, features = self.student_pass(source)

        # Discriminator first (real target-domain images against the detached student output), then the student
        # against the updated discriminator, frozen (no gradients computed for it): pix2pix's and CUT's order.
        d_loss = discriminator_loss(self.gan_loss, self.judge(source, target), self.judge(source, fake.detach()))
        self.backward_step(opt_d, d_loss, "d")  # NaN check first: a NaN never reaches the weights
        with frozen(self.discriminator):
            g_losses = self.student_losses(source, target, fake, features, teacher_output, teacher_features)
            g_total = sum(g_losses.values())
            self.backward_step(opt_g, g_total, g_losses, loss_is_total=True)

        logged = {f"train/{k}": v for k, v in {**g_losses, "g_total": g_total, "d_total": d_loss}.items()}
        self.log_training_values(logged, source.shape[0], prog_bar=("train/recon", "train/g_total"),
                                 optimizers={"g": opt_g.optimizer, "d": opt_d.optimizer})
        every = self.hparams.sample_every_n_steps
        if every and self.iteration % every == 0:
            self.log_samples("train", {"source": source, "teacher": teacher_output, "student": fake})

    def log_samples(self, stage: str, images: Mapping[str, Tensor]) -> None:
        n = self.hparams.num_samples
        shown = [k for k in ("source", "teacher", "student", "truth") if k in images]
        channels = max(int(images[k].shape[1]) for k in shown)
        grid = make_grid([tensor_to_uint8(match_channels(images[k][:n].float(), channels)) for k in shown], by_column=True)
        self.log_image_grid(f"{stage}/samples", grid, " | ".join(shown))

    # --- validation / test ---------------------------------------------------------------------------------------
    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        source = batch[self.source_domain]
        student = self.student(source)
        truth = batch.get(f"{self.source_domain}_gt")
        if truth is None and self.hparams.paired:
            truth = batch[self.target_domain]
        # The teacher is scored beside the student during fit (the bar); a student validated alone needs no teacher.
        teacher = self.teach(source)[0] if self._teacher is not None else None
        if truth is not None:
            self.val_metrics.update(to_unit_range(student), to_unit_range(truth))
            if teacher is not None:
                self.val_teacher.update(to_unit_range(teacher), to_unit_range(truth))
        if teacher is not None:
            self.val_fidelity.update(to_unit_range(student), to_unit_range(teacher))
        if batch_idx == 0:
            grid = {"source": source, "student": student}
            if teacher is not None:
                grid["teacher"] = teacher
            if truth is not None:
                grid["truth"] = truth
            self._val_grid_batch = grid

    def evaluation_metrics(self) -> tuple[Any, ...]:
        return (self.val_metrics, self.val_teacher, self.val_fidelity)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self.student(batch[self.source_domain] if self.source_domain in batch else batch["image"])

    # --- checkpoints ---------------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        # Beside the hyperparameters, for anyone reading the file: which teacher this student came from.
        info = self.hparams.teacher_info or {}
        checkpoint["gan_translate"]["teacher"] = {k: info.get(k) for k in ("path", "sha256", "model", "direction")}
