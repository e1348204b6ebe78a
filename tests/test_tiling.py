"""Tiled inference: tiles cover the image, blend without seams, and normalise with the whole image's statistics."""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext

import numpy as np
import pytest
import torch

from gan_translate.core.errors import UserError
from gan_translate.core.images import tensor_to_uint8
from gan_translate.inference.tiling import (
    TileOptions,
    auto_tile_size,
    context_radius,
    fit_tiles,
    frozen_norm_statistics,
    tile_spans,
    tile_window,
    tiled_forward,
    tiled_translate,
)
from gan_translate.nn.resnet import ResnetGenerator
from gan_translate.nn.unet import UnetGenerator

CPU = torch.device("cpu")
TILE, OVERLAP = 128, 48
FITTED = 192
"""Tiles of the seam test: room for the fitted overlap (2 x the 34 px radius + 16) of the 3-block ResNet below."""


def _network() -> ResnetGenerator:
    # PyTorch's default initialisation (not the GAN's N(0, 0.02)): outputs that vary across the image, as a trained
    # generator's do, so that disagreeing tiles would show.
    torch.manual_seed(0)
    return ResnetGenerator(ngf=16, n_blocks=3).eval()


def _image(height: int = 256, width: int = 320) -> torch.Tensor:
    low = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(height, width), mode="bicubic").clamp(-1, 1)


