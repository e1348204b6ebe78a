"""UNSB against CUT and CycleGAN (issue 27): quality on the synthetic task, seconds per iteration, peak memory.

    python benchmarks/unsb_vs_cut.py --json benchmarks/results-cpu-unsb.json     # everything, ~25 min on 2 cores
    python benchmarks/unsb_vs_cut.py --kinds speed --sizes 256 --steps 5 --rounds 2   # one part, longer
    python benchmarks/unsb_vs_cut.py --kinds quality --iterations 400 --cpu-seconds 120,240 --seeds 0,1,2,3,4

Every process runs ``--threads`` threads (default 1: ``OMP_NUM_THREADS=1``), data loading in the training process.

* ``quality``: the ``configs/{unsb,cut,cyclegan}/quickstart.yaml`` configs (64 px, batch 4: CycleGAN and CUT train
  on 4 images a batch, UNSB on 2, the other 2 being its energy network's contrast batch) trained by
  ``gan-translate fit`` on one synthetic set, ``--parallel`` runs at a time (default 2), one per model and seed
  (``seed_everything``), validation off. One run gives both comparisons: a callback (``Marks``, a
  ``cpu_budget.CpuTimeBudget``) saves a checkpoint after ``--iterations`` batches (equal iterations) and at each
  ``--cpu-seconds`` mark of the process's own CPU time (equal compute: load from other jobs changes the wall time,
  not the compute a run gets), and stops when it has both. The learning-rate schedule is per epoch (4 + 4 epochs
  of 50 batches), so the checkpoint at N batches is the one a run of N batches ends with. Scores of the test A
  images translated by each checkpoint (``gan_translate.evaluation.evaluate``, as ``gan-translate evaluate``): L1 /
  PSNR / SSIM against ``testA_gt`` and FID / KID against ``testB`` with the offline ``random-conv`` features
  (comparable with each other only); UNSB with all its steps and with ``--steps 1``, bridge noise seed 0. The
  untranslated test A images are scored as the bar. Mean and sd over the seeds.
* ``speed``: seconds per training iteration (every optimiser step of one batch), one image trained per iteration
  (CycleGAN and CUT batch 1, UNSB batch 2: 1 trained + 1 contrast), timed from ``on_train_batch_start`` to
  ``on_train_batch_end`` in a Lightning ``Trainer``; the three models in one process, in interleaved rounds (the
  order reversed every round), the first iteration of each fit left out (warm-up; UNSB's at t = T - 1, so the
  simulation is warmed up too). UNSB's cost depends on the bridge step t it draws (t generator passes without a
  graph to simulate x_t): here t goes through 0, 1, .. T-1 (then again) instead of being drawn, and its time per iteration is the mean over t of the median at each t (the expected
  cost of a uniform draw). ``64``: the quickstart configs' networks; ``256``: the ``horse2zebra`` configs'
  networks (UNSB: antialiased time-conditioned ResNet-9; CUT: antialiased ResNet-9; CycleGAN: ResNet-9 and
  70x70 PatchGANs).
* ``memory``: the same training, one model per fresh process (``cut_vs_cyclegan``'s measure): peak resident memory
  sampled every 2 ms minus the process's memory before the model is built, and ``tensors_mb``, the exact bytes of
  weights, gradients, Adam's moments and the largest autograd graph of a step. UNSB at its most expensive step
  (t = T - 1).

Each figure is written to ``--json`` as soon as it exists, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from cpu_budget import CpuTimeBudget  # noqa: E402

MODELS = ("unsb", "cut", "cyclegan")
CONFIGS = {"64": "quickstart.yaml", "256": "horse2zebra.yaml"}


class Marks(CpuTimeBudget):
    """``CpuTimeBudget`` (a checkpoint at each CPU-second mark) plus a checkpoint after each of ``batches``
    training batches (``<folder>/batch<N>.ckpt``, with ``batch<N>.json``: the CPU and wall seconds used by then);
    training stops once every mark of both kinds is reached."""

    def __init__(self, budgets_s: list[float], folder: str, batches: list[int]) -> None:
        super().__init__(budgets_s, folder)
        self.batches = sorted(int(b) for b in batches)
        self._wall = 0.0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        super().on_train_start(trainer, pl_module)
        self._wall = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: object) -> None:
        done = trainer.fit_loop.total_batch_idx + 1
        if done in self.batches:
            trainer.save_checkpoint(self.folder / f"batch{done}.ckpt")
            (self.folder / f"batch{done}.json").write_text(json.dumps(
                {"cpu_s": time.process_time() - self._start, "wall_s": time.perf_counter() - self._wall}))
        was_stopping = trainer.should_stop
        super().on_train_batch_end(trainer, pl_module, *args)
        if not was_stopping and done < self.batches[-1]:
            trainer.should_stop = False  # the CPU marks are reached, the batch marks not yet


class Report:
    """The results so far, rewritten to ``path`` after every figure."""

    def __init__(self, path: Path | None, settings: dict[str, Any], label: str = "") -> None:
        import torch

        self.path = path
        self.data: dict[str, Any] = {
            "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                        "torch": torch.__version__, "threads_per_process": settings["threads"]},
            f"started {settings['kinds']}{label}": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            f"settings {settings['kinds']}{label}": settings}
        self.kinds = settings["kinds"] + label

    def put(self, key: str, value: Any) -> None:
        """Set ``key`` and rewrite the file, keeping the keys another run wrote there (``--kinds speed,memory`` and
        ``--kinds quality`` can run at the same time into one file)."""
        self.data[key] = value
        self.data[f"updated {self.kinds}"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self.data[f"load_average {self.kinds}"] = os.getloadavg()
        if self.path is not None:
            current = json.loads(self.path.read_text()) if self.path.exists() else {}
            current.update(self.data)
            scratch = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            scratch.write_text(json.dumps(current, indent=2) + "\n")
            os.replace(scratch, self.path)


# --- speed and memory ---------------------------------------------------------------------------------------------
def _build(model: str, setting: str) -> Any:
    import yaml

    from gan_translate.models import CUT, UNSB, CycleGAN

    config = yaml.safe_load((REPO / "configs" / model / CONFIGS[setting]).read_text())
    options = {**config["model"]["init_args"], "sample_every_n_steps": 0}
    return {"cyclegan": CycleGAN, "cut": CUT, "unsb": UNSB}[model](**options)


def _batch(model: str, setting: str) -> dict[str, Any]:
    """One image trained per iteration: UNSB's batch of 2 is one image and its energy network's contrast image."""
    import torch

    size, n = int(setting), 2 if model == "unsb" else 1
    generator = torch.Generator().manual_seed(0)
    return {"A": torch.rand(n, 3, size, size, generator=generator) * 2 - 1,
            "B": torch.rand(n, 3, size, size, generator=generator) * 2 - 1}


def _force_bridge_steps(model: Any, steps: Iterator[int]) -> list[int]:
    """Make UNSB's training step use the next of ``steps`` as its bridge step instead of drawing it (the draw still
    happens, so the random streams advance as usual); returns the list of the steps used, appended to per step."""
    import torch

    used: list[int] = []
    original = model.training_step

    def training_step(*args: Any, **kwargs: Any) -> Any:
        draw, forced = torch.randint, next(steps)

        def randint(high: Any, size: Any, *rest: Any, **options: Any) -> Any:
            value = draw(high, size, *rest, **options)
            if high == model.hparams.num_timesteps and tuple(size) == (1,):
                return torch.full_like(value, forced)
            return value

        torch.randint = randint
        try:
            return original(*args, **kwargs)
        finally:
            torch.randint = draw
            used.append(forced)

    model.training_step = training_step
    return used


def _train(model: Any, batch: dict[str, Any], steps: int) -> list[tuple[float, float]]:
    """Train ``steps`` iterations on ``batch``; the wall and the process CPU seconds of each (CPU: what a 1-thread
    iteration computes, whatever else the shared machine runs; wall: what it took under that load)."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader

    times: list[tuple[float, float]] = []

    class Timer(Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            self.start = (time.perf_counter(), time.process_time())

        def on_train_batch_end(self, *args: Any) -> None:
            times.append((time.perf_counter() - self.start[0], time.process_time() - self.start[1]))

    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=steps, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             callbacks=[Timer()], default_root_dir=tmp, num_sanity_val_steps=0)
        trainer.fit(model, DataLoader([batch] * steps, batch_size=None))
    return times


