"""The pieces every StyleGAN2 network shares: equalised-learning-rate layers, the scaled leaky ReLU, the supported
resolutions and channel counts, and the one-line checks of their options.

Equalised learning rate: weights are stored as N(0, 1) / lr_mul and scaled at run time by lr_mul / sqrt(fan_in),
so every layer sees the same effective step size under Adam (whose updates are scale-free) whatever its fan-in;
the mapping network uses lr_mul = 0.01.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gan_translate.core.errors import UserError

__all__ = ["NOISE_MODES", "STYLEGAN2_RESOLUTIONS", "Activation", "EqualConv2d", "EqualLinear", "stylegan2_channels"]

STYLEGAN2_RESOLUTIONS: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
NOISE_MODES: tuple[str, ...] = ("random", "const", "none")
Activation = Literal["linear", "lrelu"]

# Leaky ReLU as in the paper (slope 0.2), times sqrt(2) so that a unit-variance input keeps roughly unit
# variance (the "gain" of the activation, the same He-init argument as for ReLU).
_LRELU_SLOPE = 0.2
_LRELU_GAIN = math.sqrt(2.0)


def _activate(x: torch.Tensor, activation: Activation) -> torch.Tensor:
    if activation == "lrelu":
        return F.leaky_relu(x, _LRELU_SLOPE) * _LRELU_GAIN
    return x


def _check_activation(activation: str) -> None:
    if activation not in ("linear", "lrelu"):
        raise UserError(f"unknown activation {activation!r}; valid: linear, lrelu")


def _check_resolution(resolution: int, network: str) -> int:
    """log2(resolution) for a supported resolution; a UserError naming the valid ones otherwise."""
    if resolution not in STYLEGAN2_RESOLUTIONS:
        valid = ", ".join(map(str, STYLEGAN2_RESOLUTIONS))
        raise UserError(f"{network} does not support resolution={resolution!r}; valid resolutions: {valid}")
    return resolution.bit_length() - 1


def _check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise UserError(f"unknown noise_mode {noise_mode!r}; valid: {', '.join(NOISE_MODES)}")


def stylegan2_channels(resolution: int, channel_base: int = 32768, channel_max: int = 512) -> dict[int, int]:
    """Feature channels at every resolution 4, 8, ..., ``resolution``: ``min(channel_base // res, channel_max)``.

    The defaults are config F: 512 channels up to 64x64, then halving (256 at 128, ..., 32 at 1024). The
    official TensorFlow code spells the same numbers ``fmap_base=16384`` with a stage offset
    (``fmap_base / 2 ** (log2(res) - 1)``); in this ``// res`` form that base is 32768.
    """
    if channel_base < 1 or channel_max < 1:
        raise UserError(f"channel_base and channel_max must be positive, got {channel_base} and {channel_max}")
    log2 = resolution.bit_length() - 1
    channels = {2**i: min(channel_base // 2**i, channel_max) for i in range(2, log2 + 1)}
    if min(channels.values()) < 1:
        raise UserError(f"channel_base={channel_base} gives no channels at {resolution}x{resolution}; "
                        f"it must be at least {resolution}")
    return channels



# ----------------------------------------------------------------------------- equalised learning rate

class EqualLinear(nn.Module):
    """A linear layer with equalised learning rate and an optional leaky ReLU (slope 0.2, gain sqrt(2)).

    The weight is stored as N(0, 1) / ``lr_mul`` and multiplied by ``weight_gain = lr_mul / sqrt(in_features)``
    in ``forward``: the effective weight starts as He-initialised N(0, 1 / fan_in), while the optimiser's
    steps on the stored weight are scaled by ``lr_mul`` (0.01 in the mapping network, whose layers would
    otherwise move too fast). The bias is multiplied by ``lr_mul`` at run time too and stored as
    ``bias_init / lr_mul``, so its effective initial value is ``bias_init`` (0, or 1 for the style affines that
    must start as the identity scaling); the official code stores ``bias_init`` itself, which is the same for
    every layer StyleGAN2 builds (lr_mul = 1 or bias_init = 0).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: Activation = "linear",
    ) -> None:
        super().__init__()
        _check_activation(activation)
        if not lr_mul > 0:
            raise UserError(f"lr_mul must be positive, got {lr_mul!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.lr_mul = lr_mul
        self.activation: Activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return _activate(F.linear(x, self.weight * self.weight_gain, bias), self.activation)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, lr_mul={self.lr_mul}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """A 2-d convolution with equalised learning rate (see :class:`EqualLinear`; fan-in = in_channels * k * k)
    and an optional leaky ReLU. Biases start at 0."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        lr_mul: float = 1.0,
        activation: Activation = "linear",
    ) -> None:
        super().__init__()
        _check_activation(activation)
        if not lr_mul > 0:
            raise UserError(f"lr_mul must be positive, got {lr_mul!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.padding = padding
        self.lr_mul = lr_mul
        self.activation: Activation = activation
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        y = F.conv2d(x, self.weight * self.weight_gain, bias, stride=self.stride, padding=self.padding)
        return _activate(y, self.activation)

    def extra_repr(self) -> str:
        k = self.weight.shape[-1]
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={k}, stride={self.stride}, "
                f"padding={self.padding}, activation={self.activation}")

