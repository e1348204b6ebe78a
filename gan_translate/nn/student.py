"""Fast translator students (issue 28): GAN Compression's mobile ResNet and the plain narrow ResNet presets.

A student keeps the teacher's layout (stem, two stride-2 downsamplings, residual blocks, two upsamplings, 7x7 output
conv, tanh), so its encoder features sit at the same places as a ResnetGenerator's and a distillation can map them
onto the teacher's with 1x1 convolutions (``feature_channels`` says how wide each one is).

* :class:`MobileResnetGenerator`: GAN Compression's ``mobile_resnet`` (Li et al. 2020): residual blocks whose 3x3
  convolutions are depthwise-separable (3x3 depthwise, norm, 1x1 pointwise), widths chosen per stage.
* ``NARROW_RESNETS``: plain ResnetGenerators with a small ``ngf`` (and fewer blocks). Depthwise convolutions are
  often slow in eager PyTorch on a CPU (gan-compression issue #62: no wall-clock gain at 20x fewer MACs), so a
  dense narrow network can be faster per image at the same MACs; ``benchmarks/student_speed.py`` measures both.
  A narrow ResNet is only a ResnetGenerator with other arguments, so it is registered as named presets, not a class.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn.layers import check_spatial_multiple, norm_layer, uses_bias
from gan_translate.nn.resnet import PADDINGS, EncoderFeatureLayers

__all__ = [
    "H2Z_STUDENT_CHANNELS",
    "H2Z_STUDENT_BLOCK_CHANNELS",
    "NARROW_RESNETS",
    "SeparableConv2d",
    "MobileResnetBlock",
    "MobileResnetGenerator",
]

#: GAN Compression's released horse2zebra student (config ``16_16_32_16_32_32_16_16`` of their ``ngf 32``
#: supernet, 2.67 G MACs by their count) as the actual widths it builds: stem 16, down1 32, down2 128, a residual
#: trunk of 128 channels whose blocks are 64 wide inside for the first three and 128 for the other six, up1 32, up2 16
#: (356,867 parameters: their "retrained" figure, 0.357 M; 1.85 G MACs by ``nn.cost.count_macs``).
H2Z_STUDENT_CHANNELS: tuple[int, ...] = (16, 32, 128, 128, 32, 16)
H2Z_STUDENT_BLOCK_CHANNELS: tuple[int, ...] = (64, 64, 64, 128, 128, 128, 128, 128, 128)

#: Plain narrow ResNet presets (GENERATORS names -> ResnetGenerator arguments), measured in benchmarks/RESULTS.md.
NARROW_RESNETS: dict[str, dict[str, int]] = {
    "narrow_resnet_ngf12": {"ngf": 12, "n_blocks": 9},  # about the h2z student's MACs (1.9 G against 1.8 G)
    "narrow_resnet_ngf16": {"ngf": 16, "n_blocks": 9},  # about twice them (3.3 G)
}


class SeparableConv2d(nn.Module):
    """A 3x3 (``kernel``) depthwise convolution, a norm, a 1x1 pointwise convolution: GAN Compression's
    ``SeparableConv2d`` (there the middle norm is always instance norm; here it is ``norm``, as everywhere else)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: int, norm: str) -> None:
        super().__init__()
        bias = uses_bias(norm)
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, kernel, padding=padding, groups=in_ch, bias=bias),
            norm_layer(norm, in_ch),
            nn.Conv2d(in_ch, out_ch, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _padded_separable(padding_type: str, in_ch: int, out_ch: int, norm: str) -> list[nn.Module]:
    pad, conv_pad = PADDINGS.get(padding_type)(1)
    conv = SeparableConv2d(in_ch, out_ch, 3, conv_pad, norm)
    return [conv] if pad is None else [pad, conv]


class MobileResnetBlock(nn.Module):
    """``x + F(x)`` with F = separable conv (dim -> hidden), norm, ReLU, [dropout], separable conv (hidden -> dim),
    norm: the ResnetBlock with depthwise-separable convolutions, ``hidden`` channels between them."""

    def __init__(self, dim: int, hidden: int, norm: str, dropout: bool, padding_type: str) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_padded_separable(padding_type, dim, hidden, norm), norm_layer(norm, hidden),
                                   nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [*_padded_separable(padding_type, hidden, dim, norm), norm_layer(norm, dim)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _positive_ints(values: Sequence[int], what: str, length: int | None) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise UserError(f"MobileResnetGenerator {what} must be a list of integers, got {values!r}")
    if length is not None and len(values) != length:
        raise UserError(f"MobileResnetGenerator {what} must have {length} entries, got {len(values)}: {list(values)}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise UserError(f"MobileResnetGenerator {what} must be positive integers, got {list(values)}")
    return tuple(values)


class MobileResnetGenerator(EncoderFeatureLayers, nn.Module):
    """GAN Compression's mobile ResNet: the ResnetGenerator with depthwise-separable residual blocks.

    Stem (reflect pad 3, 7x7 conv, norm, ReLU), two stride-2 3x3 convs, ``n_blocks`` :class:`MobileResnetBlock`,
    two stride-2 3x3 transposed convs, reflect pad 3, 7x7 conv, tanh; (N, in, H, W) -> (N, out, H, W) in [-1, 1],
    H and W multiples of ``size_multiple`` (4) and at least ``min_size`` (8).

    Widths are given per stage, ``channels = [stem, down1, down2, blocks, up1, up2]``, not as ngf times a
    multiplier: the students a search finds are not uniform scalings (GAN Compression's horse2zebra student is
    16, 32, 128 | 64 or 128 | 32, 16: GENERATORS "mobile_resnet_h2z"), and a distillation needs to state the exact
    widths its adapters map. ``down2`` is the residual trunk's width (the skips add to it); ``blocks`` is the width
    inside every block (between its two separable convs), unless ``block_channels`` gives one per block. The
    defaults are the h2z student's stages with all blocks 128 wide inside.
    :meth:`features` reads the encoder at the same kind of layer indices as ResnetGenerator's (CUT's choice).
    A model's one-number width option (``ngf``) does not apply to it (``takes_ngf``): its widths are ``channels``.
    """

    takes_ngf = False

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: Sequence[int] = H2Z_STUDENT_CHANNELS,
        block_channels: Sequence[int] | None = None,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
        padding_type: str = "reflect",
    ) -> None:
        super().__init__()
        in_channels, out_channels = _positive_ints([in_channels, out_channels], "in_channels / out_channels", 2)
        stem, down1, down2, hidden, up1, up2 = _positive_ints(channels, "channels (stem, down1, down2, blocks, up1, up2)", 6)
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 0:
            raise UserError(f"MobileResnetGenerator n_blocks must be an integer >= 0, got {n_blocks!r}")
        hiddens = (hidden,) * n_blocks if block_channels is None else _positive_ints(block_channels, "block_channels", n_blocks)
        PADDINGS.get(padding_type)  # an unknown name fails here, listing the valid ones
        self.size_multiple: int = 4
        self.min_size: int = 8  # as ResnetGenerator: 2x2 pixels in the trunk for its reflect pads and instance norm
        self.channels: tuple[int, ...] = (stem, down1, down2, hidden, up1, up2)
        self.block_channels: tuple[int, ...] = hiddens
        bias = uses_bias(norm)

        def conv_norm_relu(conv: nn.Module, ch: int) -> list[nn.Module]:
            return [conv, norm_layer(norm, ch), nn.ReLU(True)]

        layers: list[nn.Module] = [nn.ReflectionPad2d(3), *conv_norm_relu(nn.Conv2d(in_channels, stem, 7, bias=bias), stem)]
        for ch_in, ch_out in ((stem, down1), (down1, down2)):
            layers += conv_norm_relu(nn.Conv2d(ch_in, ch_out, 3, stride=2, padding=1, bias=bias), ch_out)
        first_block = len(layers)
        layers += [MobileResnetBlock(down2, h, norm, dropout, padding_type) for h in hiddens]
        #: Index of the first residual block, and of the first decoder layer, in ``model``.
        self.first_block, self.decoder_start = first_block, len(layers)
        for ch_in, ch_out in ((down2, up1), (up1, up2)):
            # output_padding=1: each stage exactly doubles the size, undoing the encoder
            up = nn.ConvTranspose2d(ch_in, ch_out, 3, stride=2, padding=1, output_padding=1, bias=bias)
            layers += conv_norm_relu(up, ch_out)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(up2, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_spatial_multiple(x, self.size_multiple, type(self).__name__)
        return self.model(x)
