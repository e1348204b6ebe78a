"""`generate` with StyleGAN2's extras: truncation, style-mixing grids, animated latent walks; refusals for DCGAN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.cli import main
from gan_translate.data.io import load_image
from gan_translate.models.stylegan2 import StyleGAN2
from tests.serving.model_files import dcgan_checkpoint, save_model


@pytest.fixture(scope="module")
def stylegan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(3)
    model = StyleGAN2(resolution=32, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16,
                      num_fixed_samples=4, make_gif=False)
    # an untrained mapping's w_avg is 0: give it the mean of some ws, as training would
    with torch.no_grad():
        ws = model.generator_ema.mapping(torch.randn(256, 16))
        model.generator_ema.mapping.w_avg.copy_(ws.mean(0))
    return save_model(model, tmp_path_factory.mktemp("stylegan2") / "tiny.ckpt")


def _generate(checkpoint: Path, output: Path, *extra: str) -> int:
    return main(["generate", "--checkpoint", str(checkpoint), "--output", str(output), "--device", "cpu", "--seed", "5",
                 *extra])


def test_samples_are_reproducible_by_seed_and_truncation_zero_gives_the_average_image(stylegan: Path, tmp_path: Path) -> None:
    assert _generate(stylegan, tmp_path / "a", "--num", "4", "--batch-size", "3") == 0
    assert _generate(stylegan, tmp_path / "b", "--num", "4") == 0
    for name in ("000000.png", "000003.png"):  # grouped convolutions sum in a batch-dependent order: ~1e-6 apart
        difference = load_image(tmp_path / "a" / name).astype(int) - load_image(tmp_path / "b" / name).astype(int)
        assert np.abs(difference).max() <= 1
    samples = [load_image(tmp_path / "a" / f"00000{i}.png") for i in range(4)]
    assert not np.array_equal(samples[0], samples[1])
    assert _generate(stylegan, tmp_path / "psi0", "--num", "3", "--truncation", "0") == 0
    average = [load_image(tmp_path / "psi0" / f"00000{i}.png") for i in range(3)]
    assert np.array_equal(average[0], average[1]) and np.array_equal(average[1], average[2])  # every seed: w_avg


def test_the_mixing_grid_has_sources_on_its_edges(stylegan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _generate(stylegan, tmp_path, "--num", "1", "--mixing-grid", "2x3", "--mixing-crossover", "2") == 0
    assert "mixing_grid.png" in capsys.readouterr().out
    grid = load_image(tmp_path / "mixing_grid.png")
    assert grid.shape == (2 + 3 * 34, 2 + 4 * 34, 3)  # (1 + rows) x (1 + columns) cells of 32 px, 2 px gaps
    assert (grid[2:34, 2:34] == 255).all()  # the corner is blank
    assert _generate(stylegan, tmp_path / "bad", "--num", "1", "--mixing-grid", "2x3", "--mixing-crossover", "99") == 2
    assert "--mixing-crossover must be between 1 and" in capsys.readouterr().err
    assert _generate(stylegan, tmp_path / "bad", "--num", "1", "--mixing-grid", "two") == 2


@pytest.mark.parametrize("name", ["walk.gif", "walk.mp4"])
def test_the_latent_walk_is_an_animation_of_the_frames_asked_for(stylegan: Path, tmp_path: Path, name: str) -> None:
    assert _generate(stylegan, tmp_path, "--num", "4", "--animate", name, "--animate-frames", "12", "--fps", "12") == 0
    if name.endswith(".gif"):
        with Image.open(tmp_path / name) as gif:
            assert gif.n_frames == 12 and gif.size == (2 + 2 * 34, 2 + 2 * 34)
    else:
        av = pytest.importorskip("av")
        with av.open(str(tmp_path / name)) as video:
            frames = list(video.decode(video=0))
            assert len(frames) == 12 and (frames[0].width, frames[0].height) == (70, 70)
            assert video.streams.video[0].average_rate == 12


def test_dcgan_refuses_stylegan_only_options_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = dcgan_checkpoint(tmp_path / "dcgan.ckpt")
    assert _generate(checkpoint, tmp_path / "out", "--num", "2", "--truncation", "0.7") == 2
    assert "--truncation needs a StyleGAN2 checkpoint" in capsys.readouterr().err
    assert _generate(checkpoint, tmp_path / "out", "--num", "2", "--mixing-grid", "2x2") == 2
    assert "--mixing-grid needs a StyleGAN2 checkpoint" in capsys.readouterr().err
    assert _generate(checkpoint, tmp_path / "out", "--num", "2", "--animate", "walk.gif", "--animate-frames", "8") == 0
    assert (tmp_path / "out" / "walk.gif").is_file()
