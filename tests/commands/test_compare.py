"""`stylize` and `compare` end to end through the CLI, on the synthetic set, with a tiny CycleGAN and random VGG.

Random VGG features keep the tests offline; every output must then say so.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_translate.cli import main
from gan_translate.evaluation.comparison import make_grid
from tests.helpers import fit, tiny_cyclegan_args

RANDOM = "random weights (untrained)"
FAST = ["--size", "32", "--steps", "2", "--vgg-weights", "random", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("compare_cyclegan")
    fit(tiny_cyclegan_args(synthetic_root, run_dir, epochs=1, batches=2))
    return run_dir


def _offline_images(folder: Path) -> list[Path]:
    runs = list((folder / ".wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    return sorted(runs[0].rglob("media/images/**/*.png"))


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_stylize_writes_results_at_input_names_and_sizes(synthetic_root: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    odd = tmp_path / "odd" / "wide.jpg"
    odd.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (23, 41, 3), dtype=np.uint8)).save(odd)
    out = tmp_path / "out"
    args = ["stylize", "--content", str(synthetic_root / "testA"), str(odd), "--style", str(synthetic_root / "trainB"),
            "--output", str(out), "--batch-size", "2", "--wandb", "--log-every", "1", *FAST]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"warning: VGG: {RANDOM}" in captured.err

    expected = {f"00000{i}.png": (32, 32) for i in range(1, 5)} | {"wide.jpg": (41, 23)}
    for name, size in expected.items():
        image = Image.open(out / name)
        assert image.size == size and image.mode == "RGB"
    summary = json.loads((out / "stylize.json").read_text())
    assert summary["vgg_weights"] == "random (untrained)" and summary["vgg_pretrained"] is False
    assert RANDOM in summary["settings"]
    assert summary["style"].endswith("trainB/000001.png")  # a folder: its first image, sorted
    assert len(summary["images"]) == 5 and all(entry["iterations"] == 2 for entry in summary["images"])
    assert summary["gatys"]["steps"] == 2 and summary["gatys"]["sizes"] == [32]

    logged = _offline_images(out)
    assert any("result" in str(p) for p in logged) and any("intermediate" in str(p) for p in logged)
    pixels = np.asarray(Image.open(logged[0]))
    assert pixels.dtype == np.uint8 and pixels.max() > 0, "W&B images came out black"

    # again without --overwrite: refused, one line
    assert main(args) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_stylize_one_image_to_a_named_file(synthetic_root: Path, tmp_path: Path) -> None:
    content = synthetic_root / "testA" / "000001.png"
    out = tmp_path / "styled.jpg"
    args = ["stylize", "--content", str(content), "--style", str(synthetic_root / "trainB"), "--output", str(out), *FAST]
    assert main(args) == 0
    assert Image.open(out).size == (32, 32)
    summary = json.loads((tmp_path / "styled.stylize.json").read_text())  # beside it, named after it
    assert len(summary["images"]) == 1 and summary["images"][0]["output"] == str(out)


def test_compare_with_ground_truth(trained_run: Path, synthetic_root: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cmp"
    code = main(["compare", "--checkpoint", str(trained_run), "--input", str(synthetic_root / "testA" / "00000[12].png"),
                 "--style", str(synthetic_root / "trainB"), "--ground-truth", str(synthetic_root / "testA_gt"),
                 "--output", str(out), "--wandb", *FAST])
    assert code == 0
    captured = capsys.readouterr()
    assert RANDOM in captured.err and "| mean |" not in captured.out  # mean rows are bold in markdown
    for folder in ("grids", "translator", "gatys"):
        assert sorted(p.name for p in (out / folder).iterdir()) == ["000001.png", "000002.png"]
    assert Image.open(out / "gatys" / "000001.png").size == (32, 32)

    rows = _read_csv(out / "results.csv")
    assert list(rows[0]) == ["image", "method", "seconds", "style_loss", "content_loss", "l1", "psnr", "ssim", "vgg_weights"]
    assert [(r["image"], r["method"]) for r in rows][-3:] == [("mean", "translator"), ("mean", "gatys"), ("mean", "input (unchanged)")]
    assert len(rows) == 2 * 3 + 3
    assert all(r["vgg_weights"] == "random (untrained)" for r in rows)
    gatys = [r for r in rows if r["method"] == "gatys"]
    assert float(gatys[-1]["l1"]) == pytest.approx(np.mean([float(r["l1"]) for r in gatys[:-1]]), abs=1e-3)
    assert all(0 <= float(r["ssim"]) <= 1 and float(r["psnr"]) > 0 for r in rows)
    assert all(float(r["seconds"]) > 0 for r in rows if r["method"] != "input (unchanged)")

    markdown = (out / "results.md").read_text()
    assert f"**VGG: {RANDOM}**" in markdown and "| **mean** | **gatys** |" in markdown
    result = json.loads((out / "results.json").read_text())
    assert result["vgg_pretrained"] is False and len(result["rows"]) == 9

    grid = np.asarray(Image.open(out / "grids" / "000001.png"))
    panel = 128  # 32 px panels are enlarged 4x so the column names fit
    assert grid.shape[1] == 4 * panel + 5 * 4  # input | translator | Gatys | ground truth
    assert grid.shape[0] > panel + 20  # header and footer rows

    runs = list((out / ".wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].rglob("media/table/**/*.json")), "the results table is missing from W&B"
    assert any("grid" in str(p) for p in runs[0].rglob("media/images/**/*.png"))


def test_compare_without_ground_truth(trained_run: Path, synthetic_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    code = main(["compare", "--checkpoint", str(trained_run), "--input", str(synthetic_root / "testA" / "000003.png"),
                 "--style", str(synthetic_root / "trainB"), "--style-index", "1", "--output", str(out),
                 "--line-search", "strong_wolfe", *FAST])
    assert code == 0
    rows = _read_csv(out / "results.csv")
    assert list(rows[0]) == ["image", "method", "seconds", "style_loss", "content_loss", "vgg_weights"]
    assert [(r["image"], r["method"]) for r in rows] == [
        ("000003.png", "translator"), ("000003.png", "gatys"), ("mean", "translator"), ("mean", "gatys")]
    assert json.loads((out / "results.json").read_text())["style"].endswith("trainB/000002.png")
    assert "L1" not in (out / "results.md").read_text()
    grid = np.asarray(Image.open(out / "grids" / "000003.png"))
    assert grid.shape[1] == 3 * 128 + 4 * 4  # input | translator | Gatys


def test_compare_refusals_are_one_line(trained_run: Path, synthetic_root: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    truth = tmp_path / "gt"
    truth.mkdir()
    args = ["compare", "--checkpoint", str(trained_run), "--input", str(synthetic_root / "testA" / "000001.png"),
            "--style", str(synthetic_root / "trainB" / "000001.png"), "--output", str(tmp_path / "out"), *FAST]
    assert main([*args, "--ground-truth", str(truth)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: no ground truth for 000001.png: expected {truth / '000001.png'}"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.csv").write_text("earlier\n")
    assert main(args) == 2
    assert "results.csv already exists" in capsys.readouterr().err
    assert main([*args[:-len(FAST)], "--style", str(tmp_path / "none.png"), *FAST, "--overwrite"]) == 2
    assert "style image not found" in capsys.readouterr().err
    assert main([*args, "--output", str(synthetic_root / "testA")]) == 2
    assert "holds input images; choose another --output" in capsys.readouterr().err


def test_grid_layout() -> None:
    tiny = np.zeros((10, 20, 3), dtype=np.uint8)
    plain = make_grid([tiny, tiny], ["a", "b"])
    captioned = make_grid([tiny, tiny], ["a", "b"], footer=f"VGG: {RANDOM} " * 6)
    assert plain.dtype == np.uint8 and plain.shape[1] == 2 * 140 + 3 * 4  # 20 px enlarged 7x to reach 128
    assert captioned.shape[1] == plain.shape[1] and captioned.shape[0] > plain.shape[0] + 20  # wrapped footer
    big = np.full((300, 400, 3), 200, dtype=np.uint8)
    assert make_grid([big], ["only"]).shape[1] == 400 + 2 * 4  # never shrunk
