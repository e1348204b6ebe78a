"""Differentiable discriminator augmentation with ADA's adaptive probability (Karras et al. 2020, "Training
Generative Adversarial Networks with Limited Data").

Every image the discriminator sees, real or fake, first goes through :func:`augment`; because the operations are
differentiable, the generator is trained through them, and because reals and fakes get the same distribution of
augmentations, the generator is never rewarded for producing augmented-looking images (as long as ``p`` stays
well below ~0.8, the ADA paper's "leaking" limit; its Fig. 3).

The operations are the simple DiffAugment-like set (Zhao et al. 2020), not ADA's full 18-operation ``bgc``
pipeline (no flips, rotations, scaling, hue or luma flips), each applied to each image independently with
probability ``p``:

* colour: brightness (add U(-0.5, 0.5), images being in [-1, 1]), saturation (scale the distance to the pixel's
  channel mean by U(0, 2)), contrast (scale the distance to the image mean by U(0.5, 1.5));
* integer translation: shift by up to 1/8 of the side in each axis, the uncovered border filled with 0 (mid-grey,
  the middle of [-1, 1]);
* cutout: a random square of half the side (its centre anywhere in the image, so it may be cut off at the border)
  set to 0.

``p = 0`` is exactly the identity (unchosen images are passed through with ``torch.where``, not multiplied by 1).
Random numbers come from torch's global generator of the images' device (Lightning seeds it, and the project's
``ExactResume`` callback restores it on resume), so there is no generator state to checkpoint here.

:class:`AdaptiveAugment` holds ``p`` and ADA's controller: every ``interval`` batches, ``r_t = E[sign(D(real))]``
over those batches; ``p += sign(r_t - target) * images / (kimg * 1000)`` (``images`` = the images of those batches),
so ``p`` can go from 0 to 1 in ``kimg`` thousand images; clamped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_translate.core.errors import UserError

__all__ = ["AUGMENT_MODES", "AdaptiveAugment", "augment", "brightness", "contrast", "cutout", "saturation", "translate"]

#: "ada": p adapts to the discriminator's overfitting; "fixed": a constant p; "off": no augmentation.
AUGMENT_MODES: tuple[str, ...] = ("ada", "fixed", "off")

#: Largest translation as a fraction of the image side, and cutout side as a fraction (DiffAugment's values).
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _chosen(x: Tensor, p: Tensor | float) -> Tensor:
    """A ``(N, 1, 1, 1)`` boolean mask: True for each image with probability ``p``."""
    return (torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p)


def _uniform(x: Tensor, low: float, high: float) -> Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * (high - low) + low


def brightness(x: Tensor, p: Tensor | float) -> Tensor:
    """Add U(-0.5, 0.5) to every pixel of each chosen image."""
    chosen = _chosen(x, p)
    return torch.where(chosen, x + _uniform(x, -0.5, 0.5), x)


def saturation(x: Tensor, p: Tensor | float) -> Tensor:
    """Scale each pixel's distance to its channel mean by U(0, 2) (0: grey, 2: twice as saturated)."""
    chosen = _chosen(x, p)
    mean = x.mean(dim=1, keepdim=True)
    return torch.where(chosen, (x - mean) * _uniform(x, 0.0, 2.0) + mean, x)


def contrast(x: Tensor, p: Tensor | float) -> Tensor:
    """Scale each pixel's distance to the image mean by U(0.5, 1.5)."""
    chosen = _chosen(x, p)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return torch.where(chosen, (x - mean) * _uniform(x, 0.5, 1.5) + mean, x)


def translate(x: Tensor, p: Tensor | float, ratio: float = TRANSLATION_RATIO) -> Tensor:
    """Shift each chosen image by whole pixels, up to ``ratio`` of its side in each axis; zeros fill the gap.

    A gather from the zero-padded image: differentiable with respect to ``x`` (the gradient of a moved pixel goes
    back to where it came from), and an unchosen image is copied exactly.
    """
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sy == 0 and sx == 0:
        return x
    chosen = _chosen(x, p).view(n, 1, 1)
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device) * chosen
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device) * chosen
    padded = F.pad(x, [sx, sx, sy, sy])  # (N, C, H + 2 sy, W + 2 sx)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + sy - dy).expand(n, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + sx - dx).expand(n, h, w)
    index = (rows * padded.shape[-1] + cols).reshape(n, 1, h * w).expand(-1, x.shape[1], -1)
    return padded.flatten(2).gather(2, index).view_as(x)


