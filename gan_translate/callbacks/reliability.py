"""``--reliability.*``: the options of training that survives interruptions, and the callbacks they make.

Every ``gan-translate fit`` gets three callbacks (each usable on its own in a plain Lightning Trainer):

* :class:`~gan_translate.callbacks.nonfinite.NonFiniteGuard`: a NaN / Inf training value stops the run with one
  line, before anything poisoned is saved;
* :class:`~gan_translate.callbacks.exact_resume.ExactResume`: random states and the epoch's position in every
  checkpoint, so a resume continues exactly;
* :class:`~gan_translate.callbacks.scheduled_checkpoints.ScheduledCheckpoints`: ``last.ckpt`` every N batches /
  minutes and on SIGTERM / Ctrl-C.

They are listed in that order (Lightning runs callbacks in list order, checkpoint callbacks last): the guard
sees a batch before anything saves it, and a save records the batches the epoch has consumed.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

from gan_translate.callbacks.exact_resume import ExactResume
from gan_translate.callbacks.nonfinite import NonFiniteGuard
from gan_translate.callbacks.scheduled_checkpoints import ScheduledCheckpoints

__all__ = ["Reliability"]


class Reliability:
    """Periodic and on-signal ``last.ckpt``, a NaN/Inf loss guard, and exact-resume bookkeeping.

    The checkpoint schedule options (``save_every_n_batches``, ``save_every_n_minutes``, ``save_on_signal``,
    ``signals``) are :class:`~gan_translate.callbacks.scheduled_checkpoints.ScheduledCheckpoints`'.

    Args:
        stop_on_nonfinite: stop with a one-line error when a logged training loss is NaN or infinite.
        restore_rng: save the global random states in checkpoints and restore them on resume.
    """

    def __init__(self, stop_on_nonfinite: bool = True, restore_rng: bool = True, **kwargs: Any) -> None:
        # Built here, so a bad value is reported when the config is read, not when training starts.
        self.scheduled = ScheduledCheckpoints(**kwargs)
        self.stop_on_nonfinite = stop_on_nonfinite
        self.restore_rng = restore_rng

    def callbacks(self) -> list[Callback]:
        """The callbacks, in the order they must run."""
        guard: list[Callback] = [NonFiniteGuard()] if self.stop_on_nonfinite else []
        return [*guard, ExactResume(restore_rng=self.restore_rng), self.scheduled]
