"""AdaIN against Gatys: seconds per stylised image at the same sizes, on the same machine, in one run.

    python benchmarks/adain_vs_gatys.py                                   # 256 and 512 px, CPU
    python benchmarks/adain_vs_gatys.py --json benchmarks/results-cpu-adain.json
    python benchmarks/adain_vs_gatys.py --sizes 512 --measure 512:300     # the whole 300 iterations at 512 px

* **Gatys**: :func:`gan_translate.style.stylize` at the defaults of ``gan-translate stylize`` (L-BFGS without line
  search, relu1_1 .. relu5_1 style and relu4_2 content layers, average pooling), content and style at the size, for
  ``--iterations`` (300) L-BFGS iterations. Without a line search every iteration is exactly one VGG-19 forward
  and backward pass, so its cost does not depend on the weights or on the images; where ``--measure`` gives fewer
  iterations for a size (a full run at 512 px takes many CPU minutes), the time of 300 is the measured time per
  evaluation times the 301 evaluations of 300 iterations (reported as extrapolated, with the iterations measured).
* **AdaIN**: :meth:`gan_translate.models.AdaIN.stylize` for one content and one style image of the size: encode
  both (VGG-19 to relu4_1), the AdaIN operation, decode. Median of ``--repeats`` after a warm-up, measured before
  and after the Gatys run of the same size (a change of the machine's load shows as a gap between the two).

Both use seeded random VGG weights (ImageNet weights cannot be downloaded here): the operations and their cost are
those of the trained networks; the pictures are not style transfer.
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

GATYS_ITERATIONS = 300


def _images(size: int) -> tuple[Any, Any]:
    import torch

    generator = torch.Generator().manual_seed(size)
    content = torch.rand(1, 3, size, size, generator=generator) * 2 - 1
    style = torch.rand(1, 3, size, size, generator=generator) * 2 - 1
    return content, style


def time_adain(size: int, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` AdaIN stylisations (one content, one style) after one warm-up."""
    import torch

    from gan_translate.models import AdaIN

    model = AdaIN(encoder_weights="random", sample_every_n_steps=0)
    model.load_encoder_weights()
    model.eval()
    content, style = _images(size)
    times = []
    with torch.inference_mode():
        model.stylize(content, [style])
        for _ in range(repeats):
            start = time.perf_counter()
            model.stylize(content, [style])
            times.append(time.perf_counter() - start)
    return times


def time_gatys(size: int, iterations: int) -> dict[str, Any]:
    """Seconds of a Gatys run of ``iterations`` L-BFGS iterations, and its extrapolation to 300."""
    from gan_translate.style import GatysConfig, build_extractor, stylize

    config = GatysConfig(steps=iterations)
    extractor = build_extractor(config, weights="random", device="cpu")
    content, style = _images(size)
    stylize(content, style, extractor, GatysConfig(steps=1))  # warm-up: oneDNN kernels for this size
    start = time.perf_counter()
    result = stylize(content, style, extractor, config)
    seconds = time.perf_counter() - start
    # One VGG pass per evaluation: the iterations' plus the start's (and any extra one the end needs).
    per_evaluation = seconds / result.evaluations
    evaluations_of_300 = GATYS_ITERATIONS + result.evaluations - result.iterations
    return {"iterations_measured": result.iterations, "evaluations": result.evaluations, "measured_s": seconds,
            "s_per_evaluation": per_evaluation, "s_per_image": per_evaluation * evaluations_of_300,
            "extrapolated": result.iterations < GATYS_ITERATIONS}


def compare(size: int, gatys_iterations: int, repeats: int) -> dict[str, Any]:
    before = time_adain(size, repeats)
    gatys = time_gatys(size, gatys_iterations)
    after = time_adain(size, repeats)
    adain_s = statistics.median(before + after)
    return {"size": size, "adain_s_per_image": adain_s, "adain_median_before_s": statistics.median(before),
            "adain_median_after_s": statistics.median(after), "gatys": gatys,
            "speedup": gatys["s_per_image"] / adain_s}


def _measure_plan(text: str) -> dict[int, int]:
    """``256:300,512:40`` -> {256: 300, 512: 40}."""
    plan = {}
    for item in filter(None, text.split(",")):
        size, _, iterations = item.partition(":")
        plan[int(size)] = int(iterations)
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256,512", help="image sides (px), comma-separated")
    parser.add_argument("--measure", default="256:300,512:40",
                        help="Gatys iterations actually run per size (size:iterations); others run all 300")
    parser.add_argument("--repeats", type=int, default=5, help="AdaIN runs timed before and after each Gatys run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")
    import torch

    plan = _measure_plan(args.measure)
    report: dict[str, Any] = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                                          "torch": torch.__version__}, "date": time.strftime("%Y-%m-%d"), "results": []}
    for size in (int(s) for s in args.sizes.split(",")):
        row = compare(size, min(plan.get(size, GATYS_ITERATIONS), GATYS_ITERATIONS), args.repeats)
        report["results"].append(row)
        gatys = row["gatys"]
        note = f" (extrapolated from {gatys['iterations_measured']} iterations)" if gatys["extrapolated"] else ""
        print(f"{size} px: AdaIN {row['adain_s_per_image']:.3f} s, Gatys {GATYS_ITERATIONS} iterations "
              f"{gatys['s_per_image']:.1f} s{note}: AdaIN {row['speedup']:.0f}x faster", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
