"""The scripts in datasets/: synthetic CLI, offline download behaviour, combine_A_and_B.

Nothing here touches the internet: downloads go to a closed local port or to a local HTTP server.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from gan_translate.core.errors import DataError
from gan_translate.data.combine import combine_pairs

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "datasets"
CLOSED_PORT = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused at once


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image(path: Path, width: int, height: int, seed: int) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


# ------------------------------------------------------------------------------------- make_synthetic


def test_make_synthetic_cli(tmp_path: Path) -> None:
    root = tmp_path / "syn"
    args = ["--root", str(root), "--size", "32", "--n-train", "3", "--n-test", "2"]
    result = _run("make_synthetic.py", *args)
    assert result.returncode == 0, result.stderr
    assert "trainA/" in result.stdout and "paired/val/" in result.stdout
    assert len(list((root / "testA_gt").glob("*.png"))) == 2
    assert len(list((root / "paired" / "train").glob("*.png"))) == 3

    _assert_one_line_error(_run("make_synthetic.py", *args, "--seed", "5"), str(root), "--overwrite")
    assert _run("make_synthetic.py", *args, "--seed", "5", "--overwrite").returncode == 0


def test_make_synthetic_help_shows_defaults() -> None:
    result = _run("make_synthetic.py", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines at the terminal width
    assert "default: data/synthetic" in text and "default: 200" in text


# ------------------------------------------------------------------------------------------ download


def test_download_without_network_fails_with_one_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    env = {"GAN_TRANSLATE_DATASETS_MIRROR": CLOSED_PORT}
    result = _run("download.py", "cyclegan", "horse2zebra", "--root", str(root), env=env)
    line = _assert_one_line_error(result, "download failed", f"{CLOSED_PORT}/cyclegan/datasets/horse2zebra.zip")
    assert str(root / "horse2zebra") in line and "trainA/" in line, "says where to put the files by hand"
    assert not root.exists(), "no temporary files or empty folders left behind"

    result = _run("download.py", "pix2pix", "facades", "--root", str(root), "--mirror", CLOSED_PORT)
    _assert_one_line_error(result, "download failed", f"{CLOSED_PORT}/pix2pix/datasets/facades.tar.gz")


def test_download_rejects_unknown_names_listing_valid_ones(tmp_path: Path) -> None:
    env = {"GAN_TRANSLATE_DATASETS_MIRROR": CLOSED_PORT}
    result = _run("download.py", "pix2pix", "horse2zebra", "--root", str(tmp_path), env=env)
    _assert_one_line_error(result, "horse2zebra", "edges2shoes", "night2day")


def test_download_never_overwrites_a_dataset(tmp_path: Path) -> None:
    existing = tmp_path / "horse2zebra" / "trainA" / "mine.png"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"keep")
    env = {"GAN_TRANSLATE_DATASETS_MIRROR": CLOSED_PORT}
    result = _run("download.py", "cyclegan", "horse2zebra", "--root", str(tmp_path), env=env)
    _assert_one_line_error(result, str(tmp_path / "horse2zebra"), "already exists")
    assert existing.read_bytes() == b"keep"


@pytest.fixture()
def mirror(tmp_path: Path) -> Iterator[Path]:
    """A local HTTP server (the mirror's files live in the yielded folder); its URL is in .url."""
    served = tmp_path / "mirror"
    served.mkdir()
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (served / ".url").write_text(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output clean
        pass


def test_download_and_unpack_from_a_mirror(mirror: Path, tmp_path: Path) -> None:
    download = _load_script("download")
    url = (mirror / ".url").read_text()
    (mirror / "cyclegan" / "datasets").mkdir(parents=True)
    with zipfile.ZipFile(mirror / "cyclegan" / "datasets" / "horse2zebra.zip", "w") as zf:
        for folder in ("trainA", "trainB", "testA", "testB"):
            zf.writestr(f"horse2zebra/{folder}/1.jpg", b"jpeg bytes")
    (mirror / "pix2pix" / "datasets").mkdir(parents=True)
    with tarfile.open(mirror / "pix2pix" / "datasets" / "facades.tar.gz", "w:gz") as tf:
        for split in ("train", "val", "test"):
            info = tarfile.TarInfo(f"facades/{split}/1.jpg")
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))

    root = tmp_path / "data"
    target = download.download("cyclegan", "horse2zebra", root, mirror=url)
    assert target == root / "horse2zebra"
    assert sorted(p.name for p in target.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    target = download.download("pix2pix", "facades", root, mirror=url)
    assert (target / "val" / "1.jpg").read_bytes() == b"abc"
    assert sorted(p.name for p in root.iterdir()) == ["facades", "horse2zebra"], "temporary files removed"


# ------------------------------------------------------------------------------------ combine_A_and_B


def test_combine_round_trip_with_splits(tmp_path: Path) -> None:
    expected = {}
    for split, count in (("train", 3), ("val", 2)):
        for i in range(count):
            a = _image(tmp_path / "A" / split / f"{i}.png", 20, 12, seed=i)
            b = _image(tmp_path / "B" / split / f"{i}.png", 20, 12, seed=100 + i)
            expected[f"{split}/{i}.png"] = (a, b)
    result = _run("combine_A_and_B.py", "--fold-A", str(tmp_path / "A"), "--fold-B", str(tmp_path / "B"),
                  "--output", str(tmp_path / "AB"))
    assert result.returncode == 0, result.stderr
    assert "wrote 5" in result.stdout
    written = sorted(str(p.relative_to(tmp_path / "AB")) for p in (tmp_path / "AB").rglob("*.png"))
    assert written == sorted(expected)
    for name, (a, b) in expected.items():
        pair = np.asarray(Image.open(tmp_path / "AB" / name))
        assert pair.shape == (12, 40, 3)
        np.testing.assert_array_equal(pair[:, :20], a)
        np.testing.assert_array_equal(pair[:, 20:], b)


def test_combine_flat_folders_pairs_by_name(tmp_path: Path) -> None:
    a = _image(tmp_path / "A" / "x.png", 8, 8, seed=1)
    b = _image(tmp_path / "B" / "x.png", 8, 8, seed=2)
    assert combine_pairs(tmp_path / "A", tmp_path / "B", tmp_path / "out") == 1
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "x.png")), np.concatenate([a, b], 1))


