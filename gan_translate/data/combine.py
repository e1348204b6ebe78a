"""Combine two folders of same-named images into pix2pix's aligned format (A | B side by side).

``dir_a`` and ``dir_b`` either both hold ``train/``, ``val/``, ``test/`` sub-folders (each combined into
the same sub-folder of the output) or are flat folders of images. Every image needs a partner of the
same name (extension aside) and the same size on the other side; anything else is a :class:`DataError`
naming the file, so a half-matched folder never turns silently into a smaller dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps

from gan_translate.core.errors import DataError
from gan_translate.core.files import atomic_write

__all__ = ["IMAGE_EXTENSIONS", "SPLIT_NAMES", "combine_pairs"]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"})
SPLIT_NAMES = ("train", "val", "test")


def _images_by_stem(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` keyed by stem, so x.jpg in A pairs with x.png in B."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            if path.stem in found:
                raise DataError(f"two images named {path.stem!r} in {folder}: {found[path.stem].name} and {path.name}")
            found[path.stem] = path
    return found


def _open(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            # Respect camera orientation so a rotated phone photo pairs with its upright partner.
            return ImageOps.exif_transpose(image)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def _combine_folder(dir_a: Path, dir_b: Path, out_dir: Path, on_image: Callable[[], object]) -> int:
    images_a, images_b = _images_by_stem(dir_a), _images_by_stem(dir_b)
    if not images_a and not images_b:
        raise DataError(f"no images in {dir_a} or {dir_b}")
    for stem, path in images_a.items():
        if stem not in images_b:
            raise DataError(f"{path} has no partner in {dir_b} (expected {dir_b / path.name})")
    for stem, path in images_b.items():
        if stem not in images_a:
            raise DataError(f"{path} has no partner in {dir_a} (expected {dir_a / path.name})")

    out_dir.mkdir(parents=True, exist_ok=True)
    for stem, path_a in images_a.items():
        path_b = images_b[stem]
        image_a, image_b = _open(path_a), _open(path_b)
        if image_a.size != image_b.size:
            (wa, ha), (wb, hb) = image_a.size, image_b.size
            raise DataError(f"size mismatch: {path_a} is {wa}x{ha} but {path_b} is {wb}x{hb}")
        if image_a.mode != image_b.mode:  # keep the common mode (e.g. 16-bit) when there is one
            image_a, image_b = image_a.convert("RGB"), image_b.convert("RGB")
        width, height = image_a.size
        pair = Image.new(image_a.mode, (2 * width, height))
        pair.paste(image_a, (0, 0))
        pair.paste(image_b, (width, 0))
        # PNG: lossless, so combining never degrades JPEG inputs a second time. Atomic, so an interrupted run
        # never leaves a truncated image.
        with atomic_write(out_dir / f"{stem}.png") as handle:
            pair.save(handle, format="PNG")
        on_image()
    return len(images_a)


def combine_pairs(dir_a: str | Path, dir_b: str | Path, out_dir: str | Path) -> int:
    """Write ``out_dir/[split/]name.png`` = A | B for every same-named pair; return how many were written.

    Split sub-folders (train/val/test) are used when ``dir_a`` has any; ``dir_b`` must then have the same ones.
    """
    from tqdm import tqdm

    dir_a, dir_b, out_dir = Path(dir_a), Path(dir_b), Path(out_dir)
    for folder in (dir_a, dir_b):
        if not folder.is_dir():
            raise DataError(f"image folder not found: {folder}")
    splits = [name for name in SPLIT_NAMES if (dir_a / name).is_dir()]
    if splits:
        missing = [name for name in splits if not (dir_b / name).is_dir()]
        if missing:
            raise DataError(f"{dir_a / missing[0]} has no partner folder {dir_b / missing[0]}")
        jobs = [(dir_a / name, dir_b / name, out_dir / name) for name in splits]
    else:
        jobs = [(dir_a, dir_b, out_dir)]

    total = sum(len(_images_by_stem(a)) for a, _, _ in jobs)
    written = 0
    with tqdm(total=total, desc=f"combining -> {out_dir}", unit="img", disable=total <= 50, leave=False) as bar:
        for a, b, out in jobs:
            written += _combine_folder(a, b, out, bar.update)
    return written
