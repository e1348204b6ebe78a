"""Image files: finding them, reading any image a user can have, writing results.

Everything that reads or writes image files goes through here, so every odd file a user can have (grayscale,
palette, alpha, 16-bit, CMYK, 1-bit, EXIF-rotated, corrupt) is handled once. On disk and in numpy, images are
``uint8`` ``HxWx3`` RGB; the conversions to and from tensors are in :mod:`gan_translate.core.images`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from gan_translate.core.errors import DataError
from gan_translate.core.files import atomic_write
from gan_translate.core.images import to_rgb_array

__all__ = [
    "IMG_EXTENSIONS",
    "OnBadFile",
    "check_images",
    "list_images",
    "load_image",
    "save_image",
    "upright_size",
    "writable_image_format",
]

log = logging.getLogger(__name__)

#: Accepted image file extensions (lower case; matching is case-insensitive).
IMG_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp", ".gif",
)

OnBadFile = Literal["error", "skip"]


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_image_file(path: Path) -> bool:
    # Hidden files are skipped: macOS "._x.jpg" AppleDouble files carry image extensions but are
    # not images, and save_image's own in-progress temp files start with a dot.
    return path.suffix.lower() in IMG_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def list_images(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Sorted image files in ``folder`` (extensions in :data:`IMG_EXTENSIONS`, any case).

    Raises :class:`DataError` when the folder is missing or holds no images.
    """
    root = Path(folder)
    accepted = ", ".join(IMG_EXTENSIONS)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "not found"
        raise DataError(f"image folder {what}: {root} (expected a folder of {accepted} images)")
    if recursive:
        files = [
            p for p in root.rglob("*")
            # hidden folders (.ipynb_checkpoints, .git, ...) hold copies, not data
            if not any(part.startswith(".") for part in p.relative_to(root).parts[:-1]) and _is_image_file(p)
        ]
    else:
        files = [p for p in root.iterdir() if _is_image_file(p)]
    if not files:
        where = "" if recursive else "; subfolders are not searched"
        raise DataError(f"no images in {root} (accepted extensions: {accepted}{where})")
    return sorted(files)


def _open_decoded(path: Path) -> Image.Image:
    """Open and fully decode ``path`` (so truncation surfaces here), or raise DataError."""
    try:
        with Image.open(path) as img:
            img.load()
            # Make a decoded copy that does not hold the file open (no leaked file handles).
            decoded = img.copy()
            decoded.info = dict(img.info)
    except MemoryError:
        raise
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    except PermissionError:
        raise DataError(f"cannot read image {path}: permission denied") from None
    except IsADirectoryError:
        raise DataError(f"cannot read image {path}: it is a folder") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"cannot read image {path}: too large to decode safely ({_one_line(exc)})") from None
    except Image.UnidentifiedImageError:
        raise DataError(f"cannot read image {path}: not an image file (or an unsupported format)") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, EOFError, zlib.error ...
        raise DataError(f"cannot read image {path}: corrupt or truncated ({_one_line(exc)})") from None
    return decoded


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as ``uint8`` ``HxWx3`` RGB, upright per its EXIF orientation.

    Handles palette, grayscale, alpha (composited on white), 16-bit, CMYK and 1-bit images.
    Raises :class:`DataError` naming the file when it cannot be read or decoded.
    """
    path = Path(path)
    img = _open_decoded(path)
    try:
        return to_rgb_array(img)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever PIL's mode conversion raises, the file is named
        raise DataError(f"cannot read image {path}: unsupported image mode {img.mode} ({_one_line(exc)})") from None


def writable_image_format(path: Path) -> str | None:
    """The PIL format that writes images under ``path``'s extension, or None when no writer knows it."""
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        return None
    Image.init()  # registers every writer, so SAVE is complete
    return fmt if fmt in Image.SAVE else None


def _pil_format_for(path: Path) -> str:
    fmt = writable_image_format(path)
    if fmt is None:
        raise DataError(f"cannot save image {path}: unknown image extension {path.suffix!r} (use e.g. .png or .jpg)")
    return fmt


