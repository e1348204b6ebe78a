"""Full-resolution inference in bounded memory: overlapping tiles, blended, with whole-image norm statistics.

A generator trained on 256 px crops runs on a 4000 px photo only if its activations fit in memory; cut the photo
into tiles and two problems appear. **Seams**: a tile's border pixels see padding instead of their neighbours, so
adjacent tiles disagree along their edges, and the disagreement reaches as far into the tile as the network's
receptive field (:func:`context_radius` measures it: ~40 px for a 3-block ResNet, ~60 px for a ResNet-9). Tiles
therefore overlap by twice that radius plus a few pixels, and the blending window (:func:`tile_window`) gives no
weight to the ``margin`` (the radius) along a tile's inner edges: every output pixel comes from a tile where it
lies at least the radius deep, where the tile computes what the whole image would. Tiles also start on the
network's downsampling grid (:func:`tile_spans`). **Colour shifts**: instance norm (and batch norm run with batch
statistics, pix2pix's classic test mode) normalises each tile with that tile's own mean and variance, so a sky tile
and a grass tile are normalised differently and the tiles show as patches of different colour.

The fix here: a first pass runs the whole image, scaled down to ``stats_size`` on its long side (the image itself
when it is no larger), and records every such norm layer's per-channel mean and variance; the tile passes then
normalise with those statistics, frozen, so every tile is normalised as the whole image would be. The statistics
pass costs one forward at ``stats_size`` (a 1024 px pass: about a quarter of a 2048 px image's tile passes). For an
image no larger than ``stats_size`` the statistics are exactly the whole image's, and the tiled result matches the
whole-image result, tile borders included (tested: > 40 dB PSNR, no more error along the borders than elsewhere). For larger images they are those of
the scaled-down copy: feature means survive the scaling well, variances less (the first layers see sharper edges at
full size); ``benchmarks/RESULTS.md`` measures what that costs.

Memory: :func:`tiled_translate` streams. The photo stays uint8 and is converted to float one tile at a time; the
blended output is accumulated in float in one band of rows (a tile row) and every row that no later tile touches is
finalised to the uint8 result at once. Float memory is O(width x tile), plus one tile's activations, plus the
statistics pass (O(stats_size^2), and a column-downscaled copy of O(height x stats_size)); what grows with the
photo is its uint8 input and uint8 result, 2 x 3 bytes a pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import MethodType

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_translate.core.errors import UserError
from gan_translate.core.images import as_tensor_image, tensor_to_uint8

__all__ = ["TileOptions", "auto_tile_size", "context_radius", "fit_tiles", "frozen_norm_statistics", "tile_spans",
           "tile_window", "tiled_forward", "tiled_translate"]

_NORMS = (nn.InstanceNorm2d, nn.BatchNorm2d)


@dataclass(frozen=True)
class TileOptions:
    """How to tile: ``size`` px square tiles overlapping by ``overlap`` px, the outer ``margin`` px of a tile's inner
    edges unused; norm statistics from the whole image scaled to ``stats_size`` on its long side. :func:`fit_tiles`
    derives the overlap and margin from the network's receptive field."""

    size: int = 512
    overlap: int = 64
    margin: int | None = None
    """px along a tile's inner edges whose output is not used (its padding reaches them): the network's context
    radius (:func:`context_radius`), at most half the overlap; None: half the overlap (a hard hand-over in its middle,
    where each tile is deepest)."""
    stats_size: int = 1024
    statistics: str = "downscaled"
    """``downscaled``: from the image scaled to ``stats_size`` (one small pass); ``exact``: measured at full
    resolution, one tile pass per norm layer up to it (images larger than ``stats_size`` only; slow)."""

    def __post_init__(self) -> None:
        if self.size < 16:
            raise UserError(f"--tile must be at least 16 px, got {self.size}")
        if not 0 <= self.overlap < self.size // 2:
            raise UserError(f"--tile-overlap must be between 0 and half the tile ({self.size // 2 - 1}), got {self.overlap}")
        if self.margin is not None and not 0 <= self.margin <= self.overlap // 2:
            raise ValueError(f"margin {self.margin} must be between 0 and half the overlap ({self.overlap // 2})")
        if self.stats_size < 16:
            raise UserError(f"--tile-stats-size must be at least 16 px, got {self.stats_size}")
        if self.statistics not in ("downscaled", "exact"):
            raise UserError(f"--tile-stats must be downscaled or exact, got {self.statistics!r}")


