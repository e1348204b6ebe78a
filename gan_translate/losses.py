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

from gan_translate.core.registry import Registry


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


def patch_nce(query: Tensor, key: Tensor, batch_size: int, temperature: float = 0.07, negatives_from_batch: bool = False) -> Tensor:
    """PatchNCE (Park et al. 2020): the mean over patches of the InfoNCE loss that each output patch ``query[i]``
    picks its own input patch ``key[i]`` out of the other input patches.

    ``query`` and ``key`` are ``(batch_size * P, D)`` L2-normalised features, image-major, of the same ``P``
    locations in each image (``PatchSampleMLP``). The negatives of a patch are the other ``P - 1`` patches of its
    own image (CUT's default), or of every image of the batch with ``negatives_from_batch``. The keys are constants:
    the loss trains the query side. ``temperature``: CUT's 0.07.
    """
    key = key.detach()
    total, dim = query.shape
    positive = (query * key).sum(dim=1, keepdim=True)  # (total, 1)
    groups = 1 if negatives_from_batch else batch_size
    q = query.reshape(groups, total // groups, dim)
    k = key.reshape(groups, total // groups, dim)
    negative = torch.bmm(q, k.transpose(1, 2))  # (groups, P, P): every query against every key of its group
    # The diagonal is each patch's own positive: not a negative. exp(-10 / T) is ~0 against the other terms.
    same = torch.eye(q.shape[1], device=query.device, dtype=torch.bool)[None]
    negative = negative.masked_fill(same, -10.0).reshape(total, -1)
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(total, dtype=torch.long, device=query.device))


def energy_loss(matched: Tensor, contrast: Tensor) -> Tensor:
    """UNSB's energy network loss (Kim et al. 2024): raise the scores of matched ``(x_t, x_1)`` pairs against a
    pair with another batch's, ``-mean(matched) + L + L**2`` with ``L = logsumexp(contrast)`` over every patch score
    (the square keeps the normaliser from drifting). ``matched``: E's patch scores of each pair with itself;
    ``contrast``: of each pair with the other batch's pair."""
    log_normaliser = torch.logsumexp(contrast.reshape(-1), dim=0)
    return -matched.mean() + log_normaliser + log_normaliser**2


def schrodinger_bridge_loss(matched: Tensor, contrast: Tensor, state: Tensor, endpoint: Tensor, step: int,
                            num_timesteps: int, tau: float) -> Tensor:
    """UNSB's SB loss for the generator at bridge step ``step`` of ``num_timesteps``: the transport cost
    ``tau * E||x_t - G(x_t)||^2`` minus the entropy of the coupling, estimated by the energy network's scores
    (``mean(matched) - logsumexp(contrast)``) and weighted by the time left, ``(T - step) / T * tau``."""
    entropy = matched.mean() - torch.logsumexp(contrast.reshape(-1), dim=0)
    transport = torch.mean((state - endpoint) ** 2)
    return -(num_timesteps - step) / num_timesteps * tau * entropy + tau * transport
