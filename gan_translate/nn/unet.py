"""The U-Net generator of pix2pix (Isola et al. 2017), written as explicit encoder/decoder lists."""

from __future__ import annotations

import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn.layers import check_spatial_multiple, norm_layer, uses_bias

__all__ = ["UnetGenerator"]


class UnetGenerator(nn.Module):
    """Encoder of ``num_downs`` stride-2 4x4 convs, mirrored decoder, skips that concatenate, tanh.

    Same layers and parameters as the classic recursive ``UnetSkipConnectionBlock`` network; level
    ``i`` of the encoder has ``ngf * min(2**i, 8)`` channels. With ``dropout`` the decoder blocks
    of the ``ngf*8 -> ngf*8`` levels between the innermost one and the four outer ones get
    Dropout(0.5) (``num_downs - 5`` of them: three for U-Net 256). Maps ``(N, in_channels, H, W)``
    to ``(N, out_channels, H, W)``; H and W must be multiples of ``size_multiple = 2**num_downs``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = True,
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise UserError(f"UnetGenerator num_downs must be >= 2, got {num_downs}")
        self.size_multiple: int = 2**num_downs
        bias = uses_bias(norm)
        ch = [ngf * min(2**i, 8) for i in range(num_downs)]  # encoder output channels per level

        # Encoder level i: Conv, Norm, LeakyReLU. The activation ends the block (rather than starting
        # the next one, as in the classic code) so that the skip carries the activated features: that
        # is what the classic network computes too, through its in-place LeakyReLU on the block input.
        # The first level has no norm (it sees the raw image) and the innermost none either: at 1x1
        # with batch 1 a norm would zero the bottleneck.
        downs: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(in_channels, ch[0], 4, 2, 1, bias=bias), nn.LeakyReLU(0.2, True))
        ]
        for i in range(1, num_downs - 1):
            downs.append(
                nn.Sequential(
                    nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=bias),
                    norm_layer(norm, ch[i]),
                    nn.LeakyReLU(0.2, True),
                )
            )
        downs.append(nn.Sequential(nn.Conv2d(ch[-2], ch[-1], 4, 2, 1, bias=bias)))
        self.downs = nn.ModuleList(downs)

        # Decoder, innermost first. Every block but the innermost one reads [skip, upsampled] and
        # so has twice the channels of its encoder level.
        ups: list[nn.Module] = [
            nn.Sequential(
                nn.ReLU(True),
                nn.ConvTranspose2d(ch[-1], ch[-2], 4, 2, 1, bias=bias),
                norm_layer(norm, ch[-2]),
            )
        ]
        for i in range(num_downs - 2, 0, -1):
            block: list[nn.Module] = [
                nn.ReLU(True),
                nn.ConvTranspose2d(ch[i] * 2, ch[i - 1], 4, 2, 1, bias=bias),
                norm_layer(norm, ch[i - 1]),
            ]
            if dropout and i >= 4:  # the ngf*8 -> ngf*8 levels below the four outer ones
                block.append(nn.Dropout(0.5))
            ups.append(nn.Sequential(*block))
        # The output layer has no norm after it, so it always keeps its bias.
        ups.append(nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(ch[0] * 2, out_channels, 4, 2, 1), nn.Tanh()))
        self.ups = nn.ModuleList(ups)

    def distillation_stages(self) -> list[nn.Module]:
        """The layers whose outputs are this network's successive stages, innermost first: every decoder level but the
        output layer (the encoder's are modified in place by the decoder's first ReLU, so a copy would be needed). A
        distillation matches a student's and a teacher's stages by their relative place."""
        return list(self.ups[:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_spatial_multiple(x, self.size_multiple, type(self).__name__)
        skips: list[torch.Tensor] = []
        h = x
        for down in self.downs[:-1]:
            h = down(h)
            skips.append(h)
        h = self.downs[-1](h)
        for up in self.ups[:-1]:
            h = torch.cat([skips.pop(), up(h)], dim=1)  # skip first, as in the classic network
        return self.ups[-1](h)
