"""What a newcomer sees on the console after ``gan-translate fit``: the run folder, one-line notes, and at the end
the best validation figure, its checkpoint and a translate command that works; no third-party promotion or noise."""

from __future__ import annotations

import inspect
import re
import shlex
from pathlib import Path

import pytest
from torch import nn

from gan_translate.callbacks.eval_mode import LIGHTNING_EVAL_MODE_WARNING, unexpected_eval_modules
from gan_translate.cli import main
from tests.helpers import fit, tiny_cyclegan_args

#: Lines a fit must not print: Lightning's tips, wandb's warning about the setting Lightning passes for us, wandb's
#: end-of-run tables, the eval-mode warning about frozen networks, torch's deprecation inside Lightning.
NOISE = ("💡 Tip", "litlogger", "litmodels", "anonymous setting", "Run history", "Run summary", "module(s) in eval mode",
         "LeafSpec", "not supported by the model summary")


def test_fit_prints_the_run_folder_and_ends_with_the_best_checkpoint_and_its_command(
    synthetic_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    run_dir = tmp_path / "run"
    # bf16-mixed: what the configs' `precision: auto` trains with on a bf16 CPU or GPU (its model summary warned)
    fit([*tiny_cyclegan_args(synthetic_root, run_dir), "--trainer.precision", "bf16-mixed"])
    out, err = capfd.readouterr()
    # pytest takes the warnings before they reach the console: what a user would see is in the recorder
    console = out + err + "\n".join(str(w.message) for w in recwarn)
    for noise in NOISE:
        assert noise not in console, f"{noise!r} in the fit's output:\n{console}"
    assert re.search(r"^Run folder: .*gan-translate/\w+ \(checkpoints/, samples/, config\.yaml\)$", out, re.M), out
    lines = out.strip().splitlines()
    best, checkpoint, translate, upload = lines[-4:]
    assert re.fullmatch(r"Best val/l1_ab: [0-9.e-]+", best), best
    path = Path(checkpoint.removeprefix("Best checkpoint: "))
    assert checkpoint.startswith("Best checkpoint: ") and path.is_file() and path.name.startswith("best-")
    assert upload.startswith("W&B (offline): wandb sync ") and Path(shlex.split(upload)[-1]).is_dir()

    # The printed command works as printed: it translates the run's test images with that checkpoint.
    assert translate.startswith("Translate with it: gan-translate translate --checkpoint ")
    words = shlex.split(translate.removeprefix("Translate with it: "))
    assert words[words.index("--checkpoint") + 1] == str(path)
    assert words[words.index("--input") + 1] == str(synthetic_root / "testA")
    assert main(words[1:]) == 0
    output = Path(words[words.index("--output") + 1])
    assert sorted(p.name for p in output.iterdir()) == sorted(p.name for p in (synthetic_root / "testA").iterdir())


def test_only_accidental_eval_mode_modules_are_reported() -> None:
    model = nn.Module()
    model.trained = nn.Linear(2, 2)
    model.frozen = nn.Sequential(nn.Linear(2, 2), nn.ReLU()).requires_grad_(False).eval()  # EMA / VGG encoder style
    assert unexpected_eval_modules(model) == []
    model.forgotten = nn.Linear(2, 2).eval()  # trainable, yet in eval mode: a mistake
    model.dropout = nn.Dropout().eval()  # no parameters: eval mode changes its behaviour, so also reported
    assert unexpected_eval_modules(model) == ["forgotten", "dropout"]


def test_the_filter_matches_lightnings_eval_mode_warning_exactly() -> None:
    from lightning.pytorch.loops.fit_loop import _FitLoop

    source = Path(inspect.getsourcefile(_FitLoop) or "").read_text()
    assert "module(s) in eval mode at the start of training" in source  # Lightning still words it so
    assert re.match(LIGHTNING_EVAL_MODE_WARNING, "Found 55 module(s) in eval mode at the start of training. This may")
    assert not re.match(LIGHTNING_EVAL_MODE_WARNING, "2 module(s) in eval mode at the start of training hold")
