"""StyleGAN2 against DCGAN: sample quality after the same CPU time, and training speed in images per second.

    python benchmarks/stylegan2_vs_dcgan.py --kinds quality --cpu-minutes 4,8,16   # the quickstarts, side by side
    python benchmarks/stylegan2_vs_dcgan.py --kinds quality --variant dcgan \\
        --variant 'sg2-b32=stylegan2:--data.init_args.batch_size=32'                  # a StyleGAN2 variant
    python benchmarks/stylegan2_vs_dcgan.py --kinds speed --sizes 64,256           # images/s of training steps
    python benchmarks/stylegan2_vs_dcgan.py --json benchmarks/results-cpu-stylegan2.json

``quality``: each variant (default: the ``configs/{dcgan,stylegan2}/quickstart.yaml`` configs, 32 px; ``--variant
NAME=MODEL:FLAGS`` adds ``fit`` overrides) trains through ``gan-translate fit`` on one shared synthetic set, all of
them *at the same time*, one process of ``--threads`` threads each, until each has used every mark of
``--cpu-minutes`` of its own CPU time (``cpu_budget.CpuTimeBudget`` saves a checkpoint at each mark and stops at the
last). Process CPU time, not wall time, because the machine is shared: a run slowed by another job gets the same
compute. ``gan-translate generate`` then draws ``--samples`` images from every checkpoint (seed 0; StyleGAN2: its
EMA generator, no truncation) and ``gan-translate evaluate`` scores them against the set's ``--samples`` training
images with FID and KID on the offline ``random-conv`` feature network (scores comparable with each other only).
The fixed-noise GIF is not rebuilt during these runs (``make_gif false``): it is a picture, not learning.

``speed``: training steps on random images at each size, in this process: StyleGAN2 with the widths of
``configs/stylegan2/celeba64.yaml`` at 64 px and ``ffhq256.yaml`` at 256 px, DCGAN (64 px only: its largest
size with the classic widths is 128) with the classic widths; ``--steps`` timed steps after ``--warmup`` steps,
images/s = batch / median step time. Lazy regularisation makes StyleGAN2's steps uneven (R1 every 16, path
length every 4), so the mean over the steps is reported beside the median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODELS = ("dcgan", "stylegan2")


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)]),
            "WANDB_MODE": "disabled"}


def _cli(*args: str, threads: int) -> None:
    completed = subprocess.run([sys.executable, "-m", "gan_translate", *args], env=_env(threads), capture_output=True,
                               text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"gan-translate {args[0]} failed:\n{completed.stdout[-2000:]}\n{completed.stderr[-3000:]}")


def parse_variant(text: str) -> tuple[str, str, list[str]]:
    """``NAME=MODEL[:--flag=value ...]`` (or just ``MODEL``) -> (name, model, extra ``fit`` arguments).

    ``stylegan2-nopl=stylegan2:--model.init_args.pl_weight=0`` trains the StyleGAN2 quickstart with one override.
    """
    head, _, extra = text.partition(":")
    name, _, model = head.rpartition("=")
    name = name or model
    if model not in MODELS:
        raise SystemExit(f"variant {text!r}: the model must be one of {', '.join(MODELS)}")
    return name, model, extra.split()


def _fit_command(model: str, extra: list[str], budgets_s: list[float], data: Path, run: Path) -> list[str]:
    budget = json.dumps({"class_path": "cpu_budget.CpuTimeBudget",
                         "init_args": {"budgets_s": budgets_s, "folder": str(run / "budget")}})
    return [sys.executable, "-m", "gan_translate", "fit", "--config", str(REPO / "configs" / model / "quickstart.yaml"),
            "--trainer.max_epochs", "100000", f"--trainer.callbacks+={budget}",
            "--trainer.default_root_dir", str(run), "--trainer.logger.init_args.save_dir", str(run),
            "--trainer.enable_progress_bar", "false", "--data.root", str(data), "--data.num_workers", "0",
            # The fixed-noise GIF is rebuilt every epoch (DCGAN's are 62 batches): not part of learning.
            "--model.init_args.make_gif", "false", *extra]


def _score(checkpoint: Path, samples: int, data: Path, threads: int) -> dict[str, Any]:
    out = checkpoint.with_suffix("")
    _cli("generate", "--checkpoint", str(checkpoint), "--num", str(samples), "--seed", "0", "--output",
         str(out / "samples"), "--device", "cpu", threads=threads)
    report = out / "eval.json"
    _cli("evaluate", "--fake", str(out / "samples"), "--real", str(data / "trainB"), "--metrics", "fid,kid",
         "--feature", "random-conv", "--kid-subset-size", str(min(1000, samples)), "--output", str(report),
         threads=threads)
    scores = json.loads(report.read_text())
    return scores.get("metrics", scores)


def quality(variants: list[tuple[str, str, list[str]]], cpu_minutes: list[float], samples: int, data: Path, work: Path,
            threads: int) -> list[dict[str, Any]]:
    """Train every variant's quickstart *at the same time* (one process each, ``threads`` threads), each until it has
    used each of ``cpu_minutes`` of CPU time (a checkpoint at every mark); then FID / KID of ``samples`` images
    generated from every checkpoint. Running side by side, the variants share whatever else the machine does."""
    budgets_s = [m * 60 for m in cpu_minutes]
    runs = {name: work / name for name, _, _ in variants}
    started = time.perf_counter()
    processes = {name: subprocess.Popen(_fit_command(model, extra, budgets_s, data, runs[name]), env=_env(threads),
                                        stdout=subprocess.DEVNULL, stderr=open(runs[name].with_suffix(".log"), "w"))
                 for name, model, extra in variants}
    for name, process in processes.items():
        if process.wait() != 0:
            raise RuntimeError(f"fit of {name} failed: {runs[name].with_suffix('.log').read_text()[-3000:]}")
    wall_s = time.perf_counter() - started
    rows = []
    for name, model, extra in variants:
        for minutes, budget in zip(cpu_minutes, budgets_s):
            checkpoint = runs[name] / "budget" / f"cpu{round(budget)}s.ckpt"
            metrics = _score(checkpoint, samples, data, threads)
            batches = int(checkpoint.with_suffix(".batches").read_text())
            rows.append({"variant": name, "model": model, "overrides": extra, "cpu_minutes": minutes,
                         "batches": batches, "wall_s_all_runs": round(wall_s, 1), "samples": samples,
                         "fid": metrics.get("fid"), "kid": metrics.get("kid"), "kid_std": metrics.get("kid_std"),
                         "feature": "random-conv"})
            print(f"quality {name:>16} after {minutes:g} CPU min ({batches} batches): FID {rows[-1]['fid']:.4f}, "
                  f"KID {rows[-1]['kid']:.5f}", flush=True)
    return rows


def _config_model(name: str) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load((REPO / "configs" / "stylegan2" / name).read_text())["model"]["init_args"])


def speed(model_name: str, size: int, batch: int, steps: int, warmup: int) -> dict[str, Any]:
    """Median and mean seconds of a training step (random images) -> images per second."""
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, Dataset

    from gan_translate.models import DCGAN, StyleGAN2

    class RandomImages(Dataset):
        def __len__(self) -> int:
            return (steps + warmup) * batch

        def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
            return {"image": torch.rand(3, size, size, generator=torch.Generator().manual_seed(index)) * 2 - 1}

    class StepTimer(pl.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._start = 0.0

        def on_train_batch_start(self, *args: Any) -> None:
            self._start = time.perf_counter()

        def on_train_batch_end(self, *args: Any) -> None:
            self.times.append(time.perf_counter() - self._start)

    torch.manual_seed(0)
    if model_name == "stylegan2":
        settings = _config_model("celeba64.yaml" if size <= 64 else "ffhq256.yaml")
        settings.update(resolution=size, sample_every_n_steps=0, make_gif=False, num_fixed_samples=4)
        model: Any = StyleGAN2(**settings)
    else:
        model = DCGAN(resolution=size, latent_dim=100, ngf=64, ndf=64, num_fixed_samples=4, make_gif=False,
                      sample_every_n_steps=0)
    timer = StepTimer()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=steps + warmup, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(model, DataLoader(RandomImages(), batch_size=batch, num_workers=0))
    timed = timer.times[warmup:]
    median, mean = statistics.median(timed), statistics.fmean(timed)
    return {"model": model_name, "size": size, "batch": batch, "steps": len(timed), "median_s": round(median, 4),
            "mean_s": round(mean, 4), "images_per_s": round(batch / median, 2), "images_per_s_mean": round(batch / mean, 2),
            "parameters_g": sum(p.numel() for p in model.generator.parameters()),
            "parameters_d": sum(p.numel() for p in model.discriminator.parameters())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="quality,speed", help="quality, speed or both")
    parser.add_argument("--models", default=",".join(MODELS), help="speed: the models timed")
    parser.add_argument("--variant", action="append", default=None,
                        help="quality: NAME=MODEL[:--fit-flag=value ...], repeatable (default: dcgan and stylegan2)")
    parser.add_argument("--cpu-minutes", default="5", help="quality: CPU-time marks per variant, e.g. 4,8,16")
    parser.add_argument("--samples", type=int, default=1000, help="quality: generated (and real) images scored")
    parser.add_argument("--threads", type=int, default=1, help="quality: OMP_NUM_THREADS of each run")
    parser.add_argument("--sizes", default="64,256", help="speed: image sizes (DCGAN at 64 and 128 only)")
    parser.add_argument("--batch", type=int, default=8, help="speed: batch size")
    parser.add_argument("--steps", type=int, default=16, help="speed: timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="speed: untimed first steps")
    parser.add_argument("--data", default=None, help="quality: the synthetic set (made here when missing)")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--work", default=None, help="keep the runs and checkpoints here (default: a temporary folder)")
    args = parser.parse_args(argv)
    kinds = set(args.kinds.split(","))
    models = [m for m in args.models.split(",") if m]
    report: dict[str, Any] = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
                              "settings": {k: v for k, v in vars(args).items() if k != "json"}}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(args.work or folder)
        work.mkdir(parents=True, exist_ok=True)
        if "quality" in kinds:
            from gan_translate.data.synthetic import make_synthetic

            data = Path(args.data) if args.data else work / "data"
            if not (data / "trainB").is_dir():
                make_synthetic(data, size=32, n_train=max(2000, args.samples))
            variants = [parse_variant(v) for v in (args.variant or MODELS)]
            marks = [float(m) for m in args.cpu_minutes.split(",")]
            report["quality"] = quality(variants, marks, args.samples, data, work, args.threads)
        if "speed" in kinds:
            report["speed"] = []
            for size in (int(s) for s in args.sizes.split(",")):
                for model in models:
                    if model == "dcgan" and size not in (32, 64, 128):
                        continue
                    row = speed(model, size, args.batch, args.steps, args.warmup)
                    report["speed"].append(row)
                    print(f"speed {model:>9} {size} px, batch {row['batch']}: {row['images_per_s']} img/s "
                          f"(median step {row['median_s']} s, mean {row['mean_s']} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
