"""Shared building blocks of the networks: normalisation layers by name and weight initialisation."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd

from gan_translate.core.errors import UserError
from gan_translate.core.registry import Registry

__all__ = ["NORMS", "INITS", "norm_layer", "uses_bias", "init_weights", "check_spatial_multiple"]

NORMS: Registry[Callable[[int], nn.Module]] = Registry("norm")


@NORMS.register("instance")
def _instance(channels: int) -> nn.Module:
    # The CycleGAN setting: no learned scale/shift and no running statistics, so the layer
    # normalises each image by its own statistics in training and at test time alike.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


@NORMS.register("batch")
def _batch(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)


@NORMS.register("none")
def _none(channels: int) -> nn.Module:
    return nn.Identity()


def norm_layer(name: str, channels: int) -> nn.Module:
    """The normalisation layer ``name`` ("instance", "batch" or "none") for ``channels`` channels."""
    return NORMS.get(name)(channels)


def uses_bias(norm: str) -> bool:
    """Whether a convolution followed by the norm ``norm`` should carry a bias.

    Batch norm subtracts the per-channel mean and then adds its own learned shift, so a bias in the
    convolution before it is cancelled exactly and would only be a dead parameter. Instance norm here
    has no affine shift (and "none" has nothing at all), so the convolution keeps its bias: this is
    the classic rule and the one the reference parameter counts are built on.
    """
    NORMS.get(norm)  # an unknown name fails here, listing the valid ones
    return norm != "batch"


INITS: Registry[Callable[[torch.Tensor, float], None]] = Registry("init type")


@INITS.register("normal")
def _normal(weight: torch.Tensor, gain: float) -> None:
    nn.init.normal_(weight, 0.0, gain)


@INITS.register("xavier")
def _xavier(weight: torch.Tensor, gain: float) -> None:
    nn.init.xavier_normal_(weight, gain=gain)


@INITS.register("kaiming")
def _kaiming(weight: torch.Tensor, gain: float) -> None:
    # As in the classic code, kaiming ignores `gain`: its scale comes from the fan-in.
    nn.init.kaiming_normal_(weight, a=0, mode="fan_in")


@INITS.register("orthogonal")
def _orthogonal(weight: torch.Tensor, gain: float) -> None:
    nn.init.orthogonal_(weight, gain=gain)


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise ``net`` in place the classic GAN way and return it.

    Convolution (also transposed) and linear weights are drawn by ``init_type`` with ``gain``
    (the std for "normal"), their biases set to 0; affine normalisation layers get weights from
    N(1, gain) and zero biases, so they start close to the identity.
    """
    init = INITS.get(init_type)
    if not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
        raise UserError(f"init gain must be a positive number, got {gain!r}")

    @torch.no_grad()
    def apply(m: nn.Module) -> None:
        if isinstance(m, (_ConvNd, nn.Linear)):
            init(m.weight, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (_NormBase, nn.GroupNorm, nn.LayerNorm)) and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    net.apply(apply)
    return net


def check_spatial_multiple(x: torch.Tensor, multiple: int, network: str) -> None:
    """Raise a UserError unless the height and width of ``x`` are multiples of ``multiple``.

    Without this a ResNet silently returns an image of another size and a U-Net fails deep inside
    with a channel-concatenation error; the inference code pads to ``size_multiple`` instead.
    """
    h, w = x.shape[-2], x.shape[-1]
    if h % multiple or w % multiple:
        raise UserError(
            f"{network} needs a height and width that are multiples of {multiple}, got {h}x{w}"
        )
