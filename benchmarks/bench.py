"""Training and inference speed of gan-translate against a transcription of the classic code, side by side.

    python benchmarks/bench.py                      # classic settings, CPU (or GPU when present), all models
    python benchmarks/bench.py --quick              # small sizes: a smoke test in a minute or two
    python benchmarks/bench.py --models cyclegan --kinds train --variants fp32,bf16 --steps 5 --rounds 3
    python benchmarks/bench.py --device cuda --json benchmarks/results-gpu.json

Cases (``--kinds``):

* ``train``: one training iteration (a batch: every optimiser step of it) of each model at the classic settings:
  CycleGAN ResNet-9 256 px batch 1, pix2pix U-Net 256 256 px batch 1, DCGAN 64 px batch 128, CUT (the
  anti-aliased ResNet-9, 256 patches, NCE identity) 256 px batch 1; ours goes through a Lightning ``Trainer``
  (manual optimisation, logging every ``--log-every`` batches) and is timed from ``on_train_batch_start`` to
  ``on_train_batch_end``; the classic transcription (``classic_reference.py``; CUT's reference step:
  ``classic_cut_reference.py``) is timed around ``optimize_parameters()``. Data are random tensors already in memory for both (data loading
  is not what is compared).
* ``infer``: the translate path (``gan_translate.inference.translator.Translator.translate_batch``: inference mode,
  padding, crop, clamp) of the CycleGAN / pix2pix generator at batch 1 and batched, against the classic
  test loop's call (eval, ``torch.no_grad``, batch 1).

``--networks quickstart`` times CycleGAN and pix2pix with their quickstart configs' networks, size and batch
(``configs/<model>/quickstart.yaml``: CycleGAN ResNet 3 blocks ngf 16 / PatchGAN 2 layers ndf 32, pix2pix U-Net 6
levels ngf 16 / PatchGAN 2 layers ndf 16; 64 px, batch 4), the classic transcription given the same widths.

Variants (``--variants``) of our code: ``fp32`` (default path), ``bf16`` (``precision bf16-mixed`` /
bf16 autocast), ``cl`` (channels-last: ``PerformanceOptions(channels_last=True)``), ``bf16+cl``, ``compile``
(``torch.compile``; its compile time is the first step, reported apart as ``first s``), ``bf16+compile``, ``bf16+cl+compile``,
``capture`` / ``bf16+capture`` (issue 29's captured step: ``PerformanceOptions(capture=True)``, CUDA graphs on a GPU,
the NaN guard read every 50 steps).
The classic code runs in fp32 only, as it does.

Modes (``--mode``). Shared machines are noisy (other jobs come and go within seconds), so:

* ``paired``: each case runs in a fresh subprocess that holds our model *and* the classic transcription and
  alternates them step by step (classic, ours, classic, ours, ...; for inference: a classic batch-1 call, then
  ours). ``x classic`` is the median of the per-step ratios (classic time / our time per image), each from two
  steps run back to back under the same load. This is the number to quote.
* ``solo``: every case alone in a fresh subprocess, for clean peak memory (``ru_maxrss`` on CPU, which
  includes the imported libraries: ``base`` is the value before the model is built;
  ``torch.cuda.max_memory_allocated`` on a GPU). Ratios of solo medians are printed too, but are exposed to
  load changes between the two processes.
* ``both`` (default): paired, then solo with half the steps.

Cases run in ``--rounds`` rounds (in reverse order every other round); medians pool all timed steps after
``--warmup`` untimed ones (the first step is reported apart as ``first s``: for ``compile`` it includes the
compilation). Results are printed and written to ``--json``. On a busy CPU, ``OMP_WAIT_POLICY=PASSIVE``
stops OpenMP threads spinning while they wait for a descheduled sibling thread (on the shared 2-core
machine of RESULTS.md, single steps without it took up to 4x longer than with it).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
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

ALL_VARIANTS = ("fp32", "bf16", "cl", "bf16+cl", "compile", "bf16+compile", "bf16+cl+compile", "capture", "bf16+capture")
DEFAULT_VARIANTS = ("fp32", "bf16", "cl", "bf16+cl")
MODELS = ("cyclegan", "pix2pix", "dcgan", "cut")
TRANSLATORS = ("cyclegan", "pix2pix")

# Classic settings (REFERENCE.md), the --quick ones and the quickstart configs': (image size, batch size).
SETTINGS = {
    "quickstart": {"cyclegan": (64, 4), "pix2pix": (64, 4)},
    "full": {"cyclegan": (256, 1), "pix2pix": (256, 1), "dcgan": (64, 128), "cut": (256, 1)},
    "quick": {"cyclegan": (64, 1), "pix2pix": (64, 1), "dcgan": (32, 32), "cut": (64, 1)},
}


# =============================================================================================== worker side
def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_memory_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _flags(variant: str) -> dict[str, bool]:
    parts = set(variant.split("+"))
    return {"bf16": "bf16" in parts, "channels_last": "cl" in parts, "compile": "compile" in parts,
            "capture": "capture" in parts}


def _random_batches(spec: dict[str, Any], count: int) -> list[dict[str, Any]]:
    import torch

    generator = torch.Generator().manual_seed(0)
    size, batch = spec["size"], spec["batch"]
    batches = []
    for _ in range(count):
        if spec["model"] == "dcgan":
            batches.append({"image": torch.rand(batch, 3, size, size, generator=generator) * 2 - 1})
        else:
            batches.append({"A": torch.rand(batch, 3, size, size, generator=generator) * 2 - 1,
                            "B": torch.rand(batch, 3, size, size, generator=generator) * 2 - 1})
    return batches


def _our_model(spec: dict[str, Any]):
    from gan_translate.models import CUT, DCGAN, CycleGAN, Pix2Pix

    size = spec["size"]
    if spec.get("networks") == "quickstart":
        cls = {"cyclegan": CycleGAN, "pix2pix": Pix2Pix}[spec["model"]]
        return cls(**{**quickstart_model_args(spec["model"]), "sample_every_n_steps": 0})
    if spec["model"] == "cut":
        # configs/cut/horse2zebra.yaml's networks: CUT's anti-aliased ResNet-9, its NCE layers 0, 4, 8, 12, 16.
        return CUT(generator="resnet_9blocks", generator_args={"antialias": True}, gan_loss="lsgan", num_patches=256,
                   sample_every_n_steps=0)
    if spec["model"] == "cyclegan":
        # ResNet-9 at 256 px (classic); the classic code uses ResNet-9 at 128 px too, so keep it for --quick.
        return CycleGAN(generator="resnet_9blocks", sample_every_n_steps=0)
    if spec["model"] == "pix2pix":
        if size in (256, 128):
            return Pix2Pix(generator=f"unet_{size}", sample_every_n_steps=0)
        # The U-Net goes down to 1x1: log2(size) levels (unet_256 is 8 of them).
        return Pix2Pix(generator="unet", generator_args={"num_downs": size.bit_length() - 1}, sample_every_n_steps=0)
    return DCGAN(resolution=size, make_gif=False, num_fixed_samples=16)


def _classic_model(spec: dict[str, Any]):
    sys.path.insert(0, str(HERE))
    from classic_reference import ClassicCycleGAN, ClassicDCGAN, ClassicPix2Pix

    size = spec["size"]
    if spec.get("networks") == "quickstart":
        args = quickstart_model_args(spec["model"])
        layers = args["discriminator_args"]["n_layers"]
        if spec["model"] == "cyclegan":
            return ClassicCycleGAN(ngf=args["ngf"], ndf=args["ndf"], n_blocks=args["generator_args"]["n_blocks"],
                                   n_layers=layers, device=spec["device"])
        return ClassicPix2Pix(ngf=args["ngf"], ndf=args["ndf"], num_downs=args["generator_args"]["num_downs"],
                              n_layers=layers, device=spec["device"])
    if spec["model"] == "cut":
        from classic_cut_reference import ClassicCUT

        return ClassicCUT(batch_size=spec["batch"], device=spec["device"])
    if spec["model"] == "cyclegan":
        return ClassicCycleGAN(device=spec["device"])
    if spec["model"] == "pix2pix":
        return ClassicPix2Pix(num_downs=size.bit_length() - 1, device=spec["device"])
    if size != 64:
        raise SystemExit("the classic DCGAN transcription is the 64 px network only")
    return ClassicDCGAN(device=spec["device"])


def quickstart_model_args(model: str) -> dict[str, Any]:
    """The ``model.init_args`` of ``configs/<model>/quickstart.yaml``."""
    import yaml

    config = yaml.safe_load((REPO / "configs" / model / "quickstart.yaml").read_text())
    return dict(config["model"]["init_args"])


def _train_ours(spec: dict[str, Any]) -> dict[str, Any]:
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader

    from gan_translate.callbacks import PerformanceOptions

    flags = _flags(spec["variant"])
    device = spec["device"]
    total = spec["warmup"] + spec["steps"]
    torch.manual_seed(0)
    model = _our_model(spec)
    if not spec.get("nan_check", True):
        # Measurement only: prices the per-step NaN guard (a device sync per optimiser step).
        model.check_finite = lambda *args, **kwargs: None
    batches = _random_batches(spec, 1)
    loader = DataLoader([batches[0]] * total, batch_size=None, shuffle=False)
    times: list[float] = []
    classic_times: list[float] = []
    classic = None
    if spec.get("paired"):
        # A / B interleaved step by step in this process: the classic step runs right before each of ours.
        classic = _classic_model(spec)
        classic.set_input({k: v.to(device) for k, v in batches[0].items()})

    class StepTimer(Callback):
        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            if classic is not None:
                _sync(device)
                start = time.perf_counter()
                classic.optimize_parameters()
                _sync(device)
                classic_times.append(time.perf_counter() - start)
            _sync(device)
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            _sync(device)
            times.append(time.perf_counter() - self.start)

    callbacks: list[Callback] = [StepTimer()]
    if flags["channels_last"] or flags["compile"] or flags["capture"]:
        callbacks.insert(0, PerformanceOptions(channels_last=flags["channels_last"], compile=flags["compile"],
                                               capture=flags["capture"], compile_backend=spec.get("compile_backend", "inductor")))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(
            accelerator="cuda" if device.startswith("cuda") else "cpu", devices=1, max_epochs=1,
            limit_train_batches=total, precision="bf16-mixed" if flags["bf16"] else "32-true", logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, callbacks=callbacks, default_root_dir=tmp, log_every_n_steps=spec.get("log_every", 50),
        )
        trainer.fit(model, train_dataloaders=loader)
    return {"times": times, "classic_times": classic_times}


def _train_classic(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    device = spec["device"]
    torch.manual_seed(0)
    model = _classic_model(spec)
    batch = {k: v.to(device) for k, v in _random_batches(spec, 1)[0].items()}
    times = []
    for _ in range(spec["warmup"] + spec["steps"]):
        _sync(device)
        start = time.perf_counter()
        model.set_input(batch)
        model.optimize_parameters()
        _sync(device)
        times.append(time.perf_counter() - start)
    return {"times": times}


def _infer(spec: dict[str, Any]) -> dict[str, Any]:
    """Per-call times of the translate path (ours) or of the classic test call, and the outputs' checksum."""
    import torch

    device = torch.device(spec["device"])
    size, batch = spec["size"], spec["batch"]
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.manual_seed(0)
    if spec["impl"] == "classic":
        sys.path.insert(0, str(HERE))
        from classic_reference import classic_inference

        generator = _classic_model(spec).generator().to(device)

        def call() -> Any:
            out = classic_inference(generator, images.to(device))
            return out.cpu()
    else:
        from gan_translate.inference.translator import Translator, compile_for_inference, prepare_for_inference

        flags = _flags(spec["variant"])
        model = _our_model(spec)
        network = model.inference_network("AtoB")
        network, channels_last = prepare_for_inference(network, device, flags["channels_last"])
        if flags["compile"]:
            compile_for_inference(network)  # what load_translator(compile=True) does
        translator = Translator(network=network, device=device, size_multiple=int(getattr(network, "size_multiple", 1)),
                                in_channels=3, model_name=spec["model"], direction="AtoB",
                                precision="bf16" if flags["bf16"] else "fp32", channels_last=channels_last)

        def call() -> Any:
            return translator.translate_batch(images)

    classic_call = None
    if spec.get("paired") and spec["impl"] == "ours":
        sys.path.insert(0, str(HERE))
        from classic_reference import classic_inference

        classic_generator = _classic_model(spec).generator().to(device)
        one = images[:1].to(device)

        def classic_call() -> Any:
            return classic_inference(classic_generator, one).cpu()

    times: list[float] = []
    classic_times: list[float] = []
    out = None
    for _ in range(spec["warmup"] + spec["steps"]):
        if classic_call is not None:
            start = time.perf_counter()
            classic_call()
            classic_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - start)
    return {"times": times, "classic_times": classic_times,
            "checksum": float(out.double().abs().mean()) if out is not None else None}


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One case: its step times, first-step time and peak memory (on a CPU: of this whole process)."""
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    if not spec.get("tf32", True):
        # torch's default lets cuDNN run fp32 convolutions as TF32 on tensor cores (matmuls stay fp32);
        # --no-tf32 measures true fp32 arithmetic.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    on_gpu = spec["device"].startswith("cuda")
    if on_gpu:
        # Several cases may share this process (see group_key): start each from an empty allocator.
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    base = _peak_memory_mb(spec["device"])
    if spec["kind"] == "infer":
        result = _infer(spec)
    elif spec["impl"] == "classic":
        result = _train_classic(spec)
    else:
        result = _train_ours(spec)
    result["peak_mb"] = _peak_memory_mb(spec["device"])
    result["base_mb"] = 0.0 if on_gpu else base
    return result


def run_worker_group(specs: list[dict[str, Any]]) -> None:
    """Run cases one after another in this process, printing each result as soon as it is known."""
    for index, spec in enumerate(specs):
        try:
            result = run_worker(spec)
        except Exception as error:  # noqa: BLE001 - one failing case (out of memory, say) must not lose the others
            result = {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]}
        print(f"RESULT {index} " + json.dumps(result), flush=True)


# =============================================================================================== driver side
def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
                            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "date": _dt.datetime.now().isoformat(timespec="seconds")}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        info["cpu_model"] = fields.get("Model name", "").strip()
        flags = fields.get("Flags", "")
        info["avx512_bf16"] = "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        pass
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    try:
        import lightning

        info["lightning"] = lightning.__version__
    except ImportError:
        pass
    return info


def build_cases(args: argparse.Namespace, device: str) -> list[dict[str, Any]]:
    """``paired`` cases (ours, with the classic step interleaved in-process) and/or ``solo`` ones (one per process)."""
    settings = SETTINGS["quickstart" if args.networks == "quickstart" else "quick" if args.quick else "full"]
    cases = []
    common = {"device": device, "warmup": args.warmup, "steps": args.steps, "threads": args.threads, "tf32": not args.no_tf32,
              "log_every": args.log_every, "nan_check": not args.skip_nan_check,
              "compile_backend": args.compile_backend, "networks": args.networks}
    modes = ["paired", "solo"] if args.mode == "both" else [args.mode]
    for model in args.models:
        size, batch = settings[model]
        size = args.size or size
        train_batches = args.batch or [batch]
        has_classic = not args.no_classic and not (model == "dcgan" and size != 64)
        for kind in args.kinds:
            if kind == "infer" and model not in TRANSLATORS:
                continue
            batches = sorted({1, *args.infer_batch}) if kind == "infer" else train_batches
            for mode in modes:
                paired = mode == "paired" and has_classic
                if mode == "solo" and has_classic:
                    solo_steps = {"warmup": 1, "steps": max(1, args.steps // 2)} if args.mode == "both" else {}
                    for b in [1] if kind == "infer" else train_batches:
                        cases.append({"kind": kind, "impl": "classic", "model": model, "variant": "fp32", "size": size,
                                      "batch": b, "mode": mode, **common, **solo_steps})
                for variant in args.variants:
                    for b in batches:
                        spec = {"kind": kind, "impl": "ours", "model": model, "variant": variant, "size": size,
                                "batch": b, "mode": mode, "paired": paired, **common}
                        if mode == "solo" and args.mode == "both":
                            spec.update(warmup=1, steps=max(1, args.steps // 2))
                        cases.append(spec)
    return cases


def case_key(spec: dict[str, Any]) -> str:
    return f"{spec['mode']}/{spec['kind']}/{spec['model']}/{spec['impl']}/{spec['variant']}/{spec['size']}px/b{spec['batch']}"


def group_key(spec: dict[str, Any]) -> str:
    """Cases with the same key run in one worker process.

    On a GPU, the batch sizes of one model / variant share a process: CUDA start-up and imports cost ~10 s per
    process there, and the peak memory is reset per case. On a CPU every case has a process of its own, since
    ``ru_maxrss`` (the peak memory) cannot be reset.
    """
    if not spec["device"].startswith("cuda"):
        return case_key(spec)
    return f"{spec['mode']}/{spec['kind']}/{spec['model']}/{spec['impl']}/{spec['variant']}/{spec['size']}px"


def run_group(specs: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
    """Run ``specs`` in one fresh worker process; a case it did not reach gets the process's error."""
    # Keep the caller's PYTHONPATH (packages installed with --target, say) behind the repository.
    python_path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled", "PYTHONPATH": python_path}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(specs)]
    results: list[dict[str, Any] | None] = [None] * len(specs)
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout * len(specs), cwd=REPO)
        stdout, failure = done.stdout, (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    except subprocess.TimeoutExpired as expired:
        stdout = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        failure = [f"timed out after {timeout * len(specs):.0f} s"]
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            index, payload = line[len("RESULT "):].split(" ", 1)
            results[int(index)] = json.loads(payload)
    return [result if result is not None else {"error": failure} for result in results]


def summarise(cases: list[dict[str, Any]], rounds: list[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Medians per case; paired cases also get ``x_classic``: the median of the per-step ratios
    classic time / our time per image, each ratio from two steps run back to back in one process."""
    rows = []
    for spec in cases:
        key = case_key(spec)
        warmup = spec["warmup"]
        runs = [r[key] for r in rounds if key in r and "times" in r[key]]
        errors = [r[key]["error"] for r in rounds if key in r and "error" in r[key]]
        if not runs:
            rows.append({"key": key, **spec, "error": errors[0] if errors else "not run"})
            continue
        timed = [t for run in runs for t in run["times"][warmup:]]
        median = statistics.median(timed)
        row = {
            "key": key, **spec, "median_s": median, "times_s": [run["times"] for run in runs],
            "first_s": statistics.median(run["times"][0] for run in runs),
            "it_per_s": 1.0 / median, "images_per_s": spec["batch"] / median,
            "checksum": runs[0].get("checksum"),
        }
        if spec["mode"] == "solo":  # a process of its own: its peak memory is this case's
            row.update(peak_mb=max(run["peak_mb"] for run in runs), base_mb=min(run["base_mb"] for run in runs))
        pairs = [(c, o) for run in runs for c, o in zip(run.get("classic_times", [])[warmup:], run["times"][warmup:])]
        if pairs:
            per_image = spec["batch"] if spec["kind"] == "infer" else 1
            ratios = [c / (o / per_image) for c, o in pairs]
            row.update(classic_median_s=statistics.median(c for c, _ in pairs), x_classic=statistics.median(ratios),
                       x_classic_min=min(ratios), x_classic_max=max(ratios), classic_times_s=[run["classic_times"] for run in runs])
        rows.append(row)
    # Solo cases: the ratio of medians against the solo classic case (less reliable on a busy machine).
    by_key = {row["key"]: row for row in rows}
    for row in rows:
        if row.get("mode") != "solo" or row.get("impl") != "ours" or "median_s" not in row:
            continue
        classic = by_key.get(case_key({**row, "impl": "classic", "variant": "fp32", "batch": 1 if row["kind"] == "infer" else row["batch"]}))
        if classic and "median_s" in classic:
            per_image = row["batch"] if row["kind"] == "infer" else 1
            row["x_classic"] = classic["median_s"] / (row["median_s"] / per_image)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (f"{'case':<52} {'median s':>9} {'first s':>8} {'img/s':>8} {'classic s':>9} {'x classic':>9} "
              f"{'(min-max)':>11} {'peak MB':>8} {'base MB':>8}")
    print(header)
    print("-" * len(header))
    for row in rows:
        if "error" in row:
            print(f"{row['key']:<52} error: {row['error']}")
            continue
        classic = f"{row['classic_median_s']:.3f}" if "classic_median_s" in row else ""
        ratio = f"{row['x_classic']:.2f}" if "x_classic" in row else ""
        spread = f"{row['x_classic_min']:.2f}-{row['x_classic_max']:.2f}" if "x_classic_min" in row else ""
        peak = f"{row['peak_mb']:.0f}" if "peak_mb" in row else ""
        base = f"{row['base_mb']:.0f}" if row.get("base_mb") else ""
        print(f"{row['key']:<52} {row['median_s']:>9.3f} {row['first_s']:>8.2f} {row['images_per_s']:>8.2f} "
              f"{classic:>9} {ratio:>9} {spread:>11} {peak:>8} {base:>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small sizes (CycleGAN / pix2pix 64 px, DCGAN 32 px batch 32)")
    parser.add_argument("--networks", default="classic", choices=["classic", "quickstart"],
                        help="quickstart: CycleGAN / pix2pix with their quickstart configs' networks, 64 px, batch 4")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: cyclegan, pix2pix, dcgan, cut")
    parser.add_argument("--kinds", default="train,infer", help="comma-separated: train, infer")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma-separated, of {', '.join(ALL_VARIANTS)}")
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case and round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (compile happens here)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions of every case")
    parser.add_argument("--size", type=int, default=0, help="override the image size of every model")
    parser.add_argument("--batch", default="", help="training batch size(s) of every model, comma-separated (default: the classic one)")
    parser.add_argument("--infer-batch", default="8", help="batched inference case(s): comma-separated batch sizes (batch 1 always runs)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads in each case (0: torch's default)")
    parser.add_argument("--no-tf32", action="store_true",
                        help="GPU: true fp32 convolutions (torch's default lets cuDNN use TF32 tensor cores for fp32)")
    parser.add_argument("--log-every", type=int, default=50,
                        help="Trainer(log_every_n_steps) of our training steps (50: the paper configs' value)")
    parser.add_argument("--skip-nan-check", action="store_true",
                        help="measurement only: train without the per-step NaN guard, to price it")
    parser.add_argument("--no-classic", action="store_true", help="skip the classic transcription")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend of compile / capture variants (aot_eager: a CPU dry run of the plumbing)")
    parser.add_argument("--mode", default="both", choices=["paired", "solo", "both"],
                        help="paired: the classic step interleaved with ours in one process (ratios); solo: every "
                             "case alone in a fresh process (peak memory); both (solo with fewer steps)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per case subprocess")
    parser.add_argument("--json", default="", help="write all results here (default: benchmarks/results-<device>.json)")
    args = parser.parse_args(argv)

    if args.worker:
        run_worker_group(json.loads(args.worker))
        return 0

    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    args.models = [m for m in args.models.split(",") if m]
    args.kinds = [k for k in args.kinds.split(",") if k]
    args.variants = [v for v in args.variants.split(",") if v]
    args.infer_batch = [int(b) for b in str(args.infer_batch).split(",") if b]
    args.batch = [int(b) for b in str(args.batch).split(",") if b]
    unknown = [v for v in args.variants if v not in ALL_VARIANTS] + [m for m in args.models if m not in MODELS]
    if args.networks == "quickstart":
        unknown += [f"{m} (--networks quickstart: cyclegan, pix2pix)" for m in args.models if m not in SETTINGS["quickstart"]]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}")
    cases = build_cases(args, device)
    info = machine_info()
    print(f"{len(cases)} cases x {args.rounds} rounds on {device} ({info.get('cpu_model', '')}, "
          f"{info.get('cpu_count')} cores, torch {info['torch']}, load {info.get('load_average')})", flush=True)
    out = Path(args.json or HERE / f"results-{device}{'-quick' if args.quick else ''}.json")
    groups: dict[str, list[dict[str, Any]]] = {}
    for spec in cases:
        groups.setdefault(group_key(spec), []).append(spec)
    rounds: list[dict[str, dict[str, Any]]] = []
    started = time.time()

    def write(rows: list[dict[str, Any]]) -> None:
        info["wall_s"] = time.time() - started
        out.write_text(json.dumps({"machine": info, "args": {k: v for k, v in vars(args).items() if k != "worker"},
                                   "results": rows}, indent=1))

    for index in range(args.rounds):
        order = list(groups.values()) if index % 2 == 0 else list(reversed(groups.values()))
        results: dict[str, dict[str, Any]] = {}
        rounds.append(results)
        for group in order:
            for spec, result in zip(group, run_group(group, args.timeout)):
                results[case_key(spec)] = result
                shown = f"{statistics.median(result['times'][spec['warmup']:]):.3f} s" if "times" in result else result.get("error")
                if result.get("classic_times"):
                    shown += f" (classic {statistics.median(result['classic_times'][spec['warmup']:]):.3f} s)"
                print(f"  round {index + 1}: {case_key(spec):<52} {shown}", flush=True)
            write(summarise(cases, rounds))  # after every group: a run cut short keeps what it measured
    rows = summarise(cases, rounds)
    print()
    print_table(rows)
    info["load_average_end"] = os.getloadavg()
    write(rows)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
