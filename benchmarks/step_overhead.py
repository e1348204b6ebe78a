"""The framework's own cost per training iteration: networks too small to matter, timed through a Lightning Trainer.

    python benchmarks/step_overhead.py                          # pix2pix and CycleGAN, 300 iterations each
    python benchmarks/step_overhead.py --models pix2pix --iterations 500 --log-every 1

With 4-filter networks on 32 px images the convolutions take a few milliseconds, so what is left is the
per-iteration work around them: Lightning's loop and hooks, optimiser toggling, logging, the NaN guard. That work
runs on the CPU between GPU kernels, so at the classic batch sizes on a GPU it decides whether we keep up with
the classic code (benchmarks/RESULTS.md). One torch thread, the first ``--skip`` iterations untimed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def tiny_model(name: str) -> Any:
    from gan_translate.models import CycleGAN, Pix2Pix

    if name == "pix2pix":
        return Pix2Pix(generator="unet", generator_args={"num_downs": 5}, ngf=4, ndf=4, sample_every_n_steps=0)
    return CycleGAN(generator="resnet", generator_args={"n_blocks": 1}, ngf=4, ndf=4, sample_every_n_steps=0)


def milliseconds_per_iteration(name: str, iterations: int, skip: int, log_every: int) -> float:
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    model = tiny_model(name)
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    stamps: list[float] = []

    class Clock(pl.Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            stamps.append(time.perf_counter())

        def on_train_end(self, *args: Any) -> None:
            stamps.append(time.perf_counter())

    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, log_every_n_steps=log_every, callbacks=[Clock()],
    )
    trainer.fit(model, DataLoader([batch] * iterations, batch_size=None))
    return (stamps[-1] - stamps[skip]) / (len(stamps) - 1 - skip) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="pix2pix,cyclegan", help="comma-separated: pix2pix, cyclegan")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--skip", type=int, default=50, help="untimed iterations first")
    parser.add_argument("--repeats", type=int, default=3, help="runs per model (the median is reported)")
    parser.add_argument("--log-every", type=int, default=50, help="Trainer(log_every_n_steps)")
    args = parser.parse_args(argv)
    if args.iterations <= args.skip + 1:
        parser.error(f"--iterations must exceed --skip + 1 (got {args.iterations} and {args.skip})")

    import logging

    import torch

    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    for name in [m for m in args.models.split(",") if m]:
        if name not in ("pix2pix", "cyclegan"):
            parser.error(f"unknown model {name!r}: pix2pix or cyclegan")
        runs = [milliseconds_per_iteration(name, args.iterations, args.skip, args.log_every) for _ in range(args.repeats)]
        spread = ", ".join(f"{r:.2f}" for r in runs)
        print(f"{name}: {statistics.median(runs):.2f} ms per iteration (runs: {spread}; log_every_n_steps={args.log_every})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
