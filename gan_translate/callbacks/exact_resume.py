"""Exact resume: a resumed run draws the same random numbers and sees the same data an uninterrupted run would.

:class:`ExactResume` stores the global random states (python, numpy, torch, CUDA) in every checkpoint and restores
them right before the resumed run's first batch, and tells the resumable training sampler
(:mod:`gan_translate.data.resumable`) how many batches of the epoch the model has consumed, so a run resumed
mid-epoch continues with the next batch, in any batch size.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from gan_translate.data.resumable import align_resumed_epoch, mark_consumed

__all__ = ["ExactResume", "collect_rng_states", "restore_rng_states"]


def collect_rng_states() -> dict[str, Any]:
    """Global RNG states as tensors and plain containers (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: Mapping[str, Any]) -> None:
    """Inverse of :func:`collect_rng_states` (missing entries are left as they are)."""
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in states:
        n = states["numpy"]
        keys = np.asarray(n["keys"].numpy() if isinstance(n["keys"], torch.Tensor) else n["keys"], dtype=np.uint32)
        np.random.set_state((n["kind"], keys, int(n["pos"]), int(n["has_gauss"]), float(n["cached_gaussian"])))
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


class ExactResume(Callback):
    """Random states in every checkpoint, restored on resume; the epoch's consumed batches told to the sampler.

    Args:
        restore_rng: save the global random states in checkpoints and restore them on resume.
    """

    def __init__(self, restore_rng: bool = True) -> None:
        super().__init__()
        self.restore_rng = restore_rng
        self._pending_rng: dict[str, Any] | None = None

    @property
    def state_key(self) -> str:
        # The key gan-translate 0.1 checkpoints keep these states under: they resume exactly too.
        return "Reliability"

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the sanity check, right before the first training batch: when the restored random states apply.
        if self._pending_rng is not None:
            restore_rng_states(self._pending_rng)
            self._pending_rng = None
        note = align_resumed_epoch(trainer.train_dataloader, trainer.current_epoch, trainer.fit_loop.epoch_loop)
        if note:
            rank_zero_warn(note)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        mark_consumed(trainer.train_dataloader, trainer.current_epoch, 0)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Before any save of this batch (ScheduledCheckpoints comes after this callback, ModelCheckpoint last).
        mark_consumed(trainer.train_dataloader, trainer.current_epoch, batch_idx + 1)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": collect_rng_states()} if self.restore_rng else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.restore_rng and state_dict.get("rng"):
            self._pending_rng = state_dict["rng"]
