"""Unpaired two-domain data (CycleGAN): trainA/ and trainB/, optionally with ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch

from gan_translate.data.base import (
    PathLike,
    SeededTransformDataset,
    gather_images,
    load_same_size,
    match_by_name,
    require_targets,
)
from gan_translate.data.io import OnBadFile, load_image

__all__ = ["UnalignedDataset"]

_GT_KEY = "gt"  # the additional albumentations target that carries a ground-truth image


class UnalignedDataset(SeededTransformDataset):
    """Images of domain A and domain B with no correspondence between them.

    Item ``i`` is ``A[i % |A|]`` with ``B[i % |B|]`` (``serial_b``) or a random B drawn from the
    dataset's own RNG (reseeded per DataLoader worker by ``seed_worker``, so it is reproducible
    and workers draw different Bs). The length is ``max(|A|, |B|)``. A and B are transformed
    independently (separate random crops/flips).

    Ground truth (synthetic data): ``gt_a/x.png`` is the true B-translation of ``dir_a/x.png``
    and ``gt_b/y.png`` the true A-translation of ``dir_b/y.png``. They come back as ``"A_gt"``
    and ``"B_gt"`` with exactly the geometry of their source (same crop and flip).
    """

    def __init__(
        self,
        dir_a: PathLike,
        dir_b: PathLike,
        transform: A.Compose,
        serial_b: bool = False,
        max_size: int | None = None,
        gt_a: PathLike | None = None,
        gt_b: PathLike | None = None,
        on_bad_file: OnBadFile = "error",
        seed: int | None = 0,
    ) -> None:
        self.dir_a, self.dir_b = Path(dir_a), Path(dir_b)
        self.paths_a = gather_images(dir_a, max_size, on_bad_file)
        self.paths_b = gather_images(dir_b, max_size, on_bad_file)
        self.gt_paths_a = match_by_name(self.paths_a, dir_a, gt_a, "ground truth") if gt_a is not None else None
        self.gt_paths_b = match_by_name(self.paths_b, dir_b, gt_b, "ground truth") if gt_b is not None else None
        self.serial_b = serial_b
        if gt_a is not None or gt_b is not None:
            require_targets(transform, (_GT_KEY,))
        self._rng = np.random.default_rng(0)
        super().__init__(transform, seed)

    def set_random_seed(self, seed: int) -> None:
        """Reseed the transform and the random-B generator (with a distinct stream, so the choice
        of B is not correlated with A's crop)."""
        super().set_random_seed(seed)
        self._rng = np.random.default_rng((seed, 0xB))

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b))

    def _transformed(self, path: Path, gt_path: Path | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if gt_path is None:
            return self.transform(image=load_image(path))["image"], None
        image, gt = load_same_size(path, gt_path)
        out = self.transform(image=image, **{_GT_KEY: gt})
        return out["image"], out[_GT_KEY]

    def __getitem__(self, index: int) -> dict[str, Any]:
        ia = index % len(self.paths_a)
        ib = index % len(self.paths_b) if self.serial_b else int(self._rng.integers(len(self.paths_b)))
        a, a_gt = self._transformed(self.paths_a[ia], self.gt_paths_a[ia] if self.gt_paths_a else None)
        b, b_gt = self._transformed(self.paths_b[ib], self.gt_paths_b[ib] if self.gt_paths_b else None)
        item: dict[str, Any] = {"A": a, "B": b, "A_path": str(self.paths_a[ia]), "B_path": str(self.paths_b[ib])}
        if a_gt is not None:
            item["A_gt"] = a_gt
        if b_gt is not None:
            item["B_gt"] = b_gt
        return item
