"""Does bf16-mixed training reach the same validation quality as fp32? (issue 20: before ``precision: auto``
may become the default, bf16 must score within seed noise of fp32 on the synthetic task.)

For each precision and seed, a small CycleGAN trains on the generated synthetic task (warm flat shapes <->
cool striped shapes, with ground truth), then the whole test split is scored: L1 and PSNR of the translated
A images against their ground truth (``val/l1_ab``, ``val/psnr_ab``) and the same B -> A. Seeds change the
initial weights, the batch order and the image pool; the data is the same for every run. The verdict
compares the gap between the precisions' means with the spread between seeds of one precision.

CPU (2 cores shared with other jobs: one thread each; a few minutes at these sizes)::

    OMP_NUM_THREADS=1 python benchmarks/precision_check.py --seeds 0,1,2 --steps 300 \\
        --json benchmarks/results-cpu-precision.json

GPU (the same check at the quickstart's size; also part ``precision`` of benchmarks/gpu_suite.sh)::

    python benchmarks/precision_check.py --accelerator cuda --size 64 --blocks 3 --ngf 16 --ndf 32 \\
        --steps 2000 --json OUT/results-cuda-precision.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METRICS = ("val/l1_ab", "val/psnr_ab", "val/l1_ba", "val/psnr_ba")


def train_and_score(args: argparse.Namespace, data: Path, precision: str, seed: int) -> dict[str, float]:
    """Train one CycleGAN for ``args.steps`` batches at ``precision`` from ``seed``; its test-split metrics."""
    import lightning.pytorch as pl

    from gan_translate.data import UnpairedDataModule
    from gan_translate.data.options import ImageTransform
    from gan_translate.models import CycleGAN

    pl.seed_everything(seed, verbose=False)
    model = CycleGAN(generator="resnet", generator_args={"n_blocks": args.blocks}, ngf=args.ngf, ndf=args.ndf,
                     discriminator_args={"n_layers": 2}, sample_every_n_steps=0,
                     # The classic schedule, shrunk: constant for the first half, linear decay to 0 over the second.
                     n_epochs=max(1, args.epochs // 2), n_epochs_decay=max(1, args.epochs - args.epochs // 2))
    datamodule = UnpairedDataModule(root=str(data), batch_size=args.batch,
                                    transform=ImageTransform(load_size=args.size + args.size // 8, crop_size=args.size),
                                    num_workers=0, val_max_images=args.test_images)
    trainer = pl.Trainer(accelerator=args.accelerator, devices=1, precision=precision, max_epochs=args.epochs,
                         limit_train_batches=max(1, args.steps // args.epochs), limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tempfile.mkdtemp(prefix="precision_check_"))
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    seconds = time.perf_counter() - start
    # Scored in the same precision it trained in (what the run's own validation would report).
    scorer = pl.Trainer(accelerator=args.accelerator, devices=1, precision=precision, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=trainer.default_root_dir)
    scores = scorer.validate(model, datamodule=datamodule, verbose=False)[0]
    return {**{name: float(scores[name]) for name in METRICS}, "train_s": seconds}


def summary(runs: list[dict[str, Any]], precisions: list[str]) -> dict[str, Any]:
    """Per precision: mean and standard deviation over seeds; per metric: the gap against the first precision."""
    out: dict[str, Any] = {}
    for precision in precisions:
        mine = [r for r in runs if r["precision"] == precision]
        out[precision] = {
            name: {"mean": statistics.fmean(r[name] for r in mine),
                   "sd": statistics.stdev(r[name] for r in mine) if len(mine) > 1 else 0.0}
            for name in (*METRICS, "train_s")
        }
    reference = precisions[0]
    for precision in precisions[1:]:
        for name in METRICS:
            ref, other = out[reference][name], out[precision][name]
            # Within seed noise: the means differ by less than two standard deviations of the larger spread
            # (with 3 seeds a rough bound, stated as such in RESULTS.md).
            noise = max(ref["sd"], other["sd"])
            other["gap"] = other["mean"] - ref["mean"]
            other["within_2sd"] = abs(other["gap"]) <= 2 * noise
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precisions", default="32-true,bf16-mixed")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--size", type=int, default=32, help="training crop (px)")
    parser.add_argument("--steps", type=int, default=300, help="training batches per run")
    parser.add_argument("--epochs", type=int, default=4, help="the steps are split into this many epochs (LR schedule)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=2, help="ResNet blocks per generator")
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--ndf", type=int, default=16)
    parser.add_argument("--train-images", type=int, default=200)
    parser.add_argument("--test-images", type=int, default=40)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import logging

    import torch

    from gan_translate.data.synthetic import make_synthetic

    if args.accelerator == "cpu":
        torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    precisions = [p for p in args.precisions.split(",") if p]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    data = make_synthetic(Path(tempfile.mkdtemp(prefix="precision_data_")) / "synthetic", size=args.size + args.size // 8,
                          n_train=args.train_images, n_test=args.test_images, seed=0)
    runs = []
    for seed in seeds:  # precisions alternate, so a load change on the shared machine hits both alike
        for precision in precisions:
            result = {"precision": precision, "seed": seed, **train_and_score(args, data, precision, seed)}
            runs.append(result)
            print(json.dumps(result), flush=True)
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "torch": torch.__version__, "runs": runs,
              "summary": summary(runs, precisions)}
    for precision, entry in report["summary"].items():
        line = ", ".join(f"{name} {v['mean']:.4f} +- {v['sd']:.4f}" + (f" (gap {v['gap']:+.4f}, within 2 sd: {v['within_2sd']})"
                                                                      if "gap" in v else "") for name, v in entry.items())
        print(f"{precision}: {line}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