def test_combine_missing_partner_names_it(tmp_path: Path) -> None:
    _image(tmp_path / "A" / "train" / "1.png", 8, 8, seed=1)
    _image(tmp_path / "A" / "train" / "2.png", 8, 8, seed=2)
    _image(tmp_path / "B" / "train" / "1.png", 8, 8, seed=3)
    result = _run("combine_A_and_B.py", "--fold-A", str(tmp_path / "A"), "--fold-B", str(tmp_path / "B"),
                  "--output", str(tmp_path / "AB"))
    _assert_one_line_error(result, str(tmp_path / "A" / "train" / "2.png"), "no partner")
    assert not (tmp_path / "AB").exists(), "checked before writing anything"


def test_combine_size_mismatch_names_both(tmp_path: Path) -> None:
    _image(tmp_path / "A" / "1.png", 8, 8, seed=1)
    _image(tmp_path / "B" / "1.png", 8, 6, seed=2)
    result = _run("combine_A_and_B.py", "--fold-A", str(tmp_path / "A"), "--fold-B", str(tmp_path / "B"),
                  "--output", str(tmp_path / "AB"))
    _assert_one_line_error(result, str(tmp_path / "A" / "1.png"), str(tmp_path / "B" / "1.png"), "8x8", "8x6")


def test_combine_missing_folders(tmp_path: Path) -> None:
    _image(tmp_path / "A" / "train" / "1.png", 8, 8, seed=1)
    (tmp_path / "B").mkdir()
    with pytest.raises(DataError, match="no partner folder"):
        combine_pairs(tmp_path / "A", tmp_path / "B", tmp_path / "AB")
    with pytest.raises(DataError, match="not found"):
        combine_pairs(tmp_path / "nope", tmp_path / "B", tmp_path / "AB")
