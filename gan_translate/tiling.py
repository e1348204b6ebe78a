"""Full-resolution inference in bounded memory: overlapping tiles, blended, with whole-image norm statistics.

A generator trained on 256 px crops runs on a 4000 px photo only if its activations fit in memory; cut the photo
into tiles and two problems appear. **Seams**: a tile's border pixels see padding instead of their neighbours, so
adjacent tiles disagree along their edges; overlapping the tiles and blending them with a smooth window that gives a
tile's outer pixels no weight (:func:`tile_window`) hides that. **Colour shifts**: instance norm (and batch norm run with batch
statistics, pix2pix's classic test mode) normalises each tile with that tile's own mean and variance, so a sky tile
and a grass tile are normalised differently and the tiles show as patches of different colour.

The fix here: a first pass runs the whole image, scaled down to ``stats_size`` on its long side (the image itself
when it is no larger), and records every such norm layer's per-channel mean and variance; the tile passes then
normalise with those statistics, frozen, so every tile is normalised as the whole image would be. The statistics
pass costs one forward at ``stats_size`` (a 1024 px pass: about a quarter of a 2048 px image's tile passes). For an
image no larger than ``stats_size`` the statistics are exactly the whole image's, and the tiled result matches the
whole-image result to the blending of the tile borders (tested: > 40 dB PSNR). For larger images they are those of
the scaled-down copy: feature means survive the scaling well, variances less (the first layers see sharper edges at
full size); ``benchmarks/RESULTS.md`` measures what that costs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import MethodType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_translate.errors import UserError

__all__ = ["TileOptions", "auto_tile_size", "frozen_norm_statistics", "tile_spans", "tile_window", "tiled_forward"]

_NORMS = (nn.InstanceNorm2d, nn.BatchNorm2d)


@dataclass(frozen=True)
class TileOptions:
    """How to tile: ``size`` px square tiles overlapping by ``overlap`` px; norm statistics from the whole image
    scaled to ``stats_size`` on its long side."""

    size: int = 512
    overlap: int = 64
    stats_size: int = 1024
    statistics: str = "downscaled"
    """``downscaled``: from the image scaled to ``stats_size`` (one small pass); ``exact``: measured at full
    resolution, one tile pass per norm layer up to it (images larger than ``stats_size`` only; slow)."""

    def __post_init__(self) -> None:
        if self.size < 16:
            raise UserError(f"--tile must be at least 16 px, got {self.size}")
        if not 0 <= self.overlap < self.size // 2:
            raise UserError(f"--tile-overlap must be between 0 and half the tile ({self.size // 2 - 1}), got {self.overlap}")
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


def tile_window(height: int, width: int, overlap: int, edges: tuple[bool, bool, bool, bool]) -> Tensor:
    """Blending weights of one tile, ``(1, 1, H, W)``, along each side that borders another tile (``edges``: top,
    bottom, left, right): ~0 over the outer quarter of the overlap, a raised cosine over its middle half, 1 beyond.

    A tile's outermost pixels are the ones its padding corrupts (the network sees zeros or reflections there, not
    the neighbours), so they get no weight; the two tiles hand over where each is a quarter overlap from its own
    edge. Measured against a ramp over the whole overlap (ResNet, 128 px tiles, 48 px overlap): 53 dB instead of
    45 dB PSNR to the whole-image result. Never exactly 0, so a pixel covered by one tile only keeps its value."""

    def ramp(length: int, start: bool, end: bool) -> Tensor:
        weights = torch.ones(length)
        if overlap > 0:
            margin = overlap // 4
            middle = overlap - 2 * margin
            rise = torch.zeros(overlap)
            rise[margin:margin + middle] = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(middle) + 0.5) / middle)
            rise[margin + middle:] = 1.0
            if start:
                weights[:overlap] = torch.minimum(weights[:overlap], rise)
            if end:
                weights[-overlap:] = torch.minimum(weights[-overlap:], rise.flip(0))
        return weights.clamp_min(1e-4)

    top, bottom, left, right = edges
    return (ramp(height, top, bottom)[:, None] * ramp(width, left, right)[None, :])[None, None]


def _downscaled(image: Tensor, long_side: int) -> Tensor:
    height, width = image.shape[-2:]
    scale = long_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


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


def _exact_statistics(run: Callable[[Tensor], Tensor], network: nn.Module, image: Tensor, options: TileOptions,
                      device: torch.device, layers: int, align: int) -> Statistics:
    """The whole image's statistics at full resolution, layer by layer: pass k runs every tile up to norm layer k
    (normalising the layers before it with the statistics already measured) and adds up layer k's input."""
    statistics: Statistics = []
    for layer in range(layers):
        with frozen_norm_statistics(network, statistics) as patch, torch.inference_mode():
            patch.measure = layer
            for rows, columns, owned, _ in _tiles(*image.shape[-2:], options, align):
                patch.owned = owned
                try:
                    run(image[..., rows, columns].to(device))
                except _StopForward:
                    pass
            statistics = [*statistics, patch.measured()]
    return statistics


def tiled_forward(
    run: Callable[[Tensor], Tensor], network: nn.Module, image: Tensor, options: TileOptions, device: torch.device,
    align: int = 1,
) -> Tensor:
    """``run(batch)`` (the padded, cropped forward of ``network``) over ``image`` (1, C, H, W) tile by tile (tiles
    starting on multiples of ``align``: the network's size multiple), with
    the norm statistics of the whole image (``options.statistics``). The result (1, C', H, W) is accumulated in
    float32 on the CPU, so the device only ever holds one tile and its activations (and the statistics pass's)."""
    with frozen_norm_statistics(network) as patch, torch.inference_mode():
        run(_downscaled(image, options.stats_size).to(device))
    statistics = patch.recorded
    if options.statistics == "exact" and max(image.shape[-2:]) > options.stats_size:
        statistics = _exact_statistics(run, network, image, options, device, len(statistics), align)
    height, width = image.shape[-2:]
    output: Tensor | None = None
    weights = torch.zeros(1, 1, height, width)
    with frozen_norm_statistics(network, statistics), torch.inference_mode():
        for rows, columns, _, edges in _tiles(height, width, options, align):
            tile = run(image[..., rows, columns].to(device)).float().cpu()
            if output is None:
                output = torch.zeros(1, tile.shape[1], height, width)
            window = tile_window(tile.shape[-2], tile.shape[-1], options.overlap, edges)
            output[..., rows, columns] += tile * window
            weights[..., rows, columns] += window
    assert output is not None
    return output.div_(weights)  # in place: the result is the largest tensor here


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
