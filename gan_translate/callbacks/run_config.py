"""Saves the resolved ``fit`` config beside the run's checkpoints (LightningCLI's ``save_config_callback``)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.cli import SaveConfigCallback

from gan_translate.data.io import unused_path


def run_dir(trainer: pl.Trainer) -> Path:
    """The folder Lightning's ModelCheckpoint will use, minus ``checkpoints/`` (its own resolution rule)."""
    if trainer.loggers:
        logger = trainer.loggers[0]
        save_dir = logger.save_dir or trainer.default_root_dir
        version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
        return Path(save_dir) / str(logger.name) / version
    return Path(trainer.default_root_dir)


class RunConfigSaver(SaveConfigCallback):
    """Saves the resolved config beside the run's checkpoints, never over an earlier run's config.

    A module-level class: ``strategy: ddp_spawn`` pickles the trainer with its callbacks.
    """

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        folder = run_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        path = unused_path(folder / self.config_filename)  # a resumed run keeps the first config and adds its own
        self.parser.save(self.config, str(path), skip_none=False, multifile=self.multifile)
