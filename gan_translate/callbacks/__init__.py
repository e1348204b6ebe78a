"""Lightning callbacks that work with every model of the framework through its public contract.

Configs name them by these paths (``gan_translate.callbacks.ModelCheckpoint``, ...); models attach the ones they
always need themselves (``configure_callbacks``), and ``gan-translate fit`` adds the ``--reliability.*`` ones,
the console summary (``FitSummary``) and the eval-mode check (``EvalModeCheck``).
"""

from __future__ import annotations

from gan_translate.callbacks.checkpoint import ModelCheckpoint
from gan_translate.callbacks.distribution_metrics import DistributionMetrics
from gan_translate.callbacks.eval_mode import EvalModeCheck
from gan_translate.callbacks.exact_resume import ExactResume
from gan_translate.callbacks.nonfinite import NonFiniteGuard
from gan_translate.callbacks.performance import PerformanceOptions
from gan_translate.callbacks.reliability import Reliability
from gan_translate.callbacks.sample_images import SampleImageWriter
from gan_translate.callbacks.scheduled_checkpoints import ScheduledCheckpoints
from gan_translate.callbacks.summary import FitSummary

__all__ = [
    "DistributionMetrics",
    "EvalModeCheck",
    "ExactResume",
    "FitSummary",
    "ModelCheckpoint",
    "NonFiniteGuard",
    "PerformanceOptions",
    "Reliability",
    "SampleImageWriter",
    "ScheduledCheckpoints",
]
