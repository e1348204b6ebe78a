"""The one table of tiny test settings: registered model name -> :class:`Tiny`.

Every test that builds or trains a model at toy size reads it: the shared contract
(tests/models/test_model_contract.py), the CLI runs of ``tests/helpers.py``'s ``tiny_*_args``, the DDP and precision
tests, the export and serving tests. A new model adds one entry here (the contract test fails until the table names
exactly the registered models), beside its module and its ``configs/<name>/quickstart.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from gan_translate.models import Capability, GANModule

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "configs"
#: Distillation teachers made by tests/fixtures/teachers/make_teachers.py: a tiny CycleGAN fit checkpoint (32 px, 8
#: filters, one residual block, its discriminators included) and the trained CycleGAN quickstart's A -> B export.
TEACHERS = REPO_ROOT / "tests" / "fixtures" / "teachers"
TINY_TEACHER = TEACHERS / "cyclegan_tiny.ckpt"

__all__ = ["CONFIGS", "TEACHERS", "TINY", "TINY_TEACHER", "Data", "DdpSettings", "PrecisionSettings", "Tiny"]

#: The image size of every tiny direct-construction run (the contract's data modules).
_SIZE = 32


class Data(Enum):
    """The data a model trains on, as found in the synthetic set (the ``synthetic_root`` fixture)."""

    UNPAIRED = "unpaired"  # trainA/ + trainB/ (+ testA/ ... with ground truth): the synthetic root itself
    PAIRED = "paired"  # its pairs, <root>/paired (train/, val/ or test/)
    IMAGES = "images"  # one folder of images, <root>/trainB
    CONTENT_AND_STYLES = "content_and_styles"  # content pictures <root>/trainA, style pictures <root>/trainB

    def root(self, synthetic_root: Path) -> Path:
        """The folder a CLI run's ``--data.root`` names for this kind of data (``Tiny.args``' ``data_root``)."""
        if self is Data.PAIRED:
            return synthetic_root / "paired"
        if self is Data.IMAGES:
            return synthetic_root / "trainB"
        return synthetic_root  # CONTENT_AND_STYLES picks trainA / trainB itself (two roots)

    def flags(self, data_root: Path) -> list[str]:
        """The ``--data.*`` flags of a tiny CLI run on ``data_root`` (what :meth:`root` gives, or a folder like it)."""
        if self is Data.IMAGES:
            return ["--data.root", str(data_root), "--data.image_size", str(_SIZE), "--data.batch_size", "4"]
        crops = ["--data.transform.load_size", "36", "--data.transform.crop_size", str(_SIZE), "--data.batch_size", "2"]
        if self is Data.CONTENT_AND_STYLES:
            return ["--data.root", str(data_root / "trainA"), "--data.style_root", str(data_root / "trainB"), *crops]
        # translators: one validation batch (its metrics and grids run too)
        layout = ["--data.layout", "auto"] if self is Data.PAIRED else []
        return ["--data.root", str(data_root), *crops, *layout, "--trainer.limit_val_batches", "1"]

    def datamodule(self, synthetic_root: Path) -> pl.LightningDataModule:
        """A DataModule of this data at 32 px, batches of 2, no workers: for direct ``Trainer.fit`` runs."""
        from gan_translate.data import (
            ImageFolderDataModule,
            ImageTransform,
            PairedDataModule,
            StyleDataModule,
            UnpairedDataModule,
        )

        root, transform = self.root(synthetic_root), ImageTransform(load_size=_SIZE, crop_size=_SIZE)
        common: dict[str, Any] = {"batch_size": 2, "num_workers": 0}
        if self is Data.UNPAIRED:
            return UnpairedDataModule(str(root), transform=transform, **common)
        if self is Data.PAIRED:
            return PairedDataModule(str(root), layout="auto", transform=transform, **common)
        if self is Data.IMAGES:
            return ImageFolderDataModule(str(root), image_size=_SIZE, **common)
        return StyleDataModule(str(root / "trainA"), style_root=str(root / "trainB"), transform=transform, **common)


@dataclass(frozen=True)
class DdpSettings:
    """How tests/training/test_distributed.py trains a model in its 2-process run (2 batches per rank).

    Args:
        flags: CLI flags on top of the tiny run, each for a reason given where the entry is written.
        optimizer_steps: the checkpoint's ``global_step`` after the 2 batches (every optimiser step counts).
        batch_norm: its networks use batch norm, whose running statistics stay per rank (not bit-identical).
        equals_global_batch: every loss term is a per-sample mean, so 2 ranks x batch 2 equal one process x batch 4.
    """

    flags: tuple[str, ...] = ()
    optimizer_steps: int = 2 * 2  # a generator and a discriminator step per batch
    batch_norm: bool = False
    equals_global_batch: bool = False


@dataclass(frozen=True)
class PrecisionSettings:
    """How tests/callbacks/test_precision.py builds a model (bf16-mixed, optimisers, channels-last, compile).

    Args:
        overrides: direct-construction options over :attr:`Tiny.kwargs`: the widths its float tolerances were
            measured at (tests/training/test_distributed.py's bounds), and nothing random between two runs.
        channels_last_training: also trained channels-last against its fp32 run.
        optimizers: how many optimisers ``configure_optimizers`` makes (a generator's and a discriminator's).
    """

    overrides: Mapping[str, Any] = field(default_factory=dict)
    channels_last_training: bool = False
    optimizers: int = 2


@dataclass(frozen=True)
class Tiny:
    """One model's tiny test settings.

    Args:
        config: its config folder, ``configs/<config>/quickstart.yaml`` (a name, or a folder path elsewhere).
        data: the data it trains on.
        capabilities: what it can do, as the test expects it (``models_that`` must agree).
        kwargs: direct-construction options (``cls(**kwargs)``): the contract test, exports, servers, pickling.
        flags: the ``--model.*`` (and other) CLI flags that shrink its quickstart config for a CLI run.
        epochs, batches: a CLI run's defaults.
        gan_filters: a CLI run sets ``--model.ngf 8 --model.ndf 8`` (models with classic GAN widths).
        ddp: its part in the DDP run (None: not in it; its networks and steps are covered by another entry).
        precision: its part in the precision tests (None: not in them).
    """

    config: str | Path
    data: Data
    capabilities: frozenset[Capability]
    kwargs: Mapping[str, Any]
    flags: tuple[str, ...] = ()
    epochs: int = 1
    batches: int = 3
    gan_filters: bool = True
    ddp: DdpSettings | None = None
    precision: PrecisionSettings | None = None

    @property
    def config_file(self) -> Path:
        """The quickstart config a CLI run starts from (``CONFIGS / path`` is ``path`` for an absolute one)."""
        return CONFIGS / self.config / "quickstart.yaml"

    def args(self, data_root: Path, run_dir: Path, epochs: int | None = None, batches: int | None = None) -> list[str]:
        """``fit`` arguments of the quickstart config shrunk to seconds: on the CPU, quiet, logging every step, on
        ``data_root`` (the folder :meth:`Data.root` names, or one like it), writing under ``run_dir``."""
        return [
            "--config", str(self.config_file),
            "--trainer.accelerator", "cpu",
            # The configs train at `precision: auto` (bf16 on CPUs with AVX512-BF16): tests pin fp32, so what they
            # compare (the precision tests' fp32 references, exact resumes) is the same on every CI machine.
            "--trainer.precision", "32-true",
            "--trainer.max_epochs", str(self.epochs if epochs is None else epochs),
            "--trainer.limit_train_batches", str(self.batches if batches is None else batches),
            "--trainer.log_every_n_steps", "1",
            "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(run_dir),
            "--trainer.logger.init_args.save_dir", str(run_dir),
            "--data.synthetic", "false",
            "--data.num_workers", "0",
            *(["--model.ngf", "8", "--model.ndf", "8"] if self.gan_filters else []),
            *self.data.flags(data_root),
            *self.flags,
        ]

    def synthetic_args(self, synthetic_root: Path, run_dir: Path, epochs: int | None = None,
                       batches: int | None = None) -> list[str]:
        """:meth:`args` on the data of the synthetic set (``synthetic_root``) this model trains on."""
        return self.args(self.data.root(synthetic_root), run_dir, epochs, batches)

    def build(self, name: str, **overrides: Any) -> GANModule:
        """The registered model ``name`` built from :attr:`kwargs` (and ``overrides``)."""
        from gan_translate.models import MODELS

        return MODELS.get(name)(**{**self.kwargs, **overrides})


TRANSLATES: frozenset[Capability] = frozenset({"translate"})
SAMPLES: frozenset[Capability] = frozenset({"sample"})
STYLIZES: frozenset[Capability] = frozenset({"stylize"})

_TRANSLATOR_CLI = ("--model.sample_every_n_steps", "2")  # grids every 2 steps: the logging path runs too
_RESNET_CLI = ("--model.generator_args", "{n_blocks: 1}")
_PATCH_NCE_CLI = ("--model.num_patches", "16", "--model.nce_mlp_channels", "16")
_RESNET_TINY: dict[str, Any] = {"generator": "resnet", "generator_args": {"n_blocks": 1}, "ngf": 4, "ndf": 4,
                                "discriminator_args": {"n_layers": 1}}
_UNET_TINY: dict[str, Any] = {"generator": "unet", "generator_args": {"num_downs": 5}, "ngf": 4}
_PATCH_NCE_TINY: dict[str, Any] = {"num_patches": 8, "nce_mlp_channels": 8}
# The widths and depth the precision tests' float tolerances were measured at.
_PRECISION_WIDTHS: dict[str, Any] = {"ngf": 8, "ndf": 8, "discriminator_args": {"n_layers": 2}}

#: name -> tiny settings. Every registered model has exactly one entry (tests/models/test_model_contract.py).
TINY: dict[str, Tiny] = {
    "cyclegan": Tiny(
        "cyclegan", Data.UNPAIRED, TRANSLATES, {**_RESNET_TINY, "pool_size": 2},
        flags=(*_TRANSLATOR_CLI, *_RESNET_CLI),
        # Pool off: each process keeps its own, so a single process's pool would hold other fakes.
        ddp=DdpSettings(flags=("--model.pool_size", "0"), equals_global_batch=True),
        precision=PrecisionSettings({**_PRECISION_WIDTHS, "pool_size": 0, "sample_every_n_steps": 0},
                                    channels_last_training=True),
    ),
    "pix2pix": Tiny(
        "pix2pix", Data.PAIRED, TRANSLATES, {**_UNET_TINY, "ndf": 4, "discriminator_args": {"n_layers": 1}},
        flags=(*_TRANSLATOR_CLI, "--model.generator_args", "{num_downs: 5}"),  # a 5-level U-Net: size multiple 32
        # Instance norm (per sample) and no dropout, so the update is a function of the global batch alone.
        ddp=DdpSettings(flags=("--model.norm", "instance", "--model.dropout", "false"), equals_global_batch=True),
        precision=PrecisionSettings({**_PRECISION_WIDTHS, "dropout": False}),
    ),
    "dcgan": Tiny(
        "dcgan", Data.IMAGES, SAMPLES,
        {"resolution": 32, "latent_dim": 16, "ngf": 8, "ndf": 8, "num_fixed_samples": 4, "make_gif": False},
        flags=("--model.resolution", "32", "--model.latent_dim", "16", "--model.num_fixed_samples", "16"),
        epochs=2, batches=2,
        ddp=DdpSettings(batch_norm=True),
        precision=PrecisionSettings(channels_last_training=True),
    ),
    "cut": Tiny(
        "cut", Data.UNPAIRED, TRANSLATES, {**_RESNET_TINY, **_PATCH_NCE_TINY},
        flags=(*_TRANSLATOR_CLI, *_RESNET_CLI, *_PATCH_NCE_CLI),
        ddp=DdpSettings(),  # the heads, and a generator's encoder read twice: DDP copes
    ),
    "fastcut": Tiny(
        "fastcut", Data.UNPAIRED, TRANSLATES,
        {**_RESNET_TINY, "generator_args": {"n_blocks": 1, "antialias": True}, **_PATCH_NCE_TINY},
        flags=(*_TRANSLATOR_CLI, *_RESNET_CLI, *_PATCH_NCE_CLI),
        # not in the DDP run: CUT's networks and steps with other loss weights
    ),
    "unsb": Tiny(
        "unsb", Data.UNPAIRED, TRANSLATES, {**_RESNET_TINY, **_PATCH_NCE_TINY, "num_timesteps": 3},
        flags=(*_TRANSLATOR_CLI, *_RESNET_CLI, *_PATCH_NCE_CLI),
        # G (with the heads), D and the energy network E each step once a batch. Not equal to one process with the
        # global batch: E's contrast normalises over the whole batch's pairs.
        ddp=DdpSettings(optimizer_steps=3 * 2),
        precision=PrecisionSettings({**_PRECISION_WIDTHS, "sample_every_n_steps": 0}, optimizers=3),
    ),
    "distill": Tiny(
        "distill", Data.UNPAIRED, TRANSLATES,
        # A 4-filter, one-block student of the tiny CycleGAN teacher: its discriminator options (and weights) are the
        # teacher's, so no --model.ndf here (gan_filters off).
        {"teacher": str(TINY_TEACHER), "generator": "resnet", "generator_args": {"n_blocks": 1}, "ngf": 4},
        flags=(*_TRANSLATOR_CLI, *_RESNET_CLI, "--model.ngf", "4", "--model.teacher", str(TINY_TEACHER)),
        gan_filters=False,
        # Every term a per-sample mean, instance norm: two ranks of 2 equal one process of 4.
        ddp=DdpSettings(equals_global_batch=True),
        precision=PrecisionSettings({"ngf": 8, "sample_every_n_steps": 0}),
    ),
    "adain": Tiny(
        "adain", Data.CONTENT_AND_STYLES, STYLIZES, {"encoder_weights": "random", "sample_every_n_steps": 0},
        # the seeded random VGG encoder (its outputs say it is untrained)
        flags=("--model.encoder_weights", "random", "--model.sample_every_n_steps", "2", "--trainer.max_steps", "-1"),
        gan_filters=False,
        ddp=DdpSettings(optimizer_steps=2),  # a frozen encoder DDP must leave alone, a decoder it syncs: 1 step a batch
    ),
    "stylegan2": Tiny(
        "stylegan2", Data.IMAGES, SAMPLES,
        {"resolution": 32, "z_dim": 16, "w_dim": 16, "channel_base": 256, "channel_max": 16, "mapping_layers": 2,
         "num_fixed_samples": 4, "make_gif": False, "augment": "ada", "ada_kimg": 0.1},
        # 16 channels at most, 16-d z and w, a 2-layer mapping, 4 fixed samples, ADA adjusting every 2 batches fast
        # enough to move p.
        flags=("--model.resolution", "32", "--model.z_dim", "16", "--model.w_dim", "16", "--model.mapping_layers", "2",
               "--model.channel_base", "256", "--model.channel_max", "16", "--model.num_fixed_samples", "4",
               "--model.ada_interval", "2", "--model.ada_kimg", "0.1",
               # The quickstart turns these two off (ADA's 32 px config); the tiny runs keep them on, so that resume,
               # DDP and precision tests cover the path-length step (and its running mean) and style mixing.
               "--model.pl_weight", "2", "--model.style_mixing_prob", "0.9"),
        epochs=2, batches=2, gan_filters=False,
        # Second-order penalties, an EMA generator, buffers (w_avg, pl_mean, ADA's p) per rank; its first batch also
        # takes a path-length and an R1 step.
        ddp=DdpSettings(flags=("--model.ada_interval", "1", "--model.augment_p", "0.5"), optimizer_steps=2 * 2 + 2),
    ),
}
