"""Groups of data options, each defined once as a dataclass and shared by the DataModules that take it.

In a config they are nested mappings (``data.init_args.transform.crop_size``); on the command line dotted flags
(``--data.transform.crop_size 128``). gan-translate 0.1 spelled them flat (``crop_size``, ``synthetic_size``):
:data:`RENAMED_OPTIONS` maps each old name to its new one, so such a config fails with one line naming it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

__all__ = ["RENAMED_OPTIONS", "ImageTransform", "SyntheticSet", "plain_hparams"]


@dataclass(frozen=True)
class ImageTransform:
    """How training and evaluation images are resized and cropped (the classic ``--preprocess`` options).

    Args:
        preprocess: resize_and_crop, scale_width, scale_width_and_crop, crop, resize or none.
        load_size: size images are resized to before cropping (the width for scale_width*).
        crop_size: size of the square crop (random in training, centred at evaluation).
        flip: randomly flip training images horizontally (pairs: both images alike).
    """

    preprocess: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True


@dataclass(frozen=True)
class SyntheticSet:
    """The built-in synthetic dataset generated under ``root`` when ``synthetic`` is true.

    Args:
        size: image size (square).
        n_train: training images per domain (and training pairs).
        n_test: test images per domain (and test pairs).
        seed: seed of the set itself, apart from the data stream's seed (a new data order reuses the set).
    """

    size: int = 64
    n_train: int = 200
    n_test: int = 20
    seed: int = 0


#: gan-translate 0.1 option names of the DataModules -> their names now.
RENAMED_OPTIONS: dict[str, str] = {
    "preprocess": "transform.preprocess",
    "load_size": "transform.load_size",
    "crop_size": "transform.crop_size",
    "flip": "transform.flip",
    "synthetic_size": "synthetic_set.size",
    "synthetic_train": "synthetic_set.n_train",
    "synthetic_test": "synthetic_set.n_test",
    "synthetic_seed": "synthetic_set.seed",
}


def plain_hparams(init_locals: dict[str, Any]) -> dict[str, Any]:
    """A DataModule's ``__init__`` arguments (its ``locals()``) with option groups as plain dicts: checkpoints
    store them and are read with ``weights_only=True``, which refuses any class of ours."""
    return {
        key: asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
        for key, value in init_locals.items()
        if key not in ("self", "__class__")
    }