def _uses_input_statistics(norm: nn.Module) -> bool:
    """Whether ``norm`` normalises with the statistics of its input (not running averages) in this call."""
    return norm.training or not norm.track_running_stats or norm.running_mean is None


Statistics = list[tuple[Tensor, Tensor]]
"""Per norm layer, in call order: the per-channel (mean, variance) it normalises with."""


class _StopForward(Exception):
    """Raised by the norm layer being measured: the rest of the forward is not needed."""


class _NormPatch:
    """What the patched norm layers do: record their input's statistics, or apply frozen ones; with ``measure``
    set, the layer at that position instead adds up the statistics of the part of its input the current tile owns
    (``owned``) and stops the forward there (exact statistics, one layer per tile pass)."""

    def __init__(self, frozen: Statistics | None) -> None:
        self.recorded: Statistics = []
        self.frozen = frozen
        self.position = 0
        self.measure: int | None = None
        self.owned = (0.0, 1.0, 0.0, 1.0)
        """Fractions (top, bottom, left, right) of the current tile whose pixels no other tile accounts for."""
        self.sums: list[Tensor] = []
        """Sum, sum of squares (per channel, float64) and count of the measured layer's owned activations."""

    def start_pass(self, _module: nn.Module, _inputs: object) -> None:
        self.position = 0

    def normalise(self, norm: nn.Module, x: Tensor) -> Tensor:
        if not _uses_input_statistics(norm):
            return type(norm).forward(norm, x)
        if self.frozen is None:
            # Over the batch and space, per channel: one image at a time here, so instance norm's statistics.
            var, mean = torch.var_mean(x.float(), dim=(0, 2, 3), correction=0)
            self.recorded.append((mean, var))
            return type(norm).forward(norm, x)
        if self.position == self.measure:
            self._accumulate(x)
            raise _StopForward
        if self.position >= len(self.frozen):
            raise RuntimeError("a tile ran more norm layers than the statistics pass recorded")
        mean, var = self.frozen[self.position]
        self.position += 1
        out = (x - mean.view(1, -1, 1, 1).to(x.dtype)) * torch.rsqrt(var.view(1, -1, 1, 1) + norm.eps).to(x.dtype)
        if norm.affine:
            out = out * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
        return out

    def _accumulate(self, x: Tensor) -> None:
        height, width = x.shape[-2:]
        top, bottom, left, right = self.owned
        owned = x[..., round(top * height):round(bottom * height), round(left * width):round(right * width)].double()
        values = [owned.sum(dim=(0, 2, 3)), owned.square().sum(dim=(0, 2, 3)),
                  torch.tensor(float(owned.shape[0] * owned.shape[2] * owned.shape[3]), dtype=torch.float64)]
        self.sums = values if not self.sums else [a + b for a, b in zip(self.sums, values)]

    def measured(self) -> tuple[Tensor, Tensor]:
        """The (mean, variance) of everything the tiles owned: the whole image's, at full resolution."""
        total, squares, count = self.sums
        mean = total / count
        return mean.float(), (squares / count - mean.square()).clamp_min(0).float()


@contextmanager
def frozen_norm_statistics(network: nn.Module, statistics: Statistics | None = None) -> Iterator[_NormPatch]:
    """Within the block, the norm layers of ``network`` that normalise with their input's statistics either record
    them (``statistics`` None: per-channel mean and variance over the whole input, in call order, into
    ``.recorded``) or use the given ``statistics`` instead of their input's, at every forward of ``network`` (each
    tile). Layers with running statistics (batch norm in eval mode) are left alone."""
    patch = _NormPatch(statistics)
    norms = [module for module in network.modules() if isinstance(module, _NORMS)]
    for norm in norms:
        norm.forward = MethodType(patch.normalise, norm)
    handle = network.register_forward_pre_hook(patch.start_pass)
    try:
        yield patch
    finally:
        handle.remove()
        for norm in norms:
            del norm.forward  # back to the class's forward


