"""`translate` with a UNSB checkpoint (issue 27): the bridge at odd sizes with `--steps` (NFE) and `--seed`, the
same seed the same bytes, refusals in one line, and the same translator through tiles, video and `evaluate`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_translate.cli import main
from gan_translate.data.io import load_image, save_image
from gan_translate.inference.translator import load_translator
from tests.artifacts.test_checkpoint_safety import write_checkpoint
from tests.helpers import checkpoints, fit
from tests.tiny import TINY

#: Odd sizes: neither a multiple of the generator's 4 nor square.
SIZES = [(29, 31), (45, 37)]


@pytest.fixture(scope="module")
def unsb_checkpoint(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A UNSB checkpoint trained through the CLI with the tiny settings (the quickstart's 5 bridge steps)."""
    run_dir = tmp_path_factory.mktemp("unsb-run")
    fit(TINY["unsb"].synthetic_args(synthetic_root, run_dir))
    return checkpoints(run_dir)[-1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two smooth pictures at the odd sizes."""
    folder = tmp_path_factory.mktemp("unsb-inputs")
    for index, (height, width) in enumerate(SIZES):
        low = torch.from_numpy(np.random.default_rng(index).integers(0, 256, (3, 4, 4)).astype(np.float32))
        image = F.interpolate(low[None], size=(height, width), mode="bicubic", align_corners=True)[0]
        save_image(image.clamp(0, 255).round().byte().permute(1, 2, 0).numpy(), folder / f"{height}x{width}.png")
    return folder


def _translate(checkpoint: Path, source: Path, output: Path, *flags: str) -> int:
    return main(["translate", "--checkpoint", str(checkpoint), "--input", str(source), "--output", str(output),
                 "--device", "cpu", *flags])


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_steps_1_and_5_keep_odd_sizes_and_differ(unsb_checkpoint: Path, inputs: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert _translate(unsb_checkpoint, inputs, tmp_path / "one", "--steps", "1") == 0
    assert "unsb, AtoB, steps 1," in capsys.readouterr().out
    assert _translate(unsb_checkpoint, inputs, tmp_path / "five", "--steps", "5") == 0
    assert _translate(unsb_checkpoint, inputs, tmp_path / "default") == 0
    for height, width in SIZES:
        name = f"{height}x{width}.png"
        one, five = load_image(tmp_path / "one" / name), load_image(tmp_path / "five" / name)
        assert one.shape == five.shape == (height, width, 3)
        assert np.abs(one.astype(int) - five).mean() > 0.5  # one pass is not the bridge's five
        # no flags: all the steps and seed 0, the same file to the byte
        assert (tmp_path / "default" / name).read_bytes() == (tmp_path / "five" / name).read_bytes()
        source = load_image(inputs / name)
        assert np.abs(five.astype(int) - source).mean() > 0.5  # it translated


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_image(
        unsb_checkpoint: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for folder, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert _translate(unsb_checkpoint, inputs, tmp_path / folder, "--seed", seed) == 0
    name = "45x37.png"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not np.array_equal(load_image(tmp_path / "a" / name), load_image(tmp_path / "c" / name))
    capsys.readouterr()
    # --seed -1: a fresh seed, printed, with which the result is reproduced
    assert _translate(unsb_checkpoint, inputs, tmp_path / "fresh", "--seed", "-1") == 0
    drawn = re.search(r"seed (\d+)", capsys.readouterr().out)
    assert drawn is not None
    assert _translate(unsb_checkpoint, inputs, tmp_path / "again", "--seed", drawn.group(1)) == 0
    assert (tmp_path / "fresh" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


@pytest.mark.parametrize(("flags", "words"), [
    (("--steps", "0"), "steps must be between 1 and the 5 steps"),
    (("--steps", "6"), "steps must be between 1 and the 5 steps"),
    (("--seed", "-2"), "--seed must be"),
])
def test_bad_steps_and_seeds_are_one_line(unsb_checkpoint: Path, inputs: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], words: str) -> None:
    assert _translate(unsb_checkpoint, inputs, tmp_path / "out", *flags) == 2
    assert words in _one_line_error(capsys)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_model_without_the_setting_refuses_it_in_one_line(inputs: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = write_checkpoint(tmp_path / "cyclegan.ckpt")
    assert _translate(checkpoint, inputs, tmp_path / "out", "--steps", "3") == 2
    assert "cyclegan has no inference setting steps" in _one_line_error(capsys)
    assert _translate(checkpoint, inputs, tmp_path / "out", "--seed", "1") == 2
    assert "has no inference setting seed" in _one_line_error(capsys)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(float) - b.astype(float)) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-12))


@pytest.mark.parametrize(("stats", "stats_size"), [("downscaled", "1024"), ("exact", "16")])
def test_tiles_run_the_bridge_at_the_inputs_size(unsb_checkpoint: Path, inputs: Path, tmp_path: Path, stats: str,
                                                 stats_size: str) -> None:
    # A 45 x 37 image in 16 px tiles, with the whole image's norm statistics at every step of the bridge: from the
    # image itself (no larger than --tile-stats-size), or measured tile by tile, layer by layer (exact).
    common = ("--tile", "16", "--tile-overlap", "6", "--tile-stats", stats, "--tile-stats-size", stats_size)
    assert _translate(unsb_checkpoint, inputs / "45x37.png", tmp_path / "tiled.png", *common, "--steps", "3") == 0
    assert _translate(unsb_checkpoint, inputs / "45x37.png", tmp_path / "whole.png", "--steps", "3") == 0
    tiled, whole = load_image(tmp_path / "tiled.png"), load_image(tmp_path / "whole.png")
    assert tiled.shape == whole.shape == (45, 37, 3)
    # Each tile draws the seed's noise at its own size, so a tiled result is near the one-pass sample, not equal
    # (measured 40 dB; a CycleGAN's tiles give > 40 dB with no noise at all).
    assert _psnr(tiled, whole) > 35


def test_a_video_runs_through_the_bridge(unsb_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
    from tests.test_video import describe, make_clip

    clip = make_clip(tmp_path / "clip.mp4", seconds=0.25, size=(38, 30), audio=False)
    assert main(["translate", "--checkpoint", str(unsb_checkpoint), "--input", str(clip), "--output",
                 str(tmp_path / "out.mp4"), "--device", "cpu", "--steps", "2", "--seed", "5"]) == 0
    assert "unsb, AtoB, seed 5, steps 2" in capsys.readouterr().out
    source, result = describe(clip), describe(tmp_path / "out.mp4")
    assert result["frames"] == source["frames"] and result["size"] == (38, 30)
    translator = load_translator(unsb_checkpoint, device="cpu", settings={"steps": 2, "seed": 5})
    expected = translator(source["first"])
    assert _psnr(result["first"], expected) > _psnr(result["first"], source["first"]) + 3


def test_evaluate_scores_the_bridge_with_steps(unsb_checkpoint: Path, synthetic_root: Path, tmp_path: Path) -> None:
    data = TINY["unsb"].data.root(synthetic_root)
    scores = {}
    for steps in ("1", "5"):
        output = tmp_path / f"steps{steps}.json"
        assert main(["evaluate", "--checkpoint", str(unsb_checkpoint), "--data", str(data), "--metrics", "l1",
                     "--device", "cpu", "--steps", steps, "--output", str(output)]) == 0
        scores[steps] = output.read_text()
    assert scores["1"] != scores["5"]


def test_compare_runs_the_bridge_beside_gatys(unsb_checkpoint: Path, synthetic_root: Path, tmp_path: Path) -> None:
    """`compare` with a UNSB checkpoint: its translator column is the bridge with the defaults (all steps, seed 0),
    the very image `translate` writes in fp32 (compare, like evaluate, translates in fp32 on every machine)."""
    source = synthetic_root / "testA" / "000001.png"
    assert main(["compare", "--checkpoint", str(unsb_checkpoint), "--input", str(source), "--style",
                 str(synthetic_root / "trainB"), "--ground-truth", str(synthetic_root / "testA_gt"), "--output",
                 str(tmp_path / "cmp"), "--size", "32", "--steps", "2", "--vgg-weights", "random", "--device", "cpu"]) == 0
    assert _translate(unsb_checkpoint, source, tmp_path / "translated.png", "--precision", "fp32") == 0
    compared = load_image(tmp_path / "cmp" / "translator" / "000001.png")
    assert np.array_equal(compared, load_image(tmp_path / "translated.png"))
