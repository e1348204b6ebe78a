"""Image I/O: every odd file a user can have loads as uint8 RGB, bad files fail naming the file."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.core.errors import DataError, UserError
from gan_translate.core.images import tensor_to_uint8, to_rgb_array, uint8_to_tensor
from gan_translate.data.io import (
    IMG_EXTENSIONS,
    check_images,
    list_images,
    load_image,
    save_image,
)


def _rgb(h: int = 6, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _assert_rgb(a: np.ndarray, h: int, w: int) -> None:
    assert a.dtype == np.uint8 and a.shape == (h, w, 3) and a.flags["C_CONTIGUOUS"] and a.flags["WRITEABLE"]


# --- list_images ------------------------------------------------------------------------------
def test_list_images_sorted_case_insensitive_and_skips_hidden(tmp_path: Path) -> None:
    for name in ["b.PNG", "a.jpg", "c.JpEg", "notes.txt", "._a.jpg", ".d.png.123.tmp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.png").write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "f.png").write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.JpEg"]
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["a.jpg", "b.PNG", "c.JpEg", "e.png"]


def test_list_images_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found.*nope") as err:
        list_images(tmp_path / "nope")
    assert ".png" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no images in .*empty.*accepted extensions"):
        list_images(tmp_path / "empty")
    assert issubclass(DataError, UserError) and ".png" in IMG_EXTENSIONS


# --- load_image: modes ------------------------------------------------------------------------
def test_load_rgb_roundtrip(tmp_path: Path) -> None:
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "x.png")
    out = load_image(tmp_path / "x.png")
    _assert_rgb(out, 6, 8)
    np.testing.assert_array_equal(out, a)


def test_load_grayscale_replicated(tmp_path: Path) -> None:
    g = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    _assert_rgb(out, 6, 8)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)


def test_load_la_and_rgba_composited_on_white(tmp_path: Path) -> None:
    la = np.zeros((2, 2, 2), np.uint8)
    la[..., 0] = 0  # black ...
    la[..., 1] = [[255, 0], [128, 255]]  # ... opaque, transparent, half, opaque
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png")
    _assert_rgb(out, 2, 2)
    assert (out[0, 0] == 0).all() and (out[0, 1] == 255).all() and abs(int(out[1, 0, 0]) - 127) <= 1

    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 0] = [10, 20, 30, 255]
    rgba[0, 1] = [10, 20, 30, 0]  # fully transparent: must become white, not (10, 20, 30)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = load_image(tmp_path / "rgba.png")
    assert out[0, 0].tolist() == [10, 20, 30] and out[0, 1].tolist() == [255, 255, 255]


def test_load_palette_with_and_without_transparency(tmp_path: Path) -> None:
    p = Image.new("P", (3, 2))
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    p.putdata([0, 1, 2, 2, 1, 0])
    p.save(tmp_path / "p.png")
    out = load_image(tmp_path / "p.png")
    _assert_rgb(out, 2, 3)
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 2].tolist() == [0, 0, 255]
    p.save(tmp_path / "pt.png", transparency=1)  # palette index 1 (green) is transparent
    out = load_image(tmp_path / "pt.png")
    assert out[0, 1].tolist() == [255, 255, 255] and out[0, 0].tolist() == [255, 0, 0]


def test_load_16bit_scaled_not_clipped(tmp_path: Path) -> None:
    a16 = np.array([[0, 32768, 65535, 257]], dtype=np.uint16)
    Image.fromarray(a16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = load_image(tmp_path / "g16.png")
    _assert_rgb(out, 1, 4)
    assert out[0, :, 0].tolist() == [0, 128, 255, 1]
    # mode "I" (32-bit int) holding 16-bit data, e.g. from TIFF or older PIL
    Image.fromarray(a16.astype(np.int32)).save(tmp_path / "i32.tif")
    assert load_image(tmp_path / "i32.tif")[0, :, 0].tolist() == [0, 128, 255, 1]


def test_load_cmyk_and_1bit(tmp_path: Path) -> None:
    Image.new("CMYK", (4, 3), (0, 0, 0, 0)).save(tmp_path / "c.jpg")  # no ink = white
    out = load_image(tmp_path / "c.jpg")
    _assert_rgb(out, 3, 4)
    assert out.min() >= 250
    bw = Image.new("1", (5, 2), 0)
    bw.putpixel((1, 0), 1)
    bw.save(tmp_path / "bw.png")
    out = load_image(tmp_path / "bw.png")
    _assert_rgb(out, 2, 5)
    assert out[0, 1].tolist() == [255, 255, 255] and out[0, 0].tolist() == [0, 0, 0]


def test_load_exif_orientation_applied(tmp_path: Path) -> None:
    img = Image.fromarray(_rgb(20, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "rot.jpg", exif=exif)
    out = load_image(tmp_path / "rot.jpg")
    _assert_rgb(out, 40, 20)


# --- load_image: failures ---------------------------------------------------------------------
def test_truncated_file_names_file(tmp_path: Path) -> None:
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.png") as err:
        load_image(tmp_path / "cut.png")
    assert "\n" not in str(err.value)


def test_text_file_named_png(tmp_path: Path) -> None:
    (tmp_path / "fake.png").write_text("this is not an image\n")
    with pytest.raises(DataError, match=r"fake\.png.*not an image"):
        load_image(tmp_path / "fake.png")


def test_missing_and_folder_named_png(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="gone.png"):
        load_image(tmp_path / "gone.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DataError, match="dir.png"):
        load_image(tmp_path / "dir.png")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_permissions(tmp_path: Path) -> None:
    path = tmp_path / "locked.png"
    Image.fromarray(_rgb()).save(path)
    path.chmod(0)
    try:
        with pytest.raises(DataError, match="locked.png.*permission"):
            load_image(path)
    finally:
        path.chmod(0o644)


# --- save_image -------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_save_roundtrip_no_temp_left(tmp_path: Path, suffix: str) -> None:
    yy, xx = np.mgrid[0:10, 0:12]
    a = np.stack([yy * 20, xx * 20, 255 - xx * 10], axis=2).astype(np.uint8)  # smooth: JPEG-friendly
    path = tmp_path / "out" / f"img{suffix}"  # parent is created
    save_image(a, path)
    back = load_image(path)
    if suffix == ".jpg":
        assert np.abs(back.astype(int) - a).max() < 12
    else:
        np.testing.assert_array_equal(back, a)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert (path.stat().st_mode & 0o777) == 0o644


def test_save_grayscale_and_bad_input(tmp_path: Path) -> None:
    save_image(np.full((3, 4), 7, np.uint8), tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").shape == (3, 4, 3)
    with pytest.raises(ValueError, match="uint8"):
        save_image(np.zeros((3, 4, 3), np.float32), tmp_path / "f.png")
    with pytest.raises(DataError, match="extension"):
        save_image(np.zeros((3, 4, 3), np.uint8), tmp_path / "f.xyz")


def test_save_failure_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keep.png"
    old = _rgb(5, 5, seed=1)
    save_image(old, path)
    old_bytes = path.read_bytes()

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"\x89PNG half written")  # type: ignore[attr-defined]
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of writing

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_image(_rgb(5, 5, seed=2), path)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


# --- tensors ----------------------------------------------------------------------------------
def test_tensor_uint8_roundtrip_and_clamp() -> None:
    a = _rgb(4, 5)
    t = uint8_to_tensor(a)
    assert t.shape == (3, 4, 5) and t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1
    np.testing.assert_array_equal(tensor_to_uint8(t), a)
    out = tensor_to_uint8(torch.stack([t, t]))
    assert out.shape == (2, 4, 5, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], a)
    assert tensor_to_uint8(torch.tensor([[[-5.0, 5.0]]] * 3))[0].tolist() == [[0] * 3, [255] * 3]  # clamped
    assert tensor_to_uint8(torch.full((3, 1, 1), float("nan")))[0, 0].tolist() == [128, 128, 128]
    assert tensor_to_uint8(torch.zeros(3, 1, 1))[0, 0, 0] == 128  # 0 -> 127.5 -> 128 (mid grey)
    assert uint8_to_tensor(np.zeros((2, 3), np.uint8)).shape == (1, 2, 3)


# --- check_images -----------------------------------------------------------------------------
def _folder_with_bad_files(tmp_path: Path) -> list[Path]:
    good = [tmp_path / f"g{i}.png" for i in range(3)]
    for p in good:
        Image.fromarray(_rgb()).save(p)
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "full.png").unlink()
    (tmp_path / "h_cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "i_text.png").write_text("nope")
    return list_images(tmp_path)


def test_check_images_error_names_first_bad(tmp_path: Path) -> None:
    paths = _folder_with_bad_files(tmp_path)
    with pytest.raises(DataError, match="h_cut.png"):
        check_images(paths, "error")
    assert check_images(paths[:3], "error") == paths[:3]


def test_check_images_skip_warns_and_reports(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = _folder_with_bad_files(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        good = check_images(paths, "skip")
    assert [p.name for p in good] == ["g0.png", "g1.png", "g2.png"]
    assert [p.name for p in good.skipped] == ["h_cut.png", "i_text.png"]
    assert len(caught) == 2 and "h_cut.png" in str(caught[0].message)
    assert f"skipped 2 of 5 images in {tmp_path}" in caplog.text
    # header-only check: fast, catches non-images, lets the truncated one through to load time
    with pytest.warns(UserWarning, match="i_text.png"):
        header_ok = check_images(paths, "skip", decode=False)
    assert "h_cut.png" in [p.name for p in header_ok] and "i_text.png" not in [p.name for p in header_ok]


def test_permission_denied_names_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also runs as root (where chmod 0 does not stop reads): the OS error is simulated."""
    path = tmp_path / "secret.png"
    Image.fromarray(_rgb()).save(path)

    def denied(*args: object, **kwargs: object) -> Image.Image:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(DataError, match=r"secret\.png: permission denied"):
        load_image(path)
    with pytest.raises(DataError, match=r"secret\.png: permission denied"):
        check_images([path], "error", decode=False)


def test_to_rgb_array_for_in_memory_images() -> None:
    """The inference API takes PIL images too: same conversion as load_image."""
    rgba = Image.new("RGBA", (3, 2), (10, 20, 30, 0))
    assert to_rgb_array(rgba).tolist() == [[[255, 255, 255]] * 3] * 2
    assert to_rgb_array(Image.new("L", (3, 2), 9)).shape == (2, 3, 3)
