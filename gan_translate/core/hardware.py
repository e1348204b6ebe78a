"""What ``precision: auto`` means on this machine: bf16 where the hardware runs it fast, fp32 elsewhere.

Fast bf16 means:

* CUDA: every visible device of compute capability >= 8.0 (Ampere and later: bf16 tensor cores) for which
  ``torch.cuda.is_bf16_supported(including_emulation=False)`` holds. Older GPUs emulate bf16 slowly.
* CPU: the ``avx512_bf16`` or ``amx_bf16`` flag (Linux ``/proc/cpuinfo``), with oneDNN in torch: its bf16
  convolutions then run ~2x faster than fp32 (benchmarks/RESULTS.md). torch's own CPU capability string
  (``AVX512``) does not tell these CPUs from plain AVX-512 ones, where bf16 is converted in software and slower
  than fp32, hence the flags. Elsewhere (other OSes, ARM, no flags): fp32.

Training (``--trainer.precision auto``, :mod:`gan_translate.training.precision`) and inference (``translate`` /
``serve --precision auto``, :mod:`gan_translate.inference.translator`) both ask :func:`resolve_auto_precision`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["AUTO_PRECISION", "CPU_BF16_FLAGS", "PrecisionChoice", "cpu_flags", "resolve_auto_precision"]

AUTO_PRECISION = "auto"
#: /proc/cpuinfo flags of x86 CPUs that compute in bf16 natively (AVX512-BF16 dot products, AMX tiles).
CPU_BF16_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16")
_FLAG_NAMES = {"avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``auto`` resolved to and why (the one line the run prints)."""

    precision: str
    reason: str

    def line(self) -> str:
        return f"precision auto -> {self.precision} ({self.reason})"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where the file does not exist or cannot be read."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":  # the same on every core: the first line is enough
            return frozenset(value.split())
    return frozenset()


def _cpu_choice(flags: Collection[str], onednn: bool) -> PrecisionChoice:
    found = [_FLAG_NAMES[f] for f in CPU_BF16_FLAGS if f in flags]
    if not found:
        return PrecisionChoice("32-true", "this CPU has no AVX512-BF16/AMX")
    if not onednn:
        return PrecisionChoice("32-true", f"this CPU has {'/'.join(found)} but this torch build has no oneDNN")
    return PrecisionChoice("bf16-mixed", f"this CPU has {' and '.join(found)}")


def _cuda_choice(device_count: int, capability: Callable[[int], tuple[int, int]], name: Callable[[int], str],
                 bf16_supported: Callable[[], bool]) -> PrecisionChoice:
    slow = [i for i in range(device_count) if capability(i) < (8, 0)]
    if slow:
        major, minor = capability(slow[0])
        return PrecisionChoice("32-true", f"CUDA device {slow[0]} ({name(slow[0])}) is compute capability "
                                          f"{major}.{minor}: bf16 needs >= 8.0 to be fast")
    if not bf16_supported():
        return PrecisionChoice("32-true", "torch.cuda.is_bf16_supported() is False")
    major, minor = capability(0)
    return PrecisionChoice("bf16-mixed", f"CUDA {name(0)}, compute capability {major}.{minor}, runs bf16 natively")


def _accelerator_kind(accelerator: Any) -> str:
    """``cpu``, ``cuda`` or another device type, for an accelerator name or instance (``auto``: as Lightning picks)."""
    if not isinstance(accelerator, str):  # an Accelerator instance from a config's class_path
        kind = type(accelerator).__name__.lower().removesuffix("accelerator")
        return "cpu" if kind == "cpu" else "cuda" if kind == "cuda" else kind
    name = accelerator.lower()
    if name in ("auto", "gpu"):
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    return name


def resolve_auto_precision(accelerator: Any = "auto", flags: Collection[str] | None = None) -> PrecisionChoice:
    """The precision ``auto`` means on the accelerator a run will use (a Trainer's ``accelerator`` value).

    ``flags``: the CPU flags to judge (default: this machine's); tests pass their own.
    """
    kind = _accelerator_kind(accelerator)
    if kind == "cuda":
        return _cuda_choice(
            torch.cuda.device_count(),
            torch.cuda.get_device_capability,
            torch.cuda.get_device_name,
            lambda: torch.cuda.is_bf16_supported(including_emulation=False),
        )
    if kind == "cpu":
        return _cpu_choice(cpu_flags() if flags is None else flags, torch.backends.mkldnn.is_available())
    return PrecisionChoice("32-true", f"bf16 speed on {kind} is not measured")