def _squared_error(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-pixel squared error on uint8 (mean over channels)."""
    return ((tensor_to_uint8(a[0]).astype(float) - tensor_to_uint8(b[0]).astype(float)) ** 2).mean(axis=2)


def _psnr(mse: float) -> float:
    return 10 * math.log10(255**2 / max(mse, 1e-12))


def _overlap_bands(height: int, width: int, tile: int, overlap: int, align: int = 4) -> np.ndarray:
    """Where tiles overlap (the tile borders), on the same grid as the tiles (``align``)."""
    mask = np.zeros((height, width), dtype=bool)
    for (_, end), (start, _) in zip(tile_spans(height, tile, overlap, align), tile_spans(height, tile, overlap, align)[1:]):
        mask[start:end] = True
    for (_, end), (start, _) in zip(tile_spans(width, tile, overlap, align), tile_spans(width, tile, overlap, align)[1:]):
        mask[:, start:end] = True
    return mask


@pytest.mark.parametrize("length", [100, 128, 129, 300, 777])
@pytest.mark.parametrize("align", [1, 4, 32])
def test_tiles_cover_the_image_on_the_networks_grid_with_at_least_the_overlap(length: int, align: int) -> None:
    spans = tile_spans(length, TILE, OVERLAP, align)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(start % align == 0 for start, _ in spans)
    assert all(end - start in range(min(TILE, length), TILE + align) for start, end in spans)
    assert all(end - next_start >= OVERLAP for (_, end), (next_start, _) in zip(spans, spans[1:]))


@pytest.mark.parametrize("margin", [12, 20, 24])
def test_the_window_gives_a_tiles_margin_no_weight_and_its_inside_full_weight(margin: int) -> None:
    window = tile_window(TILE, TILE, OVERLAP, (True, False, True, False), margin)[0, 0]
    assert window[:margin].max() < 1e-9 and window[:, :margin].max() < 1e-9  # its padding reaches them
    assert torch.all(window[OVERLAP - margin:, OVERLAP - margin:] == 1) and window.min() > 0
    # two neighbours' ramps hand over smoothly in the middle of the overlap: their weights add up to 1 there
    rise = tile_window(1, TILE, OVERLAP, (False, False, True, False), margin)[0, 0, 0, :OVERLAP]
    fall = tile_window(1, TILE, OVERLAP, (False, False, False, True), margin)[0, 0, 0, -OVERLAP:]
    assert torch.allclose(rise + fall, torch.ones(OVERLAP), atol=1e-6)


@contextmanager
def _per_tile_statistics():
    """The naive way, for comparison: every tile normalised with its own statistics."""

    class NoFreezing:
        recorded: list = []

    import gan_translate.inference.tiling as tiling

    original = tiling.frozen_norm_statistics
    tiling.frozen_norm_statistics = lambda network, statistics=None: nullcontext(NoFreezing())
    try:
        yield
    finally:
        tiling.frozen_norm_statistics = original


def _tiled(network: torch.nn.Module, image: torch.Tensor, **options: object) -> torch.Tensor:
    with torch.inference_mode():
        return tiled_forward(network, network, image, TileOptions(**{"size": TILE, "overlap": OVERLAP, **options}), CPU, 4)


def _border_and_elsewhere(tiled: torch.Tensor, whole: torch.Tensor, tile: int, overlap: int) -> tuple[float, ...]:
    """uint8 MSE along the tile borders (the overlap bands) and elsewhere; mean float error (uint8 levels) of both."""
    error, bands = _squared_error(tiled, whole), _overlap_bands(*whole.shape[-2:], tile, overlap)
    levels = ((tiled - whole).abs()[0].mean(0) * 127.5).numpy()
    return error[bands].mean(), error[~bands].mean(), levels[bands].mean(), levels[~bands].mean()


def test_the_measured_receptive_radius_is_where_a_tile_edge_stops_changing_the_output() -> None:
    # the 3-block ResNet's layers reach 34 px into this probe (7x7 stem, two stride-2 3x3, six 3x3 at 1/4 size, ...)
    assert context_radius(_network(), CPU, 4) == 34
    fitted = fit_tiles(TileOptions(size=FITTED, overlap=0), None, _network(), CPU, 4)
    assert (fitted.overlap, fitted.margin) == (84, 34)  # 2 x 34 + 16, on the 4 px grid
    small = fit_tiles(TileOptions(size=FITTED, overlap=48), 48, _network(), CPU, 4)
    assert (small.overlap, small.margin) == (48, 24)  # no room for the radius: hand over in the middle


def test_tiled_output_matches_the_whole_image_along_the_tile_borders_too() -> None:
    """The measurement behind docs/full_resolution.md: 256x320 image, 192 px tiles, overlap fitted to the network
    (84 px, margin 34 px). Measured: 92 dB overall; uint8 MSE 0.00004 along the tile borders against 0.00005
    elsewhere (a handful of pixels off by one level in both: float rounding of the frozen statistics); mean float
    error 3.7e-5 against 3.4e-5 levels. The 1.25 factor below is for that float noise (the border pixels are sums
    of two tiles' rounding), not for any seam: the old window (48 px overlap, quarter-overlap margin, 1e-4 floor)
    measured 21x (MSE 0.46 against 0.022) and fails below, as do per-tile statistics (30 dB)."""
    network, image = _network(), _image()
    with torch.inference_mode():
        whole = network(image)
    fitted = fit_tiles(TileOptions(size=FITTED, overlap=0), None, network, CPU, 4)
    tiled = tiled_forward(network, network, image, fitted, CPU, 4)
    border, elsewhere, border_levels, elsewhere_levels = _border_and_elsewhere(tiled, whole, FITTED, fitted.overlap)
    assert _psnr(_squared_error(tiled, whole).mean()) >= 40
    assert border <= 1.25 * elsewhere, f"seams: MSE {border:.5f} along the tile borders, {elsewhere:.5f} elsewhere"
    assert border_levels <= 1.25 * elsewhere_levels, (border_levels, elsewhere_levels)
    # the same measure catches seams: an overlap smaller than the receptive field leaves them
    seamed = _tiled(network, image, margin=OVERLAP // 4)
    seamed_border, seamed_elsewhere, *_ = _border_and_elsewhere(seamed, whole, TILE, OVERLAP)
    assert seamed_border > 5 * seamed_elsewhere and seamed_border > 100 * border
    # naive tiles (each normalised with its own statistics, abutting): far worse, along their borders too
    with _per_tile_statistics():
        naive = _tiled(network, image, size=FITTED, overlap=0)
    naive_error = _squared_error(naive, whole)
    assert _psnr(naive_error.mean()) < _psnr(_squared_error(tiled, whole).mean()) - 30
    assert naive_error[_overlap_bands(*whole.shape[-2:], FITTED, fitted.overlap)].mean() > 1000 * border


def test_the_streamed_uint8_path_gives_the_tensor_paths_result_to_the_bit() -> None:
    """tiled_translate (uint8 in, uint8 out, float only per tile and per band of rows) against tiled_forward; with
    a statistics copy smaller than the image (the banded, separable downscaling) and 3 tile rows (carried bands)."""
    network, image = _network(), _image(320, 240)  # its 160 px statistics copy: 160x120, on the grid
    photo = tensor_to_uint8(image[0])
    options = TileOptions(size=128, overlap=40, margin=20, stats_size=160)
    with torch.inference_mode():
        expected = tensor_to_uint8(tiled_forward(network, network, torch.from_numpy(photo).permute(2, 0, 1)[None]
                                                 .float().div(127.5).sub(1), options, CPU, 4)[0].clamp(-1, 1))
        streamed = tiled_translate(network, network, photo, options, CPU, 4, 3)
    assert streamed.dtype == np.uint8 and streamed.shape == photo.shape
    assert np.array_equal(streamed, expected)


def test_the_banded_downscaling_equals_one_antialiased_resize() -> None:
    from gan_translate.inference.tiling import _downscaled

    image = _image(600, 260)
    banded = _downscaled(lambda rows, columns: image[..., rows, columns], 600, 260, 160)
    whole = torch.nn.functional.interpolate(image, size=(160, 69), mode="bilinear", antialias=True, align_corners=False)
    assert torch.allclose(banded, whole, atol=1e-5)


def test_larger_than_the_statistics_size_exact_statistics_still_match_the_whole_image() -> None:
    """--tile-stats exact measures every norm layer at full resolution, tile by tile (53 dB here, ~10x the time of
    one whole-image pass at these small tiles); the default, from a copy scaled to --tile-stats-size, is 21 dB
    from the whole-image result (the statistics of a half-size copy differ) but still one consistent image: the
    tiles agree with a single pass over the whole image with the same statistics (55 dB measured)."""
    network, image = _network(), _image()
    with torch.inference_mode():
        whole = network(image)
    assert _psnr(_squared_error(_tiled(network, image, stats_size=160, statistics="exact"), whole).mean()) >= 40
    scaled = _tiled(network, image, stats_size=160)
    one_tile = _tiled(network, image, stats_size=160, size=320, overlap=0)  # the whole image with those statistics
    assert _psnr(_squared_error(scaled, one_tile).mean()) >= 40


def test_recorded_statistics_are_the_instance_norm_statistics_and_are_applied_exactly() -> None:
    network, image = _network(), _image(64, 64)
    with torch.inference_mode():
        expected = network(image)
        with frozen_norm_statistics(network) as patch:
            assert torch.equal(network(image), expected)  # recording changes nothing
        with frozen_norm_statistics(network, patch.recorded):
            frozen = network(image)
    assert len(patch.recorded) == 1 + 2 + 2 * 3 + 2  # stem, two downsamplings, two per block, two upsamplings
    assert torch.allclose(frozen, expected, atol=1e-5)
    assert all("forward" not in vars(m) for m in network.modules())  # the layers are themselves again


def test_batch_norm_with_running_statistics_is_left_alone_and_with_batch_statistics_is_frozen() -> None:
    torch.manual_seed(0)
    unet = UnetGenerator(num_downs=5, ngf=8, norm="batch").eval()
    image = _image(64, 64)
    with torch.inference_mode(), frozen_norm_statistics(unet) as patch:
        unet(image)
    assert patch.recorded == []  # eval-mode batch norm: running averages, the same for every tile
    unet.train()  # pix2pix's classic test mode: batch statistics
    with torch.inference_mode(), frozen_norm_statistics(unet) as patch:
        unet(image)
    assert len(patch.recorded) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in unet.modules())


def test_auto_tile_size_grows_with_the_memory_and_respects_the_size_multiple() -> None:
    network = _network()
    small = auto_tile_size(network, CPU, 4, 3, free_bytes=200 * 2**20)
    large = auto_tile_size(network, CPU, 4, 3, free_bytes=3200 * 2**20)
    assert small % 4 == 0 and large % 4 == 0
    assert 3.5 < large / small < 4.5  # side ~ sqrt(memory)


def test_options_are_checked() -> None:
    with pytest.raises(UserError, match="--tile-overlap"):
        TileOptions(size=128, overlap=64)
    with pytest.raises(UserError, match="--tile must be at least"):
        TileOptions(size=8)
    with pytest.raises(UserError, match="--tile-stats must be downscaled or exact"):
        TileOptions(statistics="whole")
