"""Tiled inference: tiles cover the image, blend without seams, and normalise with the whole image's statistics."""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext

import numpy as np
import pytest
import torch

from gan_translate.errors import UserError
from gan_translate.images import tensor_to_uint8
from gan_translate.nn.resnet import ResnetGenerator
from gan_translate.nn.unet import UnetGenerator
from gan_translate.tiling import TileOptions, auto_tile_size, frozen_norm_statistics, tile_spans, tile_window, tiled_forward

CPU = torch.device("cpu")
TILE, OVERLAP = 128, 48


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


def _overlap_bands(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    for start, _ in tile_spans(height, TILE, OVERLAP)[1:]:
        mask[start:start + OVERLAP] = True
    for start, _ in tile_spans(width, TILE, OVERLAP)[1:]:
        mask[:, start:start + OVERLAP] = True
    return mask


@pytest.mark.parametrize("length", [100, 128, 129, 300, 777])
@pytest.mark.parametrize("align", [1, 4, 32])
def test_tiles_cover_the_image_on_the_networks_grid_with_at_least_the_overlap(length: int, align: int) -> None:
    spans = tile_spans(length, TILE, OVERLAP, align)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(start % align == 0 for start, _ in spans)
    assert all(end - start in range(min(TILE, length), TILE + align) for start, end in spans)
    assert all(end - next_start >= OVERLAP for (_, end), (next_start, _) in zip(spans, spans[1:]))


def test_the_window_gives_a_tiles_outer_pixels_no_weight_and_its_inside_full_weight() -> None:
    window = tile_window(TILE, TILE, OVERLAP, (True, False, True, False))[0, 0]
    assert window[: OVERLAP // 4].max() < 1e-3 and window[:, : OVERLAP // 4].max() < 1e-3
    assert torch.all(window[OVERLAP:, OVERLAP:] == 1) and window.min() > 0
    # two neighbours' ramps hand over smoothly: their weights add up to 1 inside the middle half of the overlap
    rise = tile_window(1, TILE, OVERLAP, (False, False, True, False))[0, 0, 0, :OVERLAP]
    fall = tile_window(1, TILE, OVERLAP, (False, False, False, True))[0, 0, 0, -OVERLAP:]
    middle = slice(OVERLAP // 4, OVERLAP - OVERLAP // 4)
    assert torch.allclose(rise[middle] + fall[middle], torch.ones(OVERLAP // 2), atol=1e-6)


@contextmanager
def _per_tile_statistics():
    """The naive way, for comparison: every tile normalised with its own statistics."""

    class NoFreezing:
        recorded: list = []

    import gan_translate.tiling as tiling

    original = tiling.frozen_norm_statistics
    tiling.frozen_norm_statistics = lambda network, statistics=None: nullcontext(NoFreezing())
    try:
        yield
    finally:
        tiling.frozen_norm_statistics = original


def _tiled(network: torch.nn.Module, image: torch.Tensor, **options: object) -> torch.Tensor:
    with torch.inference_mode():
        return tiled_forward(network, network, image, TileOptions(**{"size": TILE, "overlap": OVERLAP, **options}), CPU, 4)


def test_tiled_output_matches_the_whole_image_and_per_tile_statistics_do_not() -> None:
    """The measurement behind docs/full_resolution.md: 256x320 image, 128 px tiles, 48 px overlap. Measured: 53.1 dB
    overall, 51.5 dB in the overlap bands (MSE 0.47 there, 0.02 elsewhere); per-tile statistics: 26 dB."""
    network, image = _network(), _image()
    with torch.inference_mode():
        whole = network(image)
    error = _squared_error(_tiled(network, image), whole)
    bands = _overlap_bands(*image.shape[-2:])
    assert _psnr(error.mean()) >= 40
    assert _psnr(error[bands].mean()) >= 40, "seams: the overlap bands differ from the whole-image result"
    with _per_tile_statistics():
        naive = _tiled(network, image)
    assert _psnr(_squared_error(naive, whole).mean()) < _psnr(error.mean()) - 15


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
