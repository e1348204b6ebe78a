"""What ``gan-translate fit`` tells a person on the console: the run folder when training starts, and at the end the
best validation figure, the checkpoint it came from and the command that uses it (ready to paste).

The lines are printed (stdout, rank 0 only), not logged: they are the fit's result, like a compiler's last line.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from gan_translate.callbacks.run_folder import run_folder

__all__ = ["FitSummary", "shown_path", "use_command"]


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a person would type it here: relative to the working folder when it lies inside it."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _command(words: Sequence[str]) -> str:
    return " ".join(shlex.quote(str(word)) for word in words)


def _best_checkpoint(trainer: pl.Trainer) -> tuple[ModelCheckpoint | None, str]:
    """The checkpoint callback that kept the best (or else the last) checkpoint, and that file."""
    callbacks = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
    for callback in callbacks:
        if callback.monitor and callback.best_model_path and Path(callback.best_model_path).is_file():
            return callback, callback.best_model_path
    for callback in callbacks:
        if callback.last_model_path and Path(callback.last_model_path).is_file():
            return None, callback.last_model_path
    return None, ""


def _test_folder(datamodule: object, side: str) -> Path | None:
    """The datamodule's test (else validation) images of domain ``side`` (``testA/``), when its layout has them."""
    root = getattr(datamodule, "root", None)
    if root is None:
        return None
    for split in ("test", "val"):
        folder = Path(root) / f"{split}{side}"
        if folder.is_dir():
            return folder
    return None


def use_command(pl_module: pl.LightningModule, datamodule: object, checkpoint: str, folder: Path) -> tuple[str, str] | None:
    """What ``checkpoint`` does (``Translate``) and the ``gan-translate`` command that does it on the run's own test
    images, writing into ``folder``; None when the model does nothing a command offers."""
    capabilities = getattr(pl_module, "capabilities", frozenset())
    ckpt = shown_path(checkpoint)
    if "translate" in capabilities:
        source = _test_folder(datamodule, "A")
        inputs = shown_path(source) if source is not None else "YOUR_IMAGES/"
        return "Translate", _command(["gan-translate", "translate", "--checkpoint", ckpt, "--input", inputs,
                         "--output", shown_path(folder / "translated")])
    if "sample" in capabilities:
        return "Generate", _command(["gan-translate", "generate", "--checkpoint", ckpt, "--num", "16", "--grid",
                         "--output", shown_path(folder / "generated")])
    if "stylize" in capabilities:
        content = _test_folder(datamodule, "A") or getattr(datamodule, "root", None) or "YOUR_IMAGES/"
        style = getattr(datamodule, "style_root", None) or "YOUR_STYLE.jpg"
        return "Stylize", _command(["gan-translate", "stylize", "--method", "adain", "--checkpoint", ckpt, "--content",
                         shown_path(content), "--style", shown_path(style), "--output", shown_path(folder / "stylized")])
    return None


class FitSummary(Callback):
    """Prints the run folder when ``fit`` starts and, when it ends, the best validation figure, its checkpoint, the
    command that uses it and, for an offline W&B run, how to upload it (``gan-translate fit`` adds it)."""

    _lines: tuple[str, ...] = ()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            print(f"Run folder: {shown_path(run_folder(trainer))} (checkpoints/, samples/, config.yaml)", flush=True)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self._lines = tuple(self.summary(trainer, pl_module))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Printed here, after the progress bar's last frame (its own teardown), so the summary is the fit's last word;
        # only after a fit that ended (on_fit_end): an interrupted one says so itself.
        if self._lines:
            print("\n".join(self._lines), flush=True)
            self._lines = ()

    def summary(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> list[str]:
        """The lines printed at the end of ``fit``."""
        lines = []
        callback, checkpoint = _best_checkpoint(trainer)
        if callback is not None and callback.best_model_score is not None:
            lines.append(f"Best {callback.monitor}: {float(callback.best_model_score):.4g}")
        if checkpoint:
            kind = "Best checkpoint" if callback is not None else "Checkpoint"
            lines.append(f"{kind}: {shown_path(checkpoint)}")
            use = use_command(pl_module, trainer.datamodule, checkpoint, run_folder(trainer))
            if use is not None:
                lines.append(f"{use[0]} with it: {use[1]}")
        return lines + _wandb_lines(trainer)


def _wandb_lines(trainer: pl.Trainer) -> list[str]:
    """How to upload an offline W&B run of this fit (its folder, found by the run id)."""
    lines = []
    for logger in trainer.loggers:
        if getattr(logger, "mode", None) != "offline" or not isinstance(logger.version, str):
            continue
        folders = sorted((Path(str(logger.save_dir)) / "wandb").glob(f"offline-run-*-{logger.version}"))
        if folders:
            lines.append(f"W&B (offline): wandb sync {shlex.quote(shown_path(folders[-1]))}")
    return lines
