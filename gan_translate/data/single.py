"""A plain folder of images (DCGAN training, one-direction inference)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import albumentations as A

from gan_translate.data.base import PathLike, SeededTransformDataset, gather_images
from gan_translate.data.io import OnBadFile, load_image

__all__ = ["ImageFolderDataset"]


class ImageFolderDataset(SeededTransformDataset):
    """Every image under ``root`` (subfolders too when ``recursive``) -> ``{"image", "path"}``."""

    def __init__(
        self,
        root: PathLike,
        transform: A.Compose,
        recursive: bool = True,
        max_size: int | None = None,
        on_bad_file: OnBadFile = "error",
        seed: int | None = 0,
    ) -> None:
        self.root = Path(root)
        self.paths = gather_images(root, max_size, on_bad_file, recursive=recursive)
        super().__init__(transform, seed)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        return {"image": self.transform(image=load_image(path))["image"], "path": str(path)}
