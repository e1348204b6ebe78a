"""DeepDream (Mordvintsev, Olah & Tyka 2015): gradient ascent on the L2 norm of chosen VGG layers' activations.

The image is processed over octaves: a pyramid of ``octaves`` sizes, each ``octave_scale`` times the previous, from
the smallest up. At each octave the image is the input at that size plus the *detail* dreamt so far (upsampled),
and ``steps`` ascent steps run on it: the image is shifted by a random jitter (so the pattern does not lock onto
the pixel grid), the gradient of ``Σ_l mean(A_l²)`` is normalised by its mean absolute value (so ``lr`` is a step in
pixel units whatever the layer's scale), the step taken, the shift undone and the pixels kept in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gan_translate.core.errors import UserError
from gan_translate.core.images import tensor_to_uint8, uint8_to_tensor
from gan_translate.style.gatys import MIN_SIDE, resize_long_side, resize_to

__all__ = ["DreamConfig", "DreamResult", "activation_norm", "deep_dream", "dream_uint8"]


@dataclass
class DreamConfig:
    """DeepDream settings (the common choices of the original notebook and its PyTorch ports)."""

    layers: tuple[str, ...] = ("relu4_2",)
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10
    """Ascent steps per octave."""
    lr: float = 0.02
    """Step size in [-1, 1] pixel units, after the gradient's normalisation."""
    jitter: int = 16
    """Largest random shift (pixels) before each step."""
    seed: int = 0

    def __post_init__(self) -> None:
        self.layers = tuple(self.layers)
        if not self.layers:
            raise UserError("DeepDream needs at least one layer")
        if self.octaves < 1 or self.steps < 1 or self.octave_scale <= 1.0 or self.lr <= 0 or self.jitter < 0:
            raise UserError("DeepDream needs octaves >= 1, steps >= 1, octave_scale > 1, lr > 0 and jitter >= 0; "
                            f"got {self.octaves}, {self.steps}, {self.octave_scale}, {self.lr}, {self.jitter}")


@dataclass
class DreamResult:
    image: Tensor
    """The dreamt images, ``(N, 3, H, W)`` in [-1, 1], the input's size."""
    norms: list[tuple[float, float]] = field(default_factory=list)
    """Per octave (small to large): the layers' activation norm before its first step and after its last."""


def activation_norm(extractor: torch.nn.Module, images: Tensor, layers: Sequence[str]) -> Tensor:
    """``Σ_l mean(A_l²)``: what DeepDream raises."""
    features = extractor(images)
    return sum(features[layer].pow(2).mean() for layer in layers)  # type: ignore[return-value]


def _octave_sizes(height: int, width: int, config: DreamConfig) -> list[tuple[int, int]]:
    sizes = []
    for index in range(config.octaves):
        scale = config.octave_scale ** (config.octaves - 1 - index)
        sizes.append((max(MIN_SIDE, round(height / scale)), max(MIN_SIDE, round(width / scale))))
    return sizes


def deep_dream(
    images: Tensor, extractor: torch.nn.Module, config: DreamConfig | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> DreamResult:
    """Dream on NCHW images in [-1, 1] with the VGG ``extractor``; ``callback(octave, step)`` after every step."""
    config = config or DreamConfig()
    missing = [layer for layer in config.layers if layer not in getattr(extractor, "layers", config.layers)]
    if missing:
        raise UserError(f"the VGG extractor does not return {', '.join(missing)}")
    generator = torch.Generator().manual_seed(config.seed)
    base = images.detach().float()
    detail = torch.zeros_like(base[..., :1, :1])
    result = DreamResult(base)
    for octave, size in enumerate(_octave_sizes(*base.shape[-2:], config)):
        octave_base = resize_to(base, size)
        # The detail is a difference of images (in [-2, 2]): resized without resize_to's clamp to [-1, 1].
        upsampled = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        image = (octave_base + upsampled).clamp(-1, 1)
        with torch.no_grad():
            before = float(activation_norm(extractor, image, config.layers))
        for step in range(config.steps):
            image = _ascent_step(image, extractor, config, generator)
            if callback is not None:
                callback(octave, step)
        with torch.no_grad():
            result.norms.append((before, float(activation_norm(extractor, image, config.layers))))
        detail = image - octave_base
        result.image = image
    result.image = resize_to(result.image, tuple(base.shape[-2:])).clamp(-1, 1).detach()
    return result


def _ascent_step(image: Tensor, extractor: torch.nn.Module, config: DreamConfig, generator: torch.Generator) -> Tensor:
    shift_y, shift_x = (int(v) for v in torch.randint(-config.jitter, config.jitter + 1, (2,), generator=generator))
    shifted = torch.roll(image, shifts=(shift_y, shift_x), dims=(2, 3)).detach().requires_grad_(True)
    activation_norm(extractor, shifted, config.layers).backward()
    gradient = shifted.grad
    gradient = gradient / (gradient.abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-8)
    stepped = (shifted.detach() + config.lr * gradient).clamp(-1, 1)
    return torch.roll(stepped, shifts=(-shift_y, -shift_x), dims=(2, 3))


def dream_uint8(
    image: np.ndarray, extractor: torch.nn.Module, config: DreamConfig | None = None, max_side: int = 0,
    callback: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, DreamResult]:
    """Dream on one uint8 ``HxWx3`` image; the result has the input's size.

    With ``max_side`` (> 0) a larger image is dreamt at that long side and only the *detail* (dream minus input)
    is enlarged and added to the full-resolution input, so the photo keeps its own sharpness.
    """
    device = next(iter(extractor.buffers())).device
    full = uint8_to_tensor(image)[None].to(device)
    working = full if max_side <= 0 or max(full.shape[-2:]) <= max_side else resize_long_side(full, max_side, MIN_SIDE)
    result = deep_dream(working, extractor, config, callback)
    if working is not full:
        detail = F.interpolate(result.image - working, size=tuple(full.shape[-2:]), mode="bilinear", align_corners=False)
        result.image = (full + detail).clamp(-1, 1)
    return tensor_to_uint8(result.image[0]), result
