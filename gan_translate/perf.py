"""The 0.1 home of ``PerformanceOptions``: configs that name ``gan_translate.perf.PerformanceOptions`` keep working.

The class lives in :mod:`gan_translate.callbacks.performance`; the inference switches in :mod:`gan_translate.inference`.
"""

from __future__ import annotations

from gan_translate.callbacks.performance import PerformanceOptions

__all__ = ["PerformanceOptions"]
