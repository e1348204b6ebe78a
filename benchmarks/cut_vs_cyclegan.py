"""CUT and FastCUT against our CycleGAN at the same settings: seconds per iteration, peak memory, and quality.

    python benchmarks/cut_vs_cyclegan.py                               # everything below, CPU (~30 min on 2 cores)
    python benchmarks/cut_vs_cyclegan.py --kinds speed --sizes 64       # one part
    python benchmarks/cut_vs_cyclegan.py --json benchmarks/results-cpu-cut.json

* ``speed``: seconds per training iteration (every optimiser step of a batch of 1), timed from
  ``on_train_batch_start`` to ``on_train_batch_end`` in a Lightning ``Trainer`` on an in-memory random batch. The
  three models run in one process, in interleaved rounds (CycleGAN, CUT, FastCUT, then the reverse order, ...), so
  a load change on a shared machine hits all three; ``x cyclegan`` is the ratio of medians. Settings: ``256`` is
  ResNet-9 at 256 px with a 70x70 PatchGAN (the classic settings; CUT's heads and patches at the paper's 256);
  ``64`` the quickstart networks (3 blocks, 16 filters) at 64 px, with the CUT / FastCUT quickstart configs'
  PatchNCE (64 patches) and, as ``64-paper``, with the paper's 256 patches.
* ``memory``: peak resident memory of the same training (sampled every 2 ms), each model alone in a fresh process,
  minus the resident memory right before the model is built (libraries, interpreter, the batch, after one tiny fit
  that warms up Lightning and oneDNN): what the model, its optimisers and a step's autograd graph add; and
  ``tensors_mb``, counted exactly: weights, gradients, Adam's moments and the largest autograd graph of a step
  (the bytes autograd saves for backward in one optimisation phase; without the allocator's caches, which
  dominate the resident memory of the tiny 64 px networks).
* ``quality``: the quickstart configs on the synthetic task (64 px), at equal iterations (``--iterations``) and at
  equal wall time (CycleGAN's training time for those iterations given to the others with ``max_time``); scored on
  the 20 test images: L1 / PSNR against the ground truth (and the untranslated input's), FID / KID with the
  offline ``random-conv`` feature network (comparable only with each other).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODELS = ("cyclegan", "cut", "fastcut")


def _build(model: str, setting: str) -> Any:
    from gan_translate.models import CUT, CycleGAN, FastCUT

    options: dict[str, Any] = {"sample_every_n_steps": 0}
    if setting.startswith("64"):
        options.update(generator="resnet", generator_args={"n_blocks": 3}, ngf=16, ndf=32, discriminator_args={"n_layers": 2})
        if model != "cyclegan" and setting == "64":
            options["num_patches"] = 64  # the quickstart configs'
    else:
        options.update(generator="resnet_9blocks", discriminator="basic")
    return {"cyclegan": CycleGAN, "cut": CUT, "fastcut": FastCUT}[model](**options)


def _batch(setting: str) -> dict[str, Any]:
    import torch

    size = 64 if setting.startswith("64") else 256
    generator = torch.Generator().manual_seed(0)
    return {"A": torch.rand(1, 3, size, size, generator=generator) * 2 - 1,
            "B": torch.rand(1, 3, size, size, generator=generator) * 2 - 1}


def _train(model: Any, batch: dict[str, Any], steps: int) -> list[float]:
    """Train ``steps`` iterations on ``batch``; the seconds of each."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader

    times: list[float] = []

    class Timer(Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            self.start = time.perf_counter()

        def on_train_batch_end(self, *args: Any) -> None:
            times.append(time.perf_counter() - self.start)

    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=steps, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             callbacks=[Timer()], default_root_dir=tmp, num_sanity_val_steps=0)
        trainer.fit(model, DataLoader([batch] * steps, batch_size=None))
    return times


def speed(setting: str, steps: int, rounds: int) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    models = {name: _build(name, setting) for name in MODELS}
    batch = _batch(setting)
    times: dict[str, list[float]] = {name: [] for name in MODELS}
    for round_index in range(rounds):
        for name in MODELS if round_index % 2 == 0 else MODELS[::-1]:
            times[name] += _train(models[name], batch, steps + 1)[1:]  # the first step of a fit warms up
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {name: {"s_per_it": medians[name], "x_cyclegan": medians[name] / medians["cyclegan"], "n": len(times[name])}
            for name in MODELS}


