"""The run folder (the one holding ``checkpoints/``, ``samples/``, ``config.yaml``) and the config saved in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.cli import SaveConfigCallback

from gan_translate.core.files import unused_path

__all__ = ["RunConfigSaver", "run_folder"]


def run_folder(trainer: pl.Trainer) -> Path:
    """The run's folder: the parent of the checkpoint callback's ``checkpoints/`` once it is known, else where
    Lightning's ModelCheckpoint will put it (``<save_dir>/<name>/<version>`` of the first logger), else
    ``default_root_dir``."""
    dirpath = getattr(trainer.checkpoint_callback, "dirpath", None)
    if dirpath:
        path = Path(dirpath)
        return path.parent if path.name == "checkpoints" else path
    if trainer.loggers:
        logger = trainer.loggers[0]
        save_dir = logger.save_dir or trainer.default_root_dir
        version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
        return Path(save_dir) / str(logger.name) / version
    return Path(trainer.default_root_dir)


class RunConfigSaver(SaveConfigCallback):
    """Saves the resolved ``fit`` config beside the run's checkpoints, never over an earlier run's config
    (LightningCLI's ``save_config_callback``).

    It also puts the precision the Trainer runs in into the loggers' config (W&B's run config): the model's
    hyperparameters, which Lightning logs, do not hold it. With ``precision: auto`` the CLI sets
    ``precision_choice`` (what ``auto`` resolved to and why, gan_translate.training.precision), logged beside it.

    A module-level class: ``strategy: ddp_spawn`` pickles the trainer with its callbacks.
    """

    precision_choice: Any = None

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        folder = run_folder(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        path = unused_path(folder / self.config_filename)  # a resumed run keeps the first config and adds its own
        self.parser.save(self.config, str(path), skip_none=False, multifile=self.multifile)
        params: dict[str, str] = {"trainer/precision": str(trainer.precision)}
        if self.precision_choice is not None:
            params |= {"trainer/precision_requested": "auto", "trainer/precision_reason": self.precision_choice.reason}
        for logger in trainer.loggers:
            logger.log_hyperparams(params)
