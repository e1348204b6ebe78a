"""What the unconditional (sampling) models share: latents in, images out, and a fixed-noise progress record.

DCGAN and StyleGAN2 differ in their networks and training steps; everything around sampling is the same:
``sample`` / ``predict_step`` on top of the model's own ``latents`` and ``decode``, the ``resolution`` that must
equal the data's image size, and a fixed batch of latents (a buffer, so it goes into every checkpoint) rendered by
:class:`~gan_translate.callbacks.progress_animation.FixedNoiseAnimation` into one grid per epoch and a GIF.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from gan_translate.callbacks.progress_animation import FixedNoiseAnimation
from gan_translate.core.errors import UserError
from gan_translate.core.images import square_grid
from gan_translate.models.base import GANModule

__all__ = ["SamplingGAN"]


class SamplingGAN(GANModule):
    """Base of models that generate images from latents (``capabilities = {"sample"}``).

    A subclass defines ``latents(n, generator)`` (CPU latents, the same values on every device) and
    ``decode(z, batch_size)`` (images in [-1, 1] on the module's device, each a function of its own
    latent only), calls :meth:`register_fixed_noise` in ``__init__`` and has the hyperparameters ``resolution``,
    ``sample_every_n_steps``, ``make_gif`` and ``gif_frame_ms``. :meth:`fixed_noise_options` passes extra
    ``decode`` options (StyleGAN2's truncation) to the progress grids.
    """

    capabilities = frozenset({"sample"})
    fixed_noise: Tensor

    def register_fixed_noise(self, count: int, dim: int, seed: int) -> None:
        """The progress grids' latents: a buffer, not a fresh draw, so every epoch, every resume and every RNG
        implementation shows the same latents (drawn from ``seed`` on the CPU)."""
        if count < 1:
            raise UserError(f"model.num_fixed_samples must be positive, got {count}")
        self.register_buffer("fixed_noise", torch.randn(count, dim, generator=torch.Generator().manual_seed(seed)))

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def decode(self, z: Tensor, batch_size: int = 256) -> Tensor:
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` generated images ``(n, channels, resolution, resolution)`` in [-1, 1] on the module's device.

        Pass a seeded ``torch.Generator`` for reproducible samples (e.g. for FID / KID).
        """
        return self.decode(self.latents(n, generator))

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Latents (a tensor, or a dict with ``"z"``) -> images in [-1, 1]."""
        z = batch["z"] if isinstance(batch, dict) else batch
        return self.decode(z)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        size = getattr(datamodule, "image_size", None)
        if isinstance(size, int) and size != self.hparams.resolution:
            raise UserError(
                f"data.image_size={size} but model.resolution={self.hparams.resolution}; set both to the same size"
            )

    # --- progress record -------------------------------------------------------------------------
    def configure_callbacks(self) -> Sequence[Callback]:
        hp = self.hparams
        animation = FixedNoiseAnimation(every_n_steps=hp.sample_every_n_steps, make_gif=hp.make_gif, frame_ms=hp.gif_frame_ms)
        return [*super().configure_callbacks(), animation]

    def fixed_noise_options(self) -> dict[str, Any]:
        """Extra ``decode`` options of the progress grids (none here)."""
        return {}

    def fixed_noise_grid(self) -> Tensor:
        """The fixed latents rendered as one square-ish grid (CHW in [-1, 1], 3 channels, 2 px white padding)."""
        return square_grid(self.decode(self.fixed_noise, **self.fixed_noise_options()).float().cpu())
