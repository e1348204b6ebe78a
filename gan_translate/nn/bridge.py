"""The time- and latent-conditioned networks of UNSB (Kim, Kwon, Kim, Ye, "Unpaired Image-to-Image Translation via
Neural Schrödinger Bridge", ICLR 2024): a ResNet generator ``q(x_1 | x_t, t, z)`` and a PatchGAN discriminator of
``(x_t, t)`` (also UNSB's energy network E, which scores a pair of ``(x_t, x_1)`` pairs).

The step ``t`` is an integer index into the bridge's time grid, given to the networks as a sinusoidal embedding
(:func:`timestep_embedding`) through a small MLP; the generator's latent ``z`` goes through a StyleGAN-like mapping
network into a per-block affine modulation (as in DDGAN, which UNSB's networks descend from).

Where this departs from the reference code (``models/ncsn_networks.py``), on purpose:

- The reference's conditioned residual block loops ``out = layer(x)`` over its first conv block, so every layer sees
  the block's input: its first convolution and its time input are dead code, and its generator ignores the step
  altogether. Here the layers are chained, as evidently meant.
- The step is added *after* each normalisation, not before it. Adding a per-channel constant in front of an instance
  norm does nothing (the norm subtracts each channel's mean), so with the reference's default ``norm="instance"`` a
  time input placed there is erased in every normalised layer: in the generator all of them, in the discriminator
  all blocks but the first. After the norm it conditions every block, whatever the norm.
- The reference also builds one unused ``Linear(z_dim, 2 * dim)`` per generator block (``ResnetBlock_cond.style``);
  it is left out (the parameter count is the reference's minus those).
- The reference's ``init_weights`` runs after its constructor and so resets the adaptive layers' gamma bias from 1
  to 0 (every block starts with its first branch scaled to ~0); here the special biases are set after the init.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn.antialias import BlurDownsample
from gan_translate.nn.layers import check_spatial_multiple, init_weights, norm_layer, uses_bias
from gan_translate.nn.resnet import PADDINGS, EncoderFeatureLayers, ResnetGenerator, _padded_conv

__all__ = [
    "AdaptiveAffine",
    "PixelNorm",
    "TimeConditionedConvBlock",
    "TimeConditionedPatchDiscriminator",
    "TimeConditionedResnetBlock",
    "TimeConditionedResnetGenerator",
    "TimestepMLP",
    "timestep_embedding",
]


def timestep_embedding(steps: torch.Tensor, dim: int, max_positions: int = 10000) -> torch.Tensor:
    """The sinusoidal embedding ``(N, dim)`` of the step indices ``steps`` ``(N,)`` (DDPM / NCSN++'s, as UNSB uses it).

    The first ``dim // 2`` columns are ``sin(step * f_i)``, the next ``dim // 2`` ``cos(step * f_i)``, with
    ``f_i = exp(-log(max_positions) * i / (dim // 2 - 1))`` (so from 1 down to ``1 / max_positions``); an odd ``dim``
    gets a last column of zeros. Always float32, on the device of ``steps``.
    """
    if steps.dim() != 1:
        raise UserError(f"timestep_embedding takes a 1-D tensor of steps, got shape {tuple(steps.shape)}")
    half = dim // 2
    if half < 2:  # the frequencies divide by half - 1
        raise UserError(f"timestep_embedding needs dim >= 4, got {dim}")
    exponent = torch.arange(half, dtype=torch.float32, device=steps.device) * (-math.log(max_positions) / (half - 1))
    angles = steps.float()[:, None] * torch.exp(exponent)[None, :]
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(embedding, (0, dim % 2))


def _broadcast_steps(step: torch.Tensor, batch: int, network: str) -> torch.Tensor:
    """``step`` as ``(batch,)``: one step per image, or one step (``()`` or ``(1,)``) shared by the whole batch (UNSB
    trains each batch at a single step)."""
    if step.dim() == 0 or step.shape == (1,):
        return step.reshape(1).expand(batch)
    if step.shape != (batch,):
        raise UserError(f"{network} needs one step per image, shape ({batch},) or (1,), got {tuple(step.shape)}")
    return step


class TimestepMLP(nn.Module):
    """Step indices ``(N,)`` -> sinusoidal embedding of ``embedding_dim`` -> two ``Linear + LeakyReLU(0.2)`` of
    width ``out_dim``: the time input every conditioned block reads through a ``Linear`` of its own."""

    def __init__(self, embedding_dim: int, out_dim: int) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.net = nn.Sequential(
            nn.Linear(embedding_dim, out_dim), nn.LeakyReLU(0.2), nn.Linear(out_dim, out_dim), nn.LeakyReLU(0.2)
        )

    def forward(self, step: torch.Tensor) -> torch.Tensor:
        # The embedding is float32; cast to the weights so a network converted to half / bf16 still runs.
        return self.net(timestep_embedding(step, self.embedding_dim).to(self.net[0].weight.dtype))


class PixelNorm(nn.Module):
    """Scale each latent vector to unit root-mean-square (StyleGAN's normalisation of z before the mapping)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class AdaptiveAffine(nn.Module):
    """``gamma(w) * x + beta(w)`` per channel, with ``(gamma, beta)`` a linear function of the mapped latent ``w``.

    :meth:`reset_bias` starts it at the identity (gamma's bias 1, beta's 0); the network calls it after the
    generic init, which would set both biases to 0.
    """

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.linear = nn.Linear(latent_dim, 2 * channels)
        self.reset_bias()

    @torch.no_grad()
    def reset_bias(self) -> None:
        """Gamma's bias to 1, beta's to 0: the layer starts as (nearly) the identity."""
        self.linear.bias[: self.channels] = 1.0
        self.linear.bias[self.channels :] = 0.0

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.linear(w)[:, :, None, None].chunk(2, dim=1)
        return gamma * x + beta


class TimeConditionedResnetBlock(nn.Module):
    """A :class:`~gan_translate.nn.resnet.ResnetBlock` conditioned on a step and a latent:
    ``x + norm(conv(pad(drop(relu(affine_w(norm(conv(pad(x))) + dense(t)))))))``."""

    def __init__(self, dim: int, norm: str, dropout: bool, padding_type: str, time_dim: int, latent_dim: int) -> None:
        super().__init__()
        bias = uses_bias(norm)
        self.conv1 = nn.Sequential(*_padded_conv(padding_type, dim, dim, 3, bias))
        self.norm1 = norm_layer(norm, dim)
        self.time = nn.Linear(time_dim, dim)
        self.affine = AdaptiveAffine(latent_dim, dim)
        rest: list[nn.Module] = [nn.ReLU(True)]
        if dropout:
            rest.append(nn.Dropout(0.5))
        rest += [*_padded_conv(padding_type, dim, dim, 3, bias), norm_layer(norm, dim)]
        self.rest = nn.Sequential(*rest)

    def forward(self, x: torch.Tensor, time: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # The step after the norm: in front of an instance norm a per-channel constant would be subtracted away.
        h = self.norm1(self.conv1(x)) + self.time(time)[:, :, None, None]
        return x + self.rest(self.affine(h, w))


class TimeConditionedResnetGenerator(EncoderFeatureLayers, nn.Module):
    """UNSB's generator: :class:`~gan_translate.nn.resnet.ResnetGenerator` with its residual blocks conditioned on a
    step and a latent ``z`` (``latent_dim = 4 * ngf`` values, N(0, 1) in UNSB).

    The stem, the downsampling and the decoder are ``ResnetGenerator``'s own layers, in the same places of ``model``,
    so encoder layer indices mean the same: CUT's PatchNCE layers 0, 4, 8, 12, 16 of the antialiased ResNet-9 are the
    padded input, the two downsampling convolutions and the first and fifth residual blocks here too.
    ``forward(x, step, z)`` maps ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)`` in [-1, 1]; H and W must be
    multiples of ``size_multiple`` and at least ``min_size``.

    Args:
        mapping_layers: ``Linear + LeakyReLU`` layers of the latent mapping after its first (UNSB's ``n_mlp``: 3).
        init_type, init_gain: the classic init (:func:`~gan_translate.nn.layers.init_weights`), applied by
            :meth:`initialize`; call that, not ``init_weights``, to re-initialise (it keeps the affine biases).
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
        antialias: bool = True,
        mapping_layers: int = 3,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if n_blocks < 0:
            raise UserError(f"{name} n_blocks must be >= 0, got {n_blocks}")
        if n_downsampling < 0:
            raise UserError(f"{name} n_downsampling must be >= 0, got {n_downsampling}")
        if mapping_layers < 0:
            raise UserError(f"{name} mapping_layers must be >= 0, got {mapping_layers}")
        if ngf < 4:
            raise UserError(f"{name} ngf must be >= 4 (the width of its step embedding), got {ngf}")
        PADDINGS.get(padding_type)
        # An unconditioned ResNet without residual blocks is exactly the stem, the downsampling and the decoder:
        # borrowing its layers keeps their layout (and so the feature layer indices) identical by construction.
        shell = ResnetGenerator(in_channels, out_channels, ngf, 0, norm, dropout, padding_type, n_downsampling, antialias)
        self.size_multiple: int = shell.size_multiple
        self.min_size: int = shell.min_size
        #: Size of the latent ``z`` that ``forward`` takes (UNSB: 4 * ngf).
        self.latent_dim: int = 4 * ngf
        self.time_embedding = TimestepMLP(ngf, 4 * ngf)
        mapping: list[nn.Module] = [PixelNorm()]
        for _ in range(1 + mapping_layers):
            mapping += [nn.Linear(self.latent_dim, self.latent_dim), nn.LeakyReLU(0.2)]
        self.mapping = nn.Sequential(*mapping)

        dim = ngf * 2**n_downsampling
        layers = list(shell.model)
        blocks = [
            TimeConditionedResnetBlock(dim, norm, dropout, padding_type, 4 * ngf, self.latent_dim) for _ in range(n_blocks)
        ]
        #: Index of the first residual block, and of the first decoder layer, in ``model``.
        self.first_block, self.decoder_start = shell.first_block, shell.first_block + n_blocks
        # A ModuleList, not a Sequential: the blocks take the step and the latent too (see _run).
        self.model = nn.ModuleList([*layers[: shell.first_block], *blocks, *layers[shell.first_block :]])
        self.initialize(init_type, init_gain)

    def initialize(self, init_type: str = "normal", gain: float = 0.02) -> None:
        """The classic init of every convolution and linear layer (zero biases), then the adaptive layers back to
        the identity (gamma's bias 1)."""
        init_weights(self, init_type, gain)
        for module in self.modules():
            if isinstance(module, AdaptiveAffine):
                module.reset_bias()

    def forward(self, x: torch.Tensor, step: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The image for ``x`` at ``step`` (``(N,)`` integer indices, or one shared step) with latent ``z`` ``(N, latent_dim)``."""
        return self._run(x, step, z, None, stop_early=False)[0]

    # --- the encoder's features (PatchNCE): the layer choice is EncoderFeatureLayers', as ResnetGenerator's ---
    def features(self, x: torch.Tensor, layers: Sequence[int], step: torch.Tensor, z: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each of ``layers`` (encoder indices into ``model``), in that order; the network runs
        only as far as the last of them."""
        return self._run(x, step, z, layers, stop_early=True)[1]

    def forward_with_features(
        self, x: torch.Tensor, layers: Sequence[int], step: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The output and the activations after ``layers``, from one pass (the activations are those of ``forward``)."""
        return self._run(x, step, z, layers, stop_early=False)

    def _run(
        self, x: torch.Tensor, step: torch.Tensor, z: torch.Tensor, layers: Sequence[int] | None, stop_early: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        name = type(self).__name__
        check_spatial_multiple(x, self.size_multiple, name)
        order = [] if layers is None else self.check_feature_layers(layers)
        wanted = set(order)
        if z.shape != (x.shape[0], self.latent_dim):
            raise UserError(f"{name} needs a latent of shape ({x.shape[0]}, {self.latent_dim}), got {tuple(z.shape)}")
        time = self.time_embedding(_broadcast_steps(step, x.shape[0], name))
        w = self.mapping(z)
        found: dict[int, torch.Tensor] = {}
        for index, layer in enumerate(self.model[: max(wanted) + 1] if stop_early else self.model):
            x = layer(x, time, w) if isinstance(layer, TimeConditionedResnetBlock) else layer(x)
            if index in wanted:
                found[index] = x
        return x, [found[i] for i in order]


class TimeConditionedConvBlock(nn.Module):
    """A discriminator block: 4x4 convolution, [norm], ``+ dense(t)``, LeakyReLU(0.2), [downsampling].

    With ``antialias`` the convolution has stride 1 and a blurred subsampling halves the size (UNSB's layout);
    without, the convolution itself has stride 2 (the classic PatchGAN's)."""

    def __init__(self, in_ch: int, out_ch: int, time_dim: int, norm: str | None, downsample: bool, antialias: bool) -> None:
        super().__init__()
        stride = 2 if downsample and not antialias else 1
        # No norm after the first block's conv, so it keeps its bias whatever the others do.
        self.conv = nn.Conv2d(in_ch, out_ch, 4, stride, 1, bias=True if norm is None else uses_bias(norm))
        self.norm = nn.Identity() if norm is None else norm_layer(norm, out_ch)
        self.time = nn.Linear(time_dim, out_ch)
        self.act = nn.LeakyReLU(0.2, True)
        self.down = BlurDownsample(out_ch) if downsample and antialias else nn.Identity()

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        # The step after the norm, as in the generator (an instance norm would cancel it before).
        return self.down(self.act(self.norm(self.conv(x)) + self.time(time)[:, :, None, None]))


class TimeConditionedPatchDiscriminator(nn.Module):
    """UNSB's discriminator (and, with ``in_channels = 4 * image channels``, its energy network E): the PatchGAN of
    :class:`~gan_translate.nn.patchgan.PatchDiscriminator` (channels ndf, 2ndf, ... capped at 8ndf, ``n_layers + 1``
    blocks, a final 1-channel 4x4 conv) with every block conditioned on the step.

    ``forward(x, step, x2=None)`` returns a logit map ``(N, 1, h, w)`` (2x2 for 32x32 with ``n_layers=3``, 30x30 for
    256x256); ``x2``, when given, is concatenated to ``x`` on the channels first (E scores ``(x_t, x_1)`` against
    another pair).
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        antialias: bool = True,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise UserError(f"{type(self).__name__} n_layers must be >= 1, got {n_layers}")
        if ndf < 1:
            raise UserError(f"{type(self).__name__} ndf must be >= 1, got {ndf}")
        self.in_channels = in_channels
        time_dim = 4 * ndf
        self.time_embedding = TimestepMLP(time_dim, time_dim)
        # No norm on the first block: it would normalise away the input's own statistics (as in PatchGAN).
        blocks = [TimeConditionedConvBlock(in_channels, ndf, time_dim, None, True, antialias)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            blocks.append(TimeConditionedConvBlock(ndf * prev, ndf * mult, time_dim, norm, n < n_layers, antialias))
        self.blocks = nn.ModuleList(blocks)
        self.final = nn.Conv2d(ndf * mult, 1, 4, 1, 1)  # logits: no norm after it, keeps its bias
        self.initialize(init_type, init_gain)

    def initialize(self, init_type: str = "normal", gain: float = 0.02) -> None:
        """The classic init (nothing here needs a special bias; the method mirrors the generator's)."""
        init_weights(self, init_type, gain)

    def forward(self, x: torch.Tensor, step: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        """Patch logits of ``x`` (or of ``x`` and ``x2`` side by side on the channels) at ``step``."""
        if x2 is not None:
            x = torch.cat([x, x2], dim=1)
        name = type(self).__name__
        if x.shape[1] != self.in_channels:
            raise UserError(f"{name} takes {self.in_channels} input channels (x and x2 together), got {x.shape[1]}")
        time = self.time_embedding(_broadcast_steps(step, x.shape[0], name))
        for block in self.blocks:
            x = block(x, time)
        return self.final(x)
