"""Patch discriminators of pix2pix / CycleGAN: a logit per image patch (PatchGAN) or per pixel."""

from __future__ import annotations

import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn.layers import norm_layer, uses_bias

__all__ = ["PatchDiscriminator", "PixelDiscriminator"]


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4x4 convs, one stride-1 conv, a 1-channel 4x4 conv.

    Returns a map of logits (no sigmoid: the loss decides), one per overlapping patch; with the
    default ``n_layers=3`` each sees 70x70 pixels and a 256x256 input gives a 30x30 map.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        if n_layers < 1:
            raise UserError(f"PatchDiscriminator n_layers must be >= 1, got {n_layers}")
        bias = uses_bias(norm)
        # No norm on the first layer: it would normalise away the input's own statistics,
        # which are exactly what the discriminator should judge.
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last of these keeps the resolution
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))  # logits: no norm after it, keeps its bias
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """PixelGAN: 1x1 convolutions only, so each output logit judges a single pixel (colour, not structure)."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, norm: str = "instance") -> None:
        super().__init__()
        bias = uses_bias(norm)
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            norm_layer(norm, ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),  # bias follows the norm rule here too, as in the classic code
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