def tile_spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """``(start, end)`` of tiles of about ``tile`` px covering ``length`` px, neighbours overlapping by at least
    ``overlap``, every start a multiple of ``align``.

    The alignment matters: a network that downsamples by ``align`` samples its strided convolutions on a grid,
    and a tile starting off that grid computes different features (measured: ~19 dB from the whole-image result
    for a ResNet started 2 px off its 4 px grid). The last tile ends at the image's end, up to ``align - 1`` px
    longer than ``tile``."""
    if length <= tile:
        return [(0, length)]
    count = math.ceil((length - tile) / max(1, tile - overlap - (align - 1))) + 1
    step = (length - tile) / (count - 1)
    starts = sorted({int(i * step) // align * align for i in range(count)})
    return [(start, start + tile) for start in starts[:-1]] + [(starts[-1], length)]


def tile_window(height: int, width: int, overlap: int, edges: tuple[bool, bool, bool, bool],
                margin: int | None = None) -> Tensor:
    """Blending weights of one tile, ``(1, 1, H, W)``, along each side that borders another tile (``edges``: top,
    bottom, left, right): ~0 over the outer ``margin`` px (default: half the overlap), a raised cosine over
    the rest of the overlap (its middle), 1 beyond.

    A tile's outer pixels are the ones its padding corrupts (the network sees reflections there, not the
    neighbours), as far in as the network's receptive field reaches, so they get no weight: with ``margin`` the
    network's context radius (:func:`fit_tiles`) every pixel is taken from tiles where it lies at least that deep,
    and the two tiles hand over in the middle of the overlap, where each is deepest. Never exactly 0, so a pixel
    covered by one tile only keeps its value; the floor is far below float32's resolution of the neighbour's weight
    (1), so a corrupted outer pixel adds nothing (a 1e-4 floor leaked up to 0.012 levels of its error into the
    result, measured: border MSE 0.0005 instead of 0.00004)."""
    margin = overlap // 2 if margin is None else margin

    def ramp(length: int, start: bool, end: bool) -> Tensor:
        weights = torch.ones(length)
        if overlap > 0:
            middle = overlap - 2 * margin
            rise = torch.zeros(overlap)
            rise[margin:margin + middle] = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(middle) + 0.5) / middle)
            rise[margin + middle:] = 1.0
            if start:
                weights[:overlap] = torch.minimum(weights[:overlap], rise)
            if end:
                weights[-overlap:] = torch.minimum(weights[-overlap:], rise.flip(0))
        return weights.clamp_min(1e-12)

    top, bottom, left, right = edges
    return (ramp(height, top, bottom)[:, None] * ramp(width, left, right)[None, :])[None, None]


Crop = Callable[[slice, slice], Tensor]
"""``crop(rows, columns)``: that part of the image as a float (1, C, h, w) tensor in [-1, 1] on the CPU."""

_BAND_ROWS = 256
"""Rows of the photo converted to float at once by the statistics pass's downscaling."""


def _downscaled(crop: Crop, height: int, width: int, long_side: int) -> Tensor:
    """The image scaled to ``long_side`` (antialiased bilinear), never holding it whole in float: torch's
    antialiased resampling is separable, so the columns are resampled first in bands of rows (each converted to
    float on its own), then the rows of that narrow copy (height x ``long_side``)."""
    scale = long_side / max(height, width)
    if scale >= 1:
        return crop(slice(None), slice(None))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    bands = [F.interpolate(crop(slice(top, top + _BAND_ROWS), slice(None)), size=(min(_BAND_ROWS, height - top), size[1]),
                           mode="bilinear", antialias=True, align_corners=False) for top in range(0, height, _BAND_ROWS)]
    narrow = torch.cat(bands, dim=-2)
    del bands
    return F.interpolate(narrow, size=size, mode="bilinear", antialias=True, align_corners=False)


