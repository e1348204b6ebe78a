"""Stopping on a NaN / Inf loss before it reaches the weights or a checkpoint, with one line that says what to do."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from gan_translate.core.errors import NonFiniteLossError

__all__ = ["NonFiniteGuard", "last_good_checkpoint", "nonfinite_message"]


def _model_checkpoints(trainer: pl.Trainer) -> list[ModelCheckpoint]:
    return [cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]  # type: ignore[attr-defined]


def last_good_checkpoint(trainer: pl.Trainer) -> str | None:
    """The newest checkpoint this run's ModelCheckpoints wrote, or None."""
    candidates = []
    for callback in _model_checkpoints(trainer):
        for path in (callback.last_model_path, callback.best_model_path):
            if path and os.path.exists(path):
                candidates.append(path)
    return max(candidates, key=os.path.getmtime) if candidates else None


def checkpoint_kept(path: str | None) -> str:
    """``last good checkpoint: <path>``, or that there is none yet."""
    return f"last good checkpoint: {path}" if path else "no checkpoint was saved yet"


def nonfinite_message(
    trainer: pl.Trainer | None, bad: Mapping[str, float], step: int | None = None, before_update: bool = True,
    epoch: int | None = None, batch: int | None = None,
) -> str:
    """``train/cycle_a is nan at step 14 (epoch 0, batch 7); ...`` for the non-finite loss terms in ``bad``.
    ``step`` / ``epoch`` / ``batch``: where it happened when that is not the trainer's current position (the deferred
    guard reads its flag some steps later)."""
    items = list(bad.items())
    name, value = items[0]
    where = ""
    if trainer is not None:
        step = trainer.global_step if step is None else step
        epoch = trainer.current_epoch if epoch is None else epoch
        # batch: 1-based count within the epoch, as in the SIGTERM message
        batch = trainer.fit_loop.epoch_loop.batch_idx + 1 if batch is None else batch
        where = f" at step {step} (epoch {epoch}, batch {batch})"
    also = f" (also non-finite: {', '.join(n for n, _ in items[1:])})" if len(items) > 1 else ""
    last_good = last_good_checkpoint(trainer) if trainer is not None else None
    kept = checkpoint_kept(last_good)
    stopped = "before the weights were updated" if before_update else "before this state was saved"
    advice = ["a lower learning rate"]
    precision = str(getattr(trainer, "precision", "")) if trainer is not None else ""
    if precision.startswith("16"):  # fp16's range (65504) is the usual suspect, not the learning rate
        advice.insert(0, f"--trainer.precision bf16-mixed or 32 instead of {precision}")
    resume = ", or resume from that checkpoint" if last_good else ""
    return f"{name} is {value}{where}{also}; training stopped {stopped}, {kept} (try {' or '.join(advice)}{resume})"


class NonFiniteGuard(Callback):
    """Stops training with a one-line :class:`NonFiniteLossError` (``train/cycle_a is nan at step 14 ...``) as
    soon as a logged training value is NaN or infinite, *before* ``ModelCheckpoint`` (always the last callback)
    could save the poisoned state, so the last good checkpoint is kept.

    The models' own ``check_finite`` stops a bad loss before the optimiser step; this guard catches any other
    logged value (and models that do not check). Every DDP rank stops together.
    """

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        bad: dict[str, float] = {}
        for key, value in trainer.callback_metrics.items():
            if not key.startswith("train/") or key.endswith("_epoch"):
                continue
            number = float(value) if isinstance(value, (int, float)) else float(torch.as_tensor(value).detach().float().cpu())
            if not math.isfinite(number):
                bad[key.removesuffix("_step")] = number
        failed = bool(bad)
        if trainer.world_size > 1:
            failed = trainer.strategy.reduce_boolean_decision(failed, all=False)
        if failed:
            bad = bad or {"a training loss (on another process)": float("nan")}
            raise NonFiniteLossError(nonfinite_message(trainer, bad, before_update=False))
