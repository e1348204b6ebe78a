"""CUT and FastCUT (Park, Efros, Zhang, Zhu, ECCV 2020): unpaired translation with one generator and a patchwise
contrastive loss instead of a cycle.

Each output patch must be closer to the input patch at the same place than to the other input patches (PatchNCE),
in the features of the generator's own encoder, projected by small MLP heads. CUT adds the same loss on the identity
pass ``G(y)`` for domain-B images; FastCUT drops it, weighs PatchNCE 10x and regularises with flip equivariance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_translate.core.errors import UserError
from gan_translate.core.grids import make_grid
from gan_translate.core.images import tensor_to_uint8, to_unit_range
from gan_translate.losses import discriminator_loss, patch_nce
from gan_translate.metrics import paired_metrics
from gan_translate.models.base import frozen
from gan_translate.models.registry import register_model
from gan_translate.models.translation import AdversarialTranslationGAN
from gan_translate.nn.patch_sample import PatchSampleMLP

__all__ = ["CUT", "FastCUT"]


@register_model("cut")
class CUT(AdversarialTranslationGAN):
    """One generator A -> B, a PatchGAN on B, the adversarial loss plus PatchNCE(X, G(X)) (and PatchNCE(Y, G(Y))).

    Defaults are CUT's: ResNet-9 generator with instance norm, 70x70 PatchGAN, LSGAN, PatchNCE on the generator's
    input, downsampling convolutions and 1st and 5th residual blocks (``nce_layers: null``; CUT's 0, 4, 8, 12, 16
    with ``generator_args: {antialias: true}``), 256 patches per layer, 2-layer MLP heads of 256, temperature
    0.07, negatives from the same image, ``lambda_nce`` 1 with the identity term. The heads train with the
    generator (one Adam: the same updates as CUT's separate one). The network, optimiser and schedule options are
    those of every translator (``TranslationGAN``, ``AdversarialTranslationGAN``, ``GANModule``).

    Args:
        lambda_gan: weight of the generator's adversarial loss.
        lambda_nce: weight of PatchNCE.
        nce_idt: also apply PatchNCE to the identity pass G(y) of domain-B images (CUT: true; FastCUT: false).
        nce_layers: encoder layer indices PatchNCE reads (null: the generator's default choice, see above).
        num_patches: sampled locations per layer (the same locations in input and output).
        nce_temperature: temperature of PatchNCE's softmax.
        nce_mlp_channels: width of the MLP heads (0: no heads, features only normalised).
        nce_negatives_from_batch: take negatives from every image of the batch, not only the patch's own.
        flip_equivariance: randomly flip the batch horizontally before the generator (FastCUT's regulariser).
    """

    capabilities = frozenset({"translate"})
    translators = {"AtoB": "generator"}
    discriminators = {"AtoB": "discriminator"}
    direction_hint = (
        "; for B -> A, train another model with the domains' folders swapped (trainB/ as trainA/, testB/ as testA/)"
    )

    def __init__(
        self,
        lambda_gan: float = 1.0,
        lambda_nce: float = 1.0,
        nce_idt: bool = True,
        nce_layers: list[int] | None = None,
        num_patches: int = 256,
        nce_temperature: float = 0.07,
        nce_mlp_channels: int = 256,
        nce_negatives_from_batch: bool = False,
        flip_equivariance: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if lambda_nce < 0 or lambda_gan < 0:
            raise UserError(f"model.lambda_nce and model.lambda_gan must be >= 0, got {lambda_nce} and {lambda_gan}")
        if num_patches < 1 or nce_temperature <= 0:
            raise UserError(f"model.num_patches must be >= 1 and model.nce_temperature > 0, got {num_patches} and {nce_temperature}")
        hp = self.hparams
        if nce_idt and hp.in_channels != hp.out_channels:
            raise UserError(f"nce_idt needs in_channels == out_channels (got {hp.in_channels} and {hp.out_channels}); "
                            "set model.nce_idt to false")
        self.generator = self.make_generator(hp.in_channels, hp.out_channels)
        if not hasattr(self.generator, "features"):
            raise UserError(f"CUT reads the generator's encoder features: use a ResNet generator, not {hp.generator!r}")
        self.nce_layers = self.generator.check_feature_layers(
            nce_layers if nce_layers is not None else self.generator.default_feature_layers()
        )
        self.feature_heads = PatchSampleMLP(self.generator.feature_channels(self.nce_layers), nce_mlp_channels)
        self.discriminator = self.make_discriminator(hp.out_channels)
        self.val_metrics = paired_metrics(prefix="val/", postfix="_ab")
        # The untranslated input scored the same way: the bar any useful translator must clear.
        self.val_identity = paired_metrics(prefix="val/", postfix="_identity_ab")

    # --- API --------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        opt_g = self.adam([*self.generator.parameters(), *self.feature_heads.parameters()])
        opt_d = self.adam(self.discriminator.parameters())
        return [opt_g, opt_d], self.linear_decay([opt_g, opt_d])

    # --- losses -------------------------------------------------------------------------------------
    def nce_losses(
        self, sources: list[Tensor], outputs: list[Tensor], flipped: bool = False, keys: list[list[Tensor]] | None = None
    ) -> list[Tensor]:
        """PatchNCE of each ``(source, output)`` pair: the generator's features of the source (keys) against those of
        its output (queries), averaged over the layers, times ``lambda_nce``. ``flipped``: the outputs were made from
        the flipped sources (flip equivariance). ``keys``: each source's features when the caller has them (the
        generator pass that made the outputs computed them).

        The outputs go through the encoder in one batch when the norm is per-image (instance / none): the same
        values as one pass each, in fewer, larger operations. Each pair draws its own patch locations, as CUT does.
        """
        hp = self.hparams
        if hp.norm == "batch" or len(outputs) == 1:
            queries = [self.encoder_features(output) for output in outputs]
        else:
            merged = self.encoder_features(torch.cat(outputs))
            sizes = [output.shape[0] for output in outputs]
            queries = [list(per_output) for per_output in zip(*(layer.split(sizes) for layer in merged))]
        if flipped:  # the outputs were made from the flipped sources: flip their features back onto the sources'
            queries = [[torch.flip(q, dims=[3]) for q in per_output] for per_output in queries]
        with torch.no_grad():  # the keys are constants of the loss: no graph through an encoder pass for them
            if keys is None:
                keys = [self.encoder_features(source) for source in sources]
            locations = [self.feature_heads.sample_locations(k, hp.num_patches) for k in keys]
            key_patches = [self.feature_heads(k, where) for k, where in zip(keys, locations)]
        query_patches = [self.feature_heads(q, where) for q, where in zip(queries, locations)]
        return [
            torch.stack([patch_nce(q, k, source.shape[0], hp.nce_temperature, hp.nce_negatives_from_batch)
                         for q, k in zip(per_query, per_key)]).mean() * hp.lambda_nce
            for source, per_query, per_key in zip(sources, query_patches, key_patches)
        ]

    def encoder_features(self, images: Tensor) -> list[Tensor]:
        """The generator's encoder activations at ``nce_layers``: what PatchNCE compares (a subclass whose generator
        takes more inputs, such as UNSB's time step and latent, says how to get them)."""
        return self.generator.features(images, self.nce_layers)

    def nce_loss(self, source: Tensor, output: Tensor, flipped: bool = False) -> Tensor:
        """PatchNCE of one ``(source, output)`` pair (see :meth:`nce_losses`)."""
        return self.nce_losses([source], [output], flipped)[0]

    def generate(self, real_a: Tensor, real_b: Tensor) -> dict[str, Any]:
        """One generator pass over A (and B for the identity term). Under flip equivariance the batch is flipped
        half of the time (``flipped``): the outputs are then of the flipped inputs, as CUT trains on them."""
        hp = self.hparams
        real = torch.cat([real_a, real_b]) if hp.nce_idt else real_a
        flipped = bool(hp.flip_equivariance and np.random.random() < 0.5)
        n = real_a.shape[0]
        out: dict[str, Any] = {"flipped": flipped}
        if flipped or hp.dropout:
            # The keys are the features of the unflipped sources (and with dropout a pass of their own): computed
            # in nce_losses.
            fake = self.generator(torch.flip(real, dims=[3]) if flipped else real)
        else:
            # This pass runs the encoder on the sources already: its activations are PatchNCE's keys, the very
            # values a second encoder pass would give, without its cost.
            fake, features = self.generator.forward_with_features(real, self.nce_layers)
            out["keys"] = [[f[:n] for f in features], [f[n:] for f in features]][: 2 if hp.nce_idt else 1]
        out["fake_b"] = fake[:n]
        if hp.nce_idt:
            out["idt_b"] = fake[n:]
        return out

    def generator_losses(self, real_a: Tensor, real_b: Tensor, images: dict[str, Any]) -> dict[str, Tensor]:
        hp = self.hparams
        losses = {"g_adv": self.gan_loss.generator(self.discriminator(images["fake_b"])) * hp.lambda_gan}
        if hp.lambda_nce > 0:
            sources, outputs = ([real_a, real_b], [images["fake_b"], images["idt_b"]]) if hp.nce_idt else ([real_a], [images["fake_b"]])
            terms = self.nce_losses(sources, outputs, images["flipped"], images.get("keys"))
            losses.update(zip(("nce", "nce_idt"), terms))
        return losses

    # --- training -------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real_a, real_b = batch["A"], batch["B"]
        images = self.generate(real_a, real_b)

        # Discriminator first, then the generator against the updated discriminator (CUT's order). D's step sees the
        # fake detached, so nothing needs freezing; in G's step D is frozen (no gradients computed for it).
        d_loss = discriminator_loss(self.gan_loss, self.discriminator(real_b), self.discriminator(images["fake_b"].detach()))
        self.backward_step(opt_d, d_loss, "d")  # NaN check first: a NaN never reaches the weights

        with frozen(self.discriminator):
            g_losses = self.generator_losses(real_a, real_b, images)
            # CUT averages its two NCE terms: the identity term regularises, it does not double the weight.
            nce = [g_losses[k] for k in ("nce", "nce_idt") if k in g_losses]
            g_total = g_losses["g_adv"] + (torch.stack(nce).mean() if nce else 0.0)
            self.backward_step(opt_g, g_total, g_losses)

        logged = {f"train/{k}": v for k, v in {**g_losses, "g_total": g_total, "d_total": d_loss}.items()}
        self.log_training_values(logged, real_a.shape[0], prog_bar=("train/g_total", "train/d_total"),
                                 optimizers={"g": opt_g.optimizer, "d": opt_d.optimizer})
        every = self.hparams.sample_every_n_steps
        if every and self.iteration % every == 0:
            self.log_samples("train", {"real_a": real_a, "real_b": real_b, **images})

    def log_samples(self, stage: str, images: dict[str, Any]) -> None:
        n = self.hparams.num_samples
        if images.get("flipped"):  # show each output beside its own input
            images = {k: torch.flip(v, dims=[3]) if k in ("fake_b", "idt_b") else v for k, v in images.items()}
        self.log_image_grid(f"{stage}/samples_ab", make_grid([tensor_to_uint8(images[k][:n]) for k in ("real_a", "fake_b")], by_column=True), "real A | fake B")
        if "idt_b" in images:
            self.log_image_grid(f"{stage}/samples_idt", make_grid([tensor_to_uint8(images[k][:n]) for k in ("real_b", "idt_b")], by_column=True),
                                "real B | identity G(B)")

    # --- validation / test ------------------------------------------------------------------------
    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        real_a = batch["A"]
        fake_b = self.generator(real_a)
        if "A_gt" in batch:
            self.val_metrics.update(to_unit_range(fake_b), to_unit_range(batch["A_gt"]))
            self.val_identity.update(to_unit_range(real_a), to_unit_range(batch["A_gt"]))
        if batch_idx == 0:
            grid: dict[str, Tensor] = {"real_a": real_a, "fake_b": fake_b}
            if self.hparams.nce_idt and "B" in batch:
                grid.update(real_b=batch["B"], idt_b=self.generator(batch["B"]))
            self._val_grid_batch = grid

    def evaluation_metrics(self) -> tuple[Any, ...]:
        return (self.val_metrics, self.val_identity)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self.generator(batch["A"] if "A" in batch else batch["image"])


@register_model("fastcut")
class FastCUT(CUT):
    """FastCUT: CUT without the identity pass, PatchNCE weighted 10x, flip-equivariance regularisation, and the
    150 + 50 epoch schedule of its paper's code. About half of CUT's work per iteration.

    Args:
        lambda_nce: weight of PatchNCE.
        nce_idt: also apply PatchNCE to the identity pass (off: that pass is what FastCUT saves).
        flip_equivariance: randomly flip the batch horizontally before the generator.
        n_epochs: epochs at the initial learning rate.
        n_epochs_decay: epochs over which the learning rate decays linearly to zero.
    """

    def __init__(
        self,
        lambda_nce: float = 10.0,
        nce_idt: bool = False,
        flip_equivariance: bool = True,
        n_epochs: int = 150,
        n_epochs_decay: int = 50,
        **kwargs: Any,
    ) -> None:
        super().__init__(lambda_nce=lambda_nce, nce_idt=nce_idt, flip_equivariance=flip_equivariance,
                         n_epochs=n_epochs, n_epochs_decay=n_epochs_decay, **kwargs)
