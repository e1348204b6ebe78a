"""CycleGAN (Zhu et al. 2017): unpaired translation with two generators and two discriminators."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from gan_translate.losses import adversarial_loss, discriminator_loss, l1
from gan_translate.metrics import paired_metrics, to_unit_range
from gan_translate.models.base import TranslationGAN, image_grid, linear_decay_schedule
from gan_translate.models.pool import ImagePool
from gan_translate.nn import build_discriminator, build_generator


class CycleGAN(TranslationGAN):
    """Two generators (A->B, B->A), two PatchGAN discriminators, adversarial + cycle + identity losses.

    Defaults are the paper's: ResNet-9 generators with instance norm, 70x70 PatchGAN, LSGAN, cycle weight
    10 both ways, identity 0.5 (times the cycle weight), pools of 50 fakes, Adam 2e-4 (0.5, 0.999) with
    the learning rate constant for ``n_epochs`` then decaying linearly to zero over ``n_epochs_decay``.

    Args:
        in_channels: channels of domain A images.
        out_channels: channels of domain B images.
        generator: generator name in the registry (``resnet_9blocks``, ``resnet``, ``unet_256``, ...).
        generator_args: extra arguments of that generator (e.g. ``{n_blocks: 2}`` for ``resnet``).
        ngf: generator width (filters in the first layer).
        norm: ``instance``, ``batch`` or ``none`` for all networks.
        dropout: dropout in the generators' residual blocks.
        discriminator: discriminator name (``patchgan``, ``basic``, ``pixel``).
        discriminator_args: extra arguments of the discriminator (e.g. ``{n_layers: 3}``).
        ndf: discriminator width.
        init_type: weight init (``normal``, ``xavier``, ``kaiming``, ``orthogonal``).
        init_gain: scale of the init.
        gan_loss: ``lsgan``, ``vanilla`` or ``hinge``.
        lambda_a: weight of the A -> B -> A cycle loss.
        lambda_b: weight of the B -> A -> B cycle loss.
        lambda_identity: identity loss weight, relative to the cycle weights (0 disables it).
        pool_size: past fakes kept per discriminator (0 disables the pool).
        lr: Adam learning rate of generators and discriminators.
        beta1: Adam beta1.
        beta2: Adam beta2.
        n_epochs: epochs at the initial learning rate.
        n_epochs_decay: epochs over which the learning rate decays linearly to zero.
        sample_every_n_steps: log a training sample grid every this many batches (0: never).
        num_samples: examples shown in each sample grid.
    """

    model_name = "cyclegan"

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        generator: str = "resnet_9blocks",
        generator_args: dict[str, Any] | None = None,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        discriminator: str = "patchgan",
        discriminator_args: dict[str, Any] | None = None,
        ndf: int = 64,
        init_type: str = "normal",
        init_gain: float = 0.02,
        gan_loss: str = "lsgan",
        lambda_a: float = 10.0,
        lambda_b: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        lr: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        sample_every_n_steps: int = 500,
        num_samples: int = 4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if lambda_identity > 0 and in_channels != out_channels:
            from gan_translate.errors import UserError

            raise UserError(
                f"lambda_identity={lambda_identity} needs in_channels == out_channels "
                f"(got {in_channels} and {out_channels}); set model.lambda_identity to 0"
            )
        generator_kwargs = dict(ngf=ngf, norm=norm, dropout=dropout, init_type=init_type, init_gain=init_gain)
        generator_kwargs.update(generator_args or {})
        disc_kwargs = dict(ndf=ndf, norm=norm, init_type=init_type, init_gain=init_gain)
        disc_kwargs.update(discriminator_args or {})

        self.generator_ab = build_generator(generator, in_channels=in_channels, out_channels=out_channels, **generator_kwargs)
        self.generator_ba = build_generator(generator, in_channels=out_channels, out_channels=in_channels, **generator_kwargs)
        self.discriminator_a = build_discriminator(discriminator, in_channels=in_channels, **disc_kwargs)
        self.discriminator_b = build_discriminator(discriminator, in_channels=out_channels, **disc_kwargs)
        self.gan_loss = adversarial_loss(gan_loss)

        # Fakes of each domain, judged by that domain's discriminator.
        self.pool_a = ImagePool(pool_size, seed=1)
        self.pool_b = ImagePool(pool_size, seed=2)

        self.val_metrics_ab = paired_metrics(prefix="val/", postfix="_ab")
        self.val_metrics_ba = paired_metrics(prefix="val/", postfix="_ba")
        self.val_identity_ab = paired_metrics(prefix="val/", postfix="_identity_ab")
        self.val_identity_ba = paired_metrics(prefix="val/", postfix="_identity_ba")

    # --- API --------------------------------------------------------------------------------------
    def forward(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        return self.translator(direction)(images)

    def translator(self, direction: str = "AtoB") -> nn.Module:
        if direction == "AtoB":
            return self.generator_ab
        if direction == "BtoA":
            return self.generator_ba
        from gan_translate.errors import UserError

        raise UserError(f"direction must be AtoB or BtoA, got {direction!r}")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        # One Adam for both generators and one for both discriminators, as in the reference code.
        opt_g = self.adam([*self.generator_ab.parameters(), *self.generator_ba.parameters()])
        opt_d = self.adam([*self.discriminator_a.parameters(), *self.discriminator_b.parameters()])
        schedulers = [linear_decay_schedule(opt, hp.n_epochs, hp.n_epochs_decay) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], schedulers

    # --- training -------------------------------------------------------------------------------
    def generator_losses(self, real_a: Tensor, real_b: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """All generator loss terms (weighted) and the images they were computed from."""
        hp = self.hparams
        fake_b = self.generator_ab(real_a)
        rec_a = self.generator_ba(fake_b)
        fake_a = self.generator_ba(real_b)
        rec_b = self.generator_ab(fake_a)
        losses = {
            "g_adv_ab": self.gan_loss.generator(self.discriminator_b(fake_b)),
            "g_adv_ba": self.gan_loss.generator(self.discriminator_a(fake_a)),
            "cycle_a": l1(rec_a, real_a) * hp.lambda_a,
            "cycle_b": l1(rec_b, real_b) * hp.lambda_b,
        }
        if hp.lambda_identity > 0:
            # A generator fed an image already in its target domain should leave it alone.
            losses["idt_b"] = l1(self.generator_ab(real_b), real_b) * hp.lambda_b * hp.lambda_identity
            losses["idt_a"] = l1(self.generator_ba(real_a), real_a) * hp.lambda_a * hp.lambda_identity
        images = {"real_a": real_a, "fake_b": fake_b, "rec_a": rec_a, "real_b": real_b, "fake_a": fake_a, "rec_b": rec_b}
        return losses, images

    def discriminator_losses(self, images: dict[str, Tensor]) -> dict[str, Tensor]:
        fake_a = self.pool_a.query(images["fake_a"].detach())
        fake_b = self.pool_b.query(images["fake_b"].detach())
        return {
            "d_a": discriminator_loss(self.gan_loss, self.discriminator_a(images["real_a"]), self.discriminator_a(fake_a)),
            "d_b": discriminator_loss(self.gan_loss, self.discriminator_b(images["real_b"]), self.discriminator_b(fake_b)),
        }

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real_a, real_b = batch["A"], batch["B"]

        with self.toggled_optimizer(opt_g):
            g_losses, images = self.generator_losses(real_a, real_b)
            g_total = sum(g_losses.values())
            self.check_finite(g_losses)  # before the step: a NaN never reaches the weights
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_total)
            opt_g.step()

        with self.toggled_optimizer(opt_d):
            d_losses = self.discriminator_losses(images)
            d_total = sum(d_losses.values())
            self.check_finite(d_losses)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_total)
            opt_d.step()

        logged = {f"train/{k}": v for k, v in {**g_losses, **d_losses, "g_total": g_total, "d_total": d_total}.items()}
        self.log_training_values(logged, real_a.shape[0], prog_bar=("train/g_total", "train/d_total"),
                                 optimizers={"g": opt_g.optimizer, "d": opt_d.optimizer})

        every = self.hparams.sample_every_n_steps
        if every and self.iteration % every == 0:
            self.log_samples("train", images)

    def log_samples(self, stage: str, images: dict[str, Tensor]) -> None:
        n = self.hparams.num_samples
        self.log_image_grid(
            f"{stage}/samples_ab", image_grid([images["real_a"], images["fake_b"], images["rec_a"]], n), "real A | fake B | reconstructed A"
        )
        self.log_image_grid(
            f"{stage}/samples_ba", image_grid([images["real_b"], images["fake_a"], images["rec_b"]], n), "real B | fake A | reconstructed B"
        )

    # --- validation / test ------------------------------------------------------------------------
    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        real_a, real_b = batch["A"], batch["B"]
        fake_b = self.generator_ab(real_a)
        fake_a = self.generator_ba(real_b)
        if "A_gt" in batch:
            self.val_metrics_ab.update(to_unit_range(fake_b), to_unit_range(batch["A_gt"]))
            # The untranslated input scored the same way: the bar any useful translator must clear.
            self.val_identity_ab.update(to_unit_range(real_a), to_unit_range(batch["A_gt"]))
        if "B_gt" in batch:
            self.val_metrics_ba.update(to_unit_range(fake_a), to_unit_range(batch["B_gt"]))
            self.val_identity_ba.update(to_unit_range(real_b), to_unit_range(batch["B_gt"]))
        if batch_idx == 0:
            self._val_grid_batch = {"real_a": real_a, "fake_b": fake_b, "rec_a": self.generator_ba(fake_b),
                                    "real_b": real_b, "fake_a": fake_a, "rec_b": self.generator_ab(fake_a)}

    def evaluation_metrics(self) -> tuple[Any, ...]:
        return (self.val_metrics_ab, self.val_metrics_ba, self.val_identity_ab, self.val_identity_ba)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        images = batch["A"] if "A" in batch else batch["image"]
        return self.generator_ab(images)

    # --- distributed training ----------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        super().setup(stage)
        rank = self.global_rank
        if stage == "fit" and rank > 0:
            # Every DDP process keeps its own pools; their random draws must differ too. Rank 0 keeps the
            # one-process seeds (1, 2), so a single-process run is unchanged.
            self.pool_a.generator.manual_seed(1 + 1_000_003 * rank)
            self.pool_b.generator.manual_seed(2 + 1_000_003 * rank)

    # --- checkpoints -----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Under DDP only rank 0's pools reach the file (the checkpoint is rank 0's): see docs/scaling.md.
        super().on_save_checkpoint(checkpoint)
        checkpoint["image_pools"] = {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        pools = checkpoint.get("image_pools")
        if pools:
            from gan_translate.perf import reseed_generator_for_rank

            self.pool_a.load_state_dict(pools["a"])
            self.pool_b.load_state_dict(pools["b"])
            # A resumed DDP run starts every rank from rank 0's saved pools, each with its own random stream.
            rank = self.global_rank if self._trainer is not None else 0
            reseed_generator_for_rank(self.pool_a.generator, rank)
            reseed_generator_for_rank(self.pool_b.generator, rank)
