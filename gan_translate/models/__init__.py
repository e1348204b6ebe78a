"""One LightningModule per method, registered by name so checkpoints can name their model class."""

from __future__ import annotations

from gan_translate.models.base import GANModule
from gan_translate.models.cyclegan import CycleGAN
from gan_translate.models.dcgan import DCGAN
from gan_translate.models.pix2pix import Pix2Pix
from gan_translate.registry import Registry

MODELS: Registry[type[GANModule]] = Registry("model")
MODELS.register(CycleGAN.model_name)(CycleGAN)
MODELS.register(DCGAN.model_name)(DCGAN)
MODELS.register(Pix2Pix.model_name)(Pix2Pix)

__all__ = ["MODELS", "CycleGAN", "GANModule"]
