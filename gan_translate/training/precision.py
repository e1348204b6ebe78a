"""``--trainer.precision auto``: bf16-mixed where the hardware runs bf16 fast, 32-true elsewhere.

Resolved once, before the Trainer is built (``GanTranslateCLI.before_instantiate_classes``), so the run's saved
``config.yaml`` holds the precision that actually trained (a rerun of that file on other hardware trains the
same way) and W&B's config records it with the request (``trainer/precision``, ``trainer/precision_requested``).

What counts as fast bf16 (GPUs of compute capability >= 8.0, CPUs with AVX512-BF16 / AMX): :mod:`gan_translate.core.hardware`.
"""

from __future__ import annotations

from typing import Any, Literal

from lightning.fabric.connector import _PRECISION_INPUT
from lightning.pytorch import Trainer

# The judgement lives in the foundation, where inference asks it too; these names stay importable from here.
from gan_translate.core.hardware import AUTO_PRECISION, CPU_BF16_FLAGS, PrecisionChoice, cpu_flags, resolve_auto_precision

__all__ = [
    "AUTO_PRECISION",
    "CPU_BF16_FLAGS",
    "AutoPrecisionTrainer",
    "PrecisionChoice",
    "cpu_flags",
    "resolve_auto_precision",
]


class AutoPrecisionTrainer(Trainer):
    """Lightning's Trainer, whose ``precision`` also takes ``auto`` (the CLI's trainer class, so configs parse it).

    The CLI resolves ``auto`` before building this (and records the result); built directly from Python with
    ``precision="auto"``, it resolves here the same way.
    """

    def __init__(self, *, precision: _PRECISION_INPUT | Literal["auto"] | None = None, **kwargs: Any) -> None:
        if precision == AUTO_PRECISION:
            choice = resolve_auto_precision(kwargs.get("accelerator", "auto"))
            from lightning.pytorch.utilities import rank_zero_info

            rank_zero_info(choice.line())
            precision = choice.precision  # type: ignore[assignment]
        super().__init__(precision=precision, **kwargs)