def speed(setting: str, steps: int, rounds: int, names: tuple[str, ...] = MODELS) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    models = {name: _build(name, setting) for name in names}
    last = int(models["unsb"].hparams.num_timesteps) - 1
    planned: deque[int] = deque()
    used = _force_bridge_steps(models["unsb"], (planned.popleft() for _ in itertools.count()))
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    bridge_steps: list[int] = []
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            started = len(used)
            # UNSB's warm-up at the last step (every code path, the simulation's included), then t = 0, 1, ...
            planned.extend([last] + [i % (last + 1) for i in range(steps)])
            # +1: the first iteration of a fit warms up (not timed); UNSB's bridge-step cycle starts after it
            measured = _train(models[name], _batch(name, setting), steps + 1)[1:]
            times[name] += [wall for wall, _ in measured]
            cpu[name] += [used for _, used in measured]
            if name == "unsb":
                bridge_steps += used[started + 1:]
            print(f"  speed {setting}: {name} round {round_index + 1}/{rounds}: "
                  f"{' '.join(f'{t:.3f}' for t in times[name][-steps:])} s wall, "
                  f"{' '.join(f'{t:.3f}' for t in cpu[name][-steps:])} s CPU", flush=True)
    result: dict[str, Any] = {name: {"s_per_it": statistics.median(times[name]), "n": len(times[name]),
                                     "times": times[name], "cpu_s_per_it": statistics.median(cpu[name]),
                                     "cpu_times": cpu[name]} for name in names}
    for key, values in (("", times["unsb"]), ("cpu_", cpu["unsb"])):
        by_t: dict[int, list[float]] = {}
        for t, seconds in zip(bridge_steps, values):
            by_t.setdefault(t, []).append(seconds)
        result["unsb"][f"{key}by_bridge_step"] = {str(t): statistics.median(v) for t, v in sorted(by_t.items())}
        result["unsb"][f"{key}s_per_it"] = statistics.fmean(statistics.median(v) for v in by_t.values())
        result["unsb"]["bridge_steps_timed"] = sorted(by_t)
    for name in names:
        for key in ("s_per_it", "cpu_s_per_it"):
            prefix = "cpu_" if key.startswith("cpu") else ""
            result[name][f"{prefix}x_cut"] = result[name][key] / result["cut"][key]
            if "cyclegan" in names:
                result[name][f"{prefix}x_cyclegan"] = result[name][key] / result["cyclegan"][key]
    return result