def _owned(spans: list[tuple[int, int]], index: int) -> tuple[float, float]:
    """The part of tile ``index`` (as fractions of it) that it alone accounts for: up to the middle of each overlap."""
    start, end = spans[index]
    low = (start + spans[index - 1][1]) / 2 if index > 0 else start
    high = (end + spans[index + 1][0]) / 2 if index + 1 < len(spans) else end
    return (low - start) / (end - start), (high - start) / (end - start)


def _tiles(height: int, width: int, options: TileOptions, align: int,
           ) -> Iterator[tuple[slice, slice, tuple[float, ...], tuple[bool, ...]]]:
    """Every tile: its rows and columns, the fractions of it that it owns, and which of its sides border a tile."""
    rows = tile_spans(height, options.size, options.overlap, align)
    columns = tile_spans(width, options.size, options.overlap, align)
    for row, (top, bottom) in enumerate(rows):
        for column, (left, right) in enumerate(columns):
            owned = (*_owned(rows, row), *_owned(columns, column))
            edges = (top > 0, bottom < height, left > 0, right < width)
            yield slice(top, bottom), slice(left, right), owned, edges


def _exact_statistics(run: Callable[[Tensor], Tensor], network: nn.Module, crop: Crop, height: int, width: int,
                      options: TileOptions, device: torch.device, layers: int, align: int) -> Statistics:
    """The whole image's statistics at full resolution, layer by layer: pass k runs every tile up to norm layer k
    (normalising the layers before it with the statistics already measured) and adds up layer k's input."""
    statistics: Statistics = []
    for layer in range(layers):
        with frozen_norm_statistics(network, statistics) as patch, torch.inference_mode():
            patch.measure = layer
            for rows, columns, owned, _ in _tiles(height, width, options, align):
                patch.owned = owned
                try:
                    run(crop(rows, columns).to(device))
                except _StopForward:
                    pass
            statistics = [*statistics, patch.measured()]
    return statistics


def _statistics(run: Callable[[Tensor], Tensor], network: nn.Module, crop: Crop, height: int, width: int,
                options: TileOptions, device: torch.device, align: int) -> Statistics:
    """The norm statistics every tile is normalised with (``options.statistics``)."""
    with frozen_norm_statistics(network) as patch, torch.inference_mode():
        run(_downscaled(crop, height, width, options.stats_size).to(device))
    statistics = patch.recorded
    if options.statistics == "exact" and max(height, width) > options.stats_size:
        statistics = _exact_statistics(run, network, crop, height, width, options, device, len(statistics), align)
    return statistics


def _blend(run: Callable[[Tensor], Tensor], network: nn.Module, crop: Crop, height: int, width: int,
           options: TileOptions, device: torch.device, align: int, emit: Callable[[int, Tensor], None]) -> None:
    """Run every tile with the whole image's statistics and blend them; ``emit(top, rows)`` receives the blended
    result (1, C', n, W) of rows ``top .. top + n`` as soon as no later tile touches them, in order.

    The accumulator is one band of rows, the current tile row: the rows it shares with the next tile row (the
    overlap) are carried over, the rest are final. Every pixel's weighted sum is added up in the same order as over
    a whole-image accumulator, so the result is the same to the bit."""
    statistics = _statistics(run, network, crop, height, width, options, device, align)
    rows = tile_spans(height, options.size, options.overlap, align)
    columns = tile_spans(width, options.size, options.overlap, align)
    carried: tuple[Tensor, Tensor] | None = None  # sums and weights of the rows the previous tile row shares
    with frozen_norm_statistics(network, statistics), torch.inference_mode():
        for index, (top, bottom) in enumerate(rows):
            sums: Tensor | None = None
            weights = torch.zeros(1, 1, bottom - top, width)
            for left, right in columns:
                tile = run(crop(slice(top, bottom), slice(left, right)).to(device)).float().cpu()
                if sums is None:
                    sums = torch.zeros(1, tile.shape[1], bottom - top, width)
                    if carried is not None:
                        shared = carried[0].shape[-2]
                        sums[..., :shared, :], weights[..., :shared, :] = carried
                edges = (top > 0, bottom < height, left > 0, right < width)
                window = tile_window(tile.shape[-2], tile.shape[-1], options.overlap, edges, options.margin)
                sums[..., left:right] += tile * window
                weights[..., left:right] += window
            assert sums is not None
            final = rows[index + 1][0] - top if index + 1 < len(rows) else bottom - top
            carried = (sums[..., final:, :].clone(), weights[..., final:, :].clone())
            emit(top, sums[..., :final, :].div_(weights[..., :final, :]))


