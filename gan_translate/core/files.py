"""Writing files so that an interrupted run never leaves a half-written one, and never replaces the user's.

Every writer in the project (images, checkpoints, exports, JSON / CSV / Markdown reports, GIFs) goes through
:func:`atomic_write`: the data goes to a hidden temporary file in the target's own folder, which is renamed
over the target only once it is complete. :func:`os.replace` is atomic within a filesystem, so a crash,
``kill -9`` or a full disk leaves the previous file intact. The temporary name carries the writer's process
id (``.<name>.<pid>.<random>.tmp``), so :func:`remove_stale_temp_files` can tell a crashed writer's leftovers
from a live one's. This module uses the standard library only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "file_sha256", "fsync_folder", "remove_stale_temp_files", "unused_path"]

log = logging.getLogger(__name__)

_TMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable; not possible (nor needed) on every platform."""
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


def remove_stale_temp_files(folder: Path) -> None:
    """Delete the temporary files of :func:`atomic_write` calls whose process no longer runs (a crash mid-write)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        match = _TMP_PATTERN.match(entry.name)
        if match and entry.is_file() and not _process_alive(int(match["pid"])):
            try:
                entry.unlink()
                log.info("removed %s, left by an interrupted write", entry)
            except OSError:
                pass


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *, durable: bool = False, **open_kwargs: Any) -> Iterator[IO[Any]]:
    """``with atomic_write(path) as handle: ...`` writes ``path`` completely or not at all.

    ``mode`` is ``"wb"`` or ``"w"`` (text; ``open_kwargs`` such as ``newline=""`` are passed to :func:`open`).
    ``durable=True`` also flushes the data and the rename to disk (``fsync``): worth it for a checkpoint, which a
    power cut could otherwise leave renamed but empty; for images and reports a killed process is the case that
    matters. The result gets the permissions of the file it replaces, or those of a normal write (0644).
    The parent folder is created when missing.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write writes whole files: mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        # mkstemp creates 0600 files: give the result what a plain open() would have (or keep the old file's).
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_folder(target.parent)


def unused_path(path: Path) -> Path:
    """``path``, or ``<stem>-1<suffix>``, ``<stem>-2<suffix>``, ...: the first name beside it that nothing has."""
    candidate, index = path, 1
    while candidate.exists():
        candidate, index = path.with_name(f"{path.stem}-{index}{path.suffix}"), index + 1
    return candidate


def file_sha256(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, as hex (read in chunks: a large checkpoint is never held in memory twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
