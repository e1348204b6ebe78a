"""Bad and odd data end to end: through the datamodule, DataLoader workers and the `fit` command line.

Odd but valid files (CMYK, 16-bit, palette, grayscale, alpha, 1-bit, EXIF-rotated, smaller than the crop)
train; unusable ones (truncated, not an image, empty, unreadable) either stop with one line naming the file
(``on_bad_file: error``, the default) or are skipped with a warning each and a count (``skip``).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.cli import _one_line, main
from gan_translate.core.errors import DataError
from gan_translate.data import ImageTransform, UnpairedDataModule
from tests.helpers import tiny_cyclegan_args


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([yy * 4, xx * 4, (yy + xx) * 2], axis=2)
    return ((base + seed * 37) % 256).astype(np.uint8)


def _good(folder: Path, n: int, size: int = 40) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(_rgb(size, size + 4, i)).save(folder / f"good{i}.png")


def _odd(folder: Path) -> list[str]:
    """One valid file of each awkward kind; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = _rgb(40, 44, 1)
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(folder / "gray16.png")
    Image.fromarray(rgb).convert("P").save(folder / "palette.png")
    Image.fromarray(rgb).convert("P").save(folder / "palette_alpha.png", transparency=3)
    Image.fromarray(rgb[:, :, 1]).save(folder / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), "RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb).convert("1").save(folder / "bw.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    Image.fromarray(_rgb(20, 50, 2)).save(folder / "rotated.jpg", exif=exif)
    Image.fromarray(_rgb(5, 3, 3)).save(folder / "tiny.png")  # smaller than the 32 px crop
    Image.fromarray(_rgb(33, 300, 4)).save(folder / "panorama.tif")
    return sorted(p.name for p in folder.iterdir())


def _truncated(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_rgb(64, 64, 9)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header is intact: only decoding finds out
    return path


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _good(root / "trainB", 4)
    for folder in ("testA", "testB", "testA_gt", "testB_gt"):  # ground truth: the quickstart monitors val/l1_ab
        _good(root / folder, 2)
    return root


def _dm(root: Path, **kwargs: object) -> UnpairedDataModule:
    defaults = dict(transform=ImageTransform(load_size=36, crop_size=32), batch_size=2, num_workers=0, val_max_images=2)
    return UnpairedDataModule(str(root), **{**defaults, **kwargs})


def _fit_args(root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [*tiny_cyclegan_args(root, run_dir, epochs=1, batches=3), "--trainer.logger", "false",
            "--trainer.limit_train_batches", "1.0", "--trainer.num_sanity_val_steps", "0", *extra]


def _one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# --- odd but valid ----------------------------------------------------------------------------------------
def test_odd_but_valid_images_train(tmp_path: Path) -> None:
    root = _root(tmp_path)
    names = _odd(root / "trainA")
    dm = _dm(root)
    dm.setup("fit")
    assert sorted(p.name for p in dm.train_set.paths_a) == names
    seen = 0
    for batch in dm.train_dataloader():
        assert tuple(batch["A"].shape) == (2, 3, 32, 32) and tuple(batch["B"].shape) == (2, 3, 32, 32)
        assert torch.isfinite(batch["A"]).all() and batch["A"].abs().max() <= 1
        seen += len(batch["A_path"])
    assert seen == len(names)


# --- unusable files: error policy -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: (d / "notes.png").write_text("not an image"), r"notes\.png: not an image file"),
        (lambda d: (d / "empty.jpg").write_bytes(b""), r"empty\.jpg: not an image file"),
        (lambda d: (d / "folder.png").mkdir(), None),  # a folder named like an image is not a file: ignored
    ],
    ids=["text", "empty", "folder"],
)
def test_unusable_files_stop_at_construction_naming_them(tmp_path: Path, make, expected: str | None) -> None:
    root = _root(tmp_path)
    _good(root / "trainA", 3)
    make(root / "trainA")
    dm = _dm(root)
    if expected is None:
        dm.setup("fit")
        assert len(dm.train_set.paths_a) == 3
        return
    with pytest.raises(DataError, match=expected) as error:
        dm.setup("fit")
    assert "\n" not in str(error.value)


def test_permission_denied_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated (these tests may run as root, who reads anything)."""
    root = _root(tmp_path)
    _good(root / "trainA", 3)
    locked = root / "trainA" / "good1.png"
    real_open = Image.open

    def guarded(fp: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(str(fp)) == locked:
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", guarded)
    with pytest.raises(DataError, match=r"good1\.png: permission denied"):
        _dm(root).setup("fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm = _dm(root, on_bad_file="skip")
        dm.setup("fit")
    assert [p.name for p in dm.train_set.paths_a] == ["good0.png", "good2.png"]


def test_empty_or_missing_domain_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _root(tmp_path)
    (root / "trainA").mkdir()
    (root / "trainA" / "README.txt").write_text("images go here")
    assert main(["fit", *_fit_args(root, tmp_path / "run")]) == 2
    line = _one_error(capsys.readouterr().err)
    assert f"no images in {root / 'trainA'} (accepted extensions: .jpg" in line
    (root / "trainA" / "README.txt").unlink()
    (root / "trainA").rmdir()
    assert main(["fit", *_fit_args(root, tmp_path / "run")]) == 2
    assert f"dataset folder not found: {root / 'trainA'}" in _one_error(capsys.readouterr().err)


def test_truncated_file_found_while_loading_is_one_line_even_from_a_worker(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    root = _root(tmp_path)
    _good(root / "trainA", 3)
    cut = _truncated(root / "trainA" / "cut.png")
    dm = _dm(root, num_workers=2)
    dm.setup("fit")  # "error" checks headers only (fast): the truncated file gets through ...
    assert cut in dm.train_set.paths_a
    with pytest.raises(DataError) as error:  # ... and is caught when a worker decodes it
        for _ in dm.train_dataloader():
            pass
    # torch re-raises the worker's exception type with the worker's traceback in the message ...
    assert "Original Traceback" in str(error.value)
    # ... which the command line turns back into the one line
    assert _one_line(error.value).startswith(f"cannot read image {cut}: corrupt or truncated (")

    assert main(["fit", *_fit_args(root, tmp_path / "run", "--data.num_workers", "2")]) == 2
    line = _one_error(capsys.readouterr().err)
    assert line.startswith(f"error: cannot read image {cut}: corrupt or truncated")


# --- unusable files: skip policy --------------------------------------------------------------------------
def test_skip_policy_end_to_end(tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture) -> None:
    root = _root(tmp_path)
    _good(root / "trainA", 4)
    _truncated(root / "trainA" / "cut.png")
    (root / "trainA" / "notes.png").write_text("not an image")
    with caplog.at_level(logging.WARNING, logger="gan_translate"), pytest.warns(UserWarning) as caught:
        code = main(["fit", *_fit_args(root, tmp_path / "run", "--data.on_bad_file", "skip")])
    assert code == 0, capsys.readouterr().err
    skipped = [str(w.message) for w in caught if str(w.message).startswith("skipping ")]
    assert any("cut.png" in m for m in skipped) and any("notes.png" in m for m in skipped)
    assert f"skipped 2 of 6 images in {root / 'trainA'}" in caplog.text
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_skip_policy_with_nothing_left_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _root(tmp_path)
    (root / "trainA").mkdir()
    (root / "trainA" / "a.png").write_text("x")
    _truncated(root / "trainA" / "b.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", *_fit_args(root, tmp_path / "run", "--data.on_bad_file", "skip")]) == 2
    assert f"no readable images in {root / 'trainA'} (2 files skipped as unreadable)" in _one_error(capsys.readouterr().err)
