"""Nothing is lost: killed runs resume exactly, signals save first, NaNs stop cleanly, translate is atomic,
user mistakes are one line.

Determinism: everything runs on CPU with num_workers 0 and fixed seeds, so an interrupted-and-resumed run must
reproduce an uninterrupted one bit for bit: the weights, Adam's moments, the schedules, the image pools. What
makes that possible is in the checkpoint (Reliability's random states, ResumableSampler's position) and in
Lightning's loop state. The comparisons are exact (torch.equal), not allclose.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from gan_translate.cli import main
from tests.helpers import REPO_ROOT, load_raw, tiny_cyclegan_args

EPOCHS, BATCHES = 2, 3  # 6 batches; the periodic checkpoint is written after every one


# --- test-only callbacks (added with --trainer.callbacks+=tests.callbacks.test_reliability.X) -------------------------
class HangAt(Callback):
    """At the start of the ``batch``-th training batch (1-based, across epochs), write ``marker`` and hang."""

    def __init__(self, batch: int, marker: str, seconds: float = 600.0) -> None:
        self.batch, self.marker, self.seconds = batch, marker, seconds

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.fit_loop.total_batch_idx + 1 == self.batch:
            Path(self.marker).write_text(str(os.getpid()))
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline:  # a signal handler runs in between; then the batch goes on
                time.sleep(0.05)


class SignalAt(Callback):
    """Send ``signum`` to this very process at the start of the ``batch``-th training batch."""

    def __init__(self, batch: int, signum: int = int(signal.SIGINT)) -> None:
        self.batch, self.signum = batch, signum

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.fit_loop.total_batch_idx + 1 == self.batch:
            os.kill(os.getpid(), self.signum)


class PoisonAt(Callback):
    """From the ``batch``-th training batch on, the identity loss weight is infinite (a diverging run)."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.fit_loop.total_batch_idx + 1 == self.batch:
            pl_module.hparams.lambda_identity = float("inf")


# --- helpers ------------------------------------------------------------------------------------------------
def _args(data_root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        *tiny_cyclegan_args(data_root, run_dir, epochs=EPOCHS, batches=BATCHES),
        "--trainer.logger", "false",  # checkpoints in <run_dir>/checkpoints/
        "--reliability.save_every_n_batches", "1",
        "--trainer.num_sanity_val_steps", "0",
        *extra,
    ]


