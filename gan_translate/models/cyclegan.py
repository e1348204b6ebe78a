"""CycleGAN (Zhu et al. 2017): unpaired translation with two generators and two discriminators."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gan_translate.core.errors import UserError
from gan_translate.core.grids import make_grid
from gan_translate.core.images import tensor_to_uint8, to_unit_range
from gan_translate.core.random_streams import rank_seed, reseed_generator_for_rank
from gan_translate.losses import discriminator_loss, l1
from gan_translate.metrics import paired_metrics
from gan_translate.models.base import frozen
from gan_translate.models.pool import ImagePool
from gan_translate.models.registry import register_model
from gan_translate.models.translation import AdversarialTranslationGAN

__all__ = ["CycleGAN"]


@register_model("cyclegan")
class CycleGAN(AdversarialTranslationGAN):
    """Two generators (A->B, B->A), two PatchGAN discriminators, adversarial + cycle + identity losses.

    Defaults are the paper's: ResNet-9 generators with instance norm, 70x70 PatchGAN, LSGAN, cycle weight
    10 both ways, identity 0.5 (times the cycle weight), pools of 50 fakes, Adam 2e-4 (0.5, 0.999) with
    the learning rate constant for ``n_epochs`` then decaying linearly to zero over ``n_epochs_decay``. The
    network, loss, optimiser and schedule options are those of every translator (``TranslationGAN``,
    ``AdversarialTranslationGAN``, ``GANModule``).

    Args:
        lambda_a: weight of the A -> B -> A cycle loss.
        lambda_b: weight of the B -> A -> B cycle loss.
        lambda_identity: identity loss weight, relative to the cycle weights (0 disables it).
        pool_size: past fakes kept per discriminator (0 disables the pool).
    """

    capabilities = frozenset({"translate"})
    translators = {"AtoB": "generator_ab", "BtoA": "generator_ba"}
    discriminators = {"AtoB": "discriminator_b", "BtoA": "discriminator_a"}

    def __init__(
        self,
        lambda_a: float = 10.0,
        lambda_b: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        hp = self.hparams
        if lambda_identity > 0 and hp.in_channels != hp.out_channels:
            raise UserError(
                f"lambda_identity={lambda_identity} needs in_channels == out_channels "
                f"(got {hp.in_channels} and {hp.out_channels}); set model.lambda_identity to 0"
            )
        self.generator_ab = self.make_generator(hp.in_channels, hp.out_channels)
        self.generator_ba = self.make_generator(hp.out_channels, hp.in_channels)
        self.discriminator_a = self.make_discriminator(hp.in_channels)
        self.discriminator_b = self.make_discriminator(hp.out_channels)

        # Fakes of each domain, judged by that domain's discriminator.
        self.pool_a = ImagePool(pool_size, seed=1)
        self.pool_b = ImagePool(pool_size, seed=2)

        self.val_metrics_ab = paired_metrics(prefix="val/", postfix="_ab")
        self.val_metrics_ba = paired_metrics(prefix="val/", postfix="_ba")
        self.val_identity_ab = paired_metrics(prefix="val/", postfix="_identity_ab")
        self.val_identity_ba = paired_metrics(prefix="val/", postfix="_identity_ba")

    # --- API --------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        # One Adam for both generators and one for both discriminators, as in the reference code.
        opt_g = self.adam([*self.generator_ab.parameters(), *self.generator_ba.parameters()])
        opt_d = self.adam([*self.discriminator_a.parameters(), *self.discriminator_b.parameters()])
        return [opt_g, opt_d], self.linear_decay([opt_g, opt_d])

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

        # The discriminators are frozen while the generators learn to fool them (no gradients computed for
        # them), as in the classic code. Their own step needs no toggling: it sees detached fakes only.
        with frozen(self.discriminator_a, self.discriminator_b):
            g_losses, images = self.generator_losses(real_a, real_b)
            g_total = sum(g_losses.values())
            self.backward_step(opt_g, g_total, g_losses, loss_is_total=True)  # NaN check first: none reaches the weights

        d_losses = self.discriminator_losses(images)
        d_total = sum(d_losses.values())
        self.backward_step(opt_d, d_total, d_losses, loss_is_total=True)

        logged = {f"train/{k}": v for k, v in {**g_losses, **d_losses, "g_total": g_total, "d_total": d_total}.items()}
        self.log_training_values(logged, real_a.shape[0], prog_bar=("train/g_total", "train/d_total"),
                                 optimizers={"g": opt_g.optimizer, "d": opt_d.optimizer})

        every = self.hparams.sample_every_n_steps
        if every and self.iteration % every == 0:
            self.log_samples("train", images)

    def log_samples(self, stage: str, images: dict[str, Tensor]) -> None:
        n = self.hparams.num_samples
        self.log_image_grid(
            f"{stage}/samples_ab", make_grid([tensor_to_uint8(images[k][:n]) for k in ("real_a", "fake_b", "rec_a")], by_column=True), "real A | fake B | reconstructed A"
        )
        self.log_image_grid(
            f"{stage}/samples_ba", make_grid([tensor_to_uint8(images[k][:n]) for k in ("real_b", "fake_a", "rec_b")], by_column=True), "real B | fake A | reconstructed B"
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
            self.pool_a.generator.manual_seed(rank_seed(1, rank))
            self.pool_b.generator.manual_seed(rank_seed(2, rank))

    # --- checkpoints -----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Under DDP only rank 0's pools reach the file (the checkpoint is rank 0's): see docs/scaling.md.
        super().on_save_checkpoint(checkpoint)
        checkpoint["image_pools"] = {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        pools = checkpoint.get("image_pools")
        if pools:
            self.pool_a.load_state_dict(pools["a"])
            self.pool_b.load_state_dict(pools["b"])
            # A resumed DDP run starts every rank from rank 0's saved pools, each with its own random stream.
            rank = self.global_rank if self._trainer is not None else 0
            reseed_generator_for_rank(self.pool_a.generator, rank)
            reseed_generator_for_rank(self.pool_b.generator, rank)