def _rss_mb() -> float:
    """The process's resident memory now (Linux /proc), in MiB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _warm_up() -> None:
    """One tiny Lightning fit with a convolution and Adam: what any training allocates once (the Trainer's and
    oneDNN's set-up, thread pools) then counts as the base, not as the model's memory."""
    import lightning.pytorch as pl
    import torch

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self.conv(batch["A"]).pow(2).mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters())

    _train(Tiny(), {"A": torch.rand(1, 3, 16, 16)}, 2)


def _memory_worker(model: str, setting: str, steps: int) -> None:
    import threading

    import torch

    batch = _batch(setting)
    _warm_up()
    base = _rss_mb()  # libraries loaded, Lightning and oneDNN warmed up, the batch made, no model yet
    peak = [base]
    done = threading.Event()

    def sample() -> None:  # ru_maxrss is the process's peak so far, the imports' included: sample the RSS instead
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    torch.manual_seed(0)
    network = _build(model, setting)
    saved = _count_saved_tensors(network)
    _train(network, batch, steps)
    done.set()
    sampler.join()
    state = sum(t.numel() * t.element_size() for t in network.state_dict().values())
    params = sum(p.numel() * p.element_size() for p in network.parameters())
    print(json.dumps({"base_mb": base, "peak_mb": peak[0], "model_mb": peak[0] - base,
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      # weights and buffers, gradients and Adam's two moments, plus the largest autograd graph
                      "tensors_mb": (state + 3 * params + saved["peak"]) / 2**20, "graph_mb": saved["peak"] / 2**20}))


def _count_saved_tensors(network: Any) -> dict[str, int]:
    """Count the bytes autograd saves for backward in each optimisation phase (reset at every backward): the
    activation memory a training step needs, without the allocator's caches and the libraries."""
    import torch

    counter = {"now": 0, "peak": 0}
    seen: set[int] = set()

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen and not isinstance(tensor, torch.nn.Parameter):
            seen.add(storage.data_ptr())
            counter["now"] += storage.nbytes()
            counter["peak"] = max(counter["peak"], counter["now"])
        return tensor

    step, backward = network.training_step, network.manual_backward

    def training_step(*args: Any, **kwargs: Any) -> Any:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            return step(*args, **kwargs)

    def manual_backward(*args: Any, **kwargs: Any) -> None:
        backward(*args, **kwargs)
        counter["now"] = 0  # that phase's graph is freed
        seen.clear()

    network.training_step, network.manual_backward = training_step, manual_backward
    return counter


def memory(setting: str, steps: int) -> dict[str, Any]:
    results = {}
    for name in MODELS:
        out = subprocess.run([sys.executable, __file__, "--memory-worker", name, setting, str(steps)], cwd=REPO,
                             capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    for name in MODELS:
        results[name]["x_cyclegan"] = results[name]["model_mb"] / results["cyclegan"]["model_mb"]
        results[name]["tensors_x_cyclegan"] = results[name]["tensors_mb"] / results["cyclegan"]["tensors_mb"]
    return results


def _fit_and_score(config: str, root: Path, folder: Path, iterations: int, max_seconds: float | None) -> dict[str, Any]:
    from gan_translate.artifacts import newest_checkpoint
    from gan_translate.cli import main
    from gan_translate.evaluation.evaluate import EvaluationRequest, evaluate

    args = ["fit", "--config", str(REPO / "configs" / config / "quickstart.yaml"), "--data.root", str(root),
            "--data.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.max_steps", str(2 * iterations),
            "--trainer.max_epochs", "1000", "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
            "--trainer.default_root_dir", str(folder)]
    if max_seconds is not None:
        minutes, seconds = divmod(int(round(max_seconds)), 60)
        args += ["--trainer.max_time", f"00:00:{minutes:02d}:{seconds:02d}"]
    started = time.perf_counter()
    assert main(args) == 0, f"{config} training failed"
    seconds = time.perf_counter() - started
    checkpoint = newest_checkpoint([folder])
    import torch

    trained_iterations = torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"] // 2
    scores = evaluate(EvaluationRequest(checkpoint=str(checkpoint), data=str(root), feature="random-conv",
                                        image_size=64, kid_subset_size=10, device="cpu"))
    return {"iterations": trained_iterations, "train_seconds": seconds, **scores["metrics"]}


def quality(iterations: int) -> dict[str, Any]:
    from gan_translate.data.synthetic import make_synthetic
    from gan_translate.evaluation.evaluate import EvaluationRequest, evaluate

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic(Path(tmp) / "synthetic", size=64, n_train=200, n_test=20, seed=0)
        untranslated = evaluate(EvaluationRequest(fake=str(root / "testA"), real=str(root / "testB"),
                                                  ground_truth=str(root / "testA_gt"), feature="random-conv",
                                                  image_size=64, kid_subset_size=10, device="cpu"))
        results["input (untranslated)"] = untranslated["metrics"]
        for name in MODELS:
            results[f"{name}, {iterations} iterations"] = _fit_and_score(name, root, Path(tmp) / f"{name}-n", iterations, None)
        budget = results[f"cyclegan, {iterations} iterations"]["train_seconds"]
        for name in MODELS[1:]:
            results[f"{name}, {budget:.0f} s"] = _fit_and_score(name, root, Path(tmp) / f"{name}-t", 100 * iterations, budget)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="speed,memory,quality")
    parser.add_argument("--sizes", default="64,64-paper,256", help="speed and memory settings: 64, 64-paper, 256")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per round (default: 8 at 64 px, 2 at 256)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=150, help="quality: training iterations at equal iterations")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--memory-worker", nargs=3, metavar=("MODEL", "SETTING", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")
    if args.memory_worker:
        _memory_worker(args.memory_worker[0], args.memory_worker[1], int(args.memory_worker[2]))
        return 0
    import torch

    kinds = args.kinds.split(",")
    report: dict[str, Any] = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                                          "torch": torch.__version__}, "date": time.strftime("%Y-%m-%d")}
    for setting in args.sizes.split(","):
        steps = args.steps or (8 if setting.startswith("64") else 2)
        if "speed" in kinds:
            report[f"speed {setting}"] = speed(setting, steps, args.rounds)
            print(f"speed {setting}:", json.dumps(report[f"speed {setting}"], indent=1), flush=True)
        if "memory" in kinds and setting != "64-paper":
            report[f"memory {setting}"] = memory(setting, max(2, steps // 2))
            print(f"memory {setting}:", json.dumps(report[f"memory {setting}"], indent=1), flush=True)
    if "quality" in kinds:
        report["quality"] = quality(args.iterations)
        print("quality:", json.dumps(report["quality"], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
