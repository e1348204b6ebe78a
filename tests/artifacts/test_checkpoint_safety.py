"""Checkpoints: loading never runs code from the file, every bad file is one line, saves are atomic, export."""

from __future__ import annotations

import os
import pathlib
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gan_translate.artifacts import AtomicCheckpointIO, atomic_torch_save, build_model, load_checkpoint
from gan_translate.cli import main
from gan_translate.core.errors import CheckpointError
from gan_translate.models import CycleGAN, models_that

TINY = dict(generator="resnet", generator_args={"n_blocks": 1}, ngf=8, ndf=8, discriminator_args={"n_layers": 2})


def write_checkpoint(path: Path, model_name: str = "cyclegan", **hparams: object) -> Path:
    """A gan-translate checkpoint of an untrained tiny CycleGAN, as `fit` writes it (the keys `translate` reads)."""
    torch.manual_seed(0)
    model = CycleGAN(**{**TINY, **hparams})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "gan_translate": {"model": model_name, "version": "test"},
            "epoch": 0,
            "global_step": 0,
        },
        path,
    )
    return path


class _Touch:
    """Unpickling this calls pathlib.Path.touch(marker): code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


class _System:
    """Unpickling this runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(params=["path_touch", "os_system"])
def evil(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint-looking file whose unpickling would create ``marker``; returns (file, marker)."""
    marker = tmp_path / "MARKER"
    payload = (_Touch if request.param == "path_touch" else _System)(marker)
    good = write_checkpoint(tmp_path / "good.ckpt")
    checkpoint = torch.load(good, weights_only=True)
    checkpoint["gan_translate"]["extra"] = payload  # hidden deep inside an otherwise valid checkpoint
    path = tmp_path / "evil.ckpt"
    torch.save(checkpoint, path)
    # The payload really runs under a plain (unsafe) unpickle: the test would catch a loader that allowed it.
    return path, marker


def test_the_payload_is_real(evil: tuple[Path, Path]) -> None:
    path, marker = evil
    torch.load(path, weights_only=False)  # what an unsafe loader would do
    assert marker.exists()
    marker.unlink()


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_api_loaders_refuse_code(evil: tuple[Path, Path]) -> None:
    from gan_translate import load_translator

    path, marker = evil
    for load in (load_checkpoint, load_translator, lambda p: AtomicCheckpointIO().load_checkpoint(p)):
        with pytest.raises(CheckpointError, match=r"refusing to load .*evil\.ckpt.*could run code.*Unsupported global"):
            load(path)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["translate", "export", "generate", "evaluate"])
def test_commands_refuse_code(evil: tuple[Path, Path], tmp_path: Path, command: str, capsys: pytest.CaptureFixture) -> None:
    path, marker = evil
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    from gan_translate.data.io import save_image

    save_image(np.zeros((8, 8, 3), np.uint8), image)
    args = {
        "translate": ["--checkpoint", str(path), "--input", str(image), "--output", str(tmp_path / "out"), "--device", "cpu"],
        "export": ["--checkpoint", str(path), "--output", str(tmp_path / "g.safetensors")],
        "generate": ["--checkpoint", str(path), "--output", str(tmp_path / "out"), "--num", "1", "--device", "cpu"],
        "evaluate": ["--checkpoint", str(path), "--input", str(image.parent), "--real", str(image.parent), "--device", "cpu"],
    }[command]
    assert main([command, *args]) == 2
    assert "refusing to load" in _one_error_line(capsys.readouterr().err)
    assert not marker.exists()


def test_fit_resume_refuses_code_before_lightning_loads(evil: tuple[Path, Path], synthetic_root: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    from tests.helpers import tiny_cyclegan_args

    path, marker = evil
    args = [*tiny_cyclegan_args(synthetic_root, tmp_path / "run"), "--trainer.logger", "false", "--ckpt_path", str(path)]
    assert main(["fit", *args]) == 2
    assert "refusing to load" in _one_error_line(capsys.readouterr().err)
    assert not marker.exists()


def test_lightning_resume_path_is_weights_only_too(evil: tuple[Path, Path]) -> None:
    """Even if someone resumes through Lightning directly (no CLI pre-check), our CheckpointIO refuses it,
    and so does Lightning's default loader on this torch (weights_only defaults to True since torch 2.6)."""
    from lightning.fabric.utilities.cloud_io import _load

    path, marker = evil
    with pytest.raises(pickle.UnpicklingError):
        _load(path)  # what lightning 2.6's TorchCheckpointIO does with weights_only=None
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # an environment that would make that loader unsafe ...
    try:
        with pytest.raises(CheckpointError, match="refusing to load"):
            AtomicCheckpointIO().load_checkpoint(path)  # ... does not affect ours (weights_only=True explicitly)
    finally:
        del os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]
    assert not marker.exists()


