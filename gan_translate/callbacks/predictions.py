"""``gan-translate predict`` writes what it predicts: one image file per input, in the run's folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from gan_translate.callbacks.run_folder import run_folder
from gan_translate.core.files import unused_path
from gan_translate.core.images import tensor_to_uint8
from gan_translate.data.io import save_image

__all__ = ["PredictionImageWriter"]

# The keys under which the framework's datasets hand over each image's file (unpaired test A, paired A).
_PATH_KEYS = ("path", "A_path")


class PredictionImageWriter(BasePredictionWriter):
    """Save every predicted image (NCHW in [-1, 1]) as a PNG named after its input file.

    The folder is ``<run folder>/predictions`` (``predictions-1``, ... when it exists) unless ``output_dir`` is
    given; each process writes its own share under DDP. The images are the model's input size after the
    datamodule's eval preprocessing: for results at each file's own size, use ``gan-translate translate``.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir) if output_dir else None
        self.folder: Path | None = None
        self.written = 0

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        folder = self.output_dir or unused_path(run_folder(trainer) / "predictions")  # never over earlier results
        if trainer.world_size > 1:
            folder = Path(trainer.strategy.broadcast(str(folder)))  # rank 0's choice: one folder for all
        self.folder, self.written = folder, 0

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(prediction, Tensor) or prediction.ndim != 4 or self.folder is None:
            return
        paths = next((batch[key] for key in _PATH_KEYS if isinstance(batch, dict) and key in batch), None)
        for index, image in enumerate(tensor_to_uint8(prediction.float())):
            if paths is not None:
                name = f"{Path(str(paths[index])).stem}.png"
            else:
                name = f"{trainer.global_rank}_{batch_idx:06d}_{index:03d}.png"
            save_image(image, self.folder / name)
            self.written += 1

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.folder is not None:
            share = f" (this process's share of {trainer.world_size})" if trainer.world_size > 1 else ""
            print(f"predict: wrote {self.written} images{share} to {self.folder}")
