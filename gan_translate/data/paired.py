"""Pixel-aligned A/B pairs (pix2pix): side-by-side A|B files, or two folders with matching names.

Both datasets transform A and B in ONE albumentations call (B as an additional target), so the
pair gets the identical resize, crop and flip and stays pixel-aligned.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np

from gan_translate.core.directions import Direction, check_direction, domains
from gan_translate.core.errors import DataError
from gan_translate.data.base import (
    PathLike,
    SeededTransformDataset,
    gather_images,
    load_same_size,
    match_by_name,
    require_targets,
)
from gan_translate.data.io import OnBadFile, check_images, list_images, load_image, upright_size
from gan_translate.data.layouts import split_halves

__all__ = ["AlignedDataset", "PairedFolderDataset"]

_B_KEY = "B"  # the additional albumentations target that carries the B image


class _PairedBase(SeededTransformDataset):
    """Shared: find the pairs under ``root`` (``_pairs``), apply one transform call to (A, B), honour the direction,
    build the batch dict."""

    def __init__(
        self,
        root: PathLike,
        transform: A.Compose,
        direction: Direction = "AtoB",
        max_size: int | None = None,
        on_bad_file: OnBadFile = "error",
        seed: int | None = 0,
    ) -> None:
        self.direction = check_direction(direction)
        self.root = Path(root)
        self.pairs = self._pairs(max_size, on_bad_file)
        require_targets(transform, (_B_KEY,))
        super().__init__(transform, seed)

    def _pairs(self, max_size: int | None, on_bad_file: OnBadFile) -> list[tuple[Path, Path]]:
        """``(A file, B file)`` of every usable pair under ``root``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.pairs)

    def _item(self, a: np.ndarray, b: np.ndarray, path_a: Path, path_b: Path) -> dict[str, Any]:
        if domains(self.direction)[0] == "B":  # BtoA: the right / B side is the input
            a, b, path_a, path_b = b, a, path_b, path_a
        out = self.transform(image=a, **{_B_KEY: b})
        return {"A": out["image"], "B": out[_B_KEY], "A_path": str(path_a), "B_path": str(path_b)}


class AlignedDataset(_PairedBase):
    """The classic pix2pix layout: each file holds A (left half) and B (right half) side by side.

    ``direction="BtoA"`` swaps them. An odd width cannot be split and raises DataError naming
    the file when the dataset is built (skipped with a warning under ``on_bad_file="skip"``).
    ``A_path`` and ``B_path`` are both the combined file.
    """

    def _pairs(self, max_size: int | None, on_bad_file: OnBadFile) -> list[tuple[Path, Path]]:
        return [(path, path) for path in self._splittable(gather_images(self.root, max_size, on_bad_file), on_bad_file)]

    @staticmethod
    def _splittable(paths: list[Path], on_bad_file: OnBadFile) -> list[Path]:
        """The files whose width splits into A|B halves, checked from their headers before training starts (not
        when an epoch first reaches one); odd widths are an error, or skipped with a warning under ``skip``."""
        odd = [(path, width) for path in paths for width, _ in [upright_size(path)] if width % 2]
        if not odd:
            return paths
        path, width = odd[0]
        more = f" (and {len(odd) - 1} more)" if len(odd) > 1 else ""
        if on_bad_file != "skip":
            raise DataError(f"cannot split {path} into A|B halves: its width {width} is odd{more}")
        for path, width in odd:
            warnings.warn(f"skipping {path}: its width {width} is odd, so it cannot be split into A|B halves", stacklevel=3)
        kept = [path for path in paths if path not in {p for p, _ in odd}]
        if not kept:
            raise DataError(f"no image in {paths[0].parent} has an even width to split into A|B halves")
        return kept

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.pairs[index][0]
        a, b = split_halves(load_image(path), path)
        return self._item(a, b, path, path)


class PairedFolderDataset(_PairedBase):
    """``root/A`` and ``root/B``, whose files pair up by name (``A/x.jpg`` <-> ``B/x.png``; extension may differ).

    A file without a partner on either side raises DataError naming it; partners of different
    sizes raise DataError naming both (from the headers, when the dataset is built). With
    ``on_bad_file="skip"`` a pair is dropped, with a warning, when either file is unreadable or
    their sizes differ.
    """

    def _pairs(self, max_size: int | None, on_bad_file: OnBadFile) -> list[tuple[Path, Path]]:
        dir_a, dir_b = self.root / "A", self.root / "B"
        paths_a = gather_images(dir_a, max_size, on_bad_file)
        paths_b = match_by_name(paths_a, dir_a, dir_b, "partner in B")
        # The other way round too, over the full listing (a cap or skipped files are not "extra"):
        # a B without an A usually means a misnamed file, and silently training without it hides that.
        match_by_name(list_images(dir_b), dir_b, dir_a, "partner in A")
        good_b = set(check_images(paths_b, on_bad_file, decode=on_bad_file == "skip"))
        pairs = self._same_size([(a, b) for a, b in zip(paths_a, paths_b) if b in good_b], on_bad_file)
        if not pairs:
            raise DataError(f"no readable image pairs in {dir_a} and {dir_b}")
        return pairs

    @staticmethod
    def _same_size(pairs: list[tuple[Path, Path]], on_bad_file: OnBadFile) -> list[tuple[Path, Path]]:
        """The pairs whose two images have one size, checked from their headers before training starts; others
        are an error, or skipped with a warning under ``skip``."""
        kept = []
        for a, b in pairs:
            size_a, size_b = upright_size(a), upright_size(b)
            if size_a == size_b:
                kept.append((a, b))
                continue
            message = (f"paired images differ in size: {a} is {size_a[0]}x{size_a[1]}, {b} is {size_b[0]}x{size_b[1]} "
                       "(width x height)")
            if on_bad_file != "skip":
                raise DataError(message)
            warnings.warn(f"skipping the pair: {message}", stacklevel=3)
        return kept

    def __getitem__(self, index: int) -> dict[str, Any]:
        path_a, path_b = self.pairs[index]
        a, b = load_same_size(path_a, path_b)
        return self._item(a, b, path_a, path_b)
