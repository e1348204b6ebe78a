"""Lightning's ModelCheckpoint, made safe for configs taken to other data: a monitored value the run never
logs is a warning, not a crash at the end of the first epoch."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from gan_translate.core.lightning_compat import ModelCheckpointWithMissingMonitorHook, validation_has_run

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(ModelCheckpointWithMissingMonitorHook):
    """Lightning's ``ModelCheckpoint`` (same arguments), except for a ``monitor`` the run does not log.

    Lightning stops training at the end of the first validation then, before ``last.ckpt`` is written: with the
    CycleGAN quickstart config on a dataset without ground-truth folders (``testA_gt/``), ``val/l1_ab`` is never
    logged. Here that is one warning naming the values that were logged; no best checkpoint is kept, and
    ``last.ckpt`` and every other save go on as usual.
    """

    _warned_missing_monitor = False

    def on_missing_monitor(self, trainer: pl.Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        if validation_has_run(trainer) and not self._warned_missing_monitor:
            logged = sorted(name for name in monitor_candidates if name.startswith("val/")) or ["none"]
            rank_zero_warn(
                f"ModelCheckpoint(monitor={self.monitor!r}): the run does not log {self.monitor}, so no best "
                f"checkpoint is kept (last.ckpt still is). Validation values logged: {', '.join(logged)}. "
                "val/l1_* needs ground-truth folders (testA_gt/); monitor a logged value in the config, or none."
            )
            self._warned_missing_monitor = True
