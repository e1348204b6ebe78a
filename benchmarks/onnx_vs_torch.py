"""ONNX Runtime against PyTorch: CPU seconds per image of a CycleGAN ResNet-9 generator, in one process.

    python benchmarks/onnx_vs_torch.py                                    # 256 and 1024 px, 5 timed runs each
    OMP_NUM_THREADS=2 python benchmarks/onnx_vs_torch.py --json benchmarks/results-cpu-onnx.json

* **PyTorch**: the generator in eval mode under ``torch.inference_mode``, wrapped as the exported file is
  (:class:`gan_translate.artifacts.portable.PadToMultiple`: reflect pad to the multiple, crop, clamp), fp32,
  contiguous (NCHW) memory: what ``gan-translate translate --device cpu`` runs per batch.
* **ONNX Runtime**: the file ``gan-translate export --format onnx`` writes for that generator
  (:func:`gan_translate.artifacts.portable.onnx_bytes`), in an ``InferenceSession`` on the CPU execution provider
  with all graph optimisations and as many intra-op threads as PyTorch uses (``torch.get_num_threads()``).

Random weights (seeded; the cost does not depend on them), one image per call. After ``--warmup`` untimed calls of
each, the two are timed alternately ``--repeats`` times, so a change of the machine's load hits both; the figure is
the median. The largest difference between the two outputs is reported too (the export's parity).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any


def build_generator(ngf: int, n_blocks: int) -> Any:
    """CycleGAN's ResNet generator (``resnet_9blocks`` at the defaults), seeded random weights, eval mode."""
    import torch

    from gan_translate.nn import build_generator as build

    torch.manual_seed(0)
    return build("resnet", in_channels=3, out_channels=3, ngf=ngf, n_blocks=n_blocks).eval()


def time_size(network: Any, session: Any, size: int, warmup: int, repeats: int) -> dict[str, Any]:
    """Seconds per image of PyTorch and of onnxruntime at ``size`` px, measured alternately."""
    import numpy as np
    import torch

    from gan_translate.artifacts.portable import INPUT_NAME, PadToMultiple

    wrapped = PadToMultiple(network, int(network.size_multiple)).eval()
    image = (torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size)) * 2 - 1).contiguous()
    feed = {INPUT_NAME: image.numpy()}
    times: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
    with torch.inference_mode():
        for _ in range(warmup):
            reference = wrapped(image)
            result = session.run(None, feed)[0]
        for _ in range(repeats):
            start = time.perf_counter()
            reference = wrapped(image)
            times["torch"].append(time.perf_counter() - start)
            start = time.perf_counter()
            result = session.run(None, feed)[0]
            times["onnxruntime"].append(time.perf_counter() - start)
    torch_s, ort_s = statistics.median(times["torch"]), statistics.median(times["onnxruntime"])
    return {"size": size, "torch_s_per_image": torch_s, "onnxruntime_s_per_image": ort_s, "torch_over_onnxruntime": torch_s / ort_s,
            "runs": times, "max_abs_difference": float(np.abs(result - reference.numpy()).max())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256,1024", help="image sides (px), comma-separated")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each per size")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each per size first")
    parser.add_argument("--ngf", type=int, default=64, help="generator filters (CycleGAN: 64)")
    parser.add_argument("--n-blocks", type=int, default=9, help="residual blocks (ResNet-9: 9)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")
    import onnxruntime
    import torch

    from gan_translate.artifacts.portable import ONNX_OPSET, PortableGenerator, onnx_bytes
    from gan_translate.core.files import atomic_write

    network = build_generator(args.ngf, args.n_blocks)
    multiple = int(network.size_multiple)
    started = time.perf_counter()
    model = onnx_bytes(PortableGenerator(network, multiple, max(int(network.min_size), multiple), 3, 3))
    export_s = time.perf_counter() - started
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    report: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "torch": torch.__version__,
                    "onnxruntime": onnxruntime.__version__},
        "date": time.strftime("%Y-%m-%d"), "generator": {"ngf": args.ngf, "n_blocks": args.n_blocks, "opset": ONNX_OPSET},
        "export_s": export_s, "warmup": args.warmup, "repeats": args.repeats, "results": [],
    }
    for size in (int(s) for s in args.sizes.split(",")):
        row = time_size(network, session, size, args.warmup, args.repeats)
        report["results"].append(row)
        print(f"{size} px: PyTorch {row['torch_s_per_image']:.3f} s, onnxruntime {row['onnxruntime_s_per_image']:.3f} s per image "
              f"(PyTorch / onnxruntime {row['torch_over_onnxruntime']:.2f}; max |difference| {row['max_abs_difference']:.1e})", flush=True)
    if args.json:
        with atomic_write(args.json, "w") as handle:
            handle.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
