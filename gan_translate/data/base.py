"""What every image dataset here shares: gathering files, matching partner files, one seeded transform.

A dataset holds ONE albumentations ``Compose`` and exposes it as ``transforms`` (a list, the
contract :func:`~gan_translate.data.transforms.seed_worker` relies on) together with
``set_random_seed(seed)``, which reseeds the transform and any RNG of the dataset's own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch

from gan_translate.core.errors import DataError, UserError
from gan_translate.data.io import OnBadFile, check_images, list_images, load_image
from gan_translate.data.transforms import seed_transform

__all__ = ["SeededTransformDataset", "gather_images", "load_same_size", "match_by_name", "require_targets"]

PathLike = str | os.PathLike[str]


def gather_images(
    folder: PathLike,
    max_size: int | None = None,
    on_bad_file: OnBadFile = "error",
    recursive: bool = False,
) -> list[Path]:
    """The sorted images of ``folder``, capped at ``max_size``, with bad files handled per ``on_bad_file``.

    The cap is applied before checking (checking a huge folder to use a few images is wasted
    time). With ``"error"`` only headers are read up front (fast; a truncated file is still
    reported, naming it, when it is loaded); ``"skip"`` decodes everything to know what to drop.
    """
    if max_size is not None and max_size < 1:
        raise UserError(f"max_dataset_size must be positive or null, got {max_size}")
    files = list_images(folder, recursive=recursive)
    if max_size is not None:
        files = files[:max_size]
    good = check_images(files, on_bad_file, decode=on_bad_file == "skip")
    if not good:
        raise DataError(f"no readable images in {folder} ({len(files)} files skipped as unreadable)")
    return list(good)


def match_by_name(paths: list[Path], src_root: PathLike, partner_root: PathLike, what: str) -> list[Path]:
    """For each ``src_root/<rel>.<ext>`` find ``partner_root/<rel>.<any ext>`` (same name preferred).

    Raises :class:`DataError` naming the first missing ``what`` (e.g. "ground truth").
    """
    src_root, partner_root = Path(src_root), Path(partner_root)
    by_stem: dict[Path, list[Path]] = {}
    for p in list_images(partner_root, recursive=True):
        rel = p.relative_to(partner_root)
        by_stem.setdefault(rel.with_suffix(""), []).append(p)
    partners: list[Path] = []
    for path in paths:
        rel = path.relative_to(src_root)
        candidates = by_stem.get(rel.with_suffix(""))
        if not candidates:
            expected = partner_root / rel.with_suffix("")
            raise DataError(f"missing {what} for {path}: expected {expected}.<image extension>")
        same_name = [c for c in candidates if c.name == path.name]
        partners.append((same_name or candidates)[0])
    return partners


def load_same_size(path_a: Path, path_b: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load two images that must be pixel-aligned; DataError naming both when their sizes differ."""
    a, b = load_image(path_a), load_image(path_b)
    if a.shape != b.shape:
        raise DataError(
            f"paired images differ in size: {path_a} is {a.shape[1]}x{a.shape[0]}, "
            f"{path_b} is {b.shape[1]}x{b.shape[0]} (width x height)"
        )
    return a, b


def require_targets(transform: A.Compose, names: tuple[str, ...]) -> None:
    """Register extra image targets (e.g. ``"B"``) on ``transform`` so one call transforms them alike."""
    missing = {n: "image" for n in names if transform.additional_targets.get(n) != "image"}
    if missing:
        transform.add_targets(missing)


class SeededTransformDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """Base class: one albumentations transform, exposed as ``transforms``, reseedable per worker."""

    def __init__(self, transform: A.Compose, seed: int | None = 0) -> None:
        self.transform = transform
        if seed is not None:
            self.set_random_seed(seed)

    @property
    def transforms(self) -> list[A.Compose]:
        """The transforms :func:`~gan_translate.data.transforms.seed_worker` must reseed."""
        return [self.transform]

    def set_random_seed(self, seed: int) -> None:
        """Reseed the transform (subclasses with RNGs of their own extend this)."""
        seed_transform(self.transform, seed)
