#!/usr/bin/env python
"""Download the public CycleGAN / pix2pix datasets from their classic location.

    python datasets/download.py cyclegan horse2zebra --root data/
    python datasets/download.py pix2pix facades --root data/
    python datasets/download.py pretrained horse2zebra --root checkpoints/   # a classic pretrained generator

The ``pretrained`` kind fetches one generator of the classic model zoo (gan_translate.artifacts.classic_zoo) to
ROOT/NAME.pth and prints the ``gan-translate import-classic`` command that reads it (docs/classic_models.md).

The archive goes to a temporary file next to its destination, is unpacked to a temporary folder and
only then moved to ROOT/NAME, so an interrupted run never leaves a half dataset behind; an existing
dataset folder is never overwritten. Without network the script fails with one line (exit code 2) that
names the URL and where to put the files by hand. The host can be replaced with --mirror or the
GAN_TRANSLATE_DATASETS_MIRROR environment variable (a local mirror, or tests).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

try:
    from gan_translate.core.errors import DataError, UserError
except ImportError:  # run from a checkout without `pip install -e .`: use the repository's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gan_translate.core.errors import DataError, UserError

DEFAULT_MIRROR = "http://efrosgans.eecs.berkeley.edu"
MIRROR_ENV = "GAN_TRANSLATE_DATASETS_MIRROR"

DATASETS: dict[str, tuple[str, ...]] = {
    "cyclegan": (
        "apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo", "ukiyoe2photo",
        "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower", "ae_photos",
    ),
    "pix2pix": ("cityscapes", "night2day", "edges2handbags", "edges2shoes", "facades", "maps"),
}
_ARCHIVE = {"cyclegan": "cyclegan/datasets/{name}.zip", "pix2pix": "pix2pix/datasets/{name}.tar.gz"}
_LAYOUT = {"cyclegan": "trainA/ trainB/ testA/ testB/", "pix2pix": "train/ val/ (and test/ where the set has one)"}
_CHUNK = 1 << 20


def dataset_url(kind: str, name: str, mirror: str | None = None) -> str:
    """The archive URL of dataset ``name`` of ``kind`` ('cyclegan' or 'pix2pix'); unknown names raise UserError."""
    if kind not in DATASETS:
        raise UserError(f"unknown dataset kind {kind!r}; valid: {', '.join(DATASETS)}")
    if name not in DATASETS[kind]:
        raise UserError(f"unknown {kind} dataset {name!r}; valid: {', '.join(DATASETS[kind])}")
    mirror = mirror or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    return f"{mirror.rstrip('/')}/{_ARCHIVE[kind].format(name=name)}"


def _fetch(url: str, target: Path, timeout: float) -> None:
    """Stream ``url`` into ``target`` with a progress bar."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=url.rsplit("/", 1)[-1]) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")


def _extract(archive: Path, into: Path) -> None:
    """Unpack a .zip or .tar.gz into ``into``, refusing members that would land outside it."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            base = into.resolve()
            for member in zf.namelist():
                if not (base / member).resolve().is_relative_to(base):
                    raise DataError(f"unsafe path {member!r} in {archive.name}")
            zf.extractall(into)
    else:
        with tarfile.open(archive, "r:gz") as tf:
            tf.extractall(into, filter="data")  # the "data" filter rejects absolute paths, links out, devices


def _dataset_folder(extracted: Path, name: str) -> Path:
    """The dataset folder inside the unpacked archive: ``name/``, else its only top-level folder."""
    if (extracted / name).is_dir():
        return extracted / name
    folders = [p for p in extracted.iterdir() if p.is_dir() and p.name != "__MACOSX"]
    return folders[0] if len(folders) == 1 else extracted


def download(kind: str, name: str, root: str | Path = "data", mirror: str | None = None, timeout: float = 30.0) -> Path:
    """Download and unpack dataset ``name`` to ``root/name`` and return that folder."""
    url = dataset_url(kind, name, mirror)
    root = Path(root)
    target = root / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError(f"{target} already exists; remove it or choose another --root (datasets are never overwritten)")
    created_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".zip" if url.endswith(".zip") else ".tar.gz"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}-", suffix=suffix, dir=root)
    os.close(fd)
    archive = Path(tmp_name)
    extracted: Path | None = None
    try:
        try:
            _fetch(url, archive, timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            reason = " ".join(str(getattr(exc, "reason", exc)).split())  # one line, whatever the library says
            raise DataError(
                f"download failed: {url} ({reason}); download it by hand and unpack it so that "
                f"{target}/ holds {_LAYOUT[kind]}"
            ) from None
        extracted = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            _extract(archive, extracted)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"{url} did not give a valid archive ({exc}); download it by hand into {target}/") from None
        if target.exists():  # appeared while we were downloading; an empty folder is fine to replace
            target.rmdir()
        os.replace(_dataset_folder(extracted, name), target)
    finally:
        archive.unlink(missing_ok=True)
        if extracted is not None and extracted.exists():
            shutil.rmtree(extracted)
        if created_root and not target.exists() and root.exists() and not any(root.iterdir()):
            root.rmdir()
    return target


def download_pretrained(name: str, root: str | Path, mirror: str | None, timeout: float) -> str:
    """Fetch classic zoo generator ``name`` into ``root``; returns the line telling how to import it."""
    from gan_translate.artifacts.classic_zoo import download_classic_model, zoo_model

    path = download_classic_model(name, root, mirror=mirror, timeout=timeout)
    return f"{path}: import it with `gan-translate import-classic {path} {zoo_model(name).flags()} --output MODEL.safetensors`"


def build_parser() -> argparse.ArgumentParser:
    """Command-line options, with their defaults shown in --help."""
    parser = argparse.ArgumentParser(
        description="Download a public CycleGAN (unpaired) or pix2pix (aligned) dataset into ROOT/NAME. "
        + " ".join(f"{kind}: {', '.join(names)}." for kind, names in DATASETS.items())
        + " pretrained: a classic pretrained generator into ROOT/NAME.pth (`gan-translate import-classic --list`).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("kind", choices=[*sorted(DATASETS), "pretrained"], help="which collection")
    parser.add_argument("name", help="dataset name, e.g. horse2zebra (cyclegan) or facades (pix2pix)")
    parser.add_argument("--root", default="data", help="folder that receives ROOT/NAME")
    parser.add_argument(
        "--mirror",
        default=os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR,
        help=f"host serving cyclegan/datasets/ and pix2pix/datasets/ (a local mirror; also ${MIRROR_ENV})",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Download one dataset; user and network errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    try:
        if args.kind == "pretrained":
            print(download_pretrained(args.name, args.root, args.mirror, args.timeout))
            return 0
        target = download(args.kind, args.name, args.root, mirror=args.mirror, timeout=args.timeout)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; nothing was kept", file=sys.stderr)
        return 130
    print(f"{args.kind} dataset {args.name} is in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