def tiled_forward(
    run: Callable[[Tensor], Tensor], network: nn.Module, image: Tensor, options: TileOptions, device: torch.device,
    align: int = 1,
) -> Tensor:
    """``run(batch)`` (the padded, cropped forward of ``network``) over ``image`` (1, C, H, W) tile by tile (tiles
    starting on multiples of ``align``: the network's size multiple), with
    the norm statistics of the whole image (``options.statistics``). The result (1, C', H, W) is accumulated in
    float32 on the CPU, so the device only ever holds one tile and its activations (and the statistics pass's).
    For a uint8 photo, :func:`tiled_translate` does the same without a float copy of the photo or its result."""
    height, width = image.shape[-2:]
    parts: list[Tensor] = []
    _blend(run, network, lambda rows, columns: image[..., rows, columns].float(), height, width, options, device,
           align, lambda _top, band: parts.append(band.clone()))
    return torch.cat(parts, dim=-2)


def tiled_translate(
    run: Callable[[Tensor], Tensor], network: nn.Module, image: np.ndarray, options: TileOptions, device: torch.device,
    align: int = 1, in_channels: int = 3,
) -> np.ndarray:
    """:func:`tiled_forward` for a uint8 ``H x W [x C]`` photo, streamed: each tile converted to float (and to the
    network's ``in_channels``) on its own, the blended rows clamped and rounded into the uint8 ``H x W x C'``
    result as soon as they are final. Memory beyond the photo and its result: O(width x tile) floats, one tile's
    activations and the statistics pass."""
    height, width = image.shape[:2]

    def crop(rows: slice, columns: slice) -> Tensor:
        return as_tensor_image(image[rows, columns], in_channels)[None]

    result: np.ndarray | None = None

    def emit(top: int, band: Tensor) -> None:
        nonlocal result
        if result is None:
            result = np.empty((height, width, band.shape[1]), dtype=np.uint8)
        result[top:top + band.shape[-2]] = tensor_to_uint8(band[0].clamp_(-1, 1))

    _blend(run, network, crop, height, width, options, device, align, emit)
    assert result is not None
    return result


CONTEXT_TOLERANCE = 0.02 * 2 / 255
"""How much a tile's edge may still change an output pixel (in [-1, 1] units: 0.02 uint8 levels) at the context
radius: small enough that rounding to uint8 flips almost no pixel there."""

BLEND = 16
"""px of raised-cosine hand-over between two tiles beyond the two context radii, in the middle of the overlap."""


