"""Checkpoint files that are never half-written and never run code when read.

:class:`AtomicCheckpointIO` is the Lightning ``CheckpointIO`` plugin every ``gan-translate fit`` uses (the CLI
installs it when no other checkpoint plugin is configured):

* **atomic saves**: the checkpoint is written with :func:`gan_translate.core.files.atomic_write` (a hidden temporary
  file in the *same folder*, flushed to disk, then renamed over the target). A crash, ``kill -9`` or full disk
  while saving leaves the previous ``last.ckpt`` intact, never a truncated one. Lightning's own writer keeps the
  whole checkpoint in memory and, for local paths, moves a temporary file from the system temp folder, which is
  a copy (not atomic) when that folder is on another filesystem.
* **safe loads**: resuming always unpickles with ``weights_only=True`` (tensors and plain containers), whatever
  the environment (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) or the caller asks for.

Temporary files left behind by a killed process are removed by the next save into the same folder once their
process is gone. Remote paths (``s3://`` ...) fall back to Lightning's writer.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from gan_translate.artifacts.checkpoints import unpickling_error
from gan_translate.core.files import atomic_write, remove_stale_temp_files
from gan_translate.core.lightning_compat import PathLike, is_local_path

__all__ = ["AtomicCheckpointIO", "atomic_torch_save"]


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save(obj, path)`` that either fully replaces ``path`` or leaves it untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path.parent)
    # durable: without an fsync a power cut can leave a renamed but empty checkpoint.
    with atomic_write(path, durable=True) as handle:
        torch.save(obj, handle)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with atomic local saves and ``weights_only`` loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: PathLike, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` through a temporary file in the same folder, then rename it."""
        if storage_options is not None or not is_local_path(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self,
        path: PathLike,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        """Read a checkpoint with ``weights_only=True`` always: a checkpoint never runs code from the file."""
        try:
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as error:
            raise unpickling_error(path, error) from None
