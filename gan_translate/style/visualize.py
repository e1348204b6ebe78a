"""Feature visualisation (Olah, Mordvintsev & Schubert 2017, "Feature Visualization"): an image optimised from
noise to excite one channel of a VGG layer.

Adam on the pixels maximises the channel's mean activation, with the usual regularisers: a random jitter of the
image before every step (robustness to small shifts), a total-variation penalty (``tv_weight``: smooth images) and,
every ``blur_every`` steps, a light Gaussian blur (suppresses the high-frequency patterns a plain gradient ascent
finds first). The pixels stay in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_translate.core.errors import UserError
from gan_translate.style.losses import total_variation

__all__ = ["VisualizeConfig", "channel_activation", "visualize_channels"]


@dataclass
class VisualizeConfig:
    """Feature visualisation settings."""

    size: int = 128
    steps: int = 200
    lr: float = 0.05
    jitter: int = 8
    tv_weight: float = 1.0
    blur_every: int = 4
    """Blur the image (3x3 Gaussian) every this many steps (0: never)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 16 or self.steps < 1 or self.lr <= 0 or self.jitter < 0 or self.tv_weight < 0 or self.blur_every < 0:
            raise UserError("feature visualisation needs size >= 16, steps >= 1, lr > 0 and jitter, tv_weight, blur_every >= 0")


def channel_activation(extractor: torch.nn.Module, images: Tensor, layer: str, channels: Sequence[int]) -> Tensor:
    """Mean activation of ``channels[i]`` of ``layer`` for image ``i``: ``(N,)``."""
    features = extractor(images)[layer]
    index = torch.as_tensor(list(channels), device=features.device)
    return features[torch.arange(len(index), device=features.device), index].flatten(1).mean(dim=1)


def _blur(images: Tensor) -> Tensor:
    kernel = torch.tensor([1.0, 2.0, 1.0], device=images.device, dtype=images.dtype)
    kernel = (kernel[:, None] * kernel[None, :] / 16.0).expand(images.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(images, (1, 1, 1, 1), mode="reflect"), kernel, groups=images.shape[1])


def visualize_channels(
    extractor: torch.nn.Module, layer: str, channels: Sequence[int], config: VisualizeConfig | None = None,
    callback: Callable[[int], None] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One image per channel of ``layer``, optimised from noise: ``(images in [-1, 1], activation at the start,
    activation at the end)``; ``callback(step)`` after every step."""
    config = config or VisualizeConfig()
    if layer not in getattr(extractor, "layers", [layer]):
        raise UserError(f"the VGG extractor does not return {layer}")
    device = next(iter(extractor.buffers())).device
    generator = torch.Generator().manual_seed(config.seed)
    image = (torch.randn(len(channels), 3, config.size, config.size, generator=generator) * 0.1).to(device).requires_grad_(True)
    with torch.no_grad():
        start = channel_activation(extractor, image, layer, channels)
    optimizer = torch.optim.Adam([image], lr=config.lr)
    for step in range(config.steps):
        dy, dx = (int(v) for v in torch.randint(-config.jitter, config.jitter + 1, (2,), generator=generator))
        shifted = torch.roll(image, shifts=(dy, dx), dims=(2, 3))
        objective = channel_activation(extractor, shifted, layer, channels) - config.tv_weight * total_variation(shifted)
        optimizer.zero_grad(set_to_none=True)
        (-objective.sum()).backward()
        optimizer.step()
        with torch.no_grad():
            if config.blur_every and (step + 1) % config.blur_every == 0:
                image.copy_(_blur(image))
            image.clamp_(-1, 1)
        if callback is not None:
            callback(step)
    with torch.no_grad():
        end = channel_activation(extractor, image, layer, channels)
    return image.detach(), start, end
