"""`gan-translate dream` and `gan-translate visualize` end to end (random VGG19: outputs say it is untrained)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_translate.cli import main


def _error(capsys: pytest.CaptureFixture) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("warning:")]
    assert len(err) == 1, err
    return err[0]


def test_dream_keeps_names_and_sizes_and_records_rising_norms(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    big = np.asarray(Image.open(synthetic_root / "testA" / "000001.png").resize((70, 50)))
    Image.fromarray(big).save(inputs / "wide.png")
    Image.fromarray(np.asarray(Image.open(synthetic_root / "testA" / "000002.png"))).save(inputs / "small.jpg")
    (inputs / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    code = main(["dream", "--input", str(inputs), "--output", str(out), "--layers", "relu2_1,relu3_1", "--octaves", "2",
                 "--steps", "3", "--size", "48", "--vgg-weights", "random", "--device", "cpu"])
    assert code == 1  # the broken file is reported, the others are done
    captured = capsys.readouterr()
    assert "untrained" in captured.err and "broken.png" in captured.err
    assert "dreamt 2 of 3 images on relu2_1, relu3_1" in captured.out
    assert np.asarray(Image.open(out / "wide.png")).shape == (50, 70, 3)
    assert np.asarray(Image.open(out / "small.jpg")).shape == (32, 32, 3)
    summary = json.loads((out / "dream.json").read_text())
    assert summary["vgg"].startswith("VGG: random") and summary["settings"]["layers"] == ["relu2_1", "relu3_1"]
    assert [f["input"].endswith("broken.png") for f in summary["failed"]] == [True]
    for record in summary["images"]:
        assert len(record["activation_norm"]) == 2
        assert all(octave["after"] > octave["before"] for octave in record["activation_norm"])
    # Nothing is replaced without --overwrite.
    again = ["dream", "--input", str(inputs / "wide.png"), "--output", str(out), "--steps", "1", "--octaves", "1",
             "--vgg-weights", "random", "--device", "cpu"]
    assert main(again) == 2
    assert "already exists; pass --overwrite" in _error(capsys)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layers", "relu9_9"], "unknown VGG19 layer(s) relu9_9"),
        (["--octave-scale", "1"], "octave_scale > 1"),
        (["--size", "8"], "--size must be 0 (full size) or at least 16 px"),
    ],
)
def test_dream_refusals_are_one_line(
    args: list[str], message: str, synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["dream", "--input", str(synthetic_root / "testA" / "000001.png"), "--output", str(tmp_path / "o"),
                 "--vgg-weights", "random", "--device", "cpu", *args])
    assert code == 2
    assert message in _error(capsys)


def test_visualize_writes_each_channel_a_labelled_grid_and_the_activations(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "vis"
    assert main(["visualize", "--output", str(out), "--layer", "relu2_1", "--channels", "0-2,7", "--size", "32",
                 "--steps", "15", "--columns", "2", "--batch-size", "3", "--vgg-weights", "random", "--device", "cpu"]) == 0
    assert "untrained" in capsys.readouterr().err
    files = sorted(p.name for p in (out / "relu2_1").iterdir())
    assert files == ["c000.png", "c001.png", "c002.png", "c007.png"]
    assert np.asarray(Image.open(out / "relu2_1" / "c007.png")).shape == (32, 32, 3)
    grid = np.asarray(Image.open(out / "relu2_1_grid.png"))
    panel = 128  # small pictures are enlarged to 128 px panels
    assert grid.shape[1] == 2 * panel + 3 * 4 and grid.shape[0] > 2 * panel  # two columns, two rows (+ labels)
    summary = json.loads((out / "visualize.json").read_text())
    assert [c["channel"] for c in summary["channels"]] == [0, 1, 2, 7]
    assert all(c["activation_after"] > c["activation_before"] for c in summary["channels"])
    assert main(["visualize", "--output", str(out), "--layer", "relu2_1", "--vgg-weights", "random", "--device", "cpu"]) == 2
    assert "already exists; pass --overwrite" in _error(capsys)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer", "relu6_1"], "--layer 'relu6_1' is not a VGG19 layer"),
        (["--layer", "relu1_1", "--channels", "60-70"], "--channels '60-70': the layer has channels 0-63"),
        (["--channels", "a-b"], "--channels must look like 0-15 or 3,7,42"),
    ],
)
def test_visualize_refusals_are_one_line(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["visualize", "--output", str(tmp_path / "o"), "--vgg-weights", "random", "--device", "cpu", *args]) == 2
    assert message in _error(capsys)
