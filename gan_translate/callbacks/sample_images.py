"""Sample pictures: sent to whichever logger is configured, and the validation / test ones kept in the run folder."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger

from gan_translate.callbacks.run_folder import run_folder
from gan_translate.core.files import unused_path
from gan_translate.data.io import save_image

__all__ = ["SampleImageWriter", "log_image", "samples_folder"]


def log_image(loggers: Iterable[Logger], key: str, image: np.ndarray, step: int, caption: str | None = None) -> None:
    """Log a uint8 HxWx3 picture to every logger that takes images (W&B, TensorBoard)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            # wandb casts float images to uint8 without rescaling: always hand it uint8.
            logger.log_image(key=key, images=[image], step=step, caption=[caption] if caption else None)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, step, dataformats="HWC")


def samples_folder(trainer: pl.Trainer) -> Path:
    """``<run folder>/samples``: validation grids, and the fixed-noise frames of sampling models."""
    return run_folder(trainer) / "samples"


class SampleImageWriter(Callback):
    """Keeps every ``val/...`` and ``test/...`` picture a model logs as a PNG in ``<run folder>/samples``.

    Named ``<key>_epoch<E>_step<S>.png``, with ``validate_`` / ``test_`` in front outside ``fit``, and never over
    an earlier file: a second run in the same root, or a ``validate`` of this run's checkpoint, keeps the
    training's grids. Every GANModule attaches one (``configure_callbacks``); models hand it their pictures
    through ``GANModule.log_image_grid``.
    """

    def write(self, trainer: pl.Trainer, key: str, image: np.ndarray) -> Path | None:
        """Save ``image`` if ``key`` is a validation or test picture; returns the file written."""
        if not key.startswith(("val/", "test/")) or not trainer.is_global_zero:
            return None
        fn = trainer.state.fn
        prefix = "" if fn is None or fn.value == "fit" else f"{fn.value}_"
        name = f"{prefix}{key.replace('/', '_')}_epoch{trainer.current_epoch:03d}_step{trainer.global_step:07d}"
        path = unused_path(samples_folder(trainer) / f"{name}.png")
        save_image(image, path)
        return path
