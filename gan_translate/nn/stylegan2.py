"""StyleGAN2 generator and discriminator (Karras et al., CVPR 2020, "Analyzing and Improving the Image
Quality of StyleGAN"), config F, as pure ``nn.Module``s.

The pieces, bottom up:

* :class:`EqualLinear` / :class:`EqualConv2d`: equalised learning rate. Weights are stored as N(0, 1) / lr_mul
  and scaled at run time by lr_mul / sqrt(fan_in), so every layer sees the same effective step size under Adam
  (whose updates are scale-free) whatever its fan-in; the mapping network uses lr_mul = 0.01.
* :class:`MappingNetwork`: z -> w, pixel norm then 8 leaky-ReLU layers; ``w_avg`` for the truncation trick.
* :class:`ModulatedConv2d`: the paper's weight (de)modulation, replacing AdaIN, as one grouped convolution.
* :class:`NoiseInjection`, :class:`StyleLayer`, :class:`ToRGB`, :class:`SynthesisNetwork`: the skip
  generator (a learned 4x4 constant, two style layers and an RGB output per resolution, RGBs upsampled and summed).
* :class:`StyleGAN2Generator`: mapping + synthesis, truncation, style mixing.
* :class:`StyleGAN2Discriminator`: the residual discriminator with a minibatch standard deviation layer.

Resampling (a simplification of the official ``upfirdn2d`` kernels, chosen to need no custom ops):

* Up (generator): ``F.interpolate(scale_factor=2, mode="bilinear", align_corners=False)`` before the 3x3
  modulated conv, and for the RGB skip. 2x bilinear with half-pixel centres *is* the official separable
  [1, 3, 3, 1] filter (weights 3/4 and 1/4 per axis); only the border differs (edge replication here,
  zero padding there). The official layer instead runs a transposed conv and blurs after it; upsampling first
  costs 4x the multiply-adds of the conv at the lower resolution, which is irrelevant at the sizes tested here
  and simpler to read.
* Down (discriminator): as the official code, a normalised [1, 3, 3, 1] x [1, 3, 3, 1] blur then a stride-2
  conv (3x3 convs: pad 2, blur, valid stride-2 conv; the 1x1 skip: blur with stride 2 and pad 1, then 1x1).

Initialisation is part of the method (N(0, 1) weights, zero biases, style biases 1): never apply the classic
``init_weights`` N(0, 0.02) to these networks (the builders in ``gan_translate.nn`` skip it, see
``classic_init``). There is no ``tanh`` on the generator's output, as in StyleGAN2: images are roughly in
[-1, 1] and are clamped where they are turned into pictures.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gan_translate.core.errors import UserError

__all__ = [
    "STYLEGAN2_RESOLUTIONS",
    "NOISE_MODES",
    "EqualLinear",
    "EqualConv2d",
    "MappingNetwork",
    "ModulatedConv2d",
    "NoiseInjection",
    "StyleLayer",
    "ToRGB",
    "SynthesisNetwork",
    "StyleGAN2Generator",
    "MinibatchStdDev",
    "Blur",
    "DiscriminatorBlock",
    "StyleGAN2Discriminator",
    "stylegan2_channels",
]

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


# ----------------------------------------------------------------------------- mapping network

def _normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixel norm of z: divide by the root mean square over features, so z lies near a sphere of radius
    sqrt(z_dim) whatever its scale."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then ``n_layers`` :class:`EqualLinear` + leaky ReLU layers (lr_mul 0.01).

    ``w_avg`` (a buffer, so it is saved and moved with the module but never optimised) is the centre of the
    truncation trick. It is *not* updated in ``forward``: the training step calls :meth:`update_w_avg` on
    the w it generated, so inference and evaluation passes never move it.
    """

    def __init__(self, z_dim: int = 512, w_dim: int = 512, n_layers: int = 8, lr_mul: float = 0.01) -> None:
        super().__init__()
        if n_layers < 1:
            raise UserError(f"the mapping network needs at least one layer, got n_layers={n_layers}")
        self.z_dim = z_dim
        self.w_dim = w_dim
        features = [z_dim] + [w_dim] * n_layers
        self.layers = nn.Sequential(
            *(EqualLinear(f_in, f_out, lr_mul=lr_mul, activation="lrelu") for f_in, f_out in zip(features[:-1], features[1:]))
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg: torch.Tensor

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"MappingNetwork expects z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.layers(_normalize_2nd_moment(z))

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor, beta: float = 0.995) -> None:
        """Move ``w_avg`` towards the batch mean of ``w``: ``w_avg = beta * w_avg + (1 - beta) * mean(w)``.

        ``w`` is ``(N, w_dim)`` or per-layer ``(N, n_styles, w_dim)`` (all its vectors are averaged).
        """
        if w.shape[-1] != self.w_dim:
            raise ValueError(f"update_w_avg expects w with {self.w_dim} features, got {tuple(w.shape)}")
        mean = w.detach().reshape(-1, self.w_dim).mean(0).to(self.w_avg.dtype)
        self.w_avg.copy_(mean.lerp(self.w_avg, beta))

    def truncate(self, w: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """The truncation trick: ``w_avg + psi * (w - w_avg)``.

        psi = 1 returns ``w`` unchanged, psi = 0 the average w (the "mean face"). ``w`` is ``(N, w_dim)``
        (every layer then gets the same truncated w) or per-layer ``(N, n_styles, w_dim)``; with ``cutoff`` only
        the first ``cutoff`` style layers (the coarse ones) are truncated, which needs the per-layer form.
        """
        if cutoff is not None and w.dim() != 3:
            raise UserError("truncation_cutoff needs per-layer w of shape (N, n_styles, w_dim); "
                            f"got {tuple(w.shape)} (use StyleGAN2Generator.broadcast)")
        truncated = self.w_avg.to(w.dtype).lerp(w, psi)
        if cutoff is None:
            return truncated
        if cutoff < 0:
            raise UserError(f"truncation_cutoff must be >= 0, got {cutoff}")
        layer = torch.arange(w.shape[1], device=w.device)[None, :, None]
        return torch.where(layer < cutoff, truncated, w)


# ----------------------------------------------------------------------------- synthesis network

def _upsample2x(x: torch.Tensor) -> torch.Tensor:
    # Bilinear with half-pixel centres = the [1, 3, 3, 1] filter of the paper (see the module docstring).
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ModulatedConv2d(nn.Module):
    """The StyleGAN2 convolution: the style scales the weights instead of the activations.

    For each sample, the style ``s = A(w)`` (an :class:`EqualLinear` w -> in_channels with bias 1, so an
    untrained layer starts near plain convolution) scales the input channels of the weight:
    ``w'_ijk = s_i * w_ijk``. With ``demodulate`` each output channel's weights are then divided by
    ``sqrt(sum_ik w'_ijk ** 2 + 1e-8)``: for inputs of unit variance the outputs have unit variance again,
    which replaces AdaIN's normalisation of the activations (the paper's fix for the "droplet" artefacts).
    Per-sample weights are applied as one grouped convolution, the batch folded into the groups.

    With ``up`` the input is first upsampled 2x (bilinear = the [1, 3, 3, 1] filter; see the module docstring).
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

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, wd = x.shape
        styles = self.affine(w)  # (N, in)
        weight = self.weight[None] * self.weight_gain * styles[:, None, :, None, None]  # (N, out, in, k, k)
        if self.demodulate:
            dcoefs = (weight.square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt()  # (N, out)
            weight = weight * dcoefs[:, :, None, None, None]
        if self.up:
            x = _upsample2x(x)
            h, wd = 2 * h, 2 * wd
        weight = weight.reshape(n * self.out_channels, c, self.kernel_size, self.kernel_size).to(x.dtype)
        y = F.conv2d(x.reshape(1, n * c, h, wd), weight, padding=self.kernel_size // 2, groups=n)
        return y.reshape(n, self.out_channels, h, wd)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"demodulate={self.demodulate}, up={self.up}")


class NoiseInjection(nn.Module):
    """Adds per-pixel N(0, 1) noise (one map per sample, shared by the channels) times a learned per-channel
    scale that starts at 0, so the network decides how much stochastic detail each feature gets.

    ``noise_mode``: "random" draws fresh noise every call, "const" uses ``noise_const`` (a buffer drawn once
    per layer and saved with the weights: deterministic generation, progress grids), "none" adds nothing.
    A ``noise`` tensor, when given, is used whatever the mode (broadcast against ``(N, 1, H, W)``).
    Note: the official StyleGAN2 learns one scale per layer; this per-channel scale (as StyleGAN 1) adds
    ``channels - 1`` parameters per layer.
    """

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        self.noise_const: torch.Tensor

    def forward(self, x: torch.Tensor, noise_mode: str = "random", noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            _check_noise_mode(noise_mode)
            if noise_mode == "none":
                return x
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
            else:
                if self.noise_const.shape[-2:] != x.shape[-2:]:
                    raise ValueError(f"constant noise is {tuple(self.noise_const.shape[-2:])}, the features "
                                     f"{tuple(x.shape[-2:])}")
                noise = self.noise_const.to(x.dtype)
        return x + self.weight.to(x.dtype)[None, :, None, None] * noise


class StyleLayer(nn.Module):
    """One generator layer: modulated conv (optionally 2x up), noise, bias, leaky ReLU (gain sqrt(2)).

    As in the paper, the bias and noise are added after the (de)modulated convolution, outside the
    style's reach, so that their relative effect does not depend on the current style's magnitude.
    """

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3, up: bool = False
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, w_dim, demodulate=True, up=up)
        self.noise = NoiseInjection(out_channels, resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.noise(self.conv(x, w), noise_mode, noise)
        return _activate(x + self.bias.to(x.dtype)[None, :, None, None], "lrelu")


class ToRGB(nn.Module):
    """Features -> image at one resolution: a modulated 1x1 conv *without* demodulation (the output is an
    image, not features whose scale the next layer expects) plus a bias, no activation.

    With ``skip`` (the previous resolution's image) the result is added to ``skip`` upsampled 2x: the output
    is the sum of every resolution's contribution, the paper's skip generator.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]
        if skip is not None:
            y = y + _upsample2x(skip)
        return y


class _SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (up-)style layer(s) and a ToRGB.

    The 4x4 block has one style layer on the learned constant; every later one has two, the first
    upsampling. Its ToRGB takes the w of the *next* block's first layer, as in the official code (which is
    why there are 2 * log2(res) - 2 ws, not one per layer plus one per RGB).
    """

    def __init__(self, in_channels: int, out_channels: int, resolution: int, w_dim: int, image_channels: int) -> None:
        super().__init__()
        self.resolution = resolution
        layers = [] if resolution == 4 else [StyleLayer(in_channels, out_channels, w_dim, resolution, up=True)]
        layers.append(StyleLayer(out_channels, out_channels, w_dim, resolution))
        self.layers = nn.ModuleList(layers)
        self.torgb = ToRGB(out_channels, image_channels, w_dim)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def forward(
        self, x: torch.Tensor, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise_mode)
        return x, self.torgb(x, ws[:, len(self.layers)], img)


class SynthesisNetwork(nn.Module):
    """ws -> image: a learned 4x4 constant, per resolution two :class:`StyleLayer` (the first with 2x up after
    4x4) and a :class:`ToRGB`, the images of all resolutions upsampled and summed (the skip architecture).

    ``channels`` maps each resolution 4 ... ``resolution`` to its feature channels; without it they come from
    ``channel_base`` / ``channel_max`` (:func:`stylegan2_channels`). Takes ws of shape ``(N, n_styles, w_dim)``:
    layer i uses ws[:, i], so different ws per layer (style mixing) are just a different tensor.
    """

    def __init__(
        self,
        resolution: int,
        w_dim: int = 512,
        channels: dict[int, int] | None = None,
        channel_base: int = 32768,
        channel_max: int = 512,
        out_channels: int = 3,
    ) -> None:
        super().__init__()
        log2 = _check_resolution(resolution, type(self).__name__)
        resolutions = [2**i for i in range(2, log2 + 1)]
        if channels is None:
            channels = stylegan2_channels(resolution, channel_base, channel_max)
        missing = [r for r in resolutions if r not in channels]
        if missing:
            raise UserError(f"channels has no entry for resolution(s) {', '.join(map(str, missing))}")
        self.resolution = resolution
        self.w_dim = w_dim
        self.out_channels = out_channels
        self.channels = {r: int(channels[r]) for r in resolutions}
        self.const = nn.Parameter(torch.randn(self.channels[4], 4, 4))
        self.blocks = nn.ModuleList(
            _SynthesisBlock(self.channels[max(r // 2, 4)], self.channels[r], r, w_dim, out_channels) for r in resolutions
        )

    @property
    def n_styles(self) -> int:
        """How many w vectors a forward pass takes: 2 * log2(resolution) - 2 (18 at 1024 px)."""
        return 2 * (self.resolution.bit_length() - 1) - 2

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if ws.dim() != 3 or ws.shape[1:] != (self.n_styles, self.w_dim):
            raise ValueError(f"SynthesisNetwork expects ws of shape (N, {self.n_styles}, {self.w_dim}), "
                             f"got {tuple(ws.shape)}")
        _check_noise_mode(noise_mode)
        x = self.const[None].expand(ws.shape[0], -1, -1, -1).to(ws.dtype)
        img: torch.Tensor | None = None
        w_idx = 0
        for block in self.blocks:
            # n_layers + 1 ws: the block's layers, then its ToRGB sharing the next block's first w.
            x, img = block(x, img, ws[:, w_idx:w_idx + block.n_layers + 1], noise_mode)
            w_idx += block.n_layers
        assert img is not None
        return img


class StyleGAN2Generator(nn.Module):
    """z -> image: :class:`MappingNetwork` (z -> w) then :class:`SynthesisNetwork` (ws -> image), config F.

    ``forward(z)`` returns ``(N, out_channels, resolution, resolution)`` images in roughly [-1, 1] (no tanh,
    as in StyleGAN2). Channels per resolution are ``min(channel_base // res, channel_max)``; the defaults are
    the paper's config F (512 up to 64 px, then halving down to 32 at 1024 px).

    ``size_multiple = 1`` and ``latent_dim = z_dim`` make it look like the other latent -> image generators
    (DCGAN) to the code that samples them.
    """

    #: Equalised learning rate needs N(0, 1) weights: the builders must not re-initialise them.
    classic_init = False

    def __init__(
        self,
        resolution: int = 256,
        z_dim: int = 512,
        w_dim: int = 512,
        mapping_layers: int = 8,
        channel_base: int = 32768,
        channel_max: int = 512,
        out_channels: int = 3,
    ) -> None:
        super().__init__()
        _check_resolution(resolution, type(self).__name__)
        self.resolution = resolution
        self.image_size = resolution
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.latent_dim = z_dim
        self.out_channels = out_channels
        # The input is a latent vector, so there is no spatial constraint on it.
        self.size_multiple: int = 1
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers)
        self.synthesis = SynthesisNetwork(
            resolution, w_dim, channel_base=channel_base, channel_max=channel_max, out_channels=out_channels
        )

    @property
    def n_styles(self) -> int:
        """Number of w inputs of the synthesis network (2 * log2(resolution) - 2)."""
        return self.synthesis.n_styles

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """``(N, w_dim)`` -> ``(N, n_styles, w_dim)``: the same w for every layer (a new tensor, not a view)."""
        if w.dim() != 2 or w.shape[1] != self.w_dim:
            raise ValueError(f"broadcast expects w of shape (N, {self.w_dim}), got {tuple(w.shape)}")
        return w[:, None, :].repeat(1, self.n_styles, 1)

    def _per_layer(self, w: torch.Tensor) -> torch.Tensor:
        return self.broadcast(w) if w.dim() == 2 else w

    def mix_styles(self, w1: torch.Tensor, w2: torch.Tensor, crossover: int) -> torch.Tensor:
        """Style mixing: ws whose layers ``< crossover`` come from ``w1`` and ``>= crossover`` from ``w2``.

        ``w1`` / ``w2`` are ``(N, w_dim)`` or per-layer ``(N, n_styles, w_dim)``. ``crossover`` is in
        [0, n_styles]: 0 is all w2, n_styles all w1; small values give w2's fine styles (colours, texture) on
        w1's coarse ones (pose, shape). Used by the mixing regularisation in training (a random crossover for a
        share of the batch) and for mixing grids.
        """
        if not 0 <= crossover <= self.n_styles:
            raise UserError(f"crossover must be in [0, {self.n_styles}], got {crossover}")
        ws1, ws2 = self._per_layer(w1), self._per_layer(w2)
        layer = torch.arange(self.n_styles, device=ws1.device)[None, :, None]
        return torch.where(layer < crossover, ws1, ws2)

    def forward(
        self,
        z: torch.Tensor,
        psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        return_ws: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Images for latents ``z`` (``(N, z_dim)`` or ``(N, z_dim, 1, 1)``).

        ``psi`` / ``truncation_cutoff``: the truncation trick (:meth:`MappingNetwork.truncate`; psi = 1 is off).
        ``noise_mode``: "random", "const" or "none" (:class:`NoiseInjection`). With ``return_ws`` also
        returns the (truncated) ws, e.g. for the path length regulariser.
        """
        if z.dim() == 4 and z.shape[2:] == (1, 1):
            z = z.flatten(1)
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"StyleGAN2Generator expects latents of shape (N, {self.z_dim}) or "
                             f"(N, {self.z_dim}, 1, 1), got {tuple(z.shape)}")
        ws = self.broadcast(self.mapping(z))
        if psi != 1 or truncation_cutoff is not None:
            ws = self.mapping.truncate(ws, psi, truncation_cutoff)
        img = self.synthesis(ws, noise_mode)
        return (img, ws) if return_ws else img


