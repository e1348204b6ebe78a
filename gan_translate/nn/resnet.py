"""The ResNet generator of CycleGAN (Johnson et al. 2016 as used by Zhu et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gan_translate.errors import UserError
from gan_translate.nn.layers import check_spatial_multiple, norm_layer, uses_bias
from gan_translate.registry import Registry

__all__ = ["PADDINGS", "ResnetBlock", "ResnetGenerator"]

# padding type -> (explicit padding layer or None, padding to give the convolution itself)
PADDINGS: Registry[Callable[[int], tuple[nn.Module | None, int]]] = Registry("padding type")


@PADDINGS.register("reflect")
def _reflect(p: int) -> tuple[nn.Module | None, int]:
    return nn.ReflectionPad2d(p), 0


@PADDINGS.register("replicate")
def _replicate(p: int) -> tuple[nn.Module | None, int]:
    return nn.ReplicationPad2d(p), 0


@PADDINGS.register("zero")
def _zero(p: int) -> tuple[nn.Module | None, int]:
    return None, p


def _padded_conv(padding_type: str, in_ch: int, out_ch: int, kernel: int, bias: bool) -> list[nn.Module]:
    pad, conv_pad = PADDINGS.get(padding_type)(kernel // 2)
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=conv_pad, bias=bias)
    return [conv] if pad is None else [pad, conv]


class ResnetBlock(nn.Module):
    """Two 3x3 convolutions with norm and a residual skip: ``x + F(x)``, shape-preserving."""

    def __init__(self, dim: int, norm: str, dropout: bool, padding_type: str) -> None:
        super().__init__()
        bias = uses_bias(norm)
        layers: list[nn.Module] = [
            *_padded_conv(padding_type, dim, dim, 3, bias),
            norm_layer(norm, dim),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [*_padded_conv(padding_type, dim, dim, 3, bias), norm_layer(norm, dim)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """Encoder (7x7 conv, ``n_downsampling`` stride-2 convs), residual blocks, mirrored decoder, tanh.

    Maps ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)`` in [-1, 1]; H and W must be
    multiples of ``size_multiple`` (``2 ** n_downsampling``, 4 for the classic network) and at least
    ``min_size``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
        padding_type: str = "reflect",
        n_downsampling: int = 2,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise UserError(f"ResnetGenerator n_blocks must be >= 0, got {n_blocks}")
        if n_downsampling < 0:
            raise UserError(f"ResnetGenerator n_downsampling must be >= 0, got {n_downsampling}")
        PADDINGS.get(padding_type)  # fail early on an unknown name, listing the valid ones
        self.size_multiple: int = 2**n_downsampling
        # The residual blocks reflect-pad by 1 and instance-normalise: they need at least 2x2 pixels after the
        # downsampling, and the stem's reflection pad of 3 needs 4. Inference pads smaller images up to this.
        self.min_size: int = max(4, 2 * self.size_multiple)
        bias = uses_bias(norm)

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),  # the stem is always reflect-padded, as in the classic network
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(n_downsampling):
            ch = ngf * 2**i
            layers += [
                nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias),
                norm_layer(norm, ch * 2),
                nn.ReLU(True),
            ]

        dim = ngf * 2**n_downsampling
        layers += [ResnetBlock(dim, norm, dropout, padding_type) for _ in range(n_blocks)]

        for i in range(n_downsampling, 0, -1):
            ch = ngf * 2**i
            layers += [
                # output_padding=1 makes each stage exactly double the size (H/2 -> H), undoing the encoder.
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                norm_layer(norm, ch // 2),
                nn.ReLU(True),
            ]
        # The output conv has no norm after it, so it always keeps its bias.
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_spatial_multiple(x, self.size_multiple, type(self).__name__)
        return self.model(x)
