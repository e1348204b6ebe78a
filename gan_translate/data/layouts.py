"""The dataset layouts users already have, described once: the DataModules and ``evaluate`` both read them here.

* **unpaired** (CycleGAN, the classic code's ``unaligned``): ``trainA/ trainB/ testA/ testB/``, optionally
  ``valA/ valB/`` and ground truth beside a split (``testA_gt/``: the true B of each ``testA`` image, by name);
* **paired** (pix2pix): split folders ``train/ val/ test/``, each holding A|B side-by-side images (``aligned``,
  the classic datasets) or ``A/`` and ``B/`` with matching names (``folders``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from gan_translate.core.errors import DataError

__all__ = [
    "PairedLayout",
    "detect_paired_layout",
    "first_split",
    "ground_truth_folder",
    "split_halves",
    "unpaired_eval_split",
    "unpaired_folders",
]

PairedLayout = Literal["aligned", "folders"]


def unpaired_folders(root: Path, split: str) -> tuple[Path, Path]:
    """``(root/<split>A, root/<split>B)``."""
    return root / f"{split}A", root / f"{split}B"


def ground_truth_folder(root: Path, split: str, side: str) -> Path | None:
    """``root/<split><side>_gt`` (the true images of the other domain for ``<split><side>``), or None if absent."""
    folder = root / f"{split}{side}_gt"
    return folder if folder.is_dir() else None


def unpaired_eval_split(root: Path) -> str | None:
    """The split an unpaired dataset validates on: ``val`` when ``valA/`` and ``valB/`` exist, else ``test``."""
    for split in ("val", "test"):
        if all(folder.is_dir() for folder in unpaired_folders(root, split)):
            return split
    return None


def first_split(root: Path, *candidates: str) -> Path | None:
    """The first of ``root/<candidate>`` split folders that exists (paired data: ``val`` else ``test``)."""
    return next((root / c for c in candidates if (root / c).is_dir()), None)


def detect_paired_layout(split_dir: Path) -> PairedLayout:
    """``folders`` when ``split_dir`` holds ``A/`` and ``B/``, else ``aligned`` (A|B side-by-side files)."""
    return "folders" if (split_dir / "A").is_dir() and (split_dir / "B").is_dir() else "aligned"


def split_halves(image: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An aligned A|B image -> ``(A, B)``: its left and right halves; an odd width is a DataError naming ``path``."""
    width = image.shape[1]
    if width % 2:
        raise DataError(f"cannot split {path} into A|B halves: its width {width} is odd")
    return image[:, : width // 2], image[:, width // 2 :]
