"""A Lightning callback for benchmarks: checkpoints at given amounts of *process CPU time*, then stops training.

``benchmarks/stylegan2_vs_dcgan.py`` compares models "after the same CPU time". Wall-clock budgets
(``trainer.max_time``) are unfair on a shared machine: a model that happens to run while another job is busy gets
less compute. ``time.process_time()`` counts only the CPU this process used (all its threads; with
``OMP_NUM_THREADS=1`` and ``num_workers=0`` that is the training itself, data loading included), so runs that
share the machine still get equal budgets. It is imported by class path (``cpu_budget.CpuTimeBudget``) with
``benchmarks/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning.pytorch as pl


class CpuTimeBudget(pl.Callback):
    """Save ``<folder>/cpu<seconds>s.ckpt`` when the process has used each of ``budgets_s`` seconds of CPU
    time since training started, and stop after the last one.

    Args:
        budgets_s: increasing CPU-second marks, e.g. ``[240, 480, 960]``.
        folder: where the checkpoints go (made if missing).
    """

    def __init__(self, budgets_s: list[float], folder: str) -> None:
        if not budgets_s or sorted(budgets_s) != list(budgets_s) or budgets_s[0] <= 0:
            raise ValueError(f"budgets_s must be positive and increasing, got {budgets_s}")
        self.budgets_s = [float(b) for b in budgets_s]
        self.folder = Path(folder)
        self._start = 0.0
        self._next = 0
        self.batches_at: dict[float, int] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._start = time.process_time()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        used = time.process_time() - self._start
        while self._next < len(self.budgets_s) and used >= self.budgets_s[self._next]:
            budget = self.budgets_s[self._next]
            trainer.save_checkpoint(self.folder / f"cpu{round(budget)}s.ckpt")
            self.batches_at[budget] = trainer.fit_loop.total_batch_idx + 1
            (self.folder / f"cpu{round(budget)}s.batches").write_text(str(self.batches_at[budget]))
            self._next += 1
        if self._next == len(self.budgets_s):
            trainer.should_stop = True
