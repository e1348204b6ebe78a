"""Image files on disk <-> uint8 RGB arrays <-> [-1, 1] tensors.

Everything that reads or writes image files goes through here, so every odd file a user can
have (grayscale, palette, alpha, 16-bit, CMYK, 1-bit, EXIF-rotated, corrupt) is handled once.
On disk and in numpy, images are ``uint8`` ``HxWx3`` RGB; inside the framework they are float
tensors in ``[-1, 1]``. This module imports numpy and PIL only (torch lazily), so
``from gan_translate.data.io import load_image`` stays cheap.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageOps

from gan_translate.errors import DataError

if TYPE_CHECKING:
    import torch

__all__ = [
    "IMG_EXTENSIONS",
    "OnBadFile",
    "check_images",
    "list_images",
    "load_image",
    "save_image",
    "tensor_to_uint8",
    "to_rgb_array",
    "uint8_to_tensor",
    "unused_path",
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


def _rescale_to_uint8(a: np.ndarray, full_scale: float) -> np.ndarray:
    """Linearly map ``[0, full_scale]`` to ``[0, 255]`` with rounding (not truncation or clipping)."""
    scaled = np.rint(a.astype(np.float64) * (255.0 / full_scale))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _high_bit_depth_to_uint8(img: Image.Image) -> np.ndarray:
    """Gray 16/32-bit integer (I;16*, I) or float (F) images -> uint8 HxW."""
    a = np.asarray(img)
    if img.mode.startswith("I;16"):
        return _rescale_to_uint8(a, 65535.0)
    if img.mode == "I":
        # Mode "I" is what PIL (and older PIL for 16-bit PNGs) gives 16-bit sources, so a range
        # that fits 16 bits is read as 16 bits; anything else has no defined full scale, so it is
        # stretched from its own minimum to its maximum.
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 65535:
            return _rescale_to_uint8(a, 65535.0)
        return _rescale_to_uint8(a - lo, float(max(hi - lo, 1)))
    # "F": float TIFFs are conventionally [0, 1]; larger values are taken as [0, 255].
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return _rescale_to_uint8(a, 1.0 if a.max(initial=0.0) <= 1.0 else 255.0)


def _mode_to_rgb(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 HxWx3 RGB."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        gray = _high_bit_depth_to_uint8(img)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        # Composite on white rather than dropping alpha: convert("RGB") would expose whatever
        # colour the transparent pixels happen to store (often black or junk), and transparent
        # backgrounds in sketches / product shots (edges2shoes, icons, logos) mean "paper", i.e. white.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    # convert() covers 1, L, P, CMYK (PIL's profile-free inversion), YCbCr, LAB, HSV and RGBA.
    return np.array(img.convert("RGB"), dtype=np.uint8)  # a writable copy (asarray of PIL is read-only)


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
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, EOFError, zlib.error ...
        raise DataError(f"cannot read image {path}: corrupt or truncated ({_one_line(exc)})") from None
    return decoded


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """A PIL image of any mode -> ``uint8`` ``HxWx3`` RGB, upright per its EXIF orientation.

    Palette, grayscale, alpha (composited on white), 16-bit, float, CMYK and 1-bit are handled.
    """
    try:
        img = ImageOps.exif_transpose(img)  # returns a copy without the orientation tag: never applied twice
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose an otherwise good image
        log.debug("ignoring unreadable EXIF orientation in %s", getattr(img, "filename", "an image"))
    return np.ascontiguousarray(_mode_to_rgb(img))


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
    except Exception as exc:
        raise DataError(f"cannot read image {path}: unsupported image mode {img.mode} ({_one_line(exc)})") from None


def unused_path(path: Path) -> Path:
    """``path``, or ``<stem>-1<suffix>``, ``<stem>-2<suffix>``, ...: the first name beside it that nothing has."""
    candidate, index = path, 1
    while candidate.exists():
        candidate, index = path.with_name(f"{path.stem}-{index}{path.suffix}"), index + 1
    return candidate


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
    """Write a ``uint8`` ``HxWx3`` (or ``HxW``) image atomically; the format follows the suffix.

    The data goes to a hidden temp file in the same folder, which is then renamed over ``path``
    (``os.replace`` is atomic within a filesystem), so an interrupted run never leaves a
    half-written image and an existing file stays intact until the new one is complete.
    """
    path = Path(path)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"save_image expects uint8 pixels, got {arr.dtype} (use tensor_to_uint8 first)")
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

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            pil.save(fh, format=fmt, **options)
        # mkstemp creates 0600 files; give the result the permissions a normal write would have
        # (or keep those of the file being replaced). No fsync: this guards against a killed
        # process, which is the common case; a power cut is the filesystem's business.
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def tensor_to_uint8(t: torch.Tensor) -> np.ndarray:
    """A ``CHW`` / ``NCHW`` tensor in ``[-1, 1]`` -> ``HWC`` / ``NHWC`` ``uint8`` (rounded, clamped)."""
    import torch

    if t.ndim not in (3, 4):
        raise ValueError(f"tensor_to_uint8 expects CHW or NCHW, got shape {tuple(t.shape)}")
    x = torch.nan_to_num(t.detach().to("cpu", torch.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    x = ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(x.movedim(-3, -1).numpy())


def uint8_to_tensor(a: np.ndarray) -> torch.Tensor:
    """A ``uint8`` ``HxWx3`` (or ``HxW``) array -> a float32 ``CHW`` tensor in ``[-1, 1]``."""
    import torch

    arr = np.asarray(a)
    if arr.dtype != np.uint8:
        raise ValueError(f"uint8_to_tensor expects uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"uint8_to_tensor expects HxW or HxWxC, got shape {arr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(torch.float32)
    return x / 127.5 - 1.0


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
