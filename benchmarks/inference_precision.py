"""What ``translate --precision auto`` (bf16 on GPUs >= Ampere and AVX512-BF16 / AMX CPUs) changes in a trained
translator's results: L1 / PSNR against the ground truth in fp32 and in bf16, and how far the two outputs are apart
(issue 29, item 3: the translate / serve default).

Each checkpoint's test A images (``DATA/testA``, ground truth ``DATA/testA_gt``) are translated by
``load_translator(..., precision=...)`` on the CPU, kept as the uint8 images ``translate`` would save, and scored by
``gan-translate evaluate``'s metric collection (``gan_translate.metrics.paired_metrics`` in float64: L1 over all
pixels on the 0..1 scale, PSNR with data range 1 per image then averaged, SSIM).

    OMP_NUM_THREADS=2 python benchmarks/inference_precision.py --data DATA CKPT [CKPT ...] \\
        --json benchmarks/results-cpu-inference-precision.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _scores(outputs: list[np.ndarray], truths: list[np.ndarray]) -> dict[str, float]:
    """L1 / PSNR / SSIM with evaluate's own collection, in float64 as evaluate computes them."""
    import torch

    from gan_translate.metrics import paired_metrics

    metrics = paired_metrics().set_dtype(torch.float64)
    for output, truth in zip(outputs, truths):
        metrics.update(*(torch.from_numpy(a).permute(2, 0, 1)[None].contiguous().double() / 255.0 for a in (output, truth)))
    return {name: float(value) for name, value in metrics.compute().items()}


def measure(checkpoint: Path, data: Path) -> dict[str, object]:
    from gan_translate.data.io import load_image
    from gan_translate.inference.translator import load_translator

    names = sorted(p.name for p in (data / "testA").iterdir())
    sources = [load_image(data / "testA" / n) for n in names]
    truths = [load_image(data / "testA_gt" / n) for n in names]
    row: dict[str, object] = {"checkpoint": str(checkpoint), "images": len(names)}
    outputs = {}
    for precision in ("fp32", "bf16"):
        translator = load_translator(checkpoint, device="cpu", precision=precision)
        started = time.perf_counter()
        outputs[precision] = [translator(image) for image in sources]
        row[precision] = {**_scores(outputs[precision], truths), "seconds": time.perf_counter() - started,
                          "model": translator.model_name}
    difference = np.concatenate([np.abs(a.astype(np.int16) - b.astype(np.int16)).ravel()
                                 for a, b in zip(outputs["fp32"], outputs["bf16"])])
    row["bf16_vs_fp32_levels"] = {"mean": float(difference.mean()), "max": int(difference.max()),
                                  "p99": float(np.percentile(difference, 99))}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="a synthetic set with testA and testA_gt")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for checkpoint in args.checkpoints:
        rows.append(measure(checkpoint, args.data))
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))
        row = rows[-1]
        print(f"{row['fp32']['model']:>8} {checkpoint.name}: L1 fp32 {row['fp32']['l1']:.4f} bf16 {row['bf16']['l1']:.4f}; "
              f"PSNR {row['fp32']['psnr']:.2f} / {row['bf16']['psnr']:.2f} dB; bf16 - fp32: mean "
              f"{row['bf16_vs_fp32_levels']['mean']:.2f} levels, p99 {row['bf16_vs_fp32_levels']['p99']:.0f}, "
              f"max {row['bf16_vs_fp32_levels']['max']}", flush=True)


if __name__ == "__main__":
    main()
