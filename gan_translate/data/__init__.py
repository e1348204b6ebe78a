"""Data pipeline: image I/O, albumentations preprocessing, datasets and LightningDataModules.

Names are imported lazily so that ``from gan_translate.data.io import load_image`` (numpy + PIL)
does not pull in torch, albumentations or Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "IMG_EXTENSIONS": "io",
    "check_images": "io",
    "list_images": "io",
    "load_image": "io",
    "save_image": "io",
    "PREPROCESS_OPTIONS": "transforms",
    "build_transform": "transforms",
    "seed_dataset": "transforms",
    "seed_transform": "transforms",
    "seed_worker": "transforms",
    "UnalignedDataset": "unaligned",
    "AlignedDataset": "paired",
    "PairedFolderDataset": "paired",
    "ImageFolderDataset": "single",
    "ImageTransform": "options",
    "SyntheticSet": "options",
    "ImageDataModule": "datamodules",
    "UnpairedDataModule": "datamodules",
    "PairedDataModule": "datamodules",
    "ImageFolderDataModule": "datamodules",
    "StyleDataModule": "style_datamodule",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
