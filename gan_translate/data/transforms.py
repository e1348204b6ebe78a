"""Preprocessing pipelines (albumentations) and their per-worker seeding.

:func:`build_transform` turns the classic CycleGAN/pix2pix ``--preprocess`` names into an
``albumentations.Compose`` that takes a ``uint8`` ``HxWx3`` RGB image and returns a float32
``CHW`` tensor in ``[-1, 1]``. Paired images go through ONE call with ``additional_targets`` so
they get the identical resize/crop/flip.

Two albumentations traps are handled here:

* its random state lives in each process, so DataLoader workers forked from one parent repeat
  the same augmentations unless every worker reseeds its transforms: :func:`seed_worker`;
* ``Compose.set_random_seed(s)`` gives every child transform its OWN generator seeded with the
  same ``s``, so their draws coincide (with RandomCrop + HorizontalFlip, "flip" becomes
  "crop near the top"): :func:`seed_transform` makes the children share one stream instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # before albumentations is imported: no network

import random
import signal
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from gan_translate.core.errors import UserError

__all__ = ["PREPROCESS_OPTIONS", "build_transform", "seed_dataset", "seed_transform", "seed_worker"]

#: Valid ``preprocess`` names (the classic ones, plus "resize" and the DCGAN-style
#: "scale_shortside_and_center_crop").
PREPROCESS_OPTIONS: tuple[str, ...] = (
    "resize_and_crop",
    "scale_width",
    "scale_width_and_crop",
    "crop",
    "resize",
    "none",
    "scale_shortside_and_center_crop",
)

#: Preprocess names whose output is always ``crop_size x crop_size`` (so batches collate).
FIXED_SIZE_PREPROCESS: frozenset[str] = frozenset(
    {"resize_and_crop", "scale_width_and_crop", "crop", "resize", "scale_shortside_and_center_crop"}
)

# Reflect, not constant: a black border is an artefact the discriminator learns to look for.
_PAD_MODE = cv2.BORDER_REFLECT_101
# Bicubic as in the classic code; INTER_AREA when shrinking, which avoids aliasing on big photos.
_RESIZE_KW: dict[str, Any] = {"interpolation": cv2.INTER_CUBIC, "area_for_downscale": "image"}


def _crop(size: int, train: bool) -> A.BasicTransform:
    """Random crop for training, center crop for evaluation; pads (reflect) images that are smaller."""
    if train:
        return A.RandomCrop(height=size, width=size, pad_if_needed=True, border_mode=_PAD_MODE)
    return A.CenterCrop(height=size, width=size, pad_if_needed=True, border_mode=_PAD_MODE)


def _geometry(preprocess: str, load_size: int, crop_size: int, train: bool) -> list[A.BasicTransform]:
    scale_width = A.LongestMaxSize(max_size_hw=(None, load_size), **_RESIZE_KW)  # width := load_size
    if preprocess == "resize_and_crop":
        if not train:  # eval: straight to the training crop size, so nothing is cut away
            return [A.Resize(crop_size, crop_size, **_RESIZE_KW)]
        return [A.Resize(load_size, load_size, **_RESIZE_KW), _crop(crop_size, train)]
    if preprocess == "scale_width":
        return [scale_width]
    if preprocess == "scale_width_and_crop":
        return [scale_width, _crop(crop_size, train)]
    if preprocess == "crop":
        return [_crop(crop_size, train)]
    if preprocess == "resize":
        return [A.Resize(crop_size, crop_size, **_RESIZE_KW)]
    if preprocess == "none":
        return []
    if preprocess == "scale_shortside_and_center_crop":
        return [
            A.SmallestMaxSize(max_size=load_size, **_RESIZE_KW),
            A.CenterCrop(height=crop_size, width=crop_size, pad_if_needed=True, border_mode=_PAD_MODE),
        ]
    valid = ", ".join(PREPROCESS_OPTIONS)
    raise UserError(f"unknown preprocess {preprocess!r}; valid names: {valid}")


def build_transform(
    preprocess: str = "resize_and_crop",
    load_size: int = 286,
    crop_size: int = 256,
    flip: bool = True,
    train: bool = True,
    additional_targets: dict[str, str] | None = None,
    seed: int | None = None,
) -> A.Compose:
    """An albumentations pipeline: uint8 HxWx3 RGB -> float32 CHW tensor in [-1, 1].

    ``preprocess``: ``resize_and_crop`` (resize to ``load_size``², random ``crop_size`` crop),
    ``scale_width`` (width := ``load_size``, aspect kept), ``scale_width_and_crop``, ``crop``
    (random crop; smaller images are reflect-padded), ``resize`` (to ``crop_size``²), ``none``
    (no resizing), ``scale_shortside_and_center_crop`` (shorter side := ``load_size``, center crop).
    ``flip`` adds a random horizontal flip in training (for every preprocess, ``none`` included).
    ``train=False`` is deterministic: no flip, center crops, and ``resize_and_crop`` resizes
    straight to ``crop_size``. ``additional_targets`` (e.g. ``{"B": "image"}``) names extra
    images that get exactly the same geometry. ``seed`` seeds it via :func:`seed_transform`.
    """
    if load_size < 1 or crop_size < 1:
        raise UserError(f"load_size and crop_size must be positive, got load_size={load_size}, crop_size={crop_size}")
    ops: list[A.BasicTransform] = _geometry(preprocess, load_size, crop_size, train)
    if train and flip:
        ops.append(A.HorizontalFlip(p=0.5))
    ops += [
        A.Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), max_pixel_value=255.0),  # [0,255] -> [-1,1]
        ToTensorV2(),  # HWC float32 -> CHW tensor
    ]
    compose = A.Compose(ops, additional_targets=additional_targets)
    if seed is not None:
        seed_transform(compose, seed)
    return compose


def seed_transform(transform: A.BaseCompose, seed: int) -> None:
    """Reseed an albumentations Compose so all its children draw from ONE shared stream.

    ``set_random_seed`` alone seeds each child separately with the same value (correlated
    draws); ``set_random_state`` afterwards hands every child the same generators.
    """
    transform.set_random_seed(seed)  # records .seed and reseeds nested composes
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def seed_dataset(dataset: Any, seed: int) -> None:
    """Reseed a dataset's random state: its ``set_random_seed(seed)`` if it has one, else every
    Compose in its ``transforms`` list. ``Subset`` / ``ConcatDataset`` wrappers are looked through."""
    if isinstance(dataset, torch.utils.data.Subset):
        seed_dataset(dataset.dataset, seed)
        return
    if isinstance(dataset, torch.utils.data.ConcatDataset):
        for i, part in enumerate(dataset.datasets):
            seed_dataset(part, seed + 7919 * i)  # distinct streams for the parts
        return
    if callable(getattr(dataset, "set_random_seed", None)):
        dataset.set_random_seed(seed)
        return
    for transform in getattr(dataset, "transforms", None) or ():
        seed_transform(transform, seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: reseed python, numpy and the dataset's transforms per worker.

    Torch gives each worker the seed ``base_seed + worker_id``, where ``base_seed`` comes from the
    DataLoader's generator (or the global torch seed): distinct across workers and epochs, and
    reproducible with a fixed seed.
    """
    # Ctrl-C reaches the whole foreground process group: a worker killed by it would make the main process
    # fail mid-batch, before it can save a checkpoint and shut its workers down (callbacks/reliability.py).
    if torch.utils.data.get_worker_info() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None:
        seed_dataset(info.dataset, seed)
