"""Pixel-aligned A/B pairs (pix2pix): side-by-side A|B files, or two folders with matching names.

Both datasets transform A and B in ONE albumentations call (B as an additional target), so the
pair gets the identical resize, crop and flip and stays pixel-aligned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import albumentations as A
import numpy as np

from gan_translate.data.base import (
    PathLike,
    SeededTransformDataset,
    gather_images,
    load_same_size,
    match_by_name,
    require_targets,
)
from gan_translate.data.io import OnBadFile, check_images, list_images, load_image
from gan_translate.errors import DataError, UserError

__all__ = ["AlignedDataset", "Direction", "PairedFolderDataset"]

Direction = Literal["AtoB", "BtoA"]
_B_KEY = "B"  # the additional albumentations target that carries the B image


def _check_direction(direction: str) -> None:
    if direction not in ("AtoB", "BtoA"):
        raise UserError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")


class _PairedBase(SeededTransformDataset):
    """Shared: apply one transform call to (A, B), honour the direction, build the batch dict."""

    direction: str

    def _item(self, a: np.ndarray, b: np.ndarray, path_a: Path, path_b: Path) -> dict[str, Any]:
        if self.direction == "BtoA":
            a, b, path_a, path_b = b, a, path_b, path_a
        out = self.transform(image=a, **{_B_KEY: b})
        return {"A": out["image"], "B": out[_B_KEY], "A_path": str(path_a), "B_path": str(path_b)}


class AlignedDataset(_PairedBase):
    """The classic pix2pix layout: each file holds A (left half) and B (right half) side by side.

    ``direction="BtoA"`` swaps them. An odd width cannot be split and raises DataError naming
    the file. ``A_path`` and ``B_path`` are both the combined file.
    """

    def __init__(
        self,
        root: PathLike,
        transform: A.Compose,
        direction: Direction = "AtoB",
        max_size: int | None = None,
        on_bad_file: OnBadFile = "error",
        seed: int | None = 0,
    ) -> None:
        _check_direction(direction)
        self.root = Path(root)
        self.direction = direction
        self.paths = gather_images(root, max_size, on_bad_file)
        require_targets(transform, (_B_KEY,))
        super().__init__(transform, seed)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        ab = load_image(path)
        width = ab.shape[1]
        if width % 2:
            raise DataError(f"cannot split {path} into A|B halves: its width {width} is odd")
        half = width // 2
        return self._item(ab[:, :half], ab[:, half:], path, path)


class PairedFolderDataset(_PairedBase):
    """Two folders whose files pair up by name (``dir_a/x.jpg`` <-> ``dir_b/x.png``; extension may differ).

    A file without a partner on either side raises DataError naming it; partners of different
    sizes raise DataError naming both (when loaded). With ``on_bad_file="skip"`` a pair is
    dropped when either file is unreadable.
    """

    def __init__(
        self,
        dir_a: PathLike,
        dir_b: PathLike,
        transform: A.Compose,
        direction: Direction = "AtoB",
        max_size: int | None = None,
        on_bad_file: OnBadFile = "error",
        seed: int | None = 0,
    ) -> None:
        _check_direction(direction)
        self.dir_a, self.dir_b = Path(dir_a), Path(dir_b)
        self.direction = direction
        paths_a = gather_images(dir_a, max_size, on_bad_file)
        paths_b = match_by_name(paths_a, dir_a, dir_b, "partner in B")
        # The other way round too, over the full listing (a cap or skipped files are not "extra"):
        # a B without an A usually means a misnamed file, and silently training without it hides that.
        match_by_name(list_images(dir_b), dir_b, dir_a, "partner in A")
        good_b = set(check_images(paths_b, on_bad_file, decode=on_bad_file == "skip"))
        pairs = [(a, b) for a, b in zip(paths_a, paths_b) if b in good_b]
        if not pairs:
            raise DataError(f"no readable image pairs in {dir_a} and {dir_b}")
        self.paths_a = [a for a, _ in pairs]
        self.paths_b = [b for _, b in pairs]
        require_targets(transform, (_B_KEY,))
        super().__init__(transform, seed)

    def __len__(self) -> int:
        return len(self.paths_a)

    def __getitem__(self, index: int) -> dict[str, Any]:
        a, b = load_same_size(self.paths_a[index], self.paths_b[index])
        return self._item(a, b, self.paths_a[index], self.paths_b[index])