def _last(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


def _subprocess(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "gan_translate.cli", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"process ended early ({process.returncode}): {process.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def _assert_same_state(a: dict, b: dict) -> None:
    """Bit-identical training state: weights, optimisers, schedules, pools, counters."""
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"])
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for index, state in opt_a["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b["state"][index][name])), (index, name)
    assert a["lr_schedulers"] == b["lr_schedulers"]
    for pool in ("a", "b"):
        pa, pb = a["image_pools"][pool], b["image_pools"][pool]
        assert len(pa["images"]) == len(pb["images"]) > 0
        assert all(torch.equal(x, y) for x, y in zip(pa["images"], pb["images"]))
        assert torch.equal(pa["generator"], pb["generator"])


@pytest.fixture(scope="module")
def reference(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The uninterrupted run: 2 epochs of 3 batches."""
    run_dir = tmp_path_factory.mktemp("reference")
    assert main(["fit", *_args(synthetic_root, run_dir)]) == 0
    return load_raw(_last(run_dir))


# --- resume after SIGKILL ---------------------------------------------------------------------------------
def test_killed_run_resumes_exactly(synthetic_root: Path, tmp_path: Path, reference: dict) -> None:
    run_dir, marker = tmp_path / "run", tmp_path / "hanging"
    # Hang at the 5th batch (epoch 1, mid-epoch): the periodic last.ckpt of batch 4 is on disk; then kill -9.
    process = _subprocess(["fit", *_args(synthetic_root, run_dir,
                                         "--trainer.callbacks+=tests.callbacks.test_reliability.HangAt",
                                         "--trainer.callbacks.batch=5", f"--trainer.callbacks.marker={marker}")])
    try:
        _wait_for(marker, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    killed = load_raw(_last(run_dir))
    assert killed["global_step"] == 2 * 4 and killed["epoch"] == 1  # two optimiser steps per batch
    assert {float(s["step"]) for s in killed["optimizer_states"][0]["state"].values()} == {4.0}
    assert not [p for p in _last(run_dir).parent.iterdir() if p.name.startswith(".")], "temporary files left"

    assert main(["fit", *_args(synthetic_root, run_dir), "--ckpt_path", str(_last(run_dir))]) == 0
    resumed = load_raw(_last(run_dir))
    assert {float(s["step"]) for s in resumed["optimizer_states"][0]["state"].values()} == {6.0}
    _assert_same_state(resumed, reference)


# --- signals ----------------------------------------------------------------------------------------------
def test_sigterm_saves_then_exits_cleanly(synthetic_root: Path, tmp_path: Path) -> None:
    run_dir, marker = tmp_path / "run", tmp_path / "hanging"
    process = _subprocess(["fit", *_args(synthetic_root, run_dir, "--reliability.save_every_n_batches", "0",
                                         "--trainer.callbacks+=tests.callbacks.test_reliability.HangAt",
                                         "--trainer.callbacks.batch=2", f"--trainer.callbacks.marker={marker}",
                                         "--trainer.callbacks.seconds=2")])
    try:
        _wait_for(marker, process)
        process.send_signal(signal.SIGTERM)  # during batch 2: it finishes, is saved, and the run stops
        _, err = process.communicate(timeout=240)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "Traceback" not in err
    assert f"stopped: stopped on SIGTERM after step 4 (epoch 0, batch 2); saved {_last(run_dir)}" in err
    saved = load_raw(_last(run_dir))
    assert saved["global_step"] == 4
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["batches_consumed"] == 2


def test_ctrl_c_at_an_epochs_last_batch_saves_at_its_end_and_resumes_exactly(
    synthetic_root: Path, tmp_path: Path, reference: dict, capsys: pytest.CaptureFixture
) -> None:
    run_dir = tmp_path / "run"
    handler = signal.getsignal(signal.SIGINT)
    # Ctrl-C during the last batch of epoch 0: the save waits for the epoch's end (LR step, validation).
    code = main(["fit", *_args(synthetic_root, run_dir, "--reliability.save_every_n_batches", "0",
                               "--trainer.callbacks+=tests.callbacks.test_reliability.SignalAt", "--trainer.callbacks.batch=3")])
    assert code == 128 + signal.SIGINT
    err = capsys.readouterr().err
    assert "received SIGINT: saving a checkpoint at the end of this batch" in err
    assert "stopped: stopped on SIGINT after step 6 (epoch 0, batch 3)" in err
    assert signal.getsignal(signal.SIGINT) is handler, "the previous SIGINT handler was not restored"
    saved = load_raw(_last(run_dir))
    assert saved["global_step"] == 6 and saved["lr_schedulers"][0]["last_epoch"] == 1  # after the epoch's LR step

    assert main(["fit", *_args(synthetic_root, run_dir), "--ckpt_path", str(_last(run_dir))]) == 0
    _assert_same_state(load_raw(_last(run_dir)), reference)


@pytest.mark.parametrize("new_batch_size", [2, 3])
def test_resume_with_another_batch_size_trains_the_rest_of_the_epoch(
    synthetic_root: Path, tmp_path: Path, new_batch_size: int
) -> None:
    # 8 images in batches of 1, stopped after 2. Lightning counts the epoch's batches done in the old size (2 of
    # 4 with batches of 2), so it ended the epoch early and left images of it untrained.
    run_dir = tmp_path / "run"
    one_epoch = ["--trainer.limit_train_batches", "100", "--trainer.max_epochs", "1", "--reliability.save_every_n_batches", "0"]
    code = main(["fit", *_args(synthetic_root, run_dir, "--data.batch_size", "1", *one_epoch,
                               "--trainer.callbacks+=tests.callbacks.test_reliability.SignalAt", "--trainer.callbacks.batch=2")])
    assert code == 128 + signal.SIGINT
    assert load_raw(_last(run_dir))["global_step"] == 2 * 2

    with pytest.warns(UserWarning, match="epoch 0 goes on after its first 2 images"):
        assert main(["fit", *_args(synthetic_root, run_dir, "--data.batch_size", str(new_batch_size), *one_epoch),
                     "--ckpt_path", str(_last(run_dir))]) == 0
    resumed = load_raw(_last(run_dir))
    # the 6 images left, in whole batches (the training loader drops a last partial batch)
    assert resumed["global_step"] == 2 * (2 + 6 // new_batch_size)
    position = resumed["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert position["items_consumed"] in (0, 8 - 6 % new_batch_size)  # reset at the epoch's end, or its last item


# --- NaN guard --------------------------------------------------------------------------------------------
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(synthetic_root: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    code = main(["fit", *_args(synthetic_root, run_dir, "--trainer.callbacks+=tests.callbacks.test_reliability.PoisonAt",
                               "--trainer.callbacks.batch=3")])
    assert code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("error: train/idt_b is inf at step 4 (epoch 0, batch 3) (also non-finite: train/idt_a);")
    assert f"last good checkpoint: {_last(run_dir)}" in errors[0]
    kept = load_raw(_last(run_dir))
    assert kept["global_step"] == 4  # batch 2's checkpoint, not overwritten by the poisoned batch 3
    assert kept["hyper_parameters"]["lambda_identity"] == 0.5
    assert all(torch.isfinite(v).all() for v in kept["state_dict"].values() if v.is_floating_point())


def test_guard_callback_catches_models_that_do_not_check(tmp_path: Path) -> None:
    """Models that do not call check_finite (a user's own subclass, say) are stopped by the callback, before any
    ModelCheckpoint.on_train_batch_end (Lightning always orders checkpoint callbacks last)."""
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.trainer.connectors.callback_connector import _CallbackConnector

    from gan_translate.callbacks import NonFiniteGuard, Reliability
    from gan_translate.core.errors import NonFiniteLossError

    callbacks = Reliability().callbacks()
    guard = callbacks[0]
    assert isinstance(guard, NonFiniteGuard)
    ordered = _CallbackConnector._reorder_callbacks([ModelCheckpoint(), *callbacks])
    assert ordered.index(guard) < len(ordered) - 1
    trainer = SimpleNamespace(
        callback_metrics={"train/g_loss_step": torch.tensor(1.0), "train/d_loss_step": torch.tensor(float("nan")),
                          "train/g_loss_epoch": torch.tensor(float("nan")), "val/x": torch.tensor(float("inf"))},
        world_size=1, global_step=14, current_epoch=2, fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_idx=6)),
        callbacks=[],
    )
    with pytest.raises(NonFiniteLossError, match=r"^train/d_loss is nan at step 14 \(epoch 2, batch 7\); training stopped before this state was saved"):
        guard.on_train_batch_end(trainer, None, None, None, 6)  # type: ignore[arg-type]


# --- translate never leaves a half-written output -----------------------------------------------------------
def test_killed_translate_leaves_only_complete_outputs(tmp_path: Path) -> None:
    from gan_translate.data.io import list_images, load_image, save_image
    from tests.artifacts.test_checkpoint_safety import write_checkpoint

    checkpoint = write_checkpoint(tmp_path / "model.ckpt")
    inputs, out = tmp_path / "in", tmp_path / "out"
    rng = np.random.default_rng(0)
    for i in range(150):
        save_image(rng.integers(0, 256, (96 + i % 3, 128, 3), dtype=np.uint8), inputs / f"{i:03d}.png")
    process = _subprocess(["translate", "--checkpoint", str(checkpoint), "--input", str(inputs), "--output", str(out),
                           "--batch-size", "1", "--device", "cpu"])
    try:
        deadline = time.monotonic() + 240
        while not (out.is_dir() and len([p for p in out.iterdir() if not p.name.startswith(".")]) >= 3):
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
        process.communicate()
    visible = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert 3 <= len(visible) < 150, "the kill came too late to test anything"
    for path in visible:  # every visible output is a complete image of its input's size
        assert path.suffix == ".png"
        assert load_image(path).shape == load_image(inputs / path.name).shape
    # a write cut short leaves at most a hidden temp file, which no image listing picks up
    assert all(p.name.endswith(".tmp") for p in out.iterdir() if p.name.startswith("."))
    assert sorted(list_images(out)) == sorted(visible)


def test_translate_protects_inputs_and_reports_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from gan_translate.data.io import save_image
    from tests.artifacts.test_checkpoint_safety import write_checkpoint

    checkpoint = str(write_checkpoint(tmp_path / "model.ckpt"))
    inputs = tmp_path / "in"
    for name in ("a.png", "b.png", "c.png"):
        save_image(np.full((12, 10, 3), 90, np.uint8), inputs / name)
    (inputs / "broken.png").write_bytes((inputs / "a.png").read_bytes()[:40])  # truncated
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}

    def translate(*extra: str) -> int:
        return main(["translate", "--checkpoint", checkpoint, "--input", str(inputs), "--device", "cpu", *extra])

    # a bad input does not stop the others; it is reported and the exit code says so
    assert translate("--output", str(tmp_path / "out")) == 1
    captured = capsys.readouterr()
    assert "translated 3 of 4 images" in captured.out
    assert "1 input(s) could not be read and were skipped:" in captured.err and "broken.png" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]
    # the input folder as output: refused unless asked for, and even then inputs are never overwritten
    assert translate("--output", str(inputs)) == 2
    assert "holds input images" in capsys.readouterr().err
    assert translate("--output", str(inputs), "--allow-input-dir") == 2
    assert "refusing to overwrite input image" in capsys.readouterr().err
    assert translate("--output", str(inputs), "--allow-input-dir", "--suffix", "_fake") == 1
    capsys.readouterr()
    assert {p.name: p.read_bytes() for p in inputs.iterdir() if "_fake" not in p.name} == before
    # a symlinked sub-folder inside the output folder must not carry outputs out of it
    (inputs / "sub").mkdir()
    save_image(np.zeros((8, 8, 3), np.uint8), inputs / "sub" / "d.png")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "sub").symlink_to(outside, target_is_directory=True)
    assert translate("--output", str(tmp_path / "out2")) == 2
    assert "would be written outside the output folder" in capsys.readouterr().err
    assert not list(outside.iterdir())


# --- user mistakes are one line -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--model.generator", "nope"], "unknown generator 'nope'; valid names: "),
        (["--model.norm", "weird"], "unknown norm 'weird'; valid names: batch, instance, none"),
        (["--data.transform.crop_size", "-3"], "load_size and crop_size must be positive"),
        (["--data.root", "/nonexistent/data"], "dataset folder not found: /nonexistent/data/trainA"),
        (["--trainer.max_epochs", "x"], "--trainer.max_epochs: Expected a int, got 'x'"),
        (["--model.nonexistent", "3"], "--model: option 'nonexistent' is not accepted"),
        (["--model.lamda_a", "3"], "--model: option 'lamda_a' is not accepted (on the command line); did you mean 'lambda_a'?"),
        (["--data.batchsize", "3"], "--data: option 'batchsize' is not accepted (on the command line); did you mean 'batch_size'?"),
        (["--data.on_bad_file", "maybe"], "--data.on_bad_file: Expected a typing.Literal['error', 'skip']. Got value: maybe"),
        (["--reliability.signals", "[SIGFOO]"], "reliability: unknown signal 'SIGFOO'; valid: SIGTERM, SIGINT"),
        (["--ckpt_path", "/nonexistent.ckpt"], "checkpoint not found: /nonexistent.ckpt"),
        (["--config", "/nonexistent.yaml"], "--config: File does not exist"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_fit_mistakes_are_one_line(synthetic_root: Path, tmp_path: Path, extra: list[str], expected: str,
                                   capsys: pytest.CaptureFixture) -> None:
    assert main(["fit", *_args(synthetic_root, tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert expected in errors[0]


def test_config_file_mistakes_name_the_file(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    quickstart = (REPO_ROOT / "configs" / "cyclegan" / "quickstart.yaml").read_text()
    typo = tmp_path / "typo.yaml"
    typo.write_text(quickstart.replace("    n_epochs: 4", "    lamda_a: 4\n    n_epochs: 4"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: {a: [1, 2\n")
    for config, expected in [
        (typo, f"error: --model: option 'lamda_a' is not accepted (in {typo}); did you mean 'lambda_a'?"),
        (broken, f"error: config {broken} is not valid YAML: expected ',' or ']', but got '<stream end>' (line 2, column 1)"),
    ]:
        assert main(["fit", *_args(synthetic_root, tmp_path), "--config", str(config)]) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(expected), errors


def test_debug_shows_the_traceback(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["fit", *_args(synthetic_root, tmp_path), "--model.gan_loss", "wgan", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "error: unknown adversarial loss 'wgan'" in err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--model.gan_loss", "wgan"], "error: unknown adversarial loss 'wgan'; valid names: hinge, lsgan, vanilla"),
        (["--model.lr", "abc"], "error: --model.lr: Expected a float. Got value: abc"),
    ],
)
def test_fit_mistakes_in_a_real_process(synthetic_root: Path, tmp_path: Path, extra: list[str], expected: str) -> None:
    process = _subprocess(["fit", *_args(synthetic_root, tmp_path), *extra])
    _, err = process.communicate(timeout=240)
    assert process.returncode == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith(expected)


@pytest.mark.parametrize(("precision", "saved"), [("16-mixed", False), ("32-true", True)])
def test_nonfinite_message_advice_fits_the_run(tmp_path: Path, precision: str, saved: bool) -> None:
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import ModelCheckpoint

    from gan_translate.callbacks.nonfinite import nonfinite_message

    checkpoint = ModelCheckpoint(dirpath=tmp_path)
    if saved:
        checkpoint.last_model_path = str(tmp_path / "last.ckpt")
        (tmp_path / "last.ckpt").write_bytes(b"")
    trainer = SimpleNamespace(global_step=4, current_epoch=0, precision=precision, callbacks=[checkpoint],
                              fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_idx=1)))
    message = nonfinite_message(trainer, {"train/g_total": float("nan")})  # type: ignore[arg-type]
    assert message.startswith("train/g_total is nan at step 4 (epoch 0, batch 2); training stopped before the weights")
    if saved:
        assert message.endswith(f"last good checkpoint: {tmp_path / 'last.ckpt'} (try a lower learning rate, or resume from that checkpoint)")
    else:  # nothing to resume from; fp16's range is the first suspect
        assert message.endswith("no checkpoint was saved yet (try --trainer.precision bf16-mixed or 32 instead of "
                                "16-mixed or a lower learning rate)")


# --- last.ckpt always holds the end of training -------------------------------------------------------------
def test_a_run_stopped_by_max_steps_saves_its_last_state_and_resumes_exactly(
    synthetic_root: Path, tmp_path: Path, reference: dict
) -> None:
    """No periodic saves, a stop mid-epoch (max_steps): last.ckpt is the state at that step (Lightning would leave
    the previous epoch's there), and resuming from it ends where the uninterrupted run ends."""
    run_dir = tmp_path / "run"
    stopped_at = 2 * (BATCHES + 1)  # epoch 1, batch 1: two optimiser steps per batch
    assert main(["fit", *_args(synthetic_root, run_dir, "--reliability.save_every_n_batches", "0",
                               "--trainer.max_steps", str(stopped_at))]) == 0
    saved = load_raw(_last(run_dir))
    assert (saved["global_step"], saved["epoch"]) == (stopped_at, 1)
    assert main(["fit", *_args(synthetic_root, run_dir, "--reliability.save_every_n_batches", "0"),
                 "--ckpt_path", str(_last(run_dir))]) == 0
    _assert_same_state(load_raw(_last(run_dir)), reference)


def test_a_run_stopped_by_max_time_keeps_its_last_state(synthetic_root: Path, tmp_path: Path) -> None:
    """The time limit runs out during batch 1 (it hangs for 2 s; the limit is 1 s): training stops after it, and
    last.ckpt holds that batch's state (Lightning's own last.ckpt would be the previous epoch's). Lightning then
    validates and its ModelCheckpoint rewrites last.ckpt at the same step; a resume from that file goes on, but is
    not batch-exact (see docs/reliability.md), unlike a stop by max_steps or a signal."""
    run_dir = tmp_path / "run"
    assert main(["fit", *_args(synthetic_root, run_dir, "--reliability.save_every_n_batches", "0",
                               "--trainer.max_time", "00:00:00:01",
                               "--trainer.callbacks+=tests.callbacks.test_reliability.HangAt", "--trainer.callbacks.batch=1",
                               f"--trainer.callbacks.marker={tmp_path / 'hanging'}", "--trainer.callbacks.seconds=2")]) == 0
    assert load_raw(_last(run_dir))["global_step"] == 2  # after batch 1 of epoch 0, whatever the machine's speed
    assert main(["fit", *_args(synthetic_root, run_dir, "--reliability.save_every_n_batches", "0"),
                 "--ckpt_path", str(_last(run_dir))]) == 0
    assert load_raw(_last(run_dir))["global_step"] > 2


def test_last_checkpoint_is_written_every_epoch_even_without_a_best_one(synthetic_root: Path, tmp_path: Path) -> None:
    """save_top_k 0 (the DCGAN configs): Lightning writes last.ckpt only when it saves another checkpoint, i.e.
    never; the epoch-end save writes it at every epoch's end."""
    run_dir = tmp_path / "run"
    steps: list[int] = []

    class Watch(Callback):
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.current_epoch > 0:
                steps.append(load_raw(_last(run_dir))["global_step"])


    import lightning.pytorch as pl

    from gan_translate.callbacks import ModelCheckpoint, Reliability
    from gan_translate.data import ImageTransform, UnpairedDataModule
    from gan_translate.models import CycleGAN

    model = CycleGAN(generator="resnet", generator_args={"n_blocks": 1}, ngf=4, ndf=4, pool_size=2, sample_every_n_steps=0)
    data = UnpairedDataModule(str(synthetic_root), transform=ImageTransform(load_size=32, crop_size=32), batch_size=2, num_workers=0)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=3, limit_train_batches=2, limit_val_batches=1, logger=False,
                         enable_progress_bar=False, default_root_dir=str(run_dir), num_sanity_val_steps=0,
                         callbacks=[ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), save_top_k=0, save_last=True),
                                    Watch(), *Reliability(save_every_n_batches=0).callbacks()])
    trainer.fit(model, data)
    assert steps == [4, 8]  # the end of epochs 0 and 1, seen when the next epoch starts
    assert load_raw(_last(run_dir))["global_step"] == 12
