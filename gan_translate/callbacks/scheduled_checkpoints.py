"""Checkpoints on a schedule and on a signal: a killed or preempted run loses at most a few minutes of work.

:class:`ScheduledCheckpoints`

* saves ``last.ckpt`` (in the run's checkpoint folder) every ``save_every_n_batches`` training batches and/or
  every ``save_every_n_minutes`` minutes;
* on ``SIGTERM`` (preemption, ``scancel``, ``kill``) or ``SIGINT`` (Ctrl-C) finishes the current batch, saves
  ``last.ckpt`` and stops with exit code 128 + the signal number and a one-line message saying how to resume.
  A second Ctrl-C aborts at once without saving. While training runs this replaces Lightning's SIGTERM
  handler (restored afterwards): Lightning would stop at points it cannot resume from exactly. Its SLURM
  requeue signal (``SIGUSR1``, ``auto_requeue``) is left alone.

Every save lands where Lightning can resume from it exactly (never between an epoch's last batch and its end).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from gan_translate.callbacks.nonfinite import checkpoint_kept, last_good_checkpoint
from gan_translate.core.errors import UserError
from gan_translate.core.lightning_compat import mark_saved_at, step_of_last_save, version_counter_enabled

__all__ = ["SIGNALS", "ScheduledCheckpoints", "TrainingInterrupted", "last_checkpoint_path"]

SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
if hasattr(signal, "SIGUSR2"):
    SIGNALS["SIGUSR2"] = signal.SIGUSR2


class TrainingInterrupted(SIGTERMException):
    """Training stopped on a signal after saving a checkpoint; exits with 128 + the signal number.

    A ``SystemExit`` (like Lightning's ``SIGTERMException``, which it subclasses): a script calling
    ``trainer.fit`` ends with that exit code unless it catches it; the CLI prints :attr:`message` first.
    """

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(128 + int(signum))
        self.message = message
        self.signum = int(signum)

    def __str__(self) -> str:
        return self.message


# --- where the resumable checkpoint goes -----------------------------------------------------------
def _model_checkpoints(trainer: pl.Trainer) -> list[ModelCheckpoint]:
    return [cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]  # type: ignore[attr-defined]


def last_checkpoint_path(trainer: pl.Trainer) -> tuple[Path, ModelCheckpoint | None]:
    """``last.ckpt`` of the run: the file a ``ModelCheckpoint(save_last=True)`` writes, so there is one name
    to resume from; without one, ``<first ModelCheckpoint folder or default_root_dir/checkpoints>/last.ckpt``."""
    callbacks = _model_checkpoints(trainer)
    for callback in callbacks:
        if callback.save_last and callback.dirpath:
            if callback.last_model_path and Path(callback.last_model_path).parent == Path(callback.dirpath):
                return Path(callback.last_model_path), callback
            metrics = {"epoch": torch.tensor(trainer.current_epoch), "step": torch.tensor(trainer.global_step)}
            name = callback.format_checkpoint_name(metrics, callback.CHECKPOINT_NAME_LAST)
            # A last.ckpt this run did not write (an earlier run in the same folder, e.g. without a logger, or
            # a later one when resuming an older checkpoint) is never replaced: last-v1.ckpt, as Lightning does.
            version = callback.STARTING_VERSION
            while version_counter_enabled(callback) and os.path.exists(name):
                name = callback.format_checkpoint_name(metrics, callback.CHECKPOINT_NAME_LAST, ver=version)
                version += 1
            return Path(name), callback
    folder = Path(callbacks[0].dirpath) if callbacks and callbacks[0].dirpath else Path(trainer.default_root_dir) / "checkpoints"
    return folder / "last.ckpt", None


class ScheduledCheckpoints(Callback):
    """Periodic and on-signal ``last.ckpt`` (see the module docstring).

    Args:
        save_every_n_batches: save ``last.ckpt`` every this many training batches (0: never).
        save_every_n_minutes: also save it when this many minutes passed since the last save (0: never).
        save_on_signal: on SIGTERM / SIGINT, save ``last.ckpt`` at the end of the current batch and stop.
        signals: the signals that trigger that save (names: SIGTERM, SIGINT, SIGUSR2).
    """

    def __init__(
        self,
        save_every_n_batches: int = 1000,
        save_every_n_minutes: float = 0.0,
        save_on_signal: bool = True,
        signals: list[str] | None = None,
    ) -> None:
        super().__init__()
        if save_every_n_batches < 0 or save_every_n_minutes < 0:
            raise UserError(
                f"reliability: save_every_n_batches and save_every_n_minutes must be >= 0, "
                f"got {save_every_n_batches} and {save_every_n_minutes}"
            )
        names = list(signals) if signals is not None else ["SIGTERM", "SIGINT"]
        unknown = [name for name in names if name not in SIGNALS]
        if unknown:
            raise UserError(f"reliability: unknown signal {unknown[0]!r}; valid: {', '.join(SIGNALS)}")
        self.save_every_n_batches = save_every_n_batches
        self.save_every_n_minutes = save_every_n_minutes
        self.save_on_signal = save_on_signal
        self.signals = names
        self._received: int | None = None  # signal number, set by the handler
        self._previous_handlers: dict[int, Any] = {}
        self._installed = False
        self._saving = True
        self._last_save_time = time.monotonic()
        self._deferred = False  # a save due at an epoch's last batch, made at the epoch's end
        self._saved_step = -1  # the global step of this callback's last save

    # --- signals ------------------------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous_handlers.get(signum)
        if not self._installed:  # a stale handler (should not happen): behave like the one we replaced
            default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            signal.signal(signum, previous if previous is not None else default)
            signal.raise_signal(signum)
            return
        if signum == signal.SIGINT and self._received is not None:
            # Second Ctrl-C: the user does not want to wait for the save.
            self._restore_handlers()
            raise KeyboardInterrupt
        first = self._received is None
        self._received = signum
        if first:
            name = signal.Signals(signum).name
            text = f"\nreceived {name}: saving a checkpoint at the end of this batch, then stopping" + (
                " (press Ctrl-C again to abort without saving)" if signum == signal.SIGINT else ""
            )
            try:  # os.write, not print: print in a handler can hit "reentrant call" on a busy stderr
                os.write(sys.stderr.fileno(), (text + "\n").encode())
            except (OSError, ValueError, AttributeError):  # stderr is not a file (e.g. captured): best effort
                try:
                    sys.stderr.write(text + "\n")
                except RuntimeError:
                    pass
        # Lightning's own SIGTERM handler (which we replaced for the duration of training) is deliberately not
        # called: it would make the loops raise SIGTERMException at points of their choosing, e.g. between an
        # epoch's last batch and its end, a state Lightning cannot resume exactly. We stop at a safe point
        # ourselves, with the same exception type, and every DDP rank joins the decision at the next batch end.

    def _install_handlers(self) -> None:
        if not self.save_on_signal or self._installed or threading.current_thread() is not threading.main_thread():
            return
        for name in self.signals:
            signum = SIGNALS[name]
            self._previous_handlers[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)
        self._installed = True

    def _restore_handlers(self) -> None:
        if not self._installed:
            return
        self._installed = False
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in self._previous_handlers.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    # --- hooks --------------------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # --trainer.enable_checkpointing false (no ModelCheckpoint): no saves, no signal handling either.
        self._saving = bool(_model_checkpoints(trainer))
        if stage == "fit" and self._saving and not any(
            isinstance(cb, _EpochEndSave) and cb.owner is self for cb in trainer.callbacks
        ):
            trainer.callbacks.append(_EpochEndSave(self))  # type: ignore[attr-defined] # last: after ModelCheckpoint

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After Lightning registered its own SIGTERM handler (which we replace until training ends) and after
        # the sanity check, i.e. right before the first training batch.
        self._received = None
        self._deferred = False
        self._last_save_time = time.monotonic()
        if self._saving:
            self._install_handlers()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Runs before ModelCheckpoint (Lightning always moves checkpoint callbacks last), after NonFiniteGuard and
        # ExactResume (reliability_callbacks() lists them first), so a save holds the epoch's consumed batches.
        if not self._saving:
            return

        received = self._received is not None
        if trainer.world_size > 1:  # every rank must take part in the save
            received = trainer.strategy.reduce_boolean_decision(received, all=False)
        due = received
        if not due and self.save_every_n_batches:
            due = (trainer.fit_loop.total_batch_idx + 1) % self.save_every_n_batches == 0
        if not due and self.save_every_n_minutes:
            due = time.monotonic() - self._last_save_time >= 60.0 * self.save_every_n_minutes
            due = bool(trainer.strategy.broadcast(due))  # clocks differ across ranks: rank 0 decides
        if not due:
            return
        last_batch = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch or batch_idx + 1 >= trainer.num_training_batches
        if last_batch:
            # Lightning cannot resume exactly from a checkpoint taken between an epoch's last batch and the
            # epoch-end hooks (it skips them: no LR schedule step, no validation), nor from one taken when the
            # next epoch starts (it skips that epoch). It can from the end of on_train_epoch_end, where
            # ModelCheckpoint saves: _EpochEndSave (a Checkpoint, so it runs there) makes the save then.
            self._deferred = True
            return
        if received:
            self._stop_on_signal(trainer)
        self._save(trainer)

    def _epoch_end_save(self, trainer: pl.Trainer) -> None:
        """Called by :class:`_EpochEndSave` after the epoch-end hooks of the model and of ModelCheckpoint."""
        received = self._received is not None  # also a signal that came during the epoch-end validation
        if trainer.world_size > 1:
            received = trainer.strategy.reduce_boolean_decision(received, all=False)
        deferred, self._deferred = self._deferred, False
        if received:
            self._stop_on_signal(trainer)
        if deferred or not self._last_is_current(trainer):
            self._save(trainer)

    def _final_batch_save(self, trainer: pl.Trainer, batch_idx: int) -> None:
        """Called by :class:`_EpochEndSave` after a batch: when it ends training mid-epoch (max_steps, max_time, a
        stop request), save here, where Lightning resumes exactly; after the loop it counts the epoch as done."""
        reached = trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
        if not (trainer.should_stop or reached):
            return
        last_batch = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch or batch_idx + 1 >= trainer.num_training_batches
        if last_batch:
            self._deferred = not self._last_is_current(trainer)  # the epoch-end save makes it
            return
        if not self._last_is_current(trainer):
            self._save(trainer)
        # Lightning still runs the epoch-end hooks after this stop, counting the cut-short epoch as done; a
        # ModelCheckpoint saving there (one without validation saves on train epoch end) would overwrite last.ckpt
        # with a state that resumes at the next epoch, losing the epoch's remaining batches. Marked as saved at this
        # step, it skips that save and its train-end one (this runs after every ModelCheckpoint's batch-end saves).
        path = last_checkpoint_path(trainer)[0]
        for callback in _model_checkpoints(trainer):
            mark_saved_at(callback, trainer.global_step, str(path))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # last.ckpt must hold the final state, or `translate` of the run (and a resume) would use an older one. The
        # saves above normally made it; this is the fallback (Lightning then resumes at the next epoch).
        if self._saving and (self._deferred or not self._last_is_current(trainer)):
            self._save(trainer)
        self._deferred = False
        self._restore_handlers()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()
        if isinstance(exception, SIGTERMException) and not isinstance(exception, TrainingInterrupted):
            # Lightning's own handler stopped the run: the signal came before training started or after it ended
            # (ours is installed in between). Not a state to save (Lightning cannot resume mid-validation
            # exactly); the last checkpoint stands. main() prints `message` and exits with `code`, as for ours.
            exception.message = (  # type: ignore[attr-defined]
                f"stopped on SIGTERM at step {trainer.global_step} outside the training loop; "
                f"{checkpoint_kept(last_good_checkpoint(trainer))}"
            )
            exception.code = 128 + int(signal.SIGTERM)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore_handlers()
        # A later trainer.test(ckpt_path="best") would otherwise see two checkpoint callbacks and warn.
        trainer.callbacks = [  # type: ignore[attr-defined]
            cb for cb in trainer.callbacks if not (isinstance(cb, _EpochEndSave) and cb.owner is self)
        ]

    # --- helpers ------------------------------------------------------------------------------------
    def _last_is_current(self, trainer: pl.Trainer) -> bool:
        """Whether ``last.ckpt`` already holds this global step. Lightning's ModelCheckpoint writes it only at
        steps where it saved another checkpoint too: at an epoch whose monitored value did not improve it would lag
        behind by that epoch, so the epoch-end save (``_EpochEndSave``) writes it then."""
        step = trainer.global_step
        if step == 0 or self._saved_step == step:
            return True
        owner = last_checkpoint_path(trainer)[1]
        return owner is not None and step_of_last_save(owner) == step and bool(owner.last_model_path)

    def _save(self, trainer: pl.Trainer) -> Path:
        path, owner = last_checkpoint_path(trainer)
        previous = owner.last_model_path if owner is not None else ""
        if owner is not None:
            # Before the save, as ModelCheckpoint does, so the file's own state names it: otherwise ModelCheckpoint
            # (now, or in the run resumed from this file) takes our file for someone else's and writes last-v1.ckpt.
            owner.last_model_path = str(path)
        try:
            trainer.save_checkpoint(path, weights_only=False)
        except BaseException:
            if owner is not None:
                owner.last_model_path = previous
            raise
        self._last_save_time = time.monotonic()
        self._saved_step = trainer.global_step
        return path

    def _stop_on_signal(self, trainer: pl.Trainer) -> None:
        signum = self._received if self._received is not None else int(signal.SIGTERM)
        path = self._save(trainer)
        name = signal.Signals(signum).name
        message = (
            f"stopped on {name} after step {trainer.global_step} (epoch {trainer.current_epoch}, "
            f"batch {trainer.fit_loop.epoch_loop.batch_idx + 1}); saved {path}; "
            f"resume with the same command plus --ckpt_path {path}"
        )
        raise TrainingInterrupted(message, signum)


class _EpochEndSave(Checkpoint):
    """Helper of :class:`ScheduledCheckpoints`: Lightning runs ``Checkpoint`` callbacks' ``on_train_epoch_end`` after the
    model's (which steps the LR schedules), the one point after an epoch's last batch it resumes from exactly."""

    def __init__(self, owner: ScheduledCheckpoints) -> None:
        super().__init__()
        self.owner = owner

    @property
    def state_key(self) -> str:
        return "gan_translate.Reliability.epoch_end"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.owner._epoch_end_save(trainer)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # After every other callback, Lightning's Timer (max_time) included: whether this batch ends training.
        self.owner._final_batch_save(trainer, batch_idx)
