"""UNSB (Kim, Kwon, Kim, Ye, "Unpaired Image-to-Image Translation via Neural Schrödinger Bridge", ICLR 2024): an
unpaired translator that walks a discretised Schrödinger bridge from domain A to B in ``num_timesteps`` steps.

One time-conditioned generator ``G(x_t, t, z)`` predicts the endpoint ``x_1`` from any state of the bridge
(``nn/schrodinger.py`` has the time grid and the step between states). Each training iteration draws a step ``t``,
simulates ``x_t`` from real A images without a graph through the earlier steps, and trains G at that step with a
time-conditioned PatchGAN's adversarial loss, the SB loss (transport cost minus the coupling's entropy, which an
energy network E estimates from ``(x_t, x_1)`` pairs contrasted with a second batch's), and CUT's PatchNCE between
the real image and the output (with its identity term). D and E have optimisers of their own.

Where this differs from the reference code (cyclomon/UNSB, ``models/sb_model.py``):
- its conditioned residual block applies each layer of its first half to the block's input instead of chaining them,
  so its time input and first convolution are dead; ``nn/bridge.py`` chains them (the design the paper describes);
- a batch of ``2n`` images is the reference's batch of ``n`` plus its second loader's (the contrast batch of the
  energy network): ``data.batch_size: 2`` is the reference's ``--batch_size 1``;
- the simulation skips the generator pass at the drawn step itself (the reference makes it and throws it away).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gan_translate.core.errors import UserError
from gan_translate.core.grids import make_grid
from gan_translate.core.images import tensor_to_uint8, to_unit_range
from gan_translate.losses import discriminator_loss, energy_loss, schrodinger_bridge_loss
from gan_translate.models.base import frozen
from gan_translate.models.capabilities import ProgramInput, TranslatorProgram
from gan_translate.models.cut import CUT
from gan_translate.models.registry import register_model
from gan_translate.nn.bridge import TimeConditionedPatchDiscriminator, TimeConditionedResnetGenerator
from gan_translate.nn.schrodinger import BridgeProgram, BridgeTranslator, bridge_step, bridge_time_grid

__all__ = ["UNSB"]

#: Generator names UNSB accepts (its time-conditioned ResNet) -> their number of residual blocks.
GENERATOR_BLOCKS = {"resnet": 9, "resnet_9blocks": 9, "resnet_6blocks": 6}
#: The seed of the bridge noise in validation: every epoch scores the same translations.
VALIDATION_SEED = 0


@register_model("unsb")
class UNSB(CUT):
    """The Schrödinger-bridge translator A -> B: a time-conditioned ResNet generator, a time-conditioned PatchGAN,
    an energy network, PatchNCE heads; three optimisers (G with the heads, D, E).

    Defaults are the reference run's (``--mode sb --lambda_SB 1.0 --lambda_NCE 1.0``): 5 steps, tau 0.01, an
    antialiased ResNet-9 with a 3-layer latent mapping, xavier init, LSGAN, PatchNCE with the identity term,
    200 + 200 epochs. ``translate`` runs the bridge: ``--steps`` passes (1 to ``num_timesteps``), noise from
    ``--seed``. The network, optimiser and NCE options are CUT's and every translator's.

    Args:
        num_timesteps: steps of the bridge (its NFE at inference unless ``--steps`` asks for fewer).
        tau: entropy weight: the variance of the bridge noise and the weight of the SB loss's terms.
        lambda_sb: weight of the SB loss in the generator's loss.
        mapping_layers: extra linear layers of the generator's latent mapping network.
    """

    capabilities = frozenset({"translate"})
    translators = {"AtoB": "generator"}
    discriminators = {}  # its PatchGAN judges (image, time step): no plain one to start a distillation from
    inference_settings = frozenset({"steps", "seed"})

    def __init__(
        self,
        num_timesteps: int = 5,
        tau: float = 0.01,
        lambda_sb: float = 1.0,
        mapping_layers: int = 3,
        init_type: str = "xavier",
        n_epochs: int = 200,
        n_epochs_decay: int = 200,
        **kwargs: Any,
    ) -> None:
        if num_timesteps < 1 or tau < 0 or lambda_sb < 0:
            raise UserError(f"model.num_timesteps must be >= 1 and model.tau, model.lambda_sb >= 0, got {num_timesteps}, "
                            f"{tau} and {lambda_sb}")
        if kwargs.get("flip_equivariance"):
            raise UserError("model.flip_equivariance is FastCUT's regulariser; UNSB does not use it: set it to false")
        # The base classes save this class's arguments too (GANModule.save_hyperparameters reads the whole chain):
        # make_generator below reads them from self.hparams during CUT's __init__.
        super().__init__(init_type=init_type, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay, **kwargs)
        hp = self.hparams
        if hp.in_channels != hp.out_channels:
            raise UserError(f"UNSB's bridge mixes A and B images, so in_channels must equal out_channels (got "
                            f"{hp.in_channels} and {hp.out_channels})")
        # E scores a pair of (x_t, x_1) pairs: four images' channels.
        self.energy = self.make_discriminator(4 * hp.out_channels)
        self.register_buffer("bridge_times", bridge_time_grid(num_timesteps).float(), persistent=False)
        self._feature_latent: Tensor | None = None

    # --- networks -------------------------------------------------------------------------------------------------
    def make_generator(self, in_channels: int, out_channels: int) -> nn.Module:
        hp = self.hparams
        if hp.generator not in GENERATOR_BLOCKS:
            raise UserError(f"UNSB uses its time-conditioned ResNet generator: model.generator must be one of "
                            f"{', '.join(GENERATOR_BLOCKS)}, got {hp.generator!r} (depth: model.generator_args: {{n_blocks: N}})")
        options = {"n_blocks": GENERATOR_BLOCKS[hp.generator], "antialias": True, **(hp.generator_args or {})}
        return TimeConditionedResnetGenerator(in_channels, out_channels, ngf=hp.ngf, norm=hp.norm, dropout=hp.dropout,
                                              mapping_layers=hp.mapping_layers, init_type=hp.init_type,
                                              init_gain=hp.init_gain, **options)

    def make_discriminator(self, in_channels: int) -> nn.Module:
        hp = self.hparams
        if hp.discriminator not in ("patchgan", "basic"):
            raise UserError(f"UNSB uses its time-conditioned PatchGAN: model.discriminator must be patchgan or basic, "
                            f"got {hp.discriminator!r} (depth: model.discriminator_args: {{n_layers: N}})")
        return TimeConditionedPatchDiscriminator(in_channels, ndf=hp.ndf, norm=hp.norm, init_type=hp.init_type,
                                                 init_gain=hp.init_gain, **(hp.discriminator_args or {}))

    def configure_optimizers(self) -> Any:
        opt_g = self.adam([*self.generator.parameters(), *self.feature_heads.parameters()])
        opt_d = self.adam(self.discriminator.parameters())
        opt_e = self.adam(self.energy.parameters())
        return [opt_g, opt_d, opt_e], self.linear_decay([opt_g, opt_d, opt_e])

    # --- the bridge -------------------------------------------------------------------------------------------------
    def latents(self, n: int, like: Tensor) -> Tensor:
        """``n`` latents of the generator, from torch's global generator (the stream exact resume restores)."""
        return torch.randn(n, self.generator.latent_dim, device=like.device, dtype=like.dtype)

    @torch.no_grad()
    def simulate(self, images: Tensor, step: int) -> Tensor:
        """The bridge states at ``t_step`` of ``images`` (states at ``t_0``): ``step`` generator passes, no graph.

        The generator runs in eval mode here, as in the reference (dropout off while simulating)."""
        was_training = self.generator.training
        self.generator.eval()
        state, endpoint = images, images
        for j in range(step + 1):
            if j > 0:
                state = bridge_step(state, endpoint, self.bridge_times, j, self.hparams.tau, torch.randn_like(state))
            if j < step:  # the prediction at the drawn step itself is made with a graph, by the caller
                endpoint = self.generator(state, self._steps(j, state), self.latents(state.shape[0], state))
        self.generator.train(was_training)
        return state

    @staticmethod
    def _steps(step: int, like: Tensor) -> Tensor:
        return torch.full((like.shape[0],), step, dtype=torch.long, device=like.device)

    def inference_network(self, direction: str = "AtoB", steps: int | None = None, seed: int | None = VALIDATION_SEED,
                          **settings: Any) -> nn.Module:
        """The bridge run by the trained generator: ``steps`` passes (default: all), noise from ``seed`` (``None``:
        fresh randomness at each call)."""
        generator = super().inference_network(direction, **settings)
        hp = self.hparams
        return BridgeTranslator(generator, hp.num_timesteps, hp.tau, steps, seed).eval()

    def translator_export_program(self, direction: str = "AtoB") -> TranslatorProgram:
        """The bridge with all ``num_timesteps`` steps for the ONNX / TorchScript exports, its randomness as inputs
        (``latents``, and ``noise`` from two steps on): a file holds no random generator that would match torch's, and
        inputs let a user reproduce ``translate --seed S`` exactly (``nn.schrodinger.bridge_noise``) or draw their own."""
        generator = self.translator(direction).eval()
        hp = self.hparams
        steps, channels, latent_dim = int(hp.num_timesteps), self.image_channels("A"), int(generator.latent_dim)
        how = "standard normal values; bridge_noise(seed) in gan_translate.nn.schrodinger gives translate --seed's"
        inputs = [ProgramInput("latents", (steps, 1, latent_dim),
                               f"float32 ({steps}, 1, {latent_dim}): the generator's latent at each step, shared by the "
                               f"batch; {how}")]
        if steps > 1:
            inputs.append(ProgramInput("noise", (steps - 1, 1, channels, "height", "width"),
                                       f"float32 ({steps - 1}, 1, {channels}, H', W'): the bridge noise into states 1 to "
                                       f"{steps - 1}, shared by the batch, H' and W' the image's sides rounded up to "
                                       f"size_multiple; {how}"))
        return TranslatorProgram(BridgeProgram(generator, steps, hp.tau), tuple(inputs))

    def export_notes(self) -> tuple[str, ...]:
        """The exports take the bridge's randomness as inputs; a user must feed it (docs/unsb.md, "Export")."""
        return (f"note: the file runs all {self.hparams.num_timesteps} bridge steps and takes their randomness as inputs "
                "(latents, noise: see its metadata and docs/unsb.md); bridge_noise(seed) gives translate --seed's",)

    def encoder_features(self, images: Tensor) -> list[Tensor]:
        # PatchNCE reads the encoder at time 0 with one latent per image of the batch, the same for an image and
        # its translation (the reference's calculate_NCE_loss); batches of k*n images repeat the n latents.
        latent = self._feature_latent
        if latent is None or images.shape[0] % latent.shape[0]:
            latent = self.latents(images.shape[0], images)
        z = latent.repeat(images.shape[0] // latent.shape[0], 1)
        return self.generator.features(images, self.nce_layers, self._steps(0, images), z)

    def forward(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """Translate a batch in [-1, 1] along the bridge (all steps, the validation seed)."""
        return self.inference_network(direction)(images)

    # --- training -------------------------------------------------------------------------------------------------
    def split_batch(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        """The batch's A images halved into the training images and the energy network's contrast batch, and the B
        images of the first half."""
        real_a, real_b = batch["A"], batch["B"]
        if real_a.shape[0] < 2 or real_a.shape[0] % 2:
            raise UserError(f"UNSB trains on pairs of batches (the energy network contrasts one with the other): "
                            f"data.batch_size must be even, got a batch of {real_a.shape[0]}")
        n = real_a.shape[0] // 2
        return real_a[:n], real_a[n:], real_b[:n]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt_g, opt_d, opt_e = self.optimizers()
        hp = self.hparams
        real_a, contrast_a, real_b = self.split_batch(batch)
        n = real_a.shape[0]
        step = int(torch.randint(hp.num_timesteps, (1,)).item())  # one bridge step for the whole batch
        sources = torch.cat([real_a, contrast_a, real_b] if hp.nce_idt else [real_a, contrast_a])
        states = self.simulate(sources, step)  # instance norm: one pass of 3n images is n-image passes' values
        state, contrast_state = states[:n], states[n:2 * n]
        at_step = self._steps(step, states)
        fake = self.generator(torch.cat([state, states[2 * n:]]) if hp.nce_idt else state, at_step[: (2 if hp.nce_idt else 1) * n],
                              self.latents((2 if hp.nce_idt else 1) * n, state))
        fake_b = fake[:n]
        contrast_fake = self.generator(contrast_state, at_step[:n], self.latents(n, state))
        t = at_step[:n]

        d_loss = discriminator_loss(self.gan_loss, self.discriminator(real_b, t), self.discriminator(fake_b.detach(), t))
        self.backward_step(opt_d, d_loss, "d")  # the NaN check first: a NaN never reaches the weights
        e_loss = energy_loss(self.energy(torch.cat([state, fake_b.detach()], 1), t, torch.cat([state, fake_b.detach()], 1)),
                             self.energy(torch.cat([state, fake_b.detach()], 1), t,
                                         torch.cat([contrast_state, contrast_fake.detach()], 1)))
        self.backward_step(opt_e, e_loss, "e")

        with frozen(self.discriminator, self.energy):
            pair = torch.cat([state, fake_b], 1)
            losses = {
                "g_adv": self.gan_loss.generator(self.discriminator(fake_b, t)) * hp.lambda_gan,
                "sb": schrodinger_bridge_loss(self.energy(pair, t, pair), self.energy(pair, t, torch.cat([contrast_state, contrast_fake], 1)),
                                              state, fake_b, step, hp.num_timesteps, hp.tau) * hp.lambda_sb,
            }
            if hp.lambda_nce > 0:
                self._feature_latent = self.latents(n, state)
                sources_nce, outputs = ([real_a, real_b], [fake_b, fake[n:]]) if hp.nce_idt else ([real_a], [fake_b])
                losses.update(zip(("nce", "nce_idt"), self.nce_losses(sources_nce, outputs)))
                self._feature_latent = None
            nce = [losses[k] for k in ("nce", "nce_idt") if k in losses]
            g_total = losses["g_adv"] + losses["sb"] + (torch.stack(nce).mean() if nce else 0.0)
            self.backward_step(opt_g, g_total, losses)

        logged = {f"train/{k}": v for k, v in {**losses, "g_total": g_total, "d_total": d_loss, "e_total": e_loss}.items()}
        self.log_training_values(logged, n, prog_bar=("train/g_total", "train/d_total"),
                                 optimizers={"g": opt_g.optimizer, "d": opt_d.optimizer, "e": opt_e.optimizer})
        every = hp.sample_every_n_steps
        if every and self.iteration % every == 0:
            self.log_image_grid("train/samples_ab", make_grid(
                [tensor_to_uint8(x[: hp.num_samples]) for x in (real_a, state, fake_b)], by_column=True),
                f"real A | x_t at step {step} | G(x_t)")

    # --- validation / test ------------------------------------------------------------------------------------------
    def trajectory(self, real_a: Tensor, seed: int = VALIDATION_SEED) -> list[Tensor]:
        """``x_0``, the states ``x_{t_1} .. x_{t_{T-1}}`` and the output of the bridge run on ``real_a``."""
        return self.inference_network("AtoB", seed=seed).trajectory(real_a)

    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        real_a = batch["A"]
        path = self.trajectory(real_a)
        fake_b = path[-1]
        if "A_gt" in batch:
            self.val_metrics.update(to_unit_range(fake_b), to_unit_range(batch["A_gt"]))
            self.val_identity.update(to_unit_range(real_a), to_unit_range(batch["A_gt"]))
        if batch_idx == 0:
            self._val_grid_batch = {"path": path}

    def log_samples(self, stage: str, images: dict[str, Any]) -> None:
        n = self.hparams.num_samples
        path = images["path"]
        labels = ["x_0", *[f"x_t{j}" for j in range(1, len(path) - 1)], "output"]
        self.log_image_grid(f"{stage}/samples_ab", make_grid([tensor_to_uint8(x[:n]) for x in path], by_column=True),
                            " | ".join(labels))

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self.inference_network("AtoB")(batch["A"] if "A" in batch else batch["image"])
