"""Lightning's ModelCheckpoint, made safe for configs taken to other data: a monitored value the run never
logs is a warning, not a crash at the end of the first epoch."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (same arguments), except for a ``monitor`` the run does not log.

    Lightning stops training at the end of the first validation then, before ``last.ckpt`` is written: with the
    CycleGAN quickstart config on a dataset without ground-truth folders (``testA_gt/``), ``val/l1_ab`` is never
    logged. Here that is one warning naming the values that were logged; no best checkpoint is kept, and
    ``last.ckpt`` and every other save go on as usual.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warned_missing_monitor = False

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        if self.monitor is None or self.save_top_k == 0 or self.monitor in monitor_candidates:
            super()._save_topk_checkpoint(trainer, monitor_candidates)
            return
        if trainer.fit_loop.epoch_loop.val_loop._has_run and not self._warned_missing_monitor:
            logged = sorted(name for name in monitor_candidates if name.startswith("val/")) or ["none"]
            rank_zero_warn(
                f"ModelCheckpoint(monitor={self.monitor!r}): the run does not log {self.monitor}, so no best "
                f"checkpoint is kept (last.ckpt still is). Validation values logged: {', '.join(logged)}. "
                "val/l1_* needs ground-truth folders (testA_gt/); monitor a logged value in the config, or none."
            )
            self._warned_missing_monitor = True
