"""Shared helpers for tests that train tiny models through the real CLI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from gan_translate.cli import main
from tests.tiny import CONFIGS, REPO_ROOT, TINY

__all__ = ["CONFIGS", "REPO_ROOT", "assert_offline_wandb_images", "checkpoints", "fit", "load_raw", "tiny_adain_args",
           "tiny_cyclegan_args", "tiny_dcgan_args", "tiny_pix2pix_args", "tiny_stylegan2_args"]

# The tiny CLI runs of tests/tiny.py's table under the names tests call them by. ``epochs`` / ``batches`` default to
# the table's (translators and AdaIN: 1 epoch of 3 batches; the samplers: 2 of 2).


def tiny_cyclegan_args(data_root: Path, run_dir: Path, epochs: int | None = None, batches: int | None = None) -> list[str]:
    """The CycleGAN quickstart shrunk to seconds: 32 px crops of 36 px images, 8 filters, one residual block.

    ``data_root`` holds trainA/ and trainB/ (e.g. the ``synthetic_root`` fixture).
    """
    return TINY["cyclegan"].args(data_root, run_dir, epochs, batches)


def tiny_pix2pix_args(data_root: Path, run_dir: Path, epochs: int | None = None, batches: int | None = None) -> list[str]:
    """The pix2pix quickstart shrunk to seconds: 32 px, 8 filters, a 5-level U-Net (size multiple 32).

    ``data_root`` holds the pair splits (train/ and val/ or test/), e.g. the synthetic set's ``paired``.
    """
    return TINY["pix2pix"].args(data_root, run_dir, epochs, batches)


def tiny_dcgan_args(data_root: Path, run_dir: Path, epochs: int | None = None, batches: int | None = None) -> list[str]:
    """The DCGAN quickstart shrunk to seconds: 32 px, 8 filters, a 16-d latent, 16 fixed samples.

    ``data_root`` is a folder of images (e.g. the synthetic set's ``trainB``).
    """
    return TINY["dcgan"].args(data_root, run_dir, epochs, batches)


def tiny_stylegan2_args(data_root: Path, run_dir: Path, epochs: int | None = None, batches: int | None = None) -> list[str]:
    """The StyleGAN2 quickstart shrunk to seconds (path length and style mixing on: tests/tiny.py says why).

    ``data_root`` is a folder of images (e.g. the synthetic set's ``trainB``).
    """
    return TINY["stylegan2"].args(data_root, run_dir, epochs, batches)


def tiny_adain_args(data_root: Path, run_dir: Path, epochs: int | None = None, batches: int | None = None) -> list[str]:
    """The AdaIN quickstart shrunk to seconds: ``data_root``'s trainA as content, trainB as styles, 32 px crops,
    batches of 2, the seeded random VGG encoder."""
    return TINY["adain"].args(data_root, run_dir, epochs, batches)


def fit(args: Sequence[str]) -> None:
    """``gan-translate fit`` with ``args`` in this process; it must exit 0."""
    code = main(["fit", *args])
    assert code == 0, f"fit exited with {code}"


def checkpoints(run_dir: Path, pattern: str = "last*.ckpt") -> list[Path]:
    """The checkpoints under ``run_dir`` matching ``pattern``, oldest first."""
    return sorted(run_dir.rglob(pattern), key=lambda p: p.stat().st_mtime)


def load_raw(path: Path) -> dict:
    """A checkpoint's raw dictionary, read as the loaders read it (``weights_only``)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_offline_wandb_images(run_dir: Path, name_part: str) -> None:
    """The run's one offline W&B run holds uint8 pictures whose names contain ``name_part`` (not black ones)."""
    import numpy as np
    from PIL import Image

    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    images = list(runs[0].rglob("media/images/**/*.png"))
    assert any(name_part in p.name for p in images), images
    picture = np.asarray(Image.open(images[0]))
    assert picture.dtype == np.uint8 and picture.max() > 0, "W&B images came out black"
