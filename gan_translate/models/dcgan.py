"""DCGAN (Radford et al. 2016): unconditional image generation from a Gaussian latent vector.

Besides training, the model keeps a visual record of progress: a FIXED batch of latent vectors (a buffer made
from ``fixed_noise_seed``, so it is stored in every checkpoint and is the same in every epoch and after a
resume) rendered by :meth:`DCGAN.fixed_noise_grid`. The
:class:`~gan_translate.callbacks.progress_animation.FixedNoiseAnimation` callback the model attaches turns it into
frames and ``<run folder>/fixed_noise.gif`` (settings: ``sample_every_n_steps``, ``make_gif``, ``gif_frame_ms``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gan_translate.core.errors import UserError
from gan_translate.core.images import match_channels
from gan_translate.losses import adversarial_loss, discriminator_loss
from gan_translate.models.base import frozen
from gan_translate.models.registry import register_model
from gan_translate.models.sampling import SamplerSpec, SamplingGAN
from gan_translate.nn import build_discriminator, build_generator

__all__ = ["DCGAN"]


@register_model("dcgan")
class DCGAN(SamplingGAN):
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
        init_gain: standard deviation of the normal weight init (0.02 in the paper).
        num_fixed_samples: images in the fixed-noise progress grid.
        fixed_noise_seed: seed of the fixed latent batch behind the progress grids.
        sample_every_n_steps: also render the fixed-noise grid every this many batches (0: at epoch ends only).
        make_gif: assemble the saved grids into fixed_noise.gif when training ends.
        gif_frame_ms: display time of each GIF frame in milliseconds.

    The optimiser options (``lr``, ``beta1``, ``beta2``) are those of every model (``GANModule``).
    """

    checkpoint_overridable_hparams = frozenset({"sample_every_n_steps", "make_gif", "gif_frame_ms"})

    def __init__(
        self,
        latent_dim: int = 100,
        resolution: int = 64,
        channels: int = 3,
        ngf: int = 64,
        ndf: int = 64,
        gan_loss: str = "vanilla",
        init_gain: float = 0.02,
        num_fixed_samples: int = 64,
        fixed_noise_seed: int = 1234,
        sample_every_n_steps: int = 0,
        make_gif: bool = True,
        gif_frame_ms: int = 400,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if channels not in (1, 3):
            raise UserError(f"model.channels must be 1 or 3, got {channels}")
        if latent_dim < 1:
            raise UserError(f"model.latent_dim must be positive, got {latent_dim}")
        self.generator = build_generator(
            "dcgan", latent_dim=latent_dim, out_channels=channels, ngf=ngf, image_size=resolution, init_gain=init_gain
        )
        self.discriminator = build_discriminator(
            "dcgan", in_channels=channels, ndf=ndf, image_size=resolution, init_gain=init_gain
        )
        self.gan_loss = adversarial_loss(gan_loss)
        # LSGAN pushes real logits to 1 and fakes to 0, so its decision boundary is 0.5; BCE and hinge: 0.
        self._threshold = 0.5 if gan_loss == "lsgan" else 0.0
        self.register_fixed_noise(num_fixed_samples, latent_dim, fixed_noise_seed)

    # --- API --------------------------------------------------------------------------------------
    def forward(self, z: Tensor) -> Tensor:
        """Latents ``(N, latent_dim)`` -> images ``(N, channels, resolution, resolution)`` in [-1, 1]."""
        return self.generator(z)

    @property
    def sampler_spec(self) -> SamplerSpec:
        """A ``latent_dim`` latent -> the ``generator`` in eval mode; no truncation, no style mixing."""
        hp = self.hparams
        return SamplerSpec(latent_dim=hp.latent_dim, network="generator", resolution=hp.resolution, channels=hp.channels)

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

    def configure_optimizers(self) -> Any:
        opt_g = self.adam(self.generator.parameters())
        opt_d = self.adam(self.discriminator.parameters())
        return [opt_g, opt_d]

    # --- training -------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        try:
            real = match_channels(batch["image"], self.hparams.channels)
        except UserError:
            raise UserError(
                f"cannot train a {self.hparams.channels}-channel DCGAN on {batch['image'].shape[1]}-channel images"
            ) from None
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

        # D's step sees the fakes detached: nothing to freeze. In G's step D is frozen (no gradients computed for it).
        d_real = self.discriminator(real)
        d_fake = self.discriminator(fake.detach())
        d_loss = discriminator_loss(self.gan_loss, d_real, d_fake)
        self.backward_step(opt_d, d_loss, "d_loss")  # NaN check first: a NaN never reaches the weights

        with frozen(self.discriminator):
            # Non-saturating for "vanilla": G maximises log D(G(z)) instead of minimising log(1 - D(G(z))).
            g_loss = self.gan_loss.generator(self.discriminator(fake))
            self.backward_step(opt_g, g_loss, "g_loss")

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
