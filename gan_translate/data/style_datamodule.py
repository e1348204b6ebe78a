"""Content and style images for arbitrary style transfer (AdaIN): ``{"A": content, "B": style}`` batches.

Each content image is paired with a random style image (a new draw every epoch, reproducible: the unpaired
dataset's seeded stream), both resized and cropped by ``transform`` (AdaIN: 512 px, random 256 px crops, no flip).
The paper's data are MS-COCO (content) and WikiArt (style): see docs/style_transfer.md for where to get them.
With ``synthetic: true`` the content is the built-in synthetic scenes (generated under ``root``) and the styles
procedural textures (generated under ``style_root``), so the quickstart trains offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from gan_translate.data.datamodules import _TwoDomainDataModule
from gan_translate.data.options import ImageTransform
from gan_translate.data.unaligned import UnalignedDataset

__all__ = ["StyleDataModule"]


class StyleDataModule(_TwoDomainDataModule):
    """A folder of content images and a folder of style images (searched recursively).

    Args:
        root: Folder of content images (with synthetic: the synthetic dataset root; its trainA/ and trainB/ are used).
        style_root: Folder of style images (with synthetic: where the procedural textures are generated).
        textures: With synthetic: how many procedural style textures to generate.
        texture_size: With synthetic: their size in pixels.
        batch_size: Content / style pairs per batch (AdaIN: 8).
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        style_root: str = "data/synthetic_styles",
        textures: int = 64,
        texture_size: int = 128,
        batch_size: int = 8,
        transform: ImageTransform = ImageTransform(load_size=512, crop_size=256, flip=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, batch_size=batch_size, transform=transform, **kwargs)
        self.style_root = Path(style_root)
        self.textures = textures
        self.texture_size = texture_size

    def _ensure_synthetic(self) -> None:
        super()._ensure_synthetic()
        if self.synthetic:
            from gan_translate.data.textures import ensure_textures

            ensure_textures(self.style_root, self.textures, self.texture_size, self.synthetic_set.seed)

    def _content_folders(self) -> list[Path]:
        return [self.root / "trainA", self.root / "trainB"] if self.synthetic else [self.root]

    def setup(self, stage: str | None = None) -> None:
        """Build the training set (generating the synthetic content and textures first if asked for)."""
        self._ensure_synthetic()
        self._require([*self._content_folders(), self.style_root])
        if self.synthetic:  # both synthetic domains are content: more variety for the decoder
            from torch.utils.data import ConcatDataset

            self.train_set = ConcatDataset([self._dataset(folder) for folder in self._content_folders()])
        else:
            self.train_set = self._dataset(self.root)

    def _dataset(self, content: Path) -> UnalignedDataset:
        return UnalignedDataset(content, self.style_root, self._build_transform(train=True),
                                max_size=self.max_dataset_size, on_bad_file=self.on_bad_file, seed=self._stream_seed())

    # No validation split: Lightning's own "not defined" hook, so it runs no validation loop (and does not warn
    # about a loader without a validation_step).
    val_dataloader = pl.LightningDataModule.val_dataloader
