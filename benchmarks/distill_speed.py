"""Issue 28's speed targets for distilled students, measured end to end: the `translate` path, ONNX Runtime, video.

    OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE python benchmarks/distill_speed.py --compile narrow_resnet_ngf12 \
        --json benchmarks/results-cpu-distill-speed.json                                   # ~4.5 min on 2 shared cores
    python benchmarks/distill_speed.py --quick                                             # smoke test, ~40 s

Every network is the ``AtoB`` generator of a ``gan_translate.models.CycleGAN`` built with that ``generator`` (tiny
discriminators, eval mode; seeded random weights spread as tests/artifacts/test_portable_export.py spreads them, so
that outputs use the whole range and the parity columns mean something: speed does not depend on the values). A model
that ``CycleGAN`` cannot build with that name (``mobile_resnet_h2z``: ``CycleGAN`` always passes ``ngf``, which the
mobile ResNet does not take) is the same CycleGAN with its ``generator_ab`` replaced by ``build_generator(name)``; the
JSON says which. Batch 1, ``--size`` px (256), ``--threads`` threads (2) for PyTorch and ONNX Runtime alike.

* ``translate`` paths: ``translator_from_model(model, precision=..., channels_last=...)``'s ``translate_many`` on one
  uint8 HxWx3 image at batch size 1 (to a tensor, stack, pad, the network, crop, clamp, back to uint8), what
  ``gan-translate translate --batch-size 1`` runs per image (file reading and writing aside); fp32 and bf16 autocast (bf16 only where oneDNN has bf16 hardware: AVX512-BF16 or AMX), channels-last
  off and on; and ``compile=True`` (frozen ``torch.compile``, what ``--compile`` does; the compile time is reported) for
  the ``--compile`` students at the ``--compile-precisions`` (compiling takes 10 s or more a network on 2 shared cores,
  so only where asked; the teacher is never compiled: a compiled student's ratio is against the teacher's eager path).
  Each path has its own copy of the model (channels-last reorders the weights in place).
* ``onnxruntime``: the file ``gan-translate export --format onnx`` writes for that generator
  (:func:`gan_translate.artifacts.portable.onnx_bytes` of the model's ``translator_export_program``), in an
  ``InferenceSession`` (CPU provider, all graph optimisations, ``--threads`` intra-op threads), fed and read with the
  same uint8 conversions as ``translate_many``.
* video: a synthetic ``--video-frames`` clip (``write_animation``: H.264 in MP4) translated end to end by
  ``gan_translate.inference.video.translate_video`` (decode, ``translate_many`` at each of ``--video-batch-sizes``,
  encode, mux) with the translators timed above at the fastest precision (bf16 where the CPU has it), channels-last at
  the framework's default (off), plus a compiled student's at batch 1 (the shape it was compiled for); frames per
  second over the whole call. An identity network through the same call gives the codec's own cost.

After ``--warmup`` untimed calls of every path, ``--rounds`` rounds each time every path of every network, the networks
in one order and then the reverse in the next round; each path is called enough times per round to fill
``--round-s`` (at least once), and a figure is the median over the rounds of the mean per call (wall time, and the
process's CPU time beside it: on a shared machine the two part when other processes hold the cores). The video runs
come after, ``--video-rounds`` interleaved rounds (the teacher at the smallest batch size only and
``--video-teacher-rounds`` rounds: ~40 s a clip). MACs and parameters: ``gan_translate.nn.cost``. The share of
instance norm in each network's fp32 forward comes from one ``torch.profiler`` pass (instance norm cannot be folded
into a convolution: its mean and variance are the image's own; the figure says what folding could have saved at most).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start / stop lines
import numpy as np  # noqa: E402
import torch  # noqa: E402  (after the path: the script runs from a checkout without an install too)

from gan_translate.core.errors import UserError  # noqa: E402
from gan_translate.core.files import atomic_write  # noqa: E402
from gan_translate.core.images import as_tensor_image, tensor_to_uint8  # noqa: E402
from gan_translate.nn import build_generator  # noqa: E402
from gan_translate.nn.cost import count_macs, count_params  # noqa: E402

# label -> (GENERATORS name, the model's ngf: a narrow preset pins its own, which the model must repeat)
NETWORKS: dict[str, tuple[str, int]] = {
    "teacher resnet_9blocks": ("resnet_9blocks", 64),
    "mobile_resnet_h2z": ("mobile_resnet_h2z", 64),
    "narrow_resnet_ngf12": ("narrow_resnet_ngf12", 12),
    "narrow_resnet_ngf16": ("narrow_resnet_ngf16", 16),
}
TARGET_SPEEDUP, TARGET_FPS = 8.0, 24.0


def bf16_hardware() -> dict[str, Any]:
    """Whether this CPU runs bf16 in hardware (oneDNN's check, and lscpu's flags for the record)."""
    flags: list[str] = []
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        line = next((row for row in text.splitlines() if row.startswith("Flags:")), "")
        flags = sorted(f for f in line.split() if f == "avx512_bf16" or f.startswith("amx"))
    except (OSError, subprocess.SubprocessError):
        pass
    mkldnn = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return {"oneDNN_bf16": mkldnn, "lscpu_flags": flags, "usable": mkldnn and bool(flags)}


def cpu_model() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        return next((row.split(":", 1)[1].strip() for row in text.splitlines() if row.startswith("Model name")), "")
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or platform.machine()


def build_model(generator: str, ngf: int, seed: int = 0) -> tuple[Any, str]:
    """A CycleGAN whose AtoB generator is ``generator`` (eval mode, spread random weights) and how it was built."""
    from gan_translate.models import CycleGAN

    torch.manual_seed(seed)
    tiny = {"ndf": 4, "discriminator_args": {"n_layers": 1}}
    try:
        model, how = CycleGAN(generator=generator, ngf=ngf, **tiny), f"CycleGAN(generator={generator!r}, ngf={ngf})"
    except UserError as error:
        model = CycleGAN(generator="resnet", ngf=4, generator_args={"n_blocks": 1}, **tiny)
        model.generator_ab = build_generator(generator)
        how = f"CycleGAN(generator={generator!r}) refused ({error}); generator_ab = build_generator({generator!r})"
    with torch.no_grad():
        for parameter in model.generator_ab.parameters():
            if parameter.dim() == 4:
                parameter.normal_(0.0, 0.5 / parameter[0].numel() ** 0.5)
    return model.eval(), how


def instance_norm_share(network: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Norm layers of ``network`` and the share of one fp32 forward (under the profiler) spent in instance norm."""
    from torch.profiler import ProfilerActivity, profile

    kinds = sorted({type(m).__name__ for m in network.modules() if "Norm" in type(m).__name__})
    running = any(getattr(m, "track_running_stats", False) for m in network.modules())
    with torch.inference_mode():
        network(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            network(x)
            total_us = (time.perf_counter() - start) * 1e6
    norm_us = sum(e.cpu_time_total for e in prof.key_averages() if e.key == "aten::instance_norm")
    return {"norm_layers": kinds, "running_statistics": running, "instance_norm_share": norm_us / total_us}


def timed(call: Callable[[], Any], calls: int) -> tuple[float, float]:
    """Wall seconds and process CPU seconds (all threads: PyTorch's, onnxruntime's) per call, over ``calls`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        call()
    return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def translate_one(translator: Any, image: np.ndarray) -> np.ndarray:
    """One image through ``translate_many`` at batch size 1, as ``gan-translate translate --batch-size 1`` does."""
    return next(iter(translator.translate_many([(0, image)], batch_size=1)))[1]


def ort_session(model: Any, threads: int) -> tuple[Any, float]:
    """An onnxruntime session of the model's AtoB export (the bytes `gan-translate export --format onnx` writes)."""
    import onnxruntime

    from gan_translate.artifacts.portable import PortableGenerator, onnx_bytes
    from gan_translate.core.directions import domains

    program = copy.deepcopy(model).translator_export_program("AtoB")
    network = program.network
    multiple = int(getattr(network, "size_multiple", 1))
    source, target = domains("AtoB")
    started = time.perf_counter()
    data = onnx_bytes(PortableGenerator(network, multiple, max(int(getattr(network, "min_size", 1)), multiple),
                                        model.image_channels(source), model.image_channels(target), {}, program.inputs))
    export_s = time.perf_counter() - started
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"]), export_s


def ort_call(session: Any, in_channels: int) -> Callable[[np.ndarray], np.ndarray]:
    from gan_translate.artifacts.portable import INPUT_NAME

    def run(image: np.ndarray) -> np.ndarray:  # the uint8 conversions of translate_many around the file
        x = torch.stack([as_tensor_image(image, in_channels)]).numpy()
        return tensor_to_uint8(torch.from_numpy(session.run(None, {INPUT_NAME: x})[0][0]))

    return run


def synthetic_clip(path: Path, frames: int, size: int) -> None:
    """A moving colour pattern (what it shows does not change the cost) written as H.264 MP4 at 24 fps."""
    from gan_translate.inference.video import write_animation

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size

    def frame(t: int) -> np.ndarray:
        phase = 2 * np.pi * t / max(frames, 1)
        rgb = [np.sin(2 * np.pi * (xx + yy) * 3 + phase), np.cos(2 * np.pi * xx * 5 - phase), np.sin(2 * np.pi * yy * 4 + 2 * phase)]
        return ((np.stack(rgb, -1) + 1) * 127.5).astype(np.uint8)

    write_animation((frame(t) for t in range(frames)), path, fps=24.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default=",".join(NETWORKS), help="labels, comma-separated; the first is the teacher")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--round-s", type=float, default=0.25, help="time each path fills per round (at least one call)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", default="", help="students (labels, comma-separated) also timed with compile=True")
    parser.add_argument("--compile-precisions", default="bf16", help="their precisions (bf16 only where the CPU has it)")
    parser.add_argument("--video-frames", type=int, default=48)
    parser.add_argument("--video-batch-sizes", default="1,8", help="translate's --batch-size for the video (its default: 8)")
    parser.add_argument("--video-rounds", type=int, default=3)
    parser.add_argument("--video-teacher-rounds", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 64 px, the teacher and narrow_resnet_ngf12 only (unless --networks), 1 round, 8 video frames")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.rounds, args.warmup, args.round_s, args.video_frames, args.video_rounds = 64, 1, 1, 0.0, 8, 1
        if "--networks" not in (argv if argv is not None else sys.argv[1:]):
            args.networks = "teacher resnet_9blocks,narrow_resnet_ngf12"
    labels = [s.strip() for s in args.networks.split(",") if s.strip()]
    compiled_labels = [s.strip() for s in args.compile.split(",") if s.strip()]
    unknown = [name for name in labels + compiled_labels if name not in NETWORKS]
    if unknown:
        parser.error(f"unknown network {unknown}; networks: {list(NETWORKS)}")
    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.set_num_threads(args.threads)
    import onnxruntime

    from gan_translate.inference.translator import translator_from_model
    from gan_translate.inference.video import translate_video

    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    load_before = os.getloadavg()
    bf16 = bf16_hardware()
    precisions = ["fp32", "bf16"] if bf16["usable"] else ["fp32"]
    torch_paths = [(p, cl, False) for p in precisions for cl in (False, True)]
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    shape = (1, 3, args.size, args.size)

    rows: dict[str, dict[str, Any]] = {}
    calls: dict[str, dict[str, Callable[[], Any]]] = {}
    translators: dict[str, dict[str, Any]] = {}
    models: dict[str, Any] = {}
    for index, label in enumerate(labels):
        generator, ngf = NETWORKS[label]
        model, how = build_model(generator, ngf)
        models[label] = model
        network = model.generator_ab
        row: dict[str, Any] = {"network": label, "generator": generator, "built_as": how,
                               "macs": count_macs(network, shape), "params": count_params(network),
                               **instance_norm_share(copy.deepcopy(network), torch.rand(shape) * 2 - 1), "paths": {}}
        calls[label], translators[label] = {}, {}
        compile_at = [p for p in args.compile_precisions.split(",") if p in precisions] if index > 0 and label in compiled_labels else []
        paths = torch_paths + [(p, False, True) for p in compile_at]
        for precision, channels_last, compiled in paths:
            name = f"translate {precision}" + (" channels_last" if channels_last else "") + (" compile" if compiled else "")
            translator = translator_from_model(copy.deepcopy(model), "AtoB", "cpu", precision, channels_last, compiled)
            # what `gan-translate translate --batch-size 1` runs per image (Translator.__call__ would feed the network
            # an NHWC-strided view: a compiled network's guards would then recompile for translate_many's batches)
            call = partial(translate_one, translator, image)
            t0 = time.perf_counter()
            call()  # compiles when compiled
            row["paths"][name] = {"first_call_s": time.perf_counter() - t0}
            calls[label][name] = call
            translators[label][name] = translator
        session, export_s = ort_session(model, args.threads)
        run = ort_call(session, model.image_channels("A"))
        t0 = time.perf_counter()
        run(image)
        row["paths"]["onnxruntime fp32"] = {"first_call_s": time.perf_counter() - t0, "export_s": export_s}
        calls[label]["onnxruntime fp32"] = (lambda r=run: r(image))
        # parity: every path's image against translate fp32's, in uint8 levels
        reference = calls[label]["translate fp32"]().astype(np.int16)
        for name, call in calls[label].items():
            difference = np.abs(call().astype(np.int16) - reference)
            row["paths"][name].update(max_uint8_diff=int(difference.max()), mean_uint8_diff=float(difference.mean()))
        rows[label] = row
        print(f"built {label}: {row['macs'] / 1e9:.2f} G MACs, {row['params']:,} params, ONNX export {export_s:.1f} s"
              + (f" ({how})" if "refused" in how else ""), flush=True)

    # warm-up, and how many calls of each path fill --round-s
    per_round: dict[tuple[str, str], int] = {}
    for label in labels:
        for name, call in calls[label].items():
            seconds = min(timed(call, 1)[0] for _ in range(args.warmup))
            per_round[(label, name)] = max(1, round(args.round_s / seconds))
    times: dict[tuple[str, str], list[tuple[float, float]]] = {key: [] for key in per_round}
    for r in range(args.rounds):
        for label in labels if r % 2 == 0 else labels[::-1]:
            for name, call in calls[label].items():
                times[(label, name)].append(timed(call, per_round[(label, name)]))
        print(f"round {r + 1}/{args.rounds} done ({time.perf_counter() - clock:.0f} s)", flush=True)

    teacher = labels[0]
    for label in labels:
        for name, path in rows[label]["paths"].items():
            runs = times[(label, name)]
            path.update(ms=1000 * statistics.median(w for w, _ in runs), cpu_ms=1000 * statistics.median(c for _, c in runs),
                        calls_per_round=per_round[(label, name)], ms_runs=[round(1000 * w, 2) for w, _ in runs],
                        cpu_ms_runs=[round(1000 * c, 2) for _, c in runs])
    for label in labels:
        row = rows[label]
        row["macs_ratio"] = rows[teacher]["macs"] / row["macs"]
        for name, path in row["paths"].items():
            same = rows[teacher]["paths"].get(name) or rows[teacher]["paths"][name.replace(" compile", "")]
            path["x_teacher_same_path"] = same["ms"] / path["ms"]
            path["x_teacher_same_path_cpu"] = same["cpu_ms"] / path["cpu_ms"]
        best = min(row["paths"], key=lambda n: row["paths"][n]["ms"])
        row["fastest_path"] = best
        row["fastest_ms"] = row["paths"][best]["ms"]
    for label in labels:
        rows[label]["x_teacher_fastest"] = rows[teacher]["fastest_ms"] / rows[label]["fastest_ms"]

    # video, end to end: the translators timed above (a compiled one is not compiled again: batch 1 is its shape)
    video: dict[str, Any] = {"frames": args.video_frames, "size": args.size, "runs": {}}
    fastest_precision = precisions[-1]
    batch_sizes = [int(b) for b in args.video_batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        synthetic_clip(clip, args.video_frames, args.size)
        identity = replace(translators[teacher]["translate fp32"], network=torch.nn.Identity())
        cases: list[tuple[str, str, Any, int, int]] = [("codec only (identity network)", "fp32", identity, b, args.video_rounds)
                                                       for b in batch_sizes]
        for label in labels:
            for name, translator in translators[label].items():
                if name == f"translate {fastest_precision}" and label == teacher:
                    cases.append((label, name, translator, min(batch_sizes), args.video_teacher_rounds))
                elif name == f"translate {fastest_precision}":
                    cases += [(label, name, translator, b, args.video_rounds) for b in batch_sizes]
                elif name == f"translate {fastest_precision} compile":
                    cases.append((label, name, translator, 1, args.video_rounds))
        for r in range(max(c[4] for c in cases)):
            for label, name, translator, batch, rounds in cases if r % 2 == 0 else cases[::-1]:
                if r >= rounds:
                    continue
                t0, c0 = time.perf_counter(), time.process_time()
                summary = translate_video(translator, clip, Path(folder) / "out.mp4", batch_size=batch)
                seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
                entry = video["runs"].setdefault(f"{label} | {name} | batch {batch}",
                                                 {"network": label, "path": name, "batch_size": batch, "s": [], "cpu_s": []})
                entry["s"].append(round(seconds, 3))
                entry["cpu_s"].append(round(cpu, 3))
                entry["frames_written"] = summary.frames
            print(f"video round {r + 1} done ({time.perf_counter() - clock:.0f} s)", flush=True)
    for entry in video["runs"].values():
        entry["fps"] = entry["frames_written"] / statistics.median(entry["s"])
        entry["ms_per_frame"] = 1000 / entry["fps"]
        entry["cpu_ms_per_frame"] = 1000 * statistics.median(entry["cpu_s"]) / entry["frames_written"]

    report = {
        "command": "".join(f"{k}={os.environ[k]} " for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ)
        + "python benchmarks/distill_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - clock, 1),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                    "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "bf16": bf16,
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "size": args.size, "batch": 1, "rounds": args.rounds, "round_s": args.round_s, "warmup": args.warmup,
        "targets": {"x_teacher": TARGET_SPEEDUP, "video_fps": TARGET_FPS},
        "results": [rows[label] for label in labels], "video": video,
    }
    print_tables(report)
    if args.json is not None:
        with atomic_write(args.json, "w") as handle:
            handle.write(json.dumps(report, indent=1) + "\n")
    return 0


def print_tables(report: dict[str, Any]) -> None:
    rows = report["results"]
    names = list(rows[0]["paths"]) + [n for r in rows[1:] for n in r["paths"] if n not in rows[0]["paths"]]
    names = list(dict.fromkeys(names))
    print("| network | G MACs | params | instance norm share | " + " | ".join(f"{n} ms (x teacher)" for n in names) + " | fastest |")
    print("|" + "---|" * (5 + len(names)))
    for row in rows:
        cells = [row["network"], f"{row['macs'] / 1e9:.2f}", f"{row['params']:,}", f"{100 * row['instance_norm_share']:.0f}%"]
        for n in names:
            p = row["paths"].get(n)
            cells.append("-" if p is None else f"{p['ms']:.1f} ({p['x_teacher_same_path']:.1f}x; cpu {p['cpu_ms']:.0f})")
        cells.append(f"{row['fastest_path']}: {row['fastest_ms']:.1f} ms, {row['x_teacher_fastest']:.1f}x the teacher's fastest")
        print("| " + " | ".join(cells) + " |")
    print(f"\nvideo, {report['video']['frames']} frames at {report['video']['size']} px:")
    for key, entry in report["video"]["runs"].items():
        print(f"  {key}: {entry['fps']:.1f} frames/s ({entry['ms_per_frame']:.1f} ms a frame, CPU {entry['cpu_ms_per_frame']:.1f} ms; "
              f"runs {entry['s']} s)")


if __name__ == "__main__":
    sys.exit(main())