def _memory_worker(model: str, setting: str, steps: int) -> None:
    import threading

    import torch
    from cut_vs_cyclegan import _count_saved_tensors, _rss_mb, _warm_up

    batch = _batch(model, setting)
    _warm_up()
    base = _rss_mb()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    torch.manual_seed(0)
    network = _build(model, setting)
    if model == "unsb":  # the most generator passes: T - 1 to simulate
        last = int(network.hparams.num_timesteps) - 1
        _force_bridge_steps(network, iter([last] * (steps + 1)))
    saved = _count_saved_tensors(network)
    _train(network, batch, steps)
    done.set()
    sampler.join()
    state = sum(t.numel() * t.element_size() for t in network.state_dict().values())
    params = sum(p.numel() * p.element_size() for p in network.parameters())
    print(json.dumps({"base_mb": base, "peak_mb": peak[0], "model_mb": peak[0] - base,
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "tensors_mb": (state + 3 * params + saved["peak"]) / 2**20, "graph_mb": saved["peak"] / 2**20,
                      "parameters": sum(p.numel() for p in network.parameters())}))


def memory(setting: str, steps: int, threads: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in MODELS:
        out = subprocess.run([sys.executable, __file__, "--memory-worker", name, setting, str(steps)], cwd=REPO,
                             capture_output=True, text=True, env=_env(threads))
        if out.returncode != 0:
            raise RuntimeError(f"memory worker {name} {setting} failed:\n{out.stderr[-3000:]}")
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  memory {setting}: {name}: RSS +{results[name]['model_mb']:.0f} MiB, tensors "
              f"{results[name]['tensors_mb']:.0f} MiB", flush=True)
    for name in MODELS:
        results[name]["x_cut"] = results[name]["model_mb"] / results["cut"]["model_mb"]
        results[name]["tensors_x_cut"] = results[name]["tensors_mb"] / results["cut"]["tensors_mb"]
    return results


# --- quality --------------------------------------------------------------------------------------------------------
def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "WANDB_MODE": "disabled",
            "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}


