"""gan_translate.core.files: every writer's atomic write and the never-overwrite names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gan_translate.core.files import atomic_write, remove_stale_temp_files, unused_path


def test_writes_whole_files_with_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "new" / "report.json"
    with atomic_write(target, "w") as handle:
        handle.write("{}\n")
    assert target.read_text() == "{}\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_keeps_the_old_file_and_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "image.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target) as handle:
            handle.write(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]
    with atomic_write(target, durable=True) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o640


def test_only_whole_file_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whole files"):
        with atomic_write(tmp_path / "x", "a"):
            pass


def test_a_killed_writers_temp_file_is_removed_a_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".last.ckpt.{int(dead.stdout)}.abc123.tmp"
    live = tmp_path / f".last.ckpt.{os.getpid()}.def456.tmp"
    other = tmp_path / ".hidden"
    for path in (stale, live, other):
        path.write_bytes(b"x")
    remove_stale_temp_files(tmp_path)
    assert not stale.exists() and live.exists() and other.exists()


def test_unused_path(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    assert unused_path(path) == path
    path.touch()
    (tmp_path / "config-1.yaml").touch()
    assert unused_path(path) == tmp_path / "config-2.yaml"
