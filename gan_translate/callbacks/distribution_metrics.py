"""FID / KID while training: a Lightning callback that works with any model through public conventions.

Translators (models with the ``translate`` capability: ``pl_module.inference_network(direction)``, validation
batches with ``"A"`` and ``"B"``): at validation, ``fake_B = network("AtoB")(batch["A"])`` is scored against the
real ``batch["B"]`` (and BtoA against ``batch["A"]`` when the model translates that way; a direction missing from
the model's ``translators``, like pix2pix's BtoA, is skipped). Logged as ``val/fid_ab``, ``val/kid_ab``,
``val/kid_std_ab`` (``_ba`` for BtoA; ``test/...`` under ``trainer.test``).

Generators (models with the ``sample`` capability, e.g. DCGAN: ``pl_module.sample(n, generator=...)`` in
[-1, 1], batches with ``"image"``): DCGAN has
no validation loop, so the real images are the first ``max_images`` training images of each epoch and, at
the epoch's end, as many samples from fixed seeded latents are scored against them. Logged as ``val/fid``,
``val/kid``, ``val/kid_std``.

Under DDP every process scores its own share (``max_images`` is split between them) and torchmetrics
gathers the states, so every process logs the same numbers. ``ModelCheckpoint(monitor="val/kid_ab")``
can keep the best checkpoint. The feature network's name is logged as the hyperparameter
``distribution_metrics/feature`` (W&B: the run config), because scores of different networks never compare.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from gan_translate.core.directions import DIRECTIONS, domains, key_suffix
from gan_translate.core.errors import UserError
from gan_translate.core.images import match_channels
from gan_translate.core.random_streams import rank_seed
from gan_translate.metrics import FidKid

__all__ = ["DistributionMetrics"]


def _same_channels(real: Tensor, fake: Tensor) -> Tensor:
    """A grayscale model is judged against grayscale versions of the real images."""
    return match_channels(real, 1) if fake.shape[1] == 1 and real.shape[1] >= 3 else real


class DistributionMetrics(pl.Callback):
    """FID and KID of generated vs real images during training (see the module docstring).

    The feature network and scoring options (``feature``, ``image_size``, ``metrics``, ``kid_subsets``,
    ``kid_subset_size``) are :class:`~gan_translate.metrics.FidKid`'s (``feature`` defaults to ``random-conv`` here).

    Args:
        max_images: at most this many real and this many generated images per direction per evaluation.
        every_n_epochs: evaluate every N epochs during fit (always under ``trainer.validate`` / ``test``).
        directions: translation directions to score (``AtoB``, ``BtoA``); ignored for generators.
        seed: seed of KID's subsets, of DCGAN's latents and of any randomness in the networks (dropout).
        feature: feature network: ``random-conv`` (offline, only comparable with itself), ``inception``
            (the standard FID network; needs torch-fidelity and its downloaded weights) or ``package.module:Name``.
    """

    def __init__(
        self,
        max_images: int = 512,
        every_n_epochs: int = 1,
        directions: Sequence[str] = DIRECTIONS,
        seed: int = 0,
        feature: str = "random-conv",
        **metric_options: Any,
    ) -> None:
        super().__init__()
        if max_images < 2:
            raise UserError(f"DistributionMetrics max_images must be at least 2, got {max_images}")
        if every_n_epochs < 1:
            raise UserError(f"DistributionMetrics every_n_epochs must be at least 1, got {every_n_epochs}")
        unknown = [d for d in directions if d not in DIRECTIONS]
        if unknown:
            raise UserError(f"DistributionMetrics directions must be AtoB and/or BtoA, got {', '.join(unknown)}")
        self.max_images = max_images
        self.every_n_epochs = every_n_epochs
        self.directions = tuple(directions)
        self.seed = seed
        # One scorer per direction; this first one checks the options (and finds a missing Inception) at once.
        self._prototype = FidKid(feature, seed=seed, **metric_options)
        #: The feature network's recorded name.
        self.feature_name = self._prototype.feature_name
        self._metrics: dict[str, FidKid] = {}
        self._seen: dict[str, int] = {}
        self._skipped: set[str] = set()
        self._active = False
        self._warned: set[str] = set()
        self._hparams_logged = False
        #: The last scores, e.g. ``{"val/fid_ab": 1.2, ...}`` (also what was logged).
        self.last_scores: dict[str, float] = {}

    # --- set-up ----------------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not self._metrics:
            keys = [""] if self._is_generator(pl_module) else [key_suffix(d) for d in self.directions]
            self._metrics = {key: self._prototype if i == 0 else copy.deepcopy(self._prototype) for i, key in enumerate(keys)}

    def _log_feature(self, trainer: pl.Trainer) -> None:
        if self._hparams_logged:
            return
        self._hparams_logged = True
        params = {
            "distribution_metrics/feature": self.feature_name,
            "distribution_metrics/image_size": self._prototype.image_size,
            "distribution_metrics/max_images": self.max_images,
        }
        for logger in trainer.loggers:
            logger.log_hyperparams(params)

    @staticmethod
    def _is_generator(pl_module: pl.LightningModule) -> bool:
        return "sample" in getattr(pl_module, "capabilities", ())

    def _per_process_limit(self, trainer: pl.Trainer) -> int:
        return max(1, math.ceil(self.max_images / max(1, trainer.world_size)))

    def _due(self, trainer: pl.Trainer) -> bool:
        if trainer.sanity_checking:
            return False
        if trainer.state.fn != "fit":
            return True
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def _start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._active = self._due(trainer)
        if not self._active:
            return
        self._log_feature(trainer)
        for key, metric in self._metrics.items():
            metric.to(pl_module.device)
            metric.reset()
            self._seen[key] = 0

    def _seed_rng(self, trainer: pl.Trainer, offset: int, device: torch.device) -> None:
        seed = rank_seed(self.seed, trainer.global_rank) + offset
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)  # this process's device only

    # --- translators: validation / test -------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._is_generator(pl_module):
            self._start(trainer, pl_module)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._is_generator(pl_module):
            self._start(trainer, pl_module)

    def _translator_batch(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        if not self._active or not isinstance(batch, dict):
            return
        limit = self._per_process_limit(trainer)
        for direction in self.directions:
            (source, target), key = domains(direction), key_suffix(direction)
            if key in self._skipped or key not in self._metrics:
                continue
            if source not in batch or target not in batch:
                self._warn_once("keys", f"DistributionMetrics: validation batches need {source!r} and {target!r}; skipped")
                continue
            take = min(limit - self._seen[key], batch[source].shape[0])
            if take <= 0:
                continue
            if direction not in getattr(pl_module, "translators", {}):
                self._skipped.add(key)  # e.g. pix2pix has no BtoA: skip it, every process alike
                continue
            # inference_network: what `translate` / `evaluate` use (pix2pix's test-time dropout included).
            network = pl_module.inference_network(direction)
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                self._seed_rng(trainer, batch_idx, pl_module.device)
                fake = network(batch[source][:take])
            real = _same_channels(batch[target][:take], fake)
            self._metrics[key].update_from_model(real, real=True)
            self._metrics[key].update_from_model(fake, real=False)
            self._seen[key] += take

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not self._is_generator(pl_module):
            self._translator_batch(trainer, pl_module, batch, batch_idx)

    def on_test_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not self._is_generator(pl_module):
            self._translator_batch(trainer, pl_module, batch, batch_idx)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._is_generator(pl_module):
            self._finish(pl_module, "val")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._is_generator(pl_module):
            self._finish(pl_module, "test")

    # --- generators (DCGAN): training epochs ------------------------------------------------------------
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._is_generator(pl_module):
            self._start(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._active or not self._is_generator(pl_module):
            return
        images = batch.get("image") if isinstance(batch, dict) else batch
        if not isinstance(images, Tensor):
            self._warn_once("image", "DistributionMetrics: generator batches need an 'image' tensor; skipped")
            return
        take = min(self._per_process_limit(trainer) - self._seen[""], images.shape[0])
        if take > 0:
            channels = pl_module.sampler_spec.channels  # a sampler (_is_generator) says what it makes
            real = match_channels(images[:take], 1) if channels == 1 and images.shape[1] >= 3 else images[:take]
            self._metrics[""].update_from_model(real.detach(), real=True)
            self._seen[""] += take

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._active or not self._is_generator(pl_module):
            return
        count = self._seen[""]
        if count:
            # Fixed latents (per process): epoch-to-epoch changes are the model's, not the noise's.
            generator = torch.Generator().manual_seed(rank_seed(self.seed, trainer.global_rank))
            for start in range(0, count, 64):
                fake = pl_module.sample(min(64, count - start), generator=generator)  # type: ignore[operator]
                self._metrics[""].update_from_model(fake, real=False)
        self._finish(pl_module, "val")

    # --- computing and logging -------------------------------------------------------------------------
    def _finish(self, pl_module: pl.LightningModule, stage: str) -> None:
        if not self._active:
            return
        self._active = False
        for key, metric in self._metrics.items():
            if key in self._skipped:
                continue
            try:
                scores = metric.compute()  # collective under DDP: every process gets here
            except UserError as error:
                names = ", ".join(f"{stage}/{name}{key}" for name in metric.metrics)
                self._warn_once(f"few{key}", f"DistributionMetrics: {names} not logged: {error}")
                continue
            note = metric.kid_clamp_note() if "kid" in metric.metrics else None
            if note and f"clamp{key}" not in self._warned:
                # A note, not a warning: small evaluation sets (the quickstart's) clamp on every run, as intended.
                self._warned.add(f"clamp{key}")
                rank_zero_info(f"DistributionMetrics ({stage}/kid{key}): {note}")
            for name, value in scores.items():
                logged = f"{stage}/{name}{key}"
                self.last_scores[logged] = value
                # Already synced by torchmetrics: identical on every process, no second reduction.
                pl_module.log(logged, value, sync_dist=False)
            metric.reset()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            rank_zero_warn(message)
