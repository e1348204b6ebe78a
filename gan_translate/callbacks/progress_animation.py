"""The progress record of a sampling model: its fixed latents rendered through training, as frames and a GIF.

:class:`FixedNoiseAnimation` works with any model that has ``fixed_noise_grid()`` (a uint8 ``HxWx3`` picture of
the same latents every time, DCGAN's). It renders the grid when training starts, every ``every_n_steps`` batches
and at every epoch end; logs it (``train/fixed_noise``) and saves it as ``<run folder>/samples/
fixed_noise_step<S>_<tag>.png``; assembles the frames into ``<run folder>/fixed_noise.gif`` at every epoch end
(an interrupted run has one too) and when training ends, when it is also logged to W&B. On a resume, frames
newer than the checkpoint (an abandoned continuation) are dropped and those of a run resumed into another
folder are copied over, so the GIF tells one consistent story.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from PIL import Image

from gan_translate.callbacks.run_folder import run_folder
from gan_translate.callbacks.sample_images import log_image, samples_folder
from gan_translate.core.files import atomic_write
from gan_translate.data.io import save_image

__all__ = ["FRAME_PREFIX", "GIF_NAME", "FixedNoiseAnimation", "fixed_noise_frames", "make_gif"]

FRAME_PREFIX = "fixed_noise_step"
GIF_NAME = "fixed_noise.gif"
_FRAME_RE = re.compile(rf"^{FRAME_PREFIX}(\d+)(?:_.*)?\.png$")


def fixed_noise_frames(folder: Path) -> list[tuple[int, Path]]:
    """The saved fixed-noise grids in ``folder`` as ``(step, path)``, in training order."""
    if not folder.is_dir():
        return []
    frames = []
    for path in folder.iterdir():
        match = _FRAME_RE.match(path.name)
        if match:
            frames.append((int(match.group(1)), path))
    return sorted(frames)


def make_gif(frames: list[Path], path: Path, frame_ms: int = 400, hold_last: int = 4) -> Path:
    """Assemble image files into a looping animated GIF at ``path`` (written atomically).

    The last frame is shown ``hold_last`` times longer so the final result can be looked at.
    """
    if not frames:
        raise ValueError("make_gif needs at least one frame")
    images = []
    for frame in frames:
        with Image.open(frame) as image:
            images.append(image.convert("RGB"))
    # All frames must have one size for a GIF; grids of one run always do, but be safe.
    size = images[0].size
    images = [im if im.size == size else im.resize(size) for im in images]
    durations = [frame_ms] * len(images)
    durations[-1] = frame_ms * max(1, hold_last)
    with atomic_write(path) as handle:
        # disposal=1 and no optimisation: every frame is a full grid, and pillow must not merge
        # identical consecutive frames (it would when training has not changed the picture yet).
        images[0].save(handle, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0,
                       disposal=1, optimize=False)
    return path


class FixedNoiseAnimation(Callback):
    """Renders, logs and saves a sampling model's fixed-noise grid through training (see the module docstring).

    Args:
        every_n_steps: also render every this many batches (0: at the start and at epoch ends only).
        make_gif: assemble the saved grids into ``fixed_noise.gif``.
        frame_ms: display time of each GIF frame in milliseconds.
    """

    def __init__(self, every_n_steps: int = 0, make_gif: bool = True, frame_ms: int = 400) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self.make_gif = make_gif
        self.frame_ms = frame_ms

    def render(self, trainer: pl.Trainer, pl_module: pl.LightningModule, tag: str | None = None) -> Path | None:
        """Render the fixed-noise grid, log it, and save it as a GIF frame (rank 0); returns the file."""
        if not trainer.is_global_zero:
            return None
        grid = pl_module.fixed_noise_grid()  # type: ignore[operator]
        step = trainer.global_step
        tag = tag or f"epoch{trainer.current_epoch:03d}"
        log_image(trainer.loggers, "train/fixed_noise", grid, step, caption=f"fixed noise, {tag}, step {step}")
        path = samples_folder(trainer) / f"{FRAME_PREFIX}{step:07d}_{tag}.png"
        save_image(grid, path)
        return path

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._adopt_frames(trainer)
        if trainer.global_step == 0:
            self.render(trainer, pl_module, "start")  # the untrained generator: the first GIF frame

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        batches = trainer.fit_loop.total_batch_idx
        if self.every_n_steps and batches > 0 and batches % self.every_n_steps == 0:
            self.render(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.render(trainer, pl_module)
        if self.make_gif and trainer.is_global_zero:
            # Rebuilt every epoch (a second or less), so an interrupted or crashed run still has its GIF.
            self.write_gif(trainer, log=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Before the loggers are finalised (the W&B run is closed in the teardown that follows).
        if self.make_gif and trainer.is_global_zero:
            self.write_gif(trainer, log=True)

    def write_gif(self, trainer: pl.Trainer, log: bool = True) -> Path | None:
        """Assemble the saved fixed-noise grids into ``<run folder>/fixed_noise.gif``; ``log`` sends it to W&B."""
        frames = [path for _, path in fixed_noise_frames(samples_folder(trainer))]
        if not frames:
            return None
        gif = make_gif(frames, run_folder(trainer) / GIF_NAME, frame_ms=self.frame_ms)
        if log:
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    import wandb

                    logger.log_metrics({"train/fixed_noise_progress": wandb.Video(str(gif), format="gif")},
                                       step=trainer.global_step)
        return gif

    def _adopt_frames(self, trainer: pl.Trainer) -> None:
        """On a resume, keep the GIF's history consistent with the checkpoint's step."""
        step = trainer.global_step
        folder = samples_folder(trainer)
        ckpt_path = getattr(trainer, "ckpt_path", None)
        if ckpt_path and Path(ckpt_path).is_file():
            old = Path(ckpt_path).resolve().parent
            old_run = old.parent if old.name == "checkpoints" else old
            if old_run != run_folder(trainer).resolve():
                for frame_step, frame in fixed_noise_frames(old_run / "samples"):
                    if frame_step <= step and not (folder / frame.name).exists():
                        folder.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(frame, folder / frame.name)
        if step > 0:
            for frame_step, frame in fixed_noise_frames(folder):
                if frame_step > step:
                    frame.unlink(missing_ok=True)
