"""bf16-mixed against fp32 training at the quickstart size (issue 29, item 3: ``precision: auto`` may become the
default only where bf16 keeps fp32's quality).

Each ``configs/<model>/quickstart.yaml`` is trained as shipped by ``gan-translate fit`` (its own size and schedule;
``--max-epochs MODEL=N`` shortens one), with ``--trainer.precision`` 32-true and bf16-mixed and ``--seed_everything``
each seed, validation and logger off, data loading in the process; its ``last.ckpt`` is then scored:

* translators (``cyclegan``, ``pix2pix``, ``cut``, ``unsb``, ...): ``gan-translate evaluate``, L1 / PSNR of the test
  split's translations against the ground truth (``testA_gt`` for the unpaired models, the pairs' B side for pix2pix);
* samplers (``dcgan``, ``stylegan2``; no ground truth): ``gan-translate generate`` draws ``--samples`` images (seed
  0) and ``evaluate`` gives their FID / KID against as many training images, with the offline ``random-conv``
  features (comparable with each other only), on the samplers' own 32 px set of 2000 images (made here).

``benchmarks/precision_check.py`` does the same for CycleGAN with more test images.

    OMP_NUM_THREADS=1 python benchmarks/precision_quickstarts.py --models pix2pix,cut --seeds 0,1,2 \\
        --data /path/to/synthetic --json benchmarks/results-cpu-precision-quickstarts.json
    OMP_NUM_THREADS=1 python benchmarks/precision_quickstarts.py --models dcgan,stylegan2 --max-epochs stylegan2=4 \\
        --data /path/to/synthetic --json benchmarks/results-cpu-precision-samplers.json
    OMP_NUM_THREADS=1 python benchmarks/precision_quickstarts.py --models distill --data /path/to/synthetic \\
        --fit-args distill='--model.teacher tests/fixtures/teachers/cyclegan_quickstart_AtoB.safetensors' ...
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ("32-true", "bf16-mixed")
SAMPLERS = ("dcgan", "stylegan2")
SAMPLER_SET = {"size": 32, "n_train": 2000}  # the samplers' quickstart set (configs/{dcgan,stylegan2}/quickstart.yaml)


def _cli(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "gan_translate", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gan-translate {args[0]} failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")


def _run(model: str, precision: str, seed: int, data: Path, work: Path, threads: int, max_epochs: int | None,
         samples: int, fit_args: list[str]) -> dict[str, float]:
    run = work / f"{model}-{precision}-{seed}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": "disabled"}
    sampler = model in SAMPLERS
    extra = (["--trainer.max_epochs", str(max_epochs)] if max_epochs else []) + fit_args
    if sampler:
        extra += ["--model.init_args.make_gif", "false"]  # the fixed-noise GIF is a picture, not learning
    started = time.time()
    _cli("fit", "--config", str(REPO / "configs" / model / "quickstart.yaml"), "--trainer.precision", precision,
         "--seed_everything", str(seed), "--trainer.logger", "false", "--trainer.limit_val_batches", "0",
         "--trainer.default_root_dir", str(run), "--data.root", str(data), "--data.num_workers", "0",
         "--trainer.enable_progress_bar", "false", *extra, env=env)
    seconds = time.time() - started
    last = sorted(run.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)[-1]
    scores = run / "scores.json"
    if sampler:
        _cli("generate", "--checkpoint", str(last), "--num", str(samples), "--seed", "0", "--output",
             str(run / "samples"), "--device", "cpu", env=env)
        _cli("evaluate", "--fake", str(run / "samples"), "--real", str(data / "trainB"), "--metrics", "fid,kid",
             "--feature", "random-conv", "--kid-subset-size", str(min(1000, samples)), "--output", str(scores), env=env)
        metrics = json.loads(scores.read_text())["metrics"]
        return {"fid": metrics["fid"], "kid": metrics["kid"], "wall_s": seconds}
    root = data / "paired" if model == "pix2pix" else data
    _cli("evaluate", "--checkpoint", str(last), "--data", str(root), "--metrics", "l1,psnr", "--device", "cpu",
         "--output", str(scores), env=env)
    metrics = json.loads(scores.read_text())["metrics"]
    return {"l1": metrics["l1"], "psnr": metrics["psnr"], "wall_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="pix2pix,cut")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data", type=Path, required=True, help="a synthetic set (made by make_synthetic, pairs included)")
    parser.add_argument("--sampler-data", type=Path, default=None,
                        help="the samplers' 32 px set (default: made in the work folder)")
    parser.add_argument("--max-epochs", action="append", default=[], metavar="MODEL=N",
                        help="train MODEL for N epochs instead of its quickstart's (repeatable)")
    parser.add_argument("--samples", type=int, default=1000, help="samplers: generated (and real) images scored")
    parser.add_argument("--fit-args", action="append", default=[], metavar="MODEL=ARGS",
                        help="more `fit` arguments for MODEL, e.g. distill='--model.teacher T.safetensors' (repeatable)")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    models = args.models.split(",")
    max_epochs = {name: int(n) for name, n in (item.split("=") for item in args.max_epochs)}
    fit_args = {name: shlex.split(text) for name, text in (item.split("=", 1) for item in args.fit_args)}
    jobs = [(m, p, s) for m in models for s in seeds for p in PRECISIONS]
    work = Path(tempfile.mkdtemp(prefix="precision_quickstarts_"))
    sampler_data = args.sampler_data or work / "sampler_data"
    if any(m in SAMPLERS for m in models) and not (sampler_data / "trainB").is_dir():
        from gan_translate.data.synthetic import make_synthetic

        make_synthetic(sampler_data, **SAMPLER_SET)  # once, before the parallel fits (they would race to make it)
    results: dict[str, dict] = {"command": " ".join(sys.argv), "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "runs": []}
    with ThreadPoolExecutor(args.parallel) as pool:
        futures = {job: pool.submit(_run, *job, sampler_data if job[0] in SAMPLERS else args.data, work, args.threads,
                                    max_epochs.get(job[0]), args.samples, fit_args.get(job[0], [])) for job in jobs}
        for (model, precision, seed), future in futures.items():
            results["runs"].append({"model": model, "precision": precision, "seed": seed, **future.result()})
            args.json.write_text(json.dumps(results, indent=1))
            print(results["runs"][-1], flush=True)
    summary = {}
    for model in models:
        keys = ("fid", "kid", "wall_s") if model in SAMPLERS else ("l1", "psnr", "wall_s")
        for precision in PRECISIONS:
            rows = [r for r in results["runs"] if r["model"] == model and r["precision"] == precision]
            summary[f"{model} {precision}"] = {k: (statistics.mean(r[k] for r in rows), statistics.stdev(r[k] for r in rows))
                                                for k in keys}
    results["summary"] = summary
    args.json.write_text(json.dumps(results, indent=1))
    for name, values in summary.items():
        print(name, " ".join(f"{k} {m:.4f} ± {s:.4f}" for k, (m, s) in values.items()))


if __name__ == "__main__":
    main()
