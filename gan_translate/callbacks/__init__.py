"""Lightning callbacks that work with every model of the framework through its public conventions."""

from __future__ import annotations

from gan_translate.callbacks.checkpoint import ModelCheckpoint
from gan_translate.callbacks.metrics import DistributionMetrics

__all__ = ["DistributionMetrics", "ModelCheckpoint"]