def _fit_command(model: str, seed: int, data: Path, run: Path, iterations: int, cpu_seconds: list[float],
                 size: int) -> list[str]:
    marks = json.dumps({"class_path": "unsb_vs_cut.Marks",
                        "init_args": {"budgets_s": cpu_seconds, "folder": str(run / "marks"), "batches": [iterations]}})
    return [sys.executable, "-m", "gan_translate", "fit", "--config", str(REPO / "configs" / model / "quickstart.yaml"),
            "--seed_everything", str(seed), "--data.root", str(data), "--data.synthetic", "false", "--data.num_workers", "0",
            "--data.transform.load_size", str(size * 9 // 8), "--data.transform.crop_size", str(size),
            "--trainer.accelerator", "cpu", "--trainer.max_epochs", "100000", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "0",
            "--trainer.num_sanity_val_steps", "0", "--trainer.default_root_dir", str(run),
            "--model.init_args.sample_every_n_steps", "0", f"--trainer.callbacks+={marks}"]


def _score(checkpoint: Path, data: Path, steps: int | None, kid_subset_size: int) -> dict[str, float]:
    from gan_translate.evaluation.evaluate import EvaluationRequest, evaluate

    result = evaluate(EvaluationRequest(checkpoint=str(checkpoint), data=str(data), feature="random-conv",
                                        image_size=64, kid_subset_size=kid_subset_size, device="cpu", steps=steps,
                                        seed=0))
    return result["metrics"]


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"seeds": len(rows)}
    for key in ("batches", "cpu_s", "l1", "psnr", "ssim", "fid", "kid"):
        values = [r[key] for r in rows if r.get(key) is not None]
        if values:
            out[key] = {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}
    return out


