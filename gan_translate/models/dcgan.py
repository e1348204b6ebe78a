"""DCGAN (Radford et al. 2016): unconditional image generation from a Gaussian latent vector.

Besides training, the module keeps a visual record of progress: a FIXED batch of latent vectors
(a buffer made from ``fixed_noise_seed``, so it is stored in every checkpoint and is the same in
every epoch and after a resume) is rendered when training starts, at every epoch end (and every
``sample_every_n_steps`` batches), logged as an image grid and saved as
``<run folder>/samples/fixed_noise_step*.png``. The saved grids are assembled into
``<run folder>/fixed_noise.gif`` at every epoch end (so an interrupted run has one too) and when
training ends, when it is also logged to W&B. The run folder is the one holding ``checkpoints/``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.utils import make_grid

from gan_translate.data.io import save_image, tensor_to_uint8
from gan_translate.errors import UserError
from gan_translate.losses import adversarial_loss, discriminator_loss
from gan_translate.models.base import GANModule
from gan_translate.nn import build_discriminator, build_generator

__all__ = ["DCGAN", "FRAME_PREFIX", "GIF_NAME", "fixed_noise_frames", "make_gif", "match_channels"]

FRAME_PREFIX = "fixed_noise_step"
GIF_NAME = "fixed_noise.gif"
_FRAME_RE = re.compile(rf"^{FRAME_PREFIX}(\d+)(?:_.*)?\.png$")

# ITU-R BT.601 luma, as PIL's "L" conversion (and gan_translate.inference.as_tensor_image).
_LUMA = (0.299, 0.587, 0.114)


def match_channels(images: Tensor, channels: int) -> Tensor:
    """NCHW images in [-1, 1] -> ``channels`` channels (RGB -> luma for 1, grey -> repeated for 3).

    The datamodules always deliver RGB (files on disk are read as RGB), so a 1-channel model trained on
    a folder of images or on MNIST sees the luma of each image; exact for grey images stored as RGB.
    """
    have = images.shape[1]
    if have == channels:
        return images
    if channels == 1 and have >= 3:
        weights = images.new_tensor(_LUMA).view(1, 3, 1, 1)
        return (images[:, :3] * weights).sum(1, keepdim=True)
    if channels == 3 and have == 1:
        return images.expand(-1, 3, -1, -1)
    raise UserError(f"cannot train a {channels}-channel DCGAN on {have}-channel images")


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
    from PIL import Image

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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            # disposal=1 and no optimisation: every frame is a full grid, and pillow must not merge
            # identical consecutive frames (it would when training has not changed the picture yet).
            images[0].save(
                fh, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0,
                disposal=1, optimize=False,
            )
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


class DCGAN(GANModule):
    """Unconditional GAN with the DCGAN generator and discriminator (Radford et al. 2016).

    Defaults are the paper's: a 100-d standard normal latent, 64x64 images, ngf = ndf = 64, BatchNorm,
    the non-saturating GAN loss (BCE with logits, ``vanilla``), Adam 2e-4 with betas (0.5, 0.999).
    Each batch does one discriminator step on real images and detached fakes, then one generator step
    on the same fakes. There is no validation loop: the fixed-noise grids are the progress record, and
    :meth:`sample` is the hook for sample-based metrics (FID / KID callbacks).

    Hyperparameter names avoid the datamodules' (``image_size``, ``seed``, ...): Lightning refuses to
    merge differing values, so the image size is ``resolution`` here and must equal ``data.image_size``
    (checked when training starts).

    Args:
        latent_dim: size of the latent vector z ~ N(0, I).
        resolution: image height and width: 32, 64 or 128 (must equal data.image_size).
        channels: image channels: 1 (greyscale; RGB data is converted to luma) or 3.
        ngf: generator width (channels of its last hidden layer).
        ndf: discriminator width (channels of its first layer).
        gan_loss: vanilla (non-saturating BCE, the paper's), lsgan or hinge.
        lr: Adam learning rate of both networks.
        beta1: Adam beta1.
        beta2: Adam beta2.
        init_gain: standard deviation of the normal weight init (0.02 in the paper).
        num_fixed_samples: images in the fixed-noise progress grid.
        fixed_noise_seed: seed of the fixed latent batch behind the progress grids.
        sample_every_n_steps: also render the fixed-noise grid every this many batches (0: at epoch ends only).
        make_gif: assemble the saved grids into fixed_noise.gif when training ends.
        gif_frame_ms: display time of each GIF frame in milliseconds.
    """

    model_name = "dcgan"
    checkpoint_overridable_hparams = frozenset({"sample_every_n_steps", "make_gif", "gif_frame_ms"})

    def __init__(
        self,
        latent_dim: int = 100,
        resolution: int = 64,
        channels: int = 3,
        ngf: int = 64,
        ndf: int = 64,
        gan_loss: str = "vanilla",
        lr: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        init_gain: float = 0.02,
        num_fixed_samples: int = 64,
        fixed_noise_seed: int = 1234,
        sample_every_n_steps: int = 0,
        make_gif: bool = True,
        gif_frame_ms: int = 400,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if channels not in (1, 3):
            raise UserError(f"model.channels must be 1 or 3, got {channels}")
        if latent_dim < 1:
            raise UserError(f"model.latent_dim must be positive, got {latent_dim}")
        if num_fixed_samples < 1:
            raise UserError(f"model.num_fixed_samples must be positive, got {num_fixed_samples}")
        self.generator = build_generator(
            "dcgan", latent_dim=latent_dim, out_channels=channels, ngf=ngf, image_size=resolution, init_gain=init_gain
        )
        self.discriminator = build_discriminator(
            "dcgan", in_channels=channels, ndf=ndf, image_size=resolution, init_gain=init_gain
        )
        self.gan_loss = adversarial_loss(gan_loss)
        # LSGAN pushes real logits to 1 and fakes to 0, so its decision boundary is 0.5; BCE and hinge: 0.
        self._threshold = 0.5 if gan_loss == "lsgan" else 0.0
        # A buffer, not a fresh draw: it goes into every checkpoint, so the progress grids show the same
        # latents in every epoch, after a resume, and whatever the global seed or the RNG implementation.
        noise = torch.randn(num_fixed_samples, latent_dim, generator=torch.Generator().manual_seed(fixed_noise_seed))
        self.register_buffer("fixed_noise", noise)

    # --- API --------------------------------------------------------------------------------------
    def forward(self, z: Tensor) -> Tensor:
        """Latents ``(N, latent_dim)`` -> images ``(N, channels, resolution, resolution)`` in [-1, 1]."""
        return self.generator(z)

    def translator(self, direction: str = "AtoB") -> nn.Module:
        raise UserError("DCGAN is an unconditional generator, not a translator; use `gan-translate generate`")

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` standard normal latent vectors, drawn on the CPU (same values on every device)."""
        if n < 1:
            raise UserError(f"number of samples must be positive, got {n}")
        return torch.randn(n, self.hparams.latent_dim, generator=generator)

    @torch.no_grad()
    def decode(self, z: Tensor, batch_size: int = 256) -> Tensor:
        """Images for the latents ``z`` with the generator in eval mode, on the module's device.

        Eval mode makes BatchNorm use its running statistics, so every image depends on its own latent
        only: the same seed gives the same images whatever the batch size or number of samples.
        """
        was_training = self.generator.training
        self.generator.eval()
        try:
            chunks = [self.generator(part.to(self.device)) for part in z.split(batch_size)]
        finally:
            self.generator.train(was_training)
        return torch.cat(chunks)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` generated images ``(n, channels, resolution, resolution)`` in [-1, 1] on the module's device.

        Pass a seeded ``torch.Generator`` for reproducible samples (e.g. for FID / KID).
        """
        return self.decode(self.latents(n, generator))

    def configure_optimizers(self) -> Any:
        opt_g = self.adam(self.generator.parameters())
        opt_d = self.adam(self.discriminator.parameters())
        return [opt_g, opt_d]

    # --- training -------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        size = getattr(datamodule, "image_size", None)
        if isinstance(size, int) and size != self.hparams.resolution:
            raise UserError(
                f"data.image_size={size} but model.resolution={self.hparams.resolution}; set both to the same size"
            )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real = match_channels(batch["image"], self.hparams.channels)
        if real.shape[-1] != self.hparams.resolution or real.shape[-2] != self.hparams.resolution:
            raise UserError(
                f"got {real.shape[-2]}x{real.shape[-1]} training images for a {self.hparams.resolution} px DCGAN; "
                "set data.image_size to model.resolution"
            )
        n = real.shape[0]
        z = torch.randn(n, self.hparams.latent_dim, device=self.device)
        # Both steps use this one batch of fakes (as the reference DCGAN does): D on a detached copy,
        # then G through D's updated weights.
        fake = self.generator(z)

        with self.toggled_optimizer(opt_d):
            d_real = self.discriminator(real)
            d_fake = self.discriminator(fake.detach())
            d_loss = discriminator_loss(self.gan_loss, d_real, d_fake)
            self.check_finite({"d_loss": d_loss})  # before the step: a NaN never reaches the weights
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()

        with self.toggled_optimizer(opt_g):
            # Non-saturating for "vanilla": G maximises log D(G(z)) instead of minimising log(1 - D(G(z))).
            g_loss = self.gan_loss.generator(self.discriminator(fake))
            self.check_finite({"g_loss": g_loss})
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()

        d_real, d_fake = d_real.detach(), d_fake.detach()
        logged = {
            "train/d_loss": d_loss,
            "train/g_loss": g_loss,
            # D's belief that its input is real (sigmoid of the logits; exact for the vanilla loss).
            "train/d_real_mean": torch.sigmoid(d_real).mean(),
            "train/d_fake_mean": torch.sigmoid(d_fake).mean(),
            "train/d_acc_real": (d_real > self._threshold).float().mean(),
            "train/d_acc_fake": (d_fake <= self._threshold).float().mean(),
        }
        self.log_training_values(logged, n, prog_bar=("train/d_loss", "train/g_loss"))

        every = self.hparams.sample_every_n_steps
        if every and self.iteration > 0 and self.iteration % every == 0:
            self.render_fixed_noise()

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Latents (a tensor, or a dict with ``"z"``) -> images in [-1, 1]."""
        z = batch["z"] if isinstance(batch, dict) else batch
        return self.decode(z)

    # --- progress record -------------------------------------------------------------------------
    def fixed_noise_grid(self) -> Tensor:
        """The fixed latents rendered as one grid (CHW in [-1, 1], 3 channels, 2 px white padding)."""
        images = self.decode(self.fixed_noise).float().cpu()
        nrow = math.isqrt(images.shape[0] - 1) + 1  # ceil(sqrt(n)): a square-ish grid
        return make_grid(images, nrow=nrow, padding=2, pad_value=1.0).clamp(-1, 1)

    def render_fixed_noise(self, tag: str | None = None) -> Path | None:
        """Render the fixed-noise grid, log it, and save it as a GIF frame (rank 0); returns the file."""
        if self._trainer is None or not self.trainer.is_global_zero:
            return None
        grid = tensor_to_uint8(self.fixed_noise_grid())
        step = self.global_step
        tag = tag or f"epoch{self.current_epoch:03d}"
        self.log_image_grid("train/fixed_noise", grid, caption=f"fixed noise, {tag}, step {step}")
        path = self.samples_dir / f"{FRAME_PREFIX}{step:07d}_{tag}.png"
        save_image(grid, path)
        return path

    def on_train_start(self) -> None:
        super().on_train_start()
        if not self.trainer.is_global_zero:
            return
        self._adopt_frames()
        if self.global_step == 0:
            self.render_fixed_noise("start")  # the untrained generator: the first GIF frame

    def _adopt_frames(self) -> None:
        """On a resume, keep the GIF's history consistent with the checkpoint's step.

        Frames newer than the checkpoint belong to an abandoned continuation and are removed; frames of
        a run resumed into another folder (e.g. without the W&B run id) are copied over.
        """
        step = self.global_step
        folder = self.samples_dir
        ckpt_path = getattr(self.trainer, "ckpt_path", None)
        if ckpt_path and Path(ckpt_path).is_file():
            old = Path(ckpt_path).resolve().parent
            old_run = old.parent if old.name == "checkpoints" else old
            if old_run != self.run_dir().resolve():
                for frame_step, frame in fixed_noise_frames(old_run / "samples"):
                    if frame_step <= step and not (folder / frame.name).exists():
                        folder.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(frame, folder / frame.name)
        if step > 0:
            for frame_step, frame in fixed_noise_frames(folder):
                if frame_step > step:
                    frame.unlink(missing_ok=True)

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.render_fixed_noise()
        if self.hparams.make_gif and self.trainer.is_global_zero:
            # Rebuilt every epoch (a second or less), so an interrupted or crashed run still has its GIF.
            self.write_progress_gif(log=False)

    def on_train_end(self) -> None:
        super().on_train_end()
        # Before the loggers are finalised (the W&B run is closed in the teardown that follows).
        if self.hparams.make_gif and self.trainer.is_global_zero:
            self.write_progress_gif(log=True)

    def write_progress_gif(self, log: bool = True) -> Path | None:
        """Assemble the saved fixed-noise grids into ``<run folder>/fixed_noise.gif``; ``log`` sends it to W&B."""
        frames = [path for _, path in fixed_noise_frames(self.samples_dir)]
        if not frames:
            return None
        gif = make_gif(frames, self.run_dir() / GIF_NAME, frame_ms=self.hparams.gif_frame_ms)
        if not log:
            return gif
        for logger in self.loggers:
            if type(logger).__name__.endswith("WandbLogger"):
                import wandb

                logger.log_metrics({"train/fixed_noise_progress": wandb.Video(str(gif), format="gif")}, step=self.global_step)
        return gif