# ----------------------------------------------------------------------------- discriminator

class Blur(nn.Module):
    """The normalised [1, 3, 3, 1] x [1, 3, 3, 1] low-pass filter (per channel), after zero padding ``pad``
    on every side, with ``stride`` (2: blur and subsample in one step). Anti-aliases the discriminator's
    downsampling; the kernel is a non-persistent buffer (not in state dicts, moved with the module)."""

    def __init__(self, pad: int, stride: int = 1) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        kernel = torch.outer(taps, taps)
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)
        self.kernel: torch.Tensor
        self.pad = pad
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        kernel = self.kernel.to(x.dtype).expand(c, 1, 4, 4)
        return F.conv2d(x, kernel, stride=self.stride, padding=self.pad, groups=c)

    def extra_repr(self) -> str:
        return f"pad={self.pad}, stride={self.stride}"


class DiscriminatorBlock(nn.Module):
    """Residual block, halving the resolution: 3x3 conv, blur + stride-2 3x3 conv (leaky ReLUs), plus a
    blurred stride-2 1x1 conv skip without bias; the sum is scaled by 1/sqrt(2) to keep the variance."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, padding=1, activation="lrelu")
        # pad 2 + 4-tap blur: H + 1, then a valid stride-2 3x3 conv: H / 2 (the official padding).
        self.conv1 = nn.Sequential(Blur(pad=2), EqualConv2d(in_channels, out_channels, 3, stride=2, activation="lrelu"))
        self.skip = nn.Sequential(Blur(pad=1, stride=2), EqualConv2d(in_channels, out_channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * (1 / math.sqrt(2))


class MinibatchStdDev(nn.Module):
    """Appends ``channels`` feature maps holding the standard deviation of the features across groups of
    samples, averaged over features and pixels: a cue to the discriminator about the batch's variety, against
    mode collapse (ProGAN, kept in StyleGAN2).

    The batch is split into groups of ``group_size`` (sample i in group i % (N // G), as the official code); the
    group is ``min(group_size, N)`` and, where that does not divide N (the official code would fail), the
    largest divisor of N below it, so any batch size works (N = 1: a group of one, std ~ 1e-4).
    """

    def __init__(self, group_size: int = 4, channels: int = 1) -> None:
        super().__init__()
        if group_size < 1 or channels < 1:
            raise UserError(f"minibatch std group size and channels must be >= 1, got {group_size} and {channels}")
        self.group_size = group_size
        self.channels = channels

    def group_for(self, n: int) -> int:
        """The group size used for a batch of ``n``."""
        group = min(self.group_size, n)
        while n % group:
            group -= 1
        return group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g, f = self.group_for(n), self.channels
        y = x.reshape(g, -1, f, c // f, h, w)  # (G, n/G, F, C/F, H, W)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (n/G, F): mean std per group and channel group
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # back to (N, F, H, W), sample i -> group i % (N/G)
        return torch.cat([x, y], dim=1)


class StyleGAN2Discriminator(nn.Module):
    """Image -> one real/fake logit per image, shape ``(N, 1)`` (no sigmoid: the loss decides).

    The residual architecture of config F: fromRGB (1x1 conv + leaky ReLU) at full resolution, one
    :class:`DiscriminatorBlock` per halving down to 4x4, then minibatch std, a 3x3 conv, a linear layer on the
    flattened 4x4 map and a linear output. Channels per resolution as the generator's.
    """

    #: Equalised learning rate needs N(0, 1) weights: the builders must not re-initialise them.
    classic_init = False

    def __init__(
        self,
        resolution: int = 256,
        channel_base: int = 32768,
        channel_max: int = 512,
        in_channels: int = 3,
        mbstd_group_size: int = 4,
        mbstd_channels: int = 1,
    ) -> None:
        super().__init__()
        log2 = _check_resolution(resolution, type(self).__name__)
        channels = stylegan2_channels(resolution, channel_base, channel_max)
        if channels[4] % mbstd_channels:
            raise UserError(f"mbstd_channels={mbstd_channels} must divide the {channels[4]} channels at 4x4")
        self.resolution = resolution
        self.image_size = resolution
        self.in_channels = in_channels
        self.from_rgb = EqualConv2d(in_channels, channels[resolution], 1, activation="lrelu")
        self.blocks = nn.Sequential(*(DiscriminatorBlock(channels[2**i], channels[2 ** (i - 1)]) for i in range(log2, 2, -1)))
        c4 = channels[4]
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_channels)
        self.conv = EqualConv2d(c4 + mbstd_channels, c4, 3, padding=1, activation="lrelu")
        self.fc = EqualLinear(c4 * 4 * 4, c4, activation="lrelu")
        self.out = EqualLinear(c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (self.in_channels, self.resolution, self.resolution):
            raise UserError(f"StyleGAN2Discriminator was built for {self.in_channels}x{self.resolution}x{self.resolution} "
                            f"images, got {'x'.join(map(str, x.shape[1:]))}")
        x = self.blocks(self.from_rgb(x))
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))