def quality(report: Report, seeds: list[int], iterations: int, cpu_seconds: list[float], parallel: int, threads: int,
            work: Path, n_train: int, n_test: int, size: int) -> None:
    import torch

    from gan_translate.data.synthetic import make_synthetic
    from gan_translate.evaluation.evaluate import EvaluationRequest, evaluate

    torch.set_num_threads(threads)
    data = make_synthetic(work / "synthetic", size=size, n_train=n_train, n_test=n_test, seed=0)
    kid_subset_size = max(2, n_test // 2)
    bar = evaluate(EvaluationRequest(fake=str(data / "testA"), real=str(data / "testB"), ground_truth=str(data / "testA_gt"),
                                     feature="random-conv", image_size=64, kid_subset_size=kid_subset_size, device="cpu"))
    results: dict[str, Any] = {"input (untranslated)": bar["metrics"], "runs": [], "summary": {}}
    report.put("quality", results)
    print(f"quality: untranslated input {json.dumps(bar['metrics'])}", flush=True)
    queue = [(model, seed) for seed in seeds for model in MODELS]
    running: dict[tuple[str, int], tuple[subprocess.Popen[bytes], Path, float]] = {}

    def finish(model: str, seed: int, run: Path, wall_s: float) -> None:
        marks = run / "marks"
        cases = [(f"{iterations} iterations", marks / f"batch{iterations}.ckpt")]
        cases += [(f"{budget:g} CPU s", marks / f"cpu{round(budget)}s.ckpt") for budget in cpu_seconds]
        for label, checkpoint in cases:
            if label.endswith("iterations"):
                used = json.loads(checkpoint.with_suffix(".json").read_text())
                batches, cpu_s = iterations, used["cpu_s"]
            else:
                batches, cpu_s = int(checkpoint.with_suffix(".batches").read_text()), float(label.split()[0])
            for steps in ([None, 1] if model == "unsb" else [None]):
                metrics = _score(checkpoint, data, steps, kid_subset_size)
                name = model if steps is None else f"{model} --steps {steps}"
                row = {"model": name, "seed": seed, "case": label, "batches": batches, "cpu_s": cpu_s,
                       "cpu_s_per_batch": cpu_s / batches, "images_trained_per_batch": 2 if model == "unsb" else 4,
                       "fit_wall_s": wall_s, **metrics}
                results["runs"].append(row)
                print(f"quality: {name:>16} seed {seed}, {label:>15}: {batches:4d} batches, {cpu_s:6.1f} CPU s, "
                      f"L1 {metrics['l1']:.4f} PSNR {metrics['psnr']:.2f} SSIM {metrics['ssim']:.3f} "
                      f"FID {metrics['fid']:.3f} KID {metrics['kid']:.4f}", flush=True)
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in results["runs"]:
            groups.setdefault(f"{row['model']}, {row['case']}", []).append(row)
        results["summary"] = {key: _summary(rows) for key, rows in groups.items()}
        report.put("quality", results)

    started = time.perf_counter()
    while queue or running:
        while queue and len(running) < parallel:
            model, seed = queue.pop(0)
            run = work / f"{model}-seed{seed}"
            run.mkdir(parents=True, exist_ok=True)
            log = open(run / "fit.log", "w")
            process = subprocess.Popen(_fit_command(model, seed, data, run, iterations, cpu_seconds, size), cwd=REPO,
                                       env=_env(threads), stdout=log, stderr=subprocess.STDOUT)
            running[(model, seed)] = (process, run, time.perf_counter())
            print(f"quality: started {model} seed {seed} ({time.perf_counter() - started:.0f} s)", flush=True)
        finished = None
        while finished is None:
            finished = next((key for key, (process, _, _) in running.items() if process.poll() is not None), None)
            if finished is None:
                time.sleep(0.5)
        process, run, began = running.pop(finished)
        if process.returncode != 0:
            raise RuntimeError(f"fit of {finished} failed:\n{(run / 'fit.log').read_text()[-3000:]}")
        finish(*finished, run, time.perf_counter() - began)
    results["wall_s"] = time.perf_counter() - started
    report.put("quality", results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="speed,memory,quality")
    parser.add_argument("--sizes", default="64,256", help="speed and memory: 64 (quickstart networks), 256 (paper's)")
    parser.add_argument("--steps", type=int, default=0,
                        help="speed: timed iterations per model and round (default: 10 at 64 px, 5 at 256 px)")
    parser.add_argument("--rounds", type=int, default=0, help="speed: interleaved rounds (default: 2 at 64 px, 1 at 256)")
    parser.add_argument("--models", default=",".join(MODELS), help="speed: the models timed (unsb and cut at least)")
    parser.add_argument("--label", default="", help="speed: a suffix of the report's key (a second measurement)")
    parser.add_argument("--memory-steps", type=int, default=2)
    parser.add_argument("--seeds", default="0,1,2", help="quality: seed_everything of the runs")
    parser.add_argument("--iterations", type=int, default=150, help="quality: batches at equal iterations")
    parser.add_argument("--cpu-seconds", default="75", help="quality: CPU-second marks (equal compute), e.g. 75,150")
    parser.add_argument("--parallel", type=int, default=2, help="quality: training runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="threads of every process (OMP_NUM_THREADS)")
    parser.add_argument("--n-train", type=int, default=200, help="quality: synthetic training images per domain")
    parser.add_argument("--n-test", type=int, default=50, help="quality: synthetic test images per domain")
    parser.add_argument("--image-size", type=int, default=64, help="quality: synthetic image and crop size")
    parser.add_argument("--work", type=Path, default=None, help="quality: keep the runs here (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="results, rewritten after every figure")
    parser.add_argument("--memory-worker", nargs=3, metavar=("MODEL", "SETTING", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")
    if args.memory_worker:
        _memory_worker(args.memory_worker[0], args.memory_worker[1], int(args.memory_worker[2]))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    kinds = args.kinds.split(",")
    report = Report(args.json, {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                                if k not in ("json", "memory_worker")}, args.label)
    began = time.perf_counter()
    for setting in args.sizes.split(","):
        if setting not in CONFIGS:
            raise SystemExit(f"--sizes: 64 or 256, got {setting!r}")
        if "speed" in kinds:
            steps = args.steps or (10 if setting == "64" else 5)
            rounds = args.rounds or (2 if setting == "64" else 1)
            names = tuple(m for m in MODELS if m in args.models.split(","))
            if not {"unsb", "cut"} <= set(names):
                raise SystemExit("--models: unsb and cut at least (the ratios are to CUT)")
            result = speed(setting, steps, rounds, names)
            report.put(f"speed {setting}{args.label}", result)
            print(f"speed {setting} (s per iteration, wall / CPU): " + ", ".join(
                f"{n} {r['s_per_it']:.3f} / {r['cpu_s_per_it']:.3f} ({r['x_cut']:.2f}x / {r['cpu_x_cut']:.2f}x CUT)"
                for n, r in result.items())
                + f"; UNSB by bridge step: {result['unsb']['by_bridge_step']} ({time.perf_counter() - began:.0f} s)",
                flush=True)
        if "memory" in kinds:
            result = memory(setting, args.memory_steps, args.threads)
            report.put(f"memory {setting}", result)
            print(f"memory {setting}: " + ", ".join(f"{n} +{r['model_mb']:.0f} MiB / {r['tensors_mb']:.0f} MiB tensors"
                                                    for n, r in result.items())
                  + f" ({time.perf_counter() - began:.0f} s)", flush=True)
    if "quality" in kinds:
        seeds = [int(s) for s in args.seeds.split(",")]
        budgets = [float(s) for s in args.cpu_seconds.split(",")]
        with tempfile.TemporaryDirectory() as folder:
            work = args.work or Path(folder)
            work.mkdir(parents=True, exist_ok=True)
            quality(report, seeds, args.iterations, budgets, args.parallel, args.threads, work, args.n_train,
                    args.n_test, args.image_size)
    report.put(f"wall_s {args.kinds}{args.label}", time.perf_counter() - began)
    print(f"done in {time.perf_counter() - began:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
