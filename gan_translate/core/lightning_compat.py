"""Every use of Lightning's private API, in one place.

Lightning documents its Trainer, hooks, callbacks and loggers, not the loops' counters, the DDP strategy's
keyword arguments or the attributes behind ``WandbLogger``. The framework needs a few of those (exact resume,
DDP for GANs, W&B's offline fallback, a tolerant ``ModelCheckpoint``). Every such access is a function or class
here, and ``tests/test_lightning_compat.py`` checks each one against the installed Lightning, so an upgrade
that renames one fails there with its name, not deep inside a training run.
"""

from __future__ import annotations

import os
import types
from typing import Any, Union

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from torch import Tensor

__all__ = [
    "ModelCheckpointWithMissingMonitorHook",
    "PathLike",
    "batches_that_stepped",
    "constructor_arguments",
    "ddp_kwargs",
    "discard_wandb_experiment",
    "is_local_path",
    "set_epoch_batches_done",
    "started_wandb_run",
    "step_of_last_save",
    "validation_has_run",
    "version_counter_enabled",
    "wandb_init_kwargs",
]

#: What Lightning's checkpoint I/O accepts as a path (``lightning.fabric.utilities.types._PATH``).
PathLike = Union[str, "os.PathLike[str]"]


def is_local_path(path: PathLike) -> bool:
    """True for a path on the local filesystem (not ``s3://`` ...), as Lightning's checkpoint I/O decides it."""
    from lightning.fabric.utilities.cloud_io import _is_local_file_protocol

    return bool(_is_local_file_protocol(path))


# --- hyperparameters ------------------------------------------------------------------------------
def constructor_arguments(frame: types.FrameType) -> dict[str, Any]:
    """The arguments of every ``__init__`` on the stack from ``frame`` (an ``__init__``) out to the most derived
    class's, merged (the derived class's win): what ``save_hyperparameters()`` collects, ``**kwargs`` included."""
    from lightning.pytorch.core.mixins.hparams_mixin import HyperparametersMixin
    from lightning.pytorch.utilities.parsing import collect_init_args

    merged: dict[str, Any] = {}
    for arguments in collect_init_args(frame, [], classes=(HyperparametersMixin,)):
        merged.update(arguments)
    return merged


# --- loops ------------------------------------------------------------------------------------------
def batches_that_stepped(trainer: pl.Trainer) -> int:
    """Training batches whose logs Lightning has counted: the clock of ``log_every_n_steps``."""
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)


def validation_has_run(trainer: pl.Trainer) -> bool:
    """Whether the fit loop's validation ran in this epoch (Lightning's own test before its monitor check)."""
    return bool(trainer.fit_loop.epoch_loop.val_loop._has_run)


def set_epoch_batches_done(epoch_loop: Any, batches: int) -> None:
    """Make Lightning's epoch loop count ``batches`` batches of the current epoch as done (its ``reset()`` runs
    next), e.g. after a resume in another batch size. A save made in ``on_train_batch_end`` precedes Lightning's
    own count of that batch, which ``reset()`` then adds: it is left one short here."""
    current = epoch_loop.batch_progress.current
    current.ready = current.started = current.processed = current.completed = batches
    if epoch_loop.restarted_on_train_batch_end:
        current.completed -= 1


# --- strategies -------------------------------------------------------------------------------------
def ddp_kwargs(strategy: Any) -> dict[str, Any] | None:
    """The keyword arguments a DDP strategy will pass to ``DistributedDataParallel`` (mutable), or None."""
    kwargs = getattr(strategy, "_ddp_kwargs", None)
    return kwargs if isinstance(kwargs, dict) else None


# --- callbacks --------------------------------------------------------------------------------------
def version_counter_enabled(callback: LightningModelCheckpoint) -> bool:
    """Whether a ModelCheckpoint writes ``last-v1.ckpt`` rather than replacing a ``last.ckpt`` it did not write."""
    return bool(getattr(callback, "_enable_version_counter", True))


def step_of_last_save(callback: LightningModelCheckpoint) -> int:
    """The global step at which a ModelCheckpoint last wrote a file (0 before any): since Lightning 2.6 it writes
    ``last.ckpt`` only at steps where it saved another checkpoint too (a best that improved, a periodic one)."""
    return int(getattr(callback, "_last_global_step_saved", -1))


def mark_saved_at(callback: LightningModelCheckpoint, step: int, path: str) -> None:
    """Tell a ModelCheckpoint that ``path`` was written at ``step``, as its own saves record it: it then skips its
    saves at that step, and its ``on_train_end`` "save last if never saved" fallback."""
    callback._last_global_step_saved = int(step)
    if not callback._last_checkpoint_saved:
        callback._last_checkpoint_saved = str(path)


class ModelCheckpointWithMissingMonitorHook(LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` with a hook, :meth:`on_missing_monitor`, for a monitored value the run did
    not log: Lightning raises there (inside its private top-k save), which ends training before ``last.ckpt``."""

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        if self.monitor is None or self.save_top_k == 0 or self.monitor in monitor_candidates:
            super()._save_topk_checkpoint(trainer, monitor_candidates)
            return
        self.on_missing_monitor(trainer, monitor_candidates)

    def on_missing_monitor(self, trainer: pl.Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        """Called instead of Lightning's error when ``monitor`` is not among ``monitor_candidates``."""
        super()._save_topk_checkpoint(trainer, monitor_candidates)


# --- W&B ------------------------------------------------------------------------------------------------
def wandb_init_kwargs(logger: LightningWandbLogger) -> dict[str, Any]:
    """The (mutable) arguments Lightning's WandbLogger will pass to ``wandb.init``."""
    return logger._wandb_init


def started_wandb_run(logger: LightningWandbLogger) -> Any:
    """The logger's W&B run if it has started one, else None (``logger.experiment`` would start one)."""
    return logger._experiment


def discard_wandb_experiment(logger: LightningWandbLogger, run_id: str | None = None) -> None:
    """Forget the logger's W&B run, so the next ``logger.experiment`` starts one (continuing ``run_id``, if given)."""
    logger._experiment = None
    if run_id is not None:
        logger._id = logger._wandb_init["id"] = run_id
