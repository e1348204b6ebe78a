"""Gatys et al. (2016) neural style transfer: the non-GAN baseline the translators are compared with.

* :mod:`gan_translate.style.losses` - Gram matrices, style / content / total-variation losses;
* :mod:`gan_translate.style.gatys` - :class:`GatysConfig` and :func:`stylize` (pixel optimisation);
* :mod:`gan_translate.style.pipeline` - :class:`Stylizer`: uint8 files in, results at their own size out.

The VGG19 feature extractor is :class:`gan_translate.nn.vgg.VGG19Features`. See ``docs/style_transfer.md``.
"""

from __future__ import annotations

from gan_translate.style.gatys import GatysConfig, StylizeProgress, StylizeResult, build_extractor, stylize, transfer_luminance
from gan_translate.style.losses import content_loss, gram_matrix, style_loss, total_variation
from gan_translate.style.pipeline import Stylizer

__all__ = [
    "GatysConfig",
    "StylizeProgress",
    "StylizeResult",
    "Stylizer",
    "build_extractor",
    "content_loss",
    "gram_matrix",
    "style_loss",
    "stylize",
    "total_variation",
    "transfer_luminance",
]
