"""One LightningModule per method, each registered by name where it is defined (``@register_model``).

Configs name them by these class paths (``gan_translate.models.CycleGAN``); checkpoints by their registry name.
To add a model, copy ``models/template.py`` (docs/ARCHITECTURE.md says what else).
"""

from __future__ import annotations

from gan_translate.models.adain import AdaIN
from gan_translate.models.base import Capability, GANModule
from gan_translate.models.cut import CUT, FastCUT
from gan_translate.models.cyclegan import CycleGAN
from gan_translate.models.dcgan import DCGAN
from gan_translate.models.pix2pix import Pix2Pix
from gan_translate.models.registry import MODELS, models_that, register_model
from gan_translate.models.stylegan2 import StyleGAN2
from gan_translate.models.translation import AdversarialTranslationGAN, TranslationGAN

__all__ = [
    "AdaIN",
    "CUT",
    "DCGAN",
    "FastCUT",
    "MODELS",
    "AdversarialTranslationGAN",
    "Capability",
    "CycleGAN",
    "GANModule",
    "Pix2Pix",
    "StyleGAN2",
    "TranslationGAN",
    "models_that",
    "register_model",
]
