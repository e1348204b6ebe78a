"""bf16-mixed against fp32 training at the quickstart size, for the translators whose quickstart has a ground truth
(issue 29, item 3: ``precision: auto`` may become the default only where bf16 keeps fp32's quality).

Each ``configs/<model>/quickstart.yaml`` is trained as shipped by ``gan-translate fit`` (64 px, its own schedule),
with ``--trainer.precision`` 32-true and bf16-mixed and ``--seed_everything`` each seed, validation and logger off,
data loading in the process; its ``last.ckpt`` is scored by ``gan-translate evaluate`` (L1 / PSNR of the test split's
translations against the ground truth: ``testA_gt`` for the unpaired models, the pairs' B side for pix2pix).
``benchmarks/precision_check.py`` does the same for CycleGAN with more test images.

    OMP_NUM_THREADS=1 python benchmarks/precision_quickstarts.py --models pix2pix,cut --seeds 0,1,2 \\
        --data /path/to/synthetic --json benchmarks/results-cpu-precision-quickstarts.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ("32-true", "bf16-mixed")


def _run(model: str, precision: str, seed: int, data: Path, work: Path, threads: int) -> dict[str, float]:
    run = work / f"{model}-{precision}-{seed}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": "disabled"}
    cli = [sys.executable, "-m", "gan_translate"]
    started = time.time()
    subprocess.run([*cli, "fit", "--config", str(REPO / "configs" / model / "quickstart.yaml"),
                    "--trainer.precision", precision, "--seed_everything", str(seed), "--trainer.logger", "false",
                    "--trainer.limit_val_batches", "0", "--trainer.default_root_dir", str(run),
                    "--data.root", str(data), "--data.num_workers", "0", "--trainer.enable_progress_bar", "false"],
                   env=env, check=True, capture_output=True)
    seconds = time.time() - started
    last = sorted(run.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)[-1]
    scores = run / "scores.json"
    root = data / "paired" if model == "pix2pix" else data
    subprocess.run([*cli, "evaluate", "--checkpoint", str(last), "--data", str(root), "--metrics", "l1,psnr",
                    "--device", "cpu", "--output", str(scores)], env=env, check=True, capture_output=True)
    metrics = json.loads(scores.read_text())["metrics"]
    return {"l1": metrics["l1"], "psnr": metrics["psnr"], "wall_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="pix2pix,cut")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data", type=Path, required=True, help="a synthetic set (made by make_synthetic, pairs included)")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(m, p, s) for m in args.models.split(",") for s in seeds for p in PRECISIONS]
    work = Path(tempfile.mkdtemp(prefix="precision_quickstarts_"))
    results: dict[str, dict] = {"command": " ".join(sys.argv), "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "runs": []}
    with ThreadPoolExecutor(args.parallel) as pool:
        futures = {job: pool.submit(_run, *job, args.data, work, args.threads) for job in jobs}
        for (model, precision, seed), future in futures.items():
            results["runs"].append({"model": model, "precision": precision, "seed": seed, **future.result()})
            args.json.write_text(json.dumps(results, indent=1))
            print(results["runs"][-1], flush=True)
    summary = {}
    for model in args.models.split(","):
        for precision in PRECISIONS:
            rows = [r for r in results["runs"] if r["model"] == model and r["precision"] == precision]
            summary[f"{model} {precision}"] = {k: (statistics.mean(r[k] for r in rows), statistics.stdev(r[k] for r in rows))
                                                for k in ("l1", "psnr", "wall_s")}
    results["summary"] = summary
    args.json.write_text(json.dumps(results, indent=1))
    for name, values in summary.items():
        print(name, " ".join(f"{k} {m:.4f} ± {s:.4f}" for k, (m, s) in values.items()))


if __name__ == "__main__":
    main()
