"""`translate --tile`: large images in tiles, the same result as one pass where that fits; clear refusals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_translate.cli import main
from gan_translate.data.io import load_image, save_image
from gan_translate.inference.translator import load_translator
from tests.artifacts.test_checkpoint_safety import write_checkpoint


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    """A 150 x 118 picture: not a multiple of anything, larger than the tiles below."""
    low = np.random.default_rng(0).integers(0, 256, (10, 8, 3), dtype=np.uint8)
    image = np.asarray(torch.nn.functional.interpolate(torch.from_numpy(low).permute(2, 0, 1)[None].float(),
                                                       size=(150, 118), mode="bicubic")[0].clamp(0, 255).byte().permute(1, 2, 0))
    path = tmp_path / "photos" / "big.png"
    path.parent.mkdir()
    save_image(image, path)
    return path


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(float) - b.astype(float)) ** 2).mean())
    return 10 * math.log10(255**2 / max(mse, 1e-12))


def test_tiled_translation_keeps_the_size_and_matches_one_pass(tmp_path: Path, photo: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = write_checkpoint(tmp_path / "model.ckpt")
    common = ["translate", "--checkpoint", str(checkpoint), "--input", str(photo), "--device", "cpu"]
    assert main([*common, "--output", str(tmp_path / "whole")]) == 0
    assert main([*common, "--output", str(tmp_path / "tiled"), "--tile", "64", "--tile-overlap", "24"]) == 0
    assert "images over 64 px in tiles" in capsys.readouterr().out
    whole, tiled = load_image(tmp_path / "whole" / "big.png"), load_image(tmp_path / "tiled" / "big.png")
    assert tiled.shape == whole.shape == (150, 118, 3)
    assert _psnr(tiled, whole) >= 40


def test_the_api_tiles_only_images_larger_than_the_tile(tmp_path: Path, photo: Path) -> None:
    translator = load_translator(write_checkpoint(tmp_path / "model.ckpt"), device="cpu", tile=64, tile_overlap=24,
                                 tile_stats="exact", tile_stats_size=64)
    assert translator.tile is not None and translator.tile.size == 64
    assert translator.needs_tiles(150, 118) and not translator.needs_tiles(64, 40)
    plain = load_translator(write_checkpoint(tmp_path / "model.ckpt"), device="cpu")
    image = load_image(photo)
    # exact statistics at full resolution although larger than --tile-stats-size: still the one-pass result
    assert _psnr(translator(image), plain(image)) >= 40
    auto = load_translator(tmp_path / "model.ckpt", device="cpu", tile="auto")
    assert auto.tile is not None and auto.tile.size % auto.size_multiple == 0 and auto.tile.size >= 256


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tile", "abc"], "--tile must be a number of pixels or auto, got 'abc'"),
        (["--tile", "64", "--tile-overlap", "40"], "--tile-overlap must be between 0 and half the tile (31), got 40"),
        (["--tile", "64", "--compile"], "--tile and --compile do not go together"),
    ],
)
def test_bad_tile_options_are_one_line(tmp_path: Path, photo: Path, flags: list[str], message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = write_checkpoint(tmp_path / "model.ckpt")
    code = main(["translate", "--checkpoint", str(checkpoint), "--input", str(photo), "--output", str(tmp_path / "o"),
                 "--device", "cpu", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
