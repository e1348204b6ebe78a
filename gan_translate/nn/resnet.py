"""The ResNet generator of CycleGAN (Johnson et al. 2016 as used by Zhu et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.core.registry import Registry
from gan_translate.nn.antialias import BlurDownsample, BlurUpsample
from gan_translate.nn.layers import check_spatial_multiple, norm_layer, uses_bias

__all__ = ["PADDINGS", "EncoderFeatureLayers", "ResnetBlock", "ResnetGenerator"]

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


class EncoderFeatureLayers:
    """Where PatchNCE (CUT, UNSB) reads a ResNet generator's encoder: indices into its ``model`` up to the first
    decoder layer. The generator sets ``model`` (its layers in order: stem, downsampling, residual blocks, decoder),
    ``first_block``, ``decoder_start`` and ``size_multiple``; residual blocks keep their width. :meth:`features` and
    :meth:`forward_with_features` run ``model`` layer by layer (a generator whose blocks take more inputs, such as
    UNSB's time-conditioned one, overrides them)."""

    model: nn.Module
    first_block: int
    decoder_start: int
    size_multiple: int

    def default_feature_layers(self) -> list[int]:
        """CUT's choice of layers in this network: the (padded) input, every downsampling convolution, and the
        first and fifth residual blocks (the last one when there are fewer). In CUT's antialiased ResNet-9 these
        are its defaults, 0, 4, 8, 12 and 16."""
        convs = [i for i, layer in enumerate(self.model[: self.first_block]) if isinstance(layer, nn.Conv2d)][1:]
        blocks = list(range(self.first_block, self.decoder_start))
        chosen = [0, *convs, *([blocks[0], blocks[min(4, len(blocks) - 1)]] if blocks else [])]
        return list(dict.fromkeys(chosen))

    def check_feature_layers(self, layers: Sequence[int]) -> list[int]:
        """``layers`` as a list, or a UserError naming the encoder layers there are."""
        layers = [int(i) for i in layers]
        bad = [i for i in layers if not 0 <= i < self.decoder_start]
        if bad or not layers:
            raise UserError(
                f"feature layers must be encoder layers 0 to {self.decoder_start - 1} of this generator "
                f"(its residual blocks are {self.first_block} to {self.decoder_start - 1}), got {layers}"
            )
        return layers

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """The channels of :meth:`features` at ``layers`` (what the heads reading them take)."""
        at: dict[int, int] = {}
        current = self.model[1].in_channels  # layer 0 pads the input: its channels
        for index, layer in enumerate(self.model[: self.decoder_start]):
            if isinstance(layer, nn.Conv2d):
                current = layer.out_channels
            at[index] = current  # residual blocks keep their width
        return [at[i] for i in self.check_feature_layers(layers)]

    def distillation_stages(self) -> list[nn.Module]:
        """The layers whose outputs are this network's successive stages, input side first: the last encoder layer
        (the trunk's input) and every residual block. A distillation matches the stages of a student and a teacher of
        this family by their relative place (GAN Compression maps the ResNet-9's trunk input and blocks 3, 6 and 9)."""
        return [self.model[self.first_block - 1], *self.model[self.first_block:self.decoder_start]]

    def features(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """The activations after each of ``layers`` (indices into ``model``, encoder only), in that order; the
        network runs only as far as the last of them."""
        return self._run(x, layers, stop_early=True)[1]

    def forward_with_features(self, x: torch.Tensor, layers: Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The output and the activations after ``layers``, from one pass (the activations are those of ``forward``)."""
        return self._run(x, layers, stop_early=False)

    def _run(self, x: torch.Tensor, layers: Sequence[int], stop_early: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        check_spatial_multiple(x, self.size_multiple, type(self).__name__)
        wanted = set(self.check_feature_layers(layers))
        found: dict[int, torch.Tensor] = {}
        for index, layer in enumerate(self.model[: max(wanted) + 1] if stop_early else self.model):
            x = layer(x)
            if index in wanted:
                found[index] = x
        return x, [found[i] for i in layers]


class ResnetGenerator(EncoderFeatureLayers, nn.Module):
    """Encoder (7x7 conv, ``n_downsampling`` stride-2 convs), residual blocks, mirrored decoder, tanh.

    Maps ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)`` in [-1, 1]; H and W must be
    multiples of ``size_multiple`` (``2 ** n_downsampling``, 4 for the classic network) and at least
    ``min_size``. ``antialias`` resamples as CUT's generator does: a stride-1 convolution then a blurred
    subsampling down, a blurred upsampling then a convolution up (same parameters, more arithmetic).
    :meth:`features` returns intermediate activations of the encoder (CUT's PatchNCE reads them).
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
        antialias: bool = False,
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
            if antialias:
                layers += [nn.Conv2d(ch, ch * 2, 3, padding=1, bias=bias), norm_layer(norm, ch * 2), nn.ReLU(True),
                           BlurDownsample(ch * 2)]
            else:
                layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias), norm_layer(norm, ch * 2), nn.ReLU(True)]

        dim = ngf * 2**n_downsampling
        first_block = len(layers)
        layers += [ResnetBlock(dim, norm, dropout, padding_type) for _ in range(n_blocks)]
        #: Index of the first residual block, and of the first decoder layer, in ``model``.
        self.first_block, self.decoder_start = first_block, len(layers)

        for i in range(n_downsampling, 0, -1):
            ch = ngf * 2**i
            if antialias:
                layers += [BlurUpsample(ch), nn.Conv2d(ch, ch // 2, 3, padding=1, bias=bias), norm_layer(norm, ch // 2),
                           nn.ReLU(True)]
            else:
                # output_padding=1 makes each stage exactly double the size (H/2 -> H), undoing the encoder.
                layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                           norm_layer(norm, ch // 2), nn.ReLU(True)]
        # The output conv has no norm after it, so it always keeps its bias.
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_spatial_multiple(x, self.size_multiple, type(self).__name__)
        return self.model(x)
