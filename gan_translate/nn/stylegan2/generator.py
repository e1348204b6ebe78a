"""The StyleGAN2 generator: noise, style layers, ToRGB, the skip synthesis network, and mapping + synthesis with
truncation and style mixing; :class:`TruncatedSampler`, the traceable ``(z, psi) -> images`` of the exports."""

from __future__ import annotations

import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn.stylegan2.equalised import _activate, _check_noise_mode, _check_resolution, stylegan2_channels
from gan_translate.nn.stylegan2.mapping import MappingNetwork
from gan_translate.nn.stylegan2.modulated import ModulatedConv2d, upsample2x

__all__ = ["NoiseInjection", "StyleGAN2Generator", "StyleLayer", "SynthesisNetwork", "ToRGB", "TruncatedSampler"]


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
            y = y + upsample2x(skip)
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


class TruncatedSampler(nn.Module):
    """``(z, psi) -> images``: mapping, one w for every layer, truncation towards ``w_avg`` by ``psi`` (a tensor of
    shape (1,), so that a traced file can be truncated at run time), synthesis with the constant noise maps, clamped
    to [-1, 1]. What a StyleGAN2 model's ``decode(z, psi=psi)`` computes, as one module to trace or export."""

    def __init__(self, generator: StyleGAN2Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        generator = self.generator
        ws = generator.broadcast(generator.mapping(z))
        # Always truncated (decode skips it at psi == 1): lerp with weight 1 returns w itself, so psi = 1 is off.
        ws = generator.mapping.truncate(ws, psi.reshape(1).to(ws.dtype))
        return generator.synthesis(ws, "const").clamp(-1.0, 1.0)