# --- files that are not (usable) checkpoints: one line each -------------------------------------------
def _truncated(tmp_path: Path) -> Path:
    data = write_checkpoint(tmp_path / "full.ckpt").read_bytes()
    path = tmp_path / "cut.ckpt"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: (torch.save({"weights": torch.zeros(2)}, d / "other.ckpt"), d / "other.ckpt")[1], "is not a gan-translate checkpoint"),
        (_truncated, "not a readable PyTorch checkpoint"),
        (lambda d: ((d / "empty.ckpt").write_bytes(b""), d / "empty.ckpt")[1], "is empty (0 bytes): not a checkpoint"),
        (lambda d: ((d / "noise.ckpt").write_bytes(b"\x01" + os.urandom(4095)), d / "noise.ckpt")[1], "is not a PyTorch checkpoint"),
        (lambda d: ((d / "notes.ckpt").write_text("hello\n"), d / "notes.ckpt")[1], "is not a PyTorch checkpoint (expected a .ckpt"),
        # a zip that is no torch archive, and a pickle stream cut short: torch.load's own failures
        (lambda d: (zipfile.ZipFile(d / "zip.ckpt", "w").close(), d / "zip.ckpt")[1], "not a readable PyTorch checkpoint"),
        (lambda d: ((d / "pickle.ckpt").write_bytes(b"\x80\x02"), d / "pickle.ckpt")[1], "not a readable PyTorch checkpoint"),
        (lambda d: write_checkpoint(d / "dcgan.ckpt", model_name="dcgan"), f"is a dcgan checkpoint; `translate` needs a model that translates images: {', '.join(models_that('translate'))}"),
        (lambda d: (d / "emptydir").mkdir() or d / "emptydir", "no .ckpt file found under"),
        (lambda d: d / "missing.ckpt", "checkpoint not found"),
    ],
    ids=["not-ours", "truncated", "empty", "noise", "text", "zip", "pickle", "wrong-model", "empty-folder", "missing"],
)
def test_bad_checkpoint_files_are_one_line(tmp_path: Path, make, message: str, capsys: pytest.CaptureFixture) -> None:
    path = make(tmp_path)
    image = tmp_path / "a.png"
    from gan_translate.data.io import save_image

    save_image(np.zeros((8, 8, 3), np.uint8), image)
    assert main(["translate", "--checkpoint", str(path), "--input", str(image), "--output", str(tmp_path / "out"),
                 "--device", "cpu"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert message in line and len(line) < 400


def test_architecture_mismatch_is_one_line(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "x.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["ngf"] = 16  # the weights are ngf 8
    with pytest.raises(CheckpointError, match="does not match the cyclegan architecture"):
        build_model({**checkpoint, "_path": str(path)})


def test_fit_resume_checks_model_type(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.helpers import tiny_cyclegan_args

    other = write_checkpoint(tmp_path / "p.ckpt", model_name="pix2pix")
    args = [*tiny_cyclegan_args(synthetic_root, tmp_path / "run"), "--trainer.logger", "false", "--ckpt_path", str(other)]
    assert main(["fit", *args]) == 2
    assert "is a pix2pix checkpoint; it cannot resume the cyclegan model" in _one_error_line(capsys.readouterr().err)
    truncated = _truncated(tmp_path)
    args[-1] = str(truncated)
    assert main(["fit", *args]) == 2
    assert "not a readable PyTorch checkpoint" in _one_error_line(capsys.readouterr().err)


# --- atomic saves -----------------------------------------------------------------------------------------
def test_crash_while_saving_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    before = path.read_bytes()
    real_save = torch.save

    def dying_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        real_save({"step": torch.tensor(2), "big": torch.zeros(1000)}, f)
        f.truncate(100)  # type: ignore[attr-defined] # half a file ...
        raise KeyboardInterrupt  # ... and the process is interrupted

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    assert int(torch.load(path, weights_only=True)["step"]) == 1


def test_temp_files_of_killed_savers_are_cleaned(tmp_path: Path) -> None:
    import subprocess

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".last.ckpt.{dead_pid}.abc123.tmp"  # what a SIGKILL mid-save leaves behind
    stale.write_bytes(b"partial")
    mine = tmp_path / f".other.ckpt.{os.getpid()}.xyz.tmp"  # a save in progress in this (live) process
    mine.write_bytes(b"in progress")
    atomic_torch_save({"a": torch.ones(1)}, tmp_path / "last.ckpt")
    assert not stale.exists() and mine.exists()
    assert (tmp_path / "last.ckpt").stat().st_mode & 0o777 == 0o644


def test_checkpoints_are_zip_files_written_atomically(tmp_path: Path) -> None:
    atomic_torch_save({"a": torch.arange(3)}, tmp_path / "x.ckpt")
    assert zipfile.is_zipfile(tmp_path / "x.ckpt")
    assert torch.equal(torch.load(tmp_path / "x.ckpt", weights_only=True)["a"], torch.arange(3))


# --- export to safetensors ------------------------------------------------------------------------------
def test_export_round_trip_and_one_direction(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from safetensors import safe_open

    from gan_translate import load_translator

    ckpt = write_checkpoint(tmp_path / "c.ckpt")
    both, only_ab = tmp_path / "both.safetensors", tmp_path / "ab.safetensors"
    assert main(["export", "--checkpoint", str(ckpt), "--output", str(both)]) == 0
    assert main(["export", "--checkpoint", str(ckpt), "--output", str(only_ab), "--direction", "AtoB"]) == 0
    capsys.readouterr()
    assert only_ab.stat().st_size < both.stat().st_size < ckpt.stat().st_size
    with safe_open(str(only_ab), framework="pt") as handle:
        assert all(key.startswith("generator_ab.") for key in handle.keys())
    image = np.random.default_rng(0).integers(0, 256, (21, 35, 3), dtype=np.uint8)
    for direction in ("AtoB", "BtoA"):
        reference = load_translator(ckpt, direction, device="cpu")(image)
        np.testing.assert_array_equal(load_translator(both, direction, device="cpu")(image), reference)
    np.testing.assert_array_equal(load_translator(only_ab, "AtoB", device="cpu")(image), load_translator(ckpt, "AtoB", device="cpu")(image))
    with pytest.raises(CheckpointError, match="exported with the AtoB generator only; it cannot translate BtoA"):
        load_translator(only_ab, "BtoA", device="cpu")
    # the command line: translate from the export, refuse to overwrite the export, reject a truncated one
    (tmp_path / "in").mkdir()
    from gan_translate.data.io import load_image, save_image

    save_image(image, tmp_path / "in" / "x.png")
    assert main(["translate", "--checkpoint", str(both), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                 "--device", "cpu"]) == 0
    assert load_image(tmp_path / "out" / "x.png").shape == image.shape
    assert main(["export", "--checkpoint", str(ckpt), "--output", str(both)]) == 2
    assert "already exists" in _one_error_line(capsys.readouterr().err)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(both.read_bytes()[:500])
    assert main(["translate", "--checkpoint", str(cut), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o2"),
                 "--device", "cpu"]) == 2
    assert "not a readable safetensors file" in _one_error_line(capsys.readouterr().err)
