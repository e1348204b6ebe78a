"""Loss functions as small pure functions.

Adversarial losses come in the three flavours the field uses; each is a pair of functions over the
discriminator's raw outputs (logits, never probabilities: the networks have no final sigmoid).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_translate.registry import Registry


@dataclass(frozen=True)
class AdversarialLoss:
    """The generator and discriminator halves of one GAN objective."""

    name: str
    real_fake: Callable[[Tensor, bool], Tensor]
    """Loss for logits that should be judged real (True) or fake (False), from the discriminator's side."""
    generator: Callable[[Tensor], Tensor]
    """Loss the generator minimises for the discriminator's logits on its fakes."""


ADVERSARIAL_LOSSES: Registry[AdversarialLoss] = Registry("adversarial loss")


def _lsgan_target(logits: Tensor, is_real: bool) -> Tensor:
    return F.mse_loss(logits, torch.full_like(logits, 1.0 if is_real else 0.0))


def _vanilla_target(logits: Tensor, is_real: bool) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if is_real else 0.0))


def _hinge_target(logits: Tensor, is_real: bool) -> Tensor:
    return F.relu(1.0 - logits).mean() if is_real else F.relu(1.0 + logits).mean()


def _lsgan_generator(fake_logits: Tensor) -> Tensor:
    return _lsgan_target(fake_logits, True)


def _vanilla_generator(fake_logits: Tensor) -> Tensor:
    return _vanilla_target(fake_logits, True)


def _hinge_generator(fake_logits: Tensor) -> Tensor:
    return -fake_logits.mean()


# Module-level functions, not lambdas: the models hold these, and `strategy: ddp_spawn` pickles the model.
for _loss in (
    # LSGAN (Mao et al. 2017): least squares towards 1 / 0; CycleGAN's default.
    AdversarialLoss("lsgan", _lsgan_target, _lsgan_generator),
    # Non-saturating GAN (Goodfellow et al.): the generator maximises log D(G(z)); pix2pix / DCGAN default.
    AdversarialLoss("vanilla", _vanilla_target, _vanilla_generator),
    # Hinge (Lim & Ye 2017; SAGAN): the generator raises the critic's score directly.
    AdversarialLoss("hinge", _hinge_target, _hinge_generator),
):
    ADVERSARIAL_LOSSES.register(_loss.name)(_loss)


def adversarial_loss(name: str) -> AdversarialLoss:
    """Look up an adversarial loss by name (``lsgan``, ``vanilla``, ``hinge``)."""
    return ADVERSARIAL_LOSSES.get(name)


def discriminator_loss(loss: AdversarialLoss, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Average of the real and fake terms: the classic code halves D's loss so D learns slower than G."""
    return 0.5 * (loss.real_fake(real_logits, True) + loss.real_fake(fake_logits, False))


def l1(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error (the cycle, identity and pix2pix reconstruction terms)."""
    return F.l1_loss(prediction, target)
