"""StyleGAN2 (Karras et al., CVPR 2020) with ADA (Karras et al., NeurIPS 2020): unconditional generation from z.

The training procedure of the official ``stylegan2-ada-pytorch`` code, on the networks of
:mod:`gan_translate.nn.stylegan2`: the non-saturating logistic loss, lazy R1 on reals, lazy path-length
regularisation, style-mixing regularisation, an exponential moving average of the generator (the one every
picture and sample comes from), the truncation trick, and adaptive discriminator augmentation
(:mod:`gan_translate.models.augment`). docs/stylegan2.md describes the method, the defaults and their sources.

As with DCGAN, a fixed batch of latents (a buffer made from ``fixed_noise_seed``) is rendered through training by
:class:`~gan_translate.callbacks.progress_animation.FixedNoiseAnimation` into frames and ``fixed_noise.gif``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_translate.core.errors import UserError
from gan_translate.core.images import match_channels
from gan_translate.models.augment import AdaptiveAugment
from gan_translate.models.base import frozen
from gan_translate.models.registry import register_model
from gan_translate.models.sampling import SamplerSpec, SamplingGAN
from gan_translate.nn import build_discriminator, build_generator
from gan_translate.nn.stylegan2 import TruncatedSampler, unfuse_modulated_convs

__all__ = ["StyleGAN2"]

#: Decay of the mapping network's running average of w per generator step (the official ``w_avg_beta``).
W_AVG_BETA = 0.995
#: The default crossover of mixing grids: the style layers of the 4x4 and 8x8 blocks (the paper's "coarse" styles).
COARSE_STYLES = 4


@register_model("stylegan2")
class StyleGAN2(SamplingGAN):
    """Unconditional StyleGAN2 (config F networks) trained as in the official StyleGAN2-ADA code.

    Per batch, in the official order (each phase draws its own latents and is its own optimiser step):
    G main (non-saturating loss ``softplus(-D(aug(G(z))))``), G regularisation every ``pl_interval`` batches
    (path length), D main (``softplus(D(aug(G(z)))) + softplus(-D(aug(x)))``), D regularisation every
    ``r1_interval`` batches (R1), then the EMA update of ``generator_ema`` and, every ``ada_interval`` batches,
    ADA's adjustment of the augmentation probability. ``trainer.global_step`` therefore counts 2 steps per batch
    plus one per regularisation step (2 + 1/4 + 1/16 per batch with the defaults).

    Hyperparameter names avoid the datamodules' (``image_size``, ``seed``, ...): the image size is ``resolution``
    here and must equal ``data.image_size`` (checked when training starts).

    Args:
        resolution: image height and width: 32, 64, ..., 1024 (must equal data.image_size). 64: this project's
            default (the paper trains 256 / 1024 px).
        z_dim: latent size (512, the paper's).
        w_dim: intermediate latent (style) size (512, the paper's).
        mapping_layers: layers of the mapping network (8, the paper's; ADA's small-data "auto" config uses 2).
        channel_base: feature channels are ``min(channel_base // res, channel_max)`` (32768: config F, 512
            channels up to 64 px; ADA's 256 px FFHQ config uses 16384).
        channel_max: the most channels of any layer (512, config F).
        channels: image channels: 1 (greyscale; RGB data is converted to luma) or 3.
        lr: Adam learning rate of both networks before the lazy-regularisation correction (0.0025: ADA's configs
            up to 512 px; the StyleGAN2 paper's 1024 px config F used 0.002).
        beta1: Adam beta1 (0, the paper's).
        beta2: Adam beta2 (0.99, the paper's).
        r1_gamma: R1 weight gamma (10: the paper's FFHQ 1024 px value). Smaller images need much less: ADA's
            heuristic is ``0.0002 * resolution ** 2 / batch_size`` (0.0256 at 64 px, batch 32; ADA's FFHQ 256 px
            config uses 1); the configs set it. 0 turns R1 off.
        r1_interval: batches between two R1 steps (16, lazy regularisation; the paper's).
        pl_weight: path-length regularisation weight (2, the paper's); 0 turns it off.
        pl_interval: batches between two path-length steps (4, the paper's).
        pl_decay: decay of the running mean of path lengths (0.01, the official code's).
        pl_batch_shrink: the path-length step uses ``batch_size // pl_batch_shrink`` latents (2, official).
        style_mixing_prob: share of training batches generated from two latents with a random crossover
            (0.9, the paper's).
        ema_kimg: half-life of the generator EMA in thousands of images: ``beta = 0.5 ** (batch / (ema_kimg *
            1000))`` (10, config F; ADA's "auto" config uses ``batch * 10 / 32``).
        ema_rampup: with a value, the half-life is at most ``ema_rampup * images seen`` (0.05, ADA's "auto"
            config: the EMA follows the fast-changing generator of the first images); None: off (the paper's).
        augment: ``"ada"`` (adaptive, ADA's default), ``"fixed"`` (constant ``augment_p``) or ``"off"``.
        augment_p: the initial (``ada``) or constant (``fixed``) augmentation probability (0, ADA's).
        ada_target: ADA's target for ``r_t = E[sign(D(real))]`` (0.6, the ADA paper's).
        ada_interval: batches between two adjustments of p (4, the official code's).
        ada_kimg: thousands of images for p to rise from 0 to 1 at the fastest (500, the ADA paper's).
        num_fixed_samples: images in the fixed-noise progress grid.
        fixed_noise_seed: seed of the fixed latent batch behind the progress grids.
        truncation_psi_samples: truncation psi of the progress grids (1: none; :meth:`sample` never truncates).
        sample_every_n_steps: also render the fixed-noise grid every this many batches (0: at epoch ends only).
        make_gif: assemble the saved grids into fixed_noise.gif when training ends.
        gif_frame_ms: display time of each GIF frame in milliseconds.

    Precision: the main G and D passes run in the trainer's precision (``bf16-mixed`` works); the R1 and
    path-length penalties are second-order gradients whose squares under- and overflow in 16-bit types, so they are
    always computed in float32 (autocast off, inputs cast), as the official code does. ``16-mixed`` (fp16 with a loss
    scaler) is not tested here and is not recommended.
    """

    checkpoint_overridable_hparams = frozenset(
        {"sample_every_n_steps", "make_gif", "gif_frame_ms", "truncation_psi_samples"}
    )

    def __init__(
        self,
        resolution: int = 64,
        z_dim: int = 512,
        w_dim: int = 512,
        mapping_layers: int = 8,
        channel_base: int = 32768,
        channel_max: int = 512,
        channels: int = 3,
        lr: float = 0.0025,
        beta1: float = 0.0,
        beta2: float = 0.99,
        r1_gamma: float = 10.0,
        r1_interval: int = 16,
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_decay: float = 0.01,
        pl_batch_shrink: int = 2,
        style_mixing_prob: float = 0.9,
        ema_kimg: float = 10.0,
        ema_rampup: float | None = 0.05,
        augment: str = "ada",
        augment_p: float = 0.0,
        ada_target: float = 0.6,
        ada_interval: int = 4,
        ada_kimg: float = 500.0,
        num_fixed_samples: int = 64,
        fixed_noise_seed: int = 1234,
        truncation_psi_samples: float = 1.0,
        sample_every_n_steps: int = 0,
        make_gif: bool = True,
        gif_frame_ms: int = 400,
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, **kwargs)
        if channels not in (1, 3):
            raise UserError(f"model.channels must be 1 or 3, got {channels}")
        for name, value in (("z_dim", z_dim), ("w_dim", w_dim), ("r1_interval", r1_interval), ("pl_interval", pl_interval),
                            ("pl_batch_shrink", pl_batch_shrink)):
            if value < 1:
                raise UserError(f"model.{name} must be at least 1, got {value}")
        if not 0.0 <= style_mixing_prob <= 1.0:
            raise UserError(f"model.style_mixing_prob must be in [0, 1], got {style_mixing_prob}")
        if r1_gamma < 0 or pl_weight < 0:
            raise UserError(f"model.r1_gamma and model.pl_weight must be >= 0, got {r1_gamma} and {pl_weight}")
        if not ema_kimg > 0:
            raise UserError(f"model.ema_kimg must be positive, got {ema_kimg}")
        self.generator = build_generator(
            "stylegan2", resolution=resolution, z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers,
            channel_base=channel_base, channel_max=channel_max, out_channels=channels,
        )
        self.discriminator = build_discriminator(
            "stylegan2", resolution=resolution, channel_base=channel_base, channel_max=channel_max, in_channels=channels
        )
        # The EMA generator: never optimised, always in eval mode; every picture and sample comes from it.
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval()
        self.augment_pipe = AdaptiveAugment(augment, augment_p, ada_target, ada_interval, ada_kimg)
        self.register_buffer("pl_mean", torch.zeros(()))
        self.pl_mean: Tensor
        self.register_fixed_noise(num_fixed_samples, z_dim, fixed_noise_seed)
        self._last_values: dict[str, Tensor] = {}  # the latest R1 / path-length values, for the logs only

    # --- API --------------------------------------------------------------------------------------
    @property
    def n_styles(self) -> int:
        """The number of per-layer ws the synthesis network takes (2 * log2(resolution) - 2)."""
        return self.generator.n_styles

    @property
    def sampler_spec(self) -> SamplerSpec:
        """A ``z_dim`` latent -> ``generator_ema`` with its constant noise; truncation and style mixing."""
        hp = self.hparams
        return SamplerSpec(latent_dim=hp.z_dim, network="generator_ema", resolution=hp.resolution, channels=hp.channels,
                           truncation=True, style_mixing=True, style_layers=self.n_styles, constant_noise=True)

    def export_program(self) -> nn.Module:
        """``program(z, psi)``: ``decode(z, psi=psi)`` of a copy of ``generator_ema``, its modulated convolutions
        unfused. The fused form folds the batch into one convolution's groups, which ONNX (a fixed ``group``) and
        TorchScript traces (the traced batch) would fix; the unfused form is the same function with the same
        weights (float rounding aside, ~1e-6) for any batch size."""
        generator = copy.deepcopy(self.generator_ema).eval().requires_grad_(False)
        return TruncatedSampler(unfuse_modulated_convs(generator))

    def forward(self, z: Tensor) -> Tensor:
        """Latents ``(N, z_dim)`` -> images of the *training* generator (random noise, no truncation)."""
        return self.generator(z)

    def train(self, mode: bool = True) -> StyleGAN2:
        super().train(mode)
        self.generator_ema.eval()
        return self

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` standard normal latent vectors ``(n, z_dim)``, drawn on the CPU (same values on every device)."""
        if n < 1:
            raise UserError(f"number of samples must be positive, got {n}")
        return torch.randn(n, self.hparams.z_dim, generator=generator)

    @torch.no_grad()
    def styles(self, z: Tensor, psi: float = 1.0, truncation_cutoff: int | None = None) -> Tensor:
        """Per-layer ws ``(N, n_styles, w_dim)`` of the EMA generator for latents ``z``, truncated towards its
        ``w_avg`` by ``psi`` (1: no truncation; ``truncation_cutoff``: only the first that many layers)."""
        mapping = self.generator_ema.mapping
        ws = self.generator_ema.broadcast(mapping(z.to(self.device)))
        if psi != 1 or truncation_cutoff is not None:
            ws = mapping.truncate(ws, psi, truncation_cutoff)
        return ws

    @torch.no_grad()
    def synthesize(self, ws: Tensor, batch_size: int = 256, noise_mode: str = "const") -> Tensor:
        """Images in [-1, 1] of the EMA generator for per-layer ws ``(N, n_styles, w_dim)``, on the module's device.

        ``noise_mode`` "const" (the default) uses the noise maps stored with the weights, so an image is a
        function of its ws alone; "random" draws fresh noise (torch's global generator), "none" adds none.
        """
        synthesis = self.generator_ema.synthesis
        chunks = [synthesis(part.to(self.device), noise_mode).clamp(-1, 1) for part in ws.split(batch_size)]
        return torch.cat(chunks)

    @torch.no_grad()
    def decode(self, z: Tensor, batch_size: int = 256, psi: float = 1.0, truncation_cutoff: int | None = None,
               noise_mode: str = "const") -> Tensor:
        """Images in [-1, 1] (clamped: StyleGAN2 has no tanh) of the EMA generator for latents ``z``.

        ``psi`` is the truncation trick (``w_avg + psi * (w - w_avg)``; 1: off, 0.5 to 0.7 trade variety for
        quality). With the default constant noise every image depends on its own latent only: the same seed
        gives the same images (whatever the batch size up to float rounding, ~1e-6: the modulated convolutions
        run as one grouped convolution over the batch).
        """
        return torch.cat([self.synthesize(self.styles(part, psi, truncation_cutoff), batch_size, noise_mode)
                          for part in z.split(batch_size)])

    @torch.no_grad()
    def mix(self, z_coarse: Tensor, z_fine: Tensor, crossover: int = COARSE_STYLES, psi: float = 1.0,
            batch_size: int = 256, noise_mode: str = "const") -> Tensor:
        """Style mixing: images whose style layers ``< crossover`` come from ``z_coarse`` and the rest from
        ``z_fine`` (both ``(N, z_dim)``). Small crossovers take pose and shape from ``z_coarse``, large ones
        only its finest details; the default 4 is the paper's "coarse styles" (the 4x4 and 8x8 layers)."""
        ws = self.generator_ema.mix_styles(self.styles(z_coarse, psi), self.styles(z_fine, psi), crossover)
        return self.synthesize(ws, batch_size, noise_mode)

    @torch.no_grad()
    def mixing_grid(self, row_z: Tensor, column_z: Tensor, crossover: int = COARSE_STYLES, psi: float = 1.0,
                    batch_size: int = 256) -> Tensor:
        """The paper's style-mixing figure as a tensor ``(R, C, channels, H, W)``: image ``[i, j]`` has the coarse
        styles (layers ``< crossover``) of ``row_z[i]`` and the others of ``column_z[j]``. The sources
        themselves are ``decode(row_z)`` / ``decode(column_z)``."""
        rows, columns = row_z.shape[0], column_z.shape[0]
        coarse = row_z.repeat_interleave(columns, dim=0)
        fine = column_z.repeat(rows, 1)
        images = self.mix(coarse, fine, crossover, psi, batch_size)
        return images.view(rows, columns, *images.shape[1:])

    # --- optimisation -----------------------------------------------------------------------------
    def _lazy_adam(self, parameters: Any, interval: int | None) -> torch.optim.Adam:
        """Adam with the lazy-regularisation correction: with a regularisation step every ``interval`` batches,
        ``lr * c`` and ``betas ** c`` for ``c = interval / (interval + 1)`` (the paper's appendix B)."""
        hp = self.hparams
        ratio = interval / (interval + 1) if interval else 1.0
        params = list(parameters)
        on_gpu = bool(params) and all(p.device.type == "cuda" for p in params)
        return torch.optim.Adam(params, lr=hp.lr * ratio, betas=(hp.beta1**ratio, hp.beta2**ratio), eps=1e-8,
                                fused=True if on_gpu else None)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        opt_g = self._lazy_adam(self.generator.parameters(), hp.pl_interval if hp.pl_weight > 0 else None)
        opt_d = self._lazy_adam(self.discriminator.parameters(), hp.r1_interval if hp.r1_gamma > 0 else None)
        return [opt_g, opt_d]

    # --- the pieces of a training step ---------------------------------------------------------------
    def _draw_crossover(self) -> int:
        """The style-mixing crossover of one batch: uniform in [1, n_styles) with probability style_mixing_prob,
        else n_styles (no mixing). From torch's CPU generator: a Python int without waiting for the device."""
        n = self.generator.n_styles
        if self.hparams.style_mixing_prob <= 0:
            return n
        crossover = int(torch.randint(1, n, ()))
        return crossover if float(torch.rand(())) < self.hparams.style_mixing_prob else n

    def training_ws(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """The ws a training pass feeds to the synthesis network, and the w of ``z`` (for ``w_avg``).

        Style-mixing regularisation: for a share ``style_mixing_prob`` of the batches, the layers from a random
        crossover on take the w of a second latent (the whole batch shares the crossover, as in the official code).
        """
        g = self.generator
        w = g.mapping(z)
        crossover = self._draw_crossover()
        if crossover < g.n_styles:
            return g.mix_styles(w, g.mapping(torch.randn_like(z)), crossover), w
        return g.broadcast(w), w

    def _reduce(self, value: Tensor, op: str = "mean") -> Tensor:
        """``value`` averaged (or summed) over the DDP processes, detached; itself in a single process."""
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            return trainer.strategy.reduce(value.detach().clone(), reduce_op=op)
        return value.detach()

    def r1_penalty(self, real: Tensor) -> tuple[Tensor, Tensor]:
        """R1 (Mescheder et al. 2018): ``||d D(aug(x)) / d x||^2`` per real image ``x``, and D's logits.

        As in the official ADA code the gradient is taken with respect to the images *before* the (differentiable)
        augmentation, through it. In float32 whatever the trainer's precision.
        """
        with torch.autocast(device_type=real.device.type, enabled=False):
            x = real.detach().float().requires_grad_(True)
            logits = self.discriminator(self.augment_pipe(x))
            (grads,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
            return grads.square().sum(dim=(1, 2, 3)), logits

    def path_length_penalty(self, z: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The path-length regulariser's ``(|J_w^T y| - a)^2`` per latent, and the path lengths ``|J_w^T y|``.

        ``y`` is ``noise`` (default: ``randn / sqrt(H * W)``), ``J_w`` the Jacobian of the image with respect to
        the ws (the norm over w's features, then the root mean square over layers), ``a`` the running mean
        ``pl_mean`` (updated here with ``pl_decay``, the gradient flowing through the update, as in the official
        code). In float32 whatever the trainer's precision.
        """
        with torch.autocast(device_type=z.device.type, enabled=False):
            ws, _ = self.training_ws(z.float())
            images = self.generator.synthesis(ws)
            if noise is None:
                noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
            (grads,) = torch.autograd.grad((images * noise.float()).sum(), ws, create_graph=True)
            lengths = grads.square().sum(dim=2).mean(dim=1).sqrt()
            mean = self.pl_mean.lerp(lengths.mean(), self.hparams.pl_decay)
            # The buffer moves by the mean over all processes, so every DDP rank keeps the same pl_mean.
            self.pl_mean.copy_(self.pl_mean.lerp(self._reduce(lengths.mean()), self.hparams.pl_decay))
            return (lengths - mean).square(), lengths

    @torch.no_grad()
    def update_ema(self, batch_size: int, images_seen: int) -> float:
        """``ema = beta * ema + (1 - beta) * G`` for every parameter, buffers copied (``w_avg``, constant noise).

        ``beta = 0.5 ** (batch_size / (ema_kimg * 1000))``, the half-life capped at ``ema_rampup * images_seen``
        when ``ema_rampup`` is set (so the first update copies G). Returns beta.
        """
        hp = self.hparams
        half_life = hp.ema_kimg * 1000.0
        if hp.ema_rampup is not None and hp.ema_rampup > 0:
            half_life = min(half_life, images_seen * hp.ema_rampup)
        beta = 0.5 ** (batch_size / max(half_life, 1e-8))
        ema_params = list(self.generator_ema.parameters())
        params = [p.detach() for p in self.generator.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for ema_buffer, buffer in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema_buffer.copy_(buffer)
        return beta

    # --- training -------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        self._last_values = {}  # made on the first batch, on the device of this fit

    def _real_images(self, batch: dict[str, Any]) -> Tensor:
        hp = self.hparams
        try:
            real = match_channels(batch["image"], hp.channels)
        except UserError:
            raise UserError(
                f"cannot train a {hp.channels}-channel StyleGAN2 on {batch['image'].shape[1]}-channel images"
            ) from None
        if real.shape[-1] != hp.resolution or real.shape[-2] != hp.resolution:
            raise UserError(f"got {real.shape[-2]}x{real.shape[-1]} training images for a {hp.resolution} px "
                            "StyleGAN2; set data.image_size to model.resolution")
        return real

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        real = self._real_images(batch)
        n = real.shape[0]
        index = self.iteration  # batches before this one: what the lazy intervals and ADA count
        world = self.trainer.world_size if self._trainer is not None else 1
        last = self._last_values
        if not last:
            last.update({key: torch.zeros((), device=self.device) for key in ("r1", "pl_penalty")})

        # G main: the non-saturating loss through the augmentation of the fakes, D frozen (no gradients for it).
        # Every step checks its loss before the update (backward_step): a NaN never reaches the weights.
        with frozen(self.discriminator):
            ws, w = self.training_ws(torch.randn(n, hp.z_dim, device=self.device))
            fake_logits = self.discriminator(self.augment_pipe(self.generator.synthesis(ws)))
            g_loss = F.softplus(-fake_logits.float()).mean()
            self.backward_step(opt_g, g_loss, "g_loss")
        self.generator.mapping.update_w_avg(self._reduce(w.mean(dim=0, keepdim=True)), W_AVG_BETA)

        # G regularisation: path length on a smaller batch (D takes no part: nothing to freeze).
        if hp.pl_weight > 0 and index % hp.pl_interval == 0:
            z = torch.randn(max(1, n // hp.pl_batch_shrink), hp.z_dim, device=self.device)
            penalty, _ = self.path_length_penalty(z)
            self.backward_step(opt_g, penalty.mean() * (hp.pl_weight * hp.pl_interval), "pl_loss")
            last["pl_penalty"] = penalty.detach().mean()

        # D main: fresh fakes from the updated generator (made without a graph: G needs no freezing), and the reals,
        # both augmented.
        with torch.no_grad():
            fake = self.generator.synthesis(self.training_ws(torch.randn(n, hp.z_dim, device=self.device))[0])
        fake_logits = self.discriminator(self.augment_pipe(fake))
        real_logits = self.discriminator(self.augment_pipe(real))
        d_loss = F.softplus(fake_logits.float()).mean() + F.softplus(-real_logits.float()).mean()
        self.backward_step(opt_d, d_loss, "d_loss")
        self.augment_pipe.accumulate(real_logits)

        # D regularisation: R1 on the reals.
        if hp.r1_gamma > 0 and index % hp.r1_interval == 0:
            penalty, r1_logits = self.r1_penalty(real)
            self.backward_step(opt_d, penalty.mean() * (hp.r1_gamma / 2 * hp.r1_interval), "r1_loss")
            self.augment_pipe.accumulate(r1_logits)
            last["r1"] = penalty.detach().mean()

        self.update_ema(n * world, index * n * world)
        if (index + 1) % self.augment_pipe.interval == 0:
            self.augment_pipe.adjust(n * world * self.augment_pipe.interval, lambda t: self._reduce(t, "sum"))

        real_logits, fake_logits = real_logits.detach().float(), fake_logits.detach().float()
        logged = {
            "train/d_loss": d_loss,
            "train/g_loss": g_loss,
            "train/r1": last["r1"],
            "train/pl_penalty": last["pl_penalty"],
            "train/pl_mean": self.pl_mean,
            "train/augment_p": self.augment_pipe.p,
            "train/ada_rt": self.augment_pipe.rt,
            "train/d_real_sign": real_logits.sign().mean(),
            "train/d_real_score": real_logits.mean(),
            "train/d_fake_score": fake_logits.mean(),
        }
        self.log_training_values(logged, n, prog_bar=("train/d_loss", "train/g_loss", "train/augment_p"))

    # --- progress record -------------------------------------------------------------------------
    def fixed_noise_options(self) -> dict[str, Any]:
        """The progress grids use the EMA generator (as every sample) with psi ``truncation_psi_samples``."""
        return {"psi": self.hparams.truncation_psi_samples}
