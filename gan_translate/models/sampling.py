"""What the unconditional (sampling) models share: latents in, images out, and a fixed-noise progress record.

DCGAN and StyleGAN2 differ in their networks and training steps; everything around sampling is the same:
``sample`` / ``predict_step`` on top of the model's own ``latents`` and ``decode``, what the model says it is
(:class:`~gan_translate.models.capabilities.SamplerSpec`: the tools read it instead of probing) and what its standalone
export runs (:meth:`SamplingGAN.export_program`), the ``resolution`` that must equal the data's image size, and a fixed batch of latents (a buffer, so it goes into every checkpoint) rendered by
:class:`~gan_translate.callbacks.progress_animation.FixedNoiseAnimation` into one grid per epoch and a GIF.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from gan_translate.callbacks.progress_animation import FixedNoiseAnimation
from gan_translate.core.errors import UserError
from gan_translate.core.grids import make_grid
from gan_translate.core.images import tensor_to_uint8
from gan_translate.models.base import GANModule
from gan_translate.models.capabilities import SamplerSpec

__all__ = ["ClampedSampler", "SamplerSpec", "SamplingGAN"]


class ClampedSampler(nn.Module):
    """``z -> network(z)`` clamped to [-1, 1] (DCGAN's tanh output already is; the clamp makes it a promise): the
    export program of a sampler whose ``decode`` is its network alone."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, z: Tensor) -> Tensor:
        return self.network(z).clamp(-1.0, 1.0)


class SamplingGAN(GANModule):
    """Base of models that generate images from latents (``capabilities = {"sample"}``).

    A subclass defines ``latents(n, generator)`` (CPU latents, the same values on every device) and
    ``decode(z, batch_size)`` (images in [-1, 1] on the module's device, each a function of its own
    latent only) and ``sampler_spec`` (what it is: latent size, network, truncation, style mixing; the tools read
    nothing else), calls :meth:`register_fixed_noise` in ``__init__`` and has the hyperparameters ``resolution``,
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

    @property
    def sampler_spec(self) -> SamplerSpec:
        raise NotImplementedError

    def export_program(self) -> nn.Module:
        """What a standalone export traces: a copy of the sampling network (eval mode, no gradients) computing what
        ``decode(z)`` does, for any batch size: ``program(z)``, or ``program(z, psi)`` (a (1,) tensor) where the spec
        has ``truncation``. This one clamps the network's output; models whose ``decode`` does more override it."""
        network = getattr(self, self.sampler_spec.network)
        return ClampedSampler(copy.deepcopy(network).eval().requires_grad_(False))

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

    def fixed_noise_grid(self) -> np.ndarray:
        """The fixed latents rendered as one square-ish uint8 ``HxWx3`` grid (2 px white gaps)."""
        return make_grid(tensor_to_uint8(self.decode(self.fixed_noise, **self.fixed_noise_options())), square=True)
