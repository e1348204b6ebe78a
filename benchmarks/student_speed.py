"""Student networks against the ResNet-9 teacher (issue 28): MACs and parameters counted, milliseconds measured.

    OMP_NUM_THREADS=1 python benchmarks/student_speed.py --json benchmarks/results-cpu-students.json   # ~3 min

Eager PyTorch on the CPU, batch 1, ``--size`` px (256), ``--threads`` threads (1), ``torch.inference_mode``, fp32 and
bf16 autocast. Every network is built by its GENERATORS name (the weights are the classic random init: speed does
not depend on them). After ``--warmup`` passes of every network and precision (not timed), ``--rounds`` rounds each
time ``--images`` passes of every network at each precision, the networks in one order and then the reverse in the
next round, so that load from other processes falls on all of them alike; a network's figure is the median over the
rounds of its mean time per image. MACs: ``gan_translate.nn.cost.count_macs`` (torch's FlopCounterMode / 2).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402  (after the path: the script runs from a checkout without an install too)

from gan_translate.core.files import atomic_write  # noqa: E402
from gan_translate.nn import build_generator  # noqa: E402
from gan_translate.nn.cost import count_macs, count_params  # noqa: E402

# label -> (GENERATORS name, arguments); the first is the teacher every speed-up is against
CANDIDATES: dict[str, tuple[str, dict[str, Any]]] = {
    "teacher resnet_9blocks ngf64": ("resnet_9blocks", {"ngf": 64}),
    "mobile_resnet_h2z": ("mobile_resnet_h2z", {}),
    "narrow_resnet_ngf12 (9 blocks)": ("narrow_resnet_ngf12", {}),
    "resnet ngf16 6 blocks": ("resnet", {"ngf": 16, "n_blocks": 6}),
    "narrow_resnet_ngf16 (9 blocks)": ("narrow_resnet_ngf16", {}),
    "resnet ngf20 6 blocks": ("resnet", {"ngf": 20, "n_blocks": 6}),
}
PRECISIONS = ("fp32", "bf16")


def _time_images(net: torch.nn.Module, x: torch.Tensor, precision: str, images: int) -> float:
    """Seconds per image over ``images`` passes (fp32, or bf16 autocast)."""
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        start = time.perf_counter()
        for _ in range(images):
            net(x)
        return (time.perf_counter() - start) / images


def measure(labels: list[str], size: int, rounds: int, images: int, warmup: int,
            precisions: list[str]) -> list[dict[str, Any]]:
    """One row per network: MACs, parameters, and the median ms per image at each precision."""
    nets = {label: build_generator(CANDIDATES[label][0], **CANDIDATES[label][1]).eval() for label in labels}
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    for net in nets.values():
        for precision in precisions:
            for _ in range(warmup):
                _time_images(net, x, precision, 1)
    times: dict[tuple[str, str], list[float]] = {(label, p): [] for label in labels for p in precisions}
    for r in range(rounds):
        order = labels if r % 2 == 0 else labels[::-1]
        for label in order:
            for precision in precisions:
                times[(label, precision)].append(_time_images(nets[label], x, precision, images))
    rows = []
    for label in labels:
        row: dict[str, Any] = {"network": label, "generator": CANDIDATES[label][0], "args": CANDIDATES[label][1],
                               "macs": count_macs(nets[label], (1, 3, size, size)), "params": count_params(nets[label])}
        for precision in precisions:
            row[f"ms_{precision}"] = 1000 * statistics.median(times[(label, precision)])
            row[f"ms_{precision}_runs"] = [round(1000 * t, 3) for t in times[(label, precision)]]
        rows.append(row)
    teacher = rows[0]
    for row in rows:
        row["macs_ratio"] = teacher["macs"] / row["macs"]
        for precision in precisions:
            row[f"speedup_{precision}"] = teacher[f"ms_{precision}"] / row[f"ms_{precision}"]
            # G MACs per second: how much of its arithmetic a design turns into speed (higher: faster per MAC)
            row[f"gmacs_per_s_{precision}"] = row["macs"] / 1e9 / (row[f"ms_{precision}"] / 1000)
    return rows


def table(rows: list[dict[str, Any]], precisions: list[str]) -> str:
    head = "| network | G MACs | MACs / teacher | params | " + " | ".join(
        f"ms/image {p} | x teacher {p} | G MACs/s {p}" for p in precisions) + " |"
    lines = [head, "|" + "---|" * (4 + 3 * len(precisions))]
    for row in rows:
        cells = [row["network"], f"{row['macs'] / 1e9:.2f}", f"1/{row['macs_ratio']:.1f}", f"{row['params']:,}"]
        for p in precisions:
            cells += [f"{row[f'ms_{p}']:.1f}", f"{row[f'speedup_{p}']:.1f}", f"{row[f'gmacs_per_s_{p}']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default=",".join(CANDIDATES), help="labels, comma-separated; the first is the teacher")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--images", type=int, default=2, help="passes of each network per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    labels = [s.strip() for s in args.networks.split(",") if s.strip()]
    precisions = [s.strip() for s in args.precisions.split(",") if s.strip()]
    unknown = [name for name in labels if name not in CANDIDATES] + [p for p in precisions if p not in PRECISIONS]
    if unknown:
        parser.error(f"unknown network or precision {unknown}; networks: {list(CANDIDATES)}; precisions: {list(PRECISIONS)}")
    torch.set_num_threads(args.threads)
    started = datetime.datetime.now(datetime.timezone.utc)
    rows = measure(labels, args.size, args.rounds, args.images, args.warmup, precisions)
    print(table(rows, precisions))
    if args.json is not None:
        report = {
            "command": "python benchmarks/student_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "started_utc": started.isoformat(timespec="seconds"),
            "wall_s": round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(), 1),
            "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "torch": torch.__version__},
            "size": args.size, "batch": 1, "rounds": args.rounds, "images_per_round": args.images,
            "warmup": args.warmup, "results": rows,
        }
        with atomic_write(args.json, "w") as handle:
            handle.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
