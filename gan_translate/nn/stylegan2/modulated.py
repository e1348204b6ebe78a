"""The StyleGAN2 convolution: weight (de)modulation by a per-sample style, in its two equivalent forms.

The fused form (training, sampling) folds the batch into the groups of one grouped convolution; the unfused form
(the official code's ``fused_modconv=False``) scales the input channels by the style, runs one ordinary convolution
with the shared weight and scales the output channels by the demodulation coefficients. The unfused form is what
the standalone exports run (:func:`unfuse_modulated_convs` on a copy): ONNX's ``Conv`` takes ``group`` as a fixed
attribute and a TorchScript trace fixes it, so only the unfused graph keeps a dynamic batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn.stylegan2.equalised import EqualLinear

__all__ = ["ModulatedConv2d", "unfuse_modulated_convs", "upsample2x"]


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x upsampling of the generator (its style layers and RGB skips)."""
    # Bilinear with half-pixel centres = the [1, 3, 3, 1] filter of the paper (see the docstring of gan_translate.nn.stylegan2).
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ModulatedConv2d(nn.Module):
    """The StyleGAN2 convolution: the style scales the weights instead of the activations.

    For each sample, the style ``s = A(w)`` (an :class:`EqualLinear` w -> in_channels with bias 1, so an
    untrained layer starts near plain convolution) scales the input channels of the weight:
    ``w'_ijk = s_i * w_ijk``. With ``demodulate`` each output channel's weights are then divided by
    ``sqrt(sum_ik w'_ijk ** 2 + 1e-8)``: for inputs of unit variance the outputs have unit variance again,
    which replaces AdaIN's normalisation of the activations (the paper's fix for the "droplet" artefacts).
    Per-sample weights are applied as one grouped convolution, the batch folded into the groups (``fused``, the
    default); with ``fused = False`` the same function runs unfused (:meth:`forward_unfused`).

    With ``up`` the input is first upsampled 2x (bilinear = the [1, 3, 3, 1] filter; see the docstring of gan_translate.nn.stylegan2).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, demodulate: bool = True, up: bool = False
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise UserError(f"ModulatedConv2d needs an odd kernel size (same padding), got {kernel_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.up = up
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        #: Which form ``forward`` runs: a plain attribute (no state_dict entry), switched off by
        #: :func:`unfuse_modulated_convs` on the copy an export traces.
        self.fused = True

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if not self.fused:
            return self.forward_unfused(x, w)
        n, c, h, wd = x.shape
        styles = self.affine(w)  # (N, in)
        weight = self.weight[None] * self.weight_gain * styles[:, None, :, None, None]  # (N, out, in, k, k)
        if self.demodulate:
            dcoefs = (weight.square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt()  # (N, out)
            weight = weight * dcoefs[:, :, None, None, None]
        if self.up:
            x = upsample2x(x)
            h, wd = 2 * h, 2 * wd
        weight = weight.reshape(n * self.out_channels, c, self.kernel_size, self.kernel_size).to(x.dtype)
        y = F.conv2d(x.reshape(1, n * c, h, wd), weight, padding=self.kernel_size // 2, groups=n)
        return y.reshape(n, self.out_channels, h, wd)

    def forward_unfused(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """:meth:`forward`'s function without folding the batch into groups (official ``fused_modconv=False``).

        ``conv(x, s * w) * d == conv(x * s, w) * d`` per sample (the convolution is linear in input and weight; the
        modulated conv has no bias), with the demodulation ``d`` computed exactly as the fused form does. One
        ordinary convolution for the whole batch: ONNX's static ``group`` attribute and TorchScript traces then keep
        any batch size. Only float rounding differs from the fused form (~1e-6).
        """
        styles = self.affine(w)  # (N, in)
        weight = self.weight * self.weight_gain  # (out, in, k, k), shared by the batch
        if self.up:
            x = upsample2x(x)
        y = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=self.kernel_size // 2)
        if self.demodulate:
            modulated = weight[None] * styles[:, None, :, None, None]  # (N, out, in, k, k), as the fused form
            dcoefs = (modulated.square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt()  # (N, out)
            y = y * dcoefs[:, :, None, None].to(y.dtype)
        return y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"demodulate={self.demodulate}, up={self.up}")


def unfuse_modulated_convs(network: nn.Module) -> nn.Module:
    """``network`` (changed in place: pass a copy) with every :class:`ModulatedConv2d` in its unfused form, the form
    whose trace keeps a dynamic batch. Parameters, buffers and state_dict keys stay as they are."""
    for module in network.modules():
        if isinstance(module, ModulatedConv2d):
            module.fused = False
    return network