def cutout(x: Tensor, p: Tensor | float, ratio: float = CUTOUT_RATIO) -> Tensor:
    """Set a square of ``ratio`` of the side to 0 in each chosen image (its centre uniform over the image)."""
    n, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    chosen = _chosen(x, p).view(n, 1, 1)
    top = torch.randint(0, h, (n, 1, 1), device=x.device) - size_y // 2
    left = torch.randint(0, w, (n, 1, 1), device=x.device) - size_x // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= top) & (ys < top + size_y) & (xs >= left) & (xs < left + size_x) & chosen  # (N, H, W)
    return torch.where(inside[:, None], torch.zeros((), dtype=x.dtype, device=x.device), x)


def augment(x: Tensor, p: Tensor | float) -> Tensor:
    """The whole pipeline: brightness, saturation, contrast, translation, cutout, each with probability ``p``
    per image (independently). ``x`` is ``(N, C, H, W)`` in [-1, 1]; differentiable with respect to ``x``."""
    for op in (brightness, saturation, contrast, translate, cutout):
        x = op(x, p)
    return x


class AdaptiveAugment(nn.Module):
    """Augments the discriminator's inputs with probability ``p``; in mode ``"ada"`` also adapts ``p``.

    ``p`` and the controller's accumulators are buffers: they are in the module's state dict (so in every
    checkpoint, restored exactly on resume) and move with the module to its device. Under DDP the caller passes a
    ``reduce`` (sum over processes) to :meth:`adjust` so every process computes the same ``p``.

    Args:
        mode: ``"ada"`` (adaptive p, starting at ``p``), ``"fixed"`` (constant ``p``) or ``"off"``.
        p: the (initial) augmentation probability, in [0, 1].
        target: ADA's target for ``r_t = E[sign(D(real))]`` (0.6 in the paper).
        interval: batches between two adjustments of ``p`` (4 in the official code).
        kimg: thousands of images for ``p`` to go from 0 to 1 at the fastest (500 in the paper).
    """

    def __init__(self, mode: str = "ada", p: float = 0.0, target: float = 0.6, interval: int = 4,
                 kimg: float = 500.0) -> None:
        super().__init__()
        if mode not in AUGMENT_MODES:
            raise UserError(f"unknown augment mode {mode!r}; valid: {', '.join(AUGMENT_MODES)}")
        if not 0.0 <= p <= 1.0:
            raise UserError(f"augment_p must be in [0, 1], got {p}")
        if interval < 1:
            raise UserError(f"ada_interval must be at least 1, got {interval}")
        if not kimg > 0:
            raise UserError(f"ada_kimg must be positive, got {kimg}")
        self.mode = mode
        self.target = float(target)
        self.interval = int(interval)
        self.kimg = float(kimg)
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("sign_sum", torch.tensor(0.0))  # sum of sign(D(real)) since the last adjustment
        self.register_buffer("sign_count", torch.tensor(0.0))  # how many logits that sum holds
        self.register_buffer("rt", torch.tensor(0.0))  # r_t of the last adjustment (for the logs)
        self.p: Tensor
        self.sign_sum: Tensor
        self.sign_count: Tensor
        self.rt: Tensor

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def forward(self, images: Tensor) -> Tensor:
        if not self.enabled or (self.mode == "fixed" and float(self.p) == 0.0):
            return images
        return augment(images, self.p.to(images.dtype))

    @torch.no_grad()
    def accumulate(self, real_logits: Tensor) -> None:
        """Add the signs of the discriminator's logits on (augmented) real images to the controller's statistics."""
        if self.mode != "ada":
            return
        signs = real_logits.detach().float().sign()
        self.sign_sum.add_(signs.sum())
        self.sign_count.add_(signs.numel())

    @torch.no_grad()
    def adjust(self, images: int, reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        """One controller step: ``p += sign(r_t - target) * images / (kimg * 1000)``, clamped to [0, 1].

        ``images``: how many images (all processes together) the accumulated batches held. Without accumulated
        logits (or outside mode "ada") nothing changes. The accumulators start again from zero.
        """
        if self.mode != "ada":
            return
        stats = torch.stack([self.sign_sum, self.sign_count])
        if reduce is not None:
            stats = reduce(stats.clone())
        total, count = stats.unbind()
        rt = torch.where(count > 0, total / count.clamp_min(1.0), self.rt)
        step = torch.sign(rt - self.target) * (images / (self.kimg * 1000.0))
        self.p.copy_(torch.where(count > 0, (self.p + step).clamp(0.0, 1.0), self.p))
        self.rt.copy_(rt)
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def observe(self, real_logits: Tensor, batch_index: int, batch_size: int,
                reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        """:meth:`accumulate`, then :meth:`adjust` after every ``interval``-th batch (``batch_index`` counts from 0;
        ``batch_size``: images per batch over all processes), as the official training loop does."""
        self.accumulate(real_logits)
        if (batch_index + 1) % self.interval == 0:
            self.adjust(batch_size * self.interval, reduce)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, target={self.target}, interval={self.interval}, kimg={self.kimg}"
