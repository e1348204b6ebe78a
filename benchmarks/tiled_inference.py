"""Full-resolution translation on a CPU: peak memory and time, whole image against tiles (ResNet-9, 3 -> 3).

    python benchmarks/tiled_inference.py                                   # 4000x3000 whole + tiled, 8000x6000 tiled
    python benchmarks/tiled_inference.py --cases tiled:8000x6000 --json benchmarks/results-cpu-tiled.json
    python benchmarks/tiled_inference.py --cases whole:400x300,tiled:400x300 --tile 128     # a quick look
    python benchmarks/tiled_inference.py --cases tiled:12000x9000 --ngf 16    # the memory that grows with the size

Each case runs in a fresh process (so one case's allocator caches do not count in the next) that builds a ResNet-9
generator (random weights: the cost is the same as a trained one's) and a smooth random photo of the size, then
translates it once through :class:`gan_translate.inference.translator.Translator`, whole or with ``--tile`` / ``--tile-overlap``
(the ``translate --tile`` path: streamed from the uint8 photo to the uint8 result, statistics pass at
``--tile-stats-size``, then the tiles; ``--tile-overlap auto``: from the network's measured receptive field).
``--ngf 16`` builds the same 9-block generator with a quarter of the channels: a sixteenth of the arithmetic, a
quarter of one tile's activations, and the same size-dependent memory (3-channel photo, result and blending band),
so large sizes can be measured in minutes. Reported: seconds of the
translation, and the process's peak resident memory (``ru_maxrss``: everything, the interpreter, torch, the
model, the image and its result included) and that peak minus the memory before the translation started.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_CASES = "whole:4000x3000,tiled:4000x3000,tiled:8000x6000"


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_case(mode: str, width: int, height: int, tile: int, overlap: str, stats_size: int, ngf: int = 64) -> dict[str, Any]:
    """One translation in this process; its time and memory."""
    import numpy as np
    import torch

    from gan_translate.inference.tiling import TileOptions, fit_tiles
    from gan_translate.inference.translator import Translator
    from gan_translate.nn.resnet import ResnetGenerator

    torch.manual_seed(0)
    network = ResnetGenerator(ngf=ngf, n_blocks=9).eval()
    # The test photo is made in uint8 from the start (PIL's bilinear resize of a small random image): a float
    # copy of a 100 MP photo alone would take 1.2 GB and hide what the translation itself holds.
    from PIL import Image

    low = np.random.default_rng(0).integers(0, 256, (height // 100 + 2, width // 100 + 2, 3), dtype=np.uint8)
    picture = Image.fromarray(low).resize((width, height), Image.Resampling.BILINEAR)
    photo = np.asarray(picture).copy()
    del picture
    options = None
    if mode == "tiled":
        options = fit_tiles(TileOptions(size=tile, overlap=0, stats_size=stats_size), None if overlap == "auto" else int(overlap),
                            network, torch.device("cpu"), 4, 3)
    translator = Translator(network=network, device=torch.device("cpu"), size_multiple=4, in_channels=3,
                            model_name="resnet_9blocks", direction="AtoB", min_size=8, tile=options)
    before = _rss_mb()
    start = time.perf_counter()
    result = translator(photo)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert result.shape == photo.shape
    return {"mode": mode, "size": f"{width}x{height}", "seconds": seconds, "peak_rss_mb": peak,
            "peak_over_start_mb": peak - before, "tile": tile if options else None,
            "overlap": options.overlap if options else None, "margin": options.margin if options else None, "ngf": ngf,
            "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES, help="mode:WIDTHxHEIGHT, comma-separated (mode: whole, tiled)")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--tile-overlap", default="auto", help="px, or auto (from the receptive field)")
    parser.add_argument("--ngf", type=int, default=64, help="the generator's base width (64: the classic ResNet-9)")
    parser.add_argument("--tile-stats-size", type=int, default=1024)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        mode, size = args.worker.split(":")
        width, height = (int(v) for v in size.split("x"))
        print(json.dumps(run_case(mode, width, height, args.tile, args.tile_overlap, args.tile_stats_size, args.ngf)))
        return 0
    import torch

    report: dict[str, Any] = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                                          "torch": torch.__version__}, "date": time.strftime("%Y-%m-%d %H:%M"), "results": []}
    for case in args.cases.split(","):
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", case, "--tile", str(args.tile),
                   "--tile-overlap", str(args.tile_overlap), "--tile-stats-size", str(args.tile_stats_size),
                   "--ngf", str(args.ngf)]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
        if done.returncode != 0:
            row = {"case": case, "error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
        else:
            row = json.loads(done.stdout.strip().splitlines()[-1])
        report["results"].append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
