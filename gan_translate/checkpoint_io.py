"""Checkpoint files that are never half-written and never run code when read.

:class:`AtomicCheckpointIO` is the Lightning ``CheckpointIO`` plugin every ``gan-translate fit`` uses (the CLI
installs it when no other checkpoint plugin is configured):

* **atomic saves**: the checkpoint is written to a hidden temporary file in the *same folder*, flushed to disk,
  then renamed over the target with :func:`os.replace` (atomic within a filesystem). A crash, ``kill -9`` or
  full disk while saving leaves the previous ``last.ckpt`` intact, never a truncated one. Lightning's own
  writer keeps the whole checkpoint in memory and, for local paths, moves a temporary file from the system
  temp folder, which is a copy (not atomic) when that folder is on another filesystem.
* **safe loads**: resuming always unpickles with ``weights_only=True`` (tensors and plain containers), whatever
  the environment (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) or the caller asks for.

Temporary files left behind by a killed process (``.<name>.<pid>.<random>.tmp``) are removed by the next save
into the same folder once their process is gone. Remote paths (``s3://`` ...) fall back to Lightning's writer.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "atomic_torch_save"]

log = logging.getLogger(__name__)

_TMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_temp_files(folder: Path) -> None:
    """Delete temporary checkpoint files of processes that no longer run (a crash mid-save)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        match = _TMP_PATTERN.match(entry.name)
        if match and entry.is_file() and not _process_alive(int(match["pid"])):
            try:
                entry.unlink()
                log.info("removed %s, left by an interrupted checkpoint save", entry)
            except OSError:
                pass


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every platform.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save(obj, path)`` that either fully replaces ``path`` or leaves it untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_files(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            # A checkpoint is worth an fsync: without it a power cut can leave a renamed but empty file.
            os.fsync(handle.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with atomic local saves and ``weights_only`` loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Optional[Any] = None) -> None:
        """Write ``checkpoint`` to ``path`` through a temporary file in the same folder, then rename it."""
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self,
        path: _PATH,
        map_location: Optional[Callable] = lambda storage, loc: storage,
        weights_only: Optional[bool] = None,
    ) -> dict[str, Any]:
        """Read a checkpoint with ``weights_only=True`` always: a checkpoint never runs code from the file."""
        try:
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as error:
            from gan_translate.checkpoint import unpickling_error

            raise unpickling_error(path, error) from None
