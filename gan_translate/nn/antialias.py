"""Anti-aliased resampling (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again"), as CUT's ResNet
generator uses it: blur with a fixed binomial filter, then subsample (down) or upsample through the filter (up)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BlurDownsample", "BlurUpsample", "binomial_filter"]


def binomial_filter(size: int) -> torch.Tensor:
    """The ``size x size`` outer product of the binomial coefficients of ``size - 1``, summing to 1
    (3: [1, 2, 1] / 4 in each direction; 4: [1, 3, 3, 1] / 8)."""
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float32)
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class BlurDownsample(nn.Module):
    """Halve H and W: reflect-pad, blur each channel with a 3x3 binomial filter, keep every second pixel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # A buffer, not a parameter: the filter is fixed, and it moves with the module (device, dtype).
        self.register_buffer("kernel", binomial_filter(3)[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel.to(x.dtype), stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Double H and W: zero-insertion upsampling filtered by a 4x4 binomial kernel (a fixed transposed convolution),
    with replicated borders, so the result is the blurred nearest-neighbour image without checkerboard artefacts."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # x4: the inserted zeros carry no energy; the filter's gain makes up for the three of every four pixels.
        self.register_buffer("kernel", (binomial_filter(4) * 4)[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        up = F.conv_transpose2d(padded, self.kernel.to(x.dtype), stride=2, padding=2, groups=x.shape[1])
        return up[:, :, 1:-1, 1:-1]  # (2H + 2) -> 2H: the border the padding added
