"""Image-quality metrics shared by every model (torchmetrics, so they sync across DDP processes).

Paired metrics compare a translation with its ground truth. Inputs are framework images in [-1, 1];
they are mapped to [0, 1] first, so L1 is the mean absolute pixel error on a 0..1 scale and PSNR uses
a data range of 1.
"""

from __future__ import annotations

from torch import Tensor
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped (generators can overshoot slightly before tanh saturates)."""
    return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def paired_metrics(prefix: str = "", postfix: str = "") -> MetricCollection:
    """L1, PSNR and SSIM as one collection: ``update(prediction01, target01)`` then ``compute()``."""
    return MetricCollection(
        {
            "l1": MeanAbsoluteError(),
            # Per-image PSNR averaged over images, as papers report it (not PSNR of the pooled error).
            "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3), reduction="elementwise_mean"),
            "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
        },
        prefix=prefix,
        postfix=postfix,
    )