def save_image(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a ``uint8`` ``HxWx3`` (or ``HxW``) image atomically (:func:`gan_translate.core.files.atomic_write`);
    the format follows the suffix."""
    path = Path(path)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"save_image expects uint8 pixels, got {arr.dtype} (use gan_translate.core.images.tensor_to_uint8 first)")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"save_image expects HxW or HxWx3 pixels, got shape {arr.shape}")
    fmt = _pil_format_for(path)
    pil = Image.fromarray(np.ascontiguousarray(arr))
    if fmt == "JPEG" and pil.mode == "RGBA":
        pil = pil.convert("RGB")
    # One Netpbm writer serves three extensions; it writes whatever the mode is, so give each its own.
    netpbm_mode = {".pgm": "L", ".pbm": "1"}.get(path.suffix.lower())
    if netpbm_mode is not None and pil.mode != netpbm_mode:
        pil = pil.convert(netpbm_mode)
    # High quality, and no chroma subsampling for JPEG: translated images have thin coloured edges.
    options: dict[str, int] = {"JPEG": {"quality": 95, "subsampling": 0}, "WEBP": {"quality": 95}}.get(fmt, {})

    # Atomic (a hidden temp file renamed over `path`): an interrupted run never leaves a half-written image.
    with atomic_write(path) as handle:
        pil.save(handle, format=fmt, **options)


class ImageList(list[Path]):
    """A list of good image paths that also remembers which files were skipped."""

    skipped: list[Path]

    def __init__(self, good: Iterable[Path] = (), skipped: Iterable[Path] = ()) -> None:
        super().__init__(good)
        self.skipped = list(skipped)


def _check_one(path: Path, decode: bool) -> str | None:
    """None when ``path`` is a readable image, else the DataError message."""
    try:
        if not decode:
            try:
                with Image.open(path):  # header only: catches non-images and unreadable files
                    return None
            except MemoryError:
                raise
            except Exception:  # noqa: BLE001 - fall through to the full read for the precise message
                pass
        _open_decoded(path)
    except DataError as exc:
        return str(exc)
    return None


def upright_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of an image as :func:`load_image` returns it (EXIF-rotated), from its header only."""
    with Image.open(path) as img:
        width, height = img.size
        try:
            orientation = img.getexif().get(0x0112, 1)  # 5-8: rotated by 90 degrees, width and height swap
        except Exception:  # noqa: BLE001 - load_image ignores a broken EXIF block too
            orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def check_images(
    paths: Sequence[str | os.PathLike[str]],
    on_bad_file: OnBadFile = "error",
    *,
    decode: bool = True,
) -> ImageList:
    """Return the paths that open (and, with ``decode``, fully decode) as images.

    ``on_bad_file="error"`` raises :class:`DataError` naming the first bad file; ``"skip"`` warns
    once per bad file, logs ``"skipped K of N images in <folder>"`` and returns the good ones
    (the skipped ones are in the result's ``.skipped``). ``decode=False`` only reads headers,
    which is much faster on large datasets but lets truncated files through to load time.
    """
    if on_bad_file not in ("error", "skip"):
        raise DataError(f"on_bad_file must be 'error' or 'skip', got {on_bad_file!r}")
    files = [Path(p) for p in paths]
    # Decoding is mostly C code that releases the GIL, so threads give a real speed-up here.
    workers = min(8, os.cpu_count() or 1) if len(files) > 32 else 1
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            problems = list(pool.map(lambda p: _check_one(p, decode), files))
    else:
        problems = [_check_one(p, decode) for p in files]

    good: list[Path] = []
    bad: list[Path] = []
    for path, problem in zip(files, problems):
        if problem is None:
            good.append(path)
            continue
        if on_bad_file == "error":
            raise DataError(problem)
        warnings.warn(f"skipping {problem}", stacklevel=2)
        bad.append(path)
    if bad:
        folder = os.path.commonpath([str(p.parent) for p in files])
        log.warning("skipped %d of %d images in %s", len(bad), len(files), folder)
    return ImageList(good, bad)