def context_radius(network: nn.Module, device: torch.device, size_multiple: int = 1, in_channels: int = 3,
                   min_size: int = 1, tolerance: float = CONTEXT_TOLERANCE, limit: int = 1024) -> int:
    """How far (px) into a tile its edge still changes the output by more than ``tolerance``: the network's
    effective receptive radius, measured, not derived from its layers.

    A smooth random probe (``2 * half`` rows, a narrow strip) runs whole and as its top half, both with the whole
    probe's norm statistics frozen (as the tiles are); the deepest row of the half whose output differs from the
    whole's by more than ``tolerance`` is the radius. Two forwards of a few thousand pixels; the probe doubles while
    the radius reaches past a quarter of it, up to ``limit`` rows (a U-Net's bottleneck sees its whole input: its
    radius is the limit). Measured with PyTorch-initialised weights: 40 px for a 3-block ResNet (its layers' full
    reach is 40), 64 px for a ResNet-9 (full reach ~88 px; beyond 64 the change is below 0.003 levels)."""
    width = -(-max(32, min_size) // size_multiple) * size_multiple
    half = -(-max(128, min_size) // size_multiple) * size_multiple
    generator = torch.Generator().manual_seed(0)
    while True:
        height = 2 * half
        low = torch.rand(1, in_channels, max(2, height // 16), max(2, width // 16), generator=generator) * 2 - 1
        probe = F.interpolate(low, size=(height, width), mode="bicubic", align_corners=False).clamp(-1, 1).to(device)
        with torch.inference_mode():
            with frozen_norm_statistics(network) as patch:
                whole = network(probe)
            with frozen_norm_statistics(network, patch.recorded):
                top = network(probe[..., :half, :])
        # per row of the half, by distance from its cut edge (0: the row next to it)
        deviation = (top.float() - whole[..., :half, :].float()).abs().amax(dim=(0, 1, 3)).flip(0).cpu()
        beyond = torch.nonzero(deviation > tolerance)
        radius = int(beyond.max()) + 1 if len(beyond) else 0
        if radius <= half // 2 or 2 * half > limit:
            return min(radius, half)
        half *= 2


def fit_tiles(options: TileOptions, overlap: int | None, network: nn.Module, device: torch.device, align: int = 1,
              in_channels: int = 3, min_size: int = 1) -> TileOptions:
    """``options`` with the overlap (``None``: from the network's receptive field) and the blending margin fitted to
    ``network``: overlap ``2 * radius + BLEND`` on the tile grid, below half the tile, and margin the radius
    (:func:`context_radius`) where the overlap has room for it. With a smaller overlap (asked for, or a tile too
    small for the radius) no pixel can be taken that deep; the tiles then hand over in the middle of the overlap,
    each pixel from the tile where it lies deepest (measured, 3-block ResNet, 48 px overlap: 61.8 dB against 56.8 dB
    with a quarter-overlap margin and a cosine over the middle half)."""
    radius = context_radius(network, device, align, in_channels, min_size)
    largest = max(0, (options.size // 2 - 1) // align * align)
    if overlap is None:
        overlap = min(-(-(2 * radius + BLEND) // align) * align, largest)
    margin = min(radius, overlap // 2)
    return TileOptions(size=options.size, overlap=overlap, margin=margin, stats_size=options.stats_size,
                       statistics=options.statistics)


def auto_tile_size(network: nn.Module, device: torch.device, size_multiple: int, in_channels: int,
                   free_bytes: int | None = None) -> int:
    """The largest square tile whose forward should fit in half the device's free memory.

    Measured, not guessed: a 64 px probe forward records the largest activation per input pixel (every module's
    output), and a forward's peak is taken as three such tensors (a layer's input, its output and a skip or
    residual branch) plus the float32 input. ``free_bytes`` overrides the device's free memory (tests)."""
    probe_side = max(64, size_multiple)
    largest = 0

    def measure(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal largest
        if isinstance(output, Tensor):
            largest = max(largest, output.numel() * output.element_size())

    handles = [m.register_forward_hook(measure) for m in network.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            network(torch.zeros(1, in_channels, probe_side, probe_side, device=device))
    finally:
        for handle in handles:
            handle.remove()
    bytes_per_pixel = 3 * largest / probe_side**2 + 4 * in_channels
    budget = (free_bytes if free_bytes is not None else free_memory(device)) / 2
    side = int(math.sqrt(budget / bytes_per_pixel)) // size_multiple * size_multiple
    return max(size_multiple, min(side, 8192))


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device``: CUDA's own count, else the system's available memory (Linux ``MemAvailable``)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
