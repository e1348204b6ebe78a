"""Pix2Pix (Isola et al. 2017): paired translation with a U-Net generator and a conditional PatchGAN."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from gan_translate.core.errors import UserError
from gan_translate.core.grids import make_grid
from gan_translate.core.images import match_channels, tensor_to_uint8, to_unit_range
from gan_translate.losses import discriminator_loss, l1
from gan_translate.metrics import paired_metrics
from gan_translate.models.base import GANModule, frozen
from gan_translate.models.registry import register_model
from gan_translate.models.translation import AdversarialTranslationGAN

__all__ = ["INFERENCE_MODES", "InferenceMode", "Pix2Pix", "Pix2PixInference", "inference_behaviour"]

InferenceMode = Literal["eval", "train_dropout", "classic"]
INFERENCE_MODES: tuple[str, ...] = get_args(InferenceMode)


@contextmanager
def inference_behaviour(network: nn.Module, mode: str) -> Iterator[nn.Module]:
    """Run ``network`` with pix2pix's test-time behaviour ``mode``, restoring every layer afterwards.

    * ``eval``: dropout off, batch norm with the running statistics gathered in training;
    * ``train_dropout``: dropout on (the generator's noise source), batch norm with running statistics;
    * ``classic``: dropout on and batch norm with the statistics of the batch at hand, as the paper and
      the classic code run the generator at test time.

    Batch norm on batch statistics never updates the running statistics here (inference must not change
    the weights a checkpoint would save), and the previous train/eval state of every layer is restored on
    exit, so validation inside a training run leaves the training state untouched.
    """
    if mode not in INFERENCE_MODES:
        raise UserError(f"inference_mode must be one of {', '.join(INFERENCE_MODES)}, got {mode!r}")
    saved = [(m, m.training, getattr(m, "track_running_stats", None)) for m in network.modules()]
    try:
        network.eval()
        if mode in ("train_dropout", "classic"):
            for m in network.modules():
                if isinstance(m, nn.modules.dropout._DropoutNd):
                    m.train()
        if mode == "classic":
            for m in network.modules():
                if isinstance(m, _BatchNorm):
                    # Training mode without tracking: batch statistics, running buffers left alone.
                    m.train()
                    m.track_running_stats = False
        yield network
    finally:
        for m, training, track in saved:
            m.training = training
            if track is not None:
                m.track_running_stats = track


class Pix2PixInference(nn.Module):
    """A pix2pix generator wrapped to run with the test-time behaviour ``mode`` whatever its own state.

    In ``classic`` mode every image is run on its own, as the classic code does with batch size 1 at test
    time: with batch statistics, an image's result would otherwise depend on its batch neighbours.
    Exposes the generator's ``size_multiple`` and ``min_size`` for the padding inference code.
    """

    def __init__(self, generator: nn.Module, mode: str) -> None:
        super().__init__()
        if mode not in INFERENCE_MODES:
            raise UserError(f"inference_mode must be one of {', '.join(INFERENCE_MODES)}, got {mode!r}")
        self.generator = generator
        self.mode = mode
        self.size_multiple: int = int(getattr(generator, "size_multiple", 1))
        self.min_size: int = int(getattr(generator, "min_size", self.size_multiple))

    def forward(self, images: Tensor) -> Tensor:
        with inference_behaviour(self.generator, self.mode):
            if self.mode == "classic" and images.shape[0] > 1:
                return torch.cat([self.generator(image) for image in images.split(1)])
            return self.generator(images)


@register_model("pix2pix")
class Pix2Pix(AdversarialTranslationGAN):
    """U-Net generator and a conditional PatchGAN that judges (input, output) pairs; adversarial + L1 loss.

    Defaults are the paper's: U-Net 256 with batch norm and dropout, a 70x70 PatchGAN on the 6-channel
    concatenation of input and output, the vanilla (BCE with logits) GAN loss plus 100 x L1 to the target,
    Adam 2e-4 (0.5, 0.999), the learning rate constant for ``n_epochs`` then decaying linearly to zero
    over ``n_epochs_decay``; the discriminator loss is halved. Each batch updates the discriminator first,
    then the generator against the updated discriminator, as the classic code does. Pix2pix translates in
    one direction only: the data module's ``direction`` decides which side of the pairs is the input.

    Test-time behaviour (``inference_mode``), used by validation, ``test``, ``predict`` and ``translate``:

    * ``eval`` (default): dropout off, batch norm with its running statistics. Deterministic (the same
      image always gives the same result, whatever it is batched with) and what any exported PyTorch model
      does; on the synthetic quickstart task it scores as well as the classic behaviour.
    * ``train_dropout``: dropout stays on (the generator's only noise source), batch norm uses running
      statistics: samples vary from run to run; seed with ``torch.manual_seed`` to repeat them.
    * ``classic``: the paper's choice: dropout on and batch norm with each test image's own statistics
      (each image is run alone, so with batch size 1 this is instance norm). Reproduces the classic code's
      test results and avoids the train/test mismatch of running statistics after batch-1 training, at
      the price of random, non-repeatable outputs.

    The other network, optimiser and schedule options are those of every translator (``TranslationGAN``,
    ``AdversarialTranslationGAN``, ``GANModule``); ``in_channels`` is the input side after the data module's
    ``direction``.

    Args:
        generator: generator name in the registry (``unet_256``, ``unet_128``, ``unet``, ``resnet_9blocks``, ...).
        norm: ``batch``, ``instance`` or ``none`` for both networks.
        dropout: Dropout(0.5) in the generator (U-Net: the three innermost ngf*8 decoder blocks of U-Net 256).
        gan_loss: ``vanilla`` (BCE with logits), ``lsgan`` or ``hinge``.
        lambda_l1: weight of the L1 loss between output and target.
        inference_mode: test-time behaviour of dropout and batch norm: ``eval``, ``train_dropout`` or ``classic``.
    """

    capabilities = frozenset({"translate"})
    translators = {"AtoB": "generator"}
    discriminators = {"AtoB": "discriminator"}  # conditional: judges (input, output)
    trains_on_pairs = True
    direction_hint = (
        ": this model was trained A->B (its data's input side to its target side); for the reverse, train "
        "another model with --data.direction BtoA"
    )
    # Test-time behaviour: `test --ckpt_path ... --model.inference_mode classic` scores a saved model another way.
    checkpoint_overridable_hparams = GANModule.checkpoint_overridable_hparams | {"inference_mode"}

    def __init__(
        self,
        generator: str = "unet_256",
        norm: str = "batch",
        dropout: bool = True,
        gan_loss: str = "vanilla",
        lambda_l1: float = 100.0,
        inference_mode: InferenceMode = "eval",
        **kwargs: Any,
    ) -> None:
        super().__init__(generator=generator, norm=norm, dropout=dropout, gan_loss=gan_loss, **kwargs)
        if inference_mode not in INFERENCE_MODES:
            raise UserError(f"model.inference_mode must be one of {', '.join(INFERENCE_MODES)}, got {inference_mode!r}")
        if lambda_l1 < 0:
            raise UserError(f"model.lambda_l1 must be >= 0, got {lambda_l1}")
        in_channels, out_channels = self.hparams.in_channels, self.hparams.out_channels
        self.generator = self.make_generator(in_channels, out_channels)
        # Conditional: the discriminator judges the pair (input, output), so it sees both images' channels.
        self.discriminator = self.make_discriminator(in_channels + out_channels)

        self.val_metrics = paired_metrics(prefix="val/")
        # The untranslated input against the target: the bar a useful translator must clear. Only
        # meaningful (and only computable) when input and target have the same channels.
        self.val_identity = paired_metrics(prefix="val/", postfix="_identity") if in_channels == out_channels else None

    # --- API --------------------------------------------------------------------------------------
    def inference_network(self, direction: str = "AtoB") -> nn.Module:
        """The generator with the configured ``inference_mode`` (plain eval-mode generator for ``eval``)."""
        generator = self.translator(direction)
        if self.hparams.inference_mode == "eval":
            return generator.eval()
        return Pix2PixInference(generator, self.hparams.inference_mode)

    def export_notes(self) -> tuple[str, ...]:
        """A standalone export runs the plain eval-mode generator: say so when ``translate`` would not."""
        mode = self.hparams.inference_mode
        if mode == "eval":
            return ()
        return (f"note: the file runs the generator in eval mode (dropout off, batch norm's running statistics), not "
                f"this checkpoint's random inference_mode {mode!r}",)

    def translate_for_evaluation(self, images: Tensor) -> Tensor:
        """The generator's output with the test-time behaviour ``inference_mode`` (as ``translate`` gives)."""
        return Pix2PixInference(self.generator, self.hparams.inference_mode)(images)

    def configure_optimizers(self) -> Any:
        opt_g = self.adam(self.generator.parameters())
        opt_d = self.adam(self.discriminator.parameters())
        return [opt_g, opt_d], self.linear_decay([opt_g, opt_d])

    # --- training -------------------------------------------------------------------------------
    def judge(self, real_a: Tensor, image_b: Tensor) -> Tensor:
        """Discriminator logits for the pair (input, candidate output): conditional GAN."""
        return self.discriminator(torch.cat([real_a, image_b], dim=1))

    def discriminator_losses(self, real_a: Tensor, real_b: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        """``d`` (halved real + fake loss, the one optimised) and its two halves ``d_real`` / ``d_fake`` (logged)."""
        real_logits = self.judge(real_a, real_b)
        fake_logits = self.judge(real_a, fake_b.detach())  # the generator gets no gradient from D's step
        with torch.no_grad():
            parts = {
                "d_real": self.gan_loss.real_fake(real_logits, True),
                "d_fake": self.gan_loss.real_fake(fake_logits, False),
            }
        return {"d": discriminator_loss(self.gan_loss, real_logits, fake_logits), **parts}

    def generator_losses(self, real_a: Tensor, real_b: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        """Weighted generator terms: ``g_adv`` (fool D on the pair) and ``g_l1`` (lambda_l1 x L1 to the target)."""
        losses = {"g_adv": self.gan_loss.generator(self.judge(real_a, fake_b))}
        if self.hparams.lambda_l1 > 0:
            losses["g_l1"] = l1(fake_b, real_b) * self.hparams.lambda_l1
        return losses

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real_a, real_b = batch["A"], batch["B"]
        # One generator pass (dropout on: the paper's noise) serves both updates.
        fake_b = self.generator(real_a)

        # Discriminator first, then the generator against the updated discriminator (classic order).
        # The discriminator's step sees the fake detached: no toggling needed. `d` is the mean of its two halves,
        # so it is finite only if both are (check_finite then reads one value).
        d_losses = self.discriminator_losses(real_a, real_b, fake_b)
        self.backward_step(opt_d, d_losses["d"], d_losses, loss_is_total=True)  # NaN check first: none reaches the weights

        with frozen(self.discriminator):  # the classic set_requires_grad(netD, False): no gradients for D here
            g_losses = self.generator_losses(real_a, real_b, fake_b)
            g_total = sum(g_losses.values())
            self.backward_step(opt_g, g_total, g_losses, loss_is_total=True)

        logged = {f"train/{k}": v for k, v in {**g_losses, **d_losses, "g_total": g_total, "d_total": d_losses["d"]}.items()}
        self.log_training_values(logged, real_a.shape[0], prog_bar=("train/g_total", "train/d_total"),
                                 optimizers={"g": opt_g.optimizer, "d": opt_d.optimizer})

        every = self.hparams.sample_every_n_steps
        if every and self.iteration % every == 0:
            self.log_samples("train", {"real_a": real_a, "fake_b": fake_b, "real_b": real_b})

    def log_samples(self, stage: str, images: dict[str, Tensor]) -> None:
        # 1-channel sides shown as grey RGB, so inputs and outputs of different channels share a grid.
        n = self.hparams.num_samples
        grid = make_grid([tensor_to_uint8(match_channels(images[k][:n], 3)) for k in ("real_a", "fake_b", "real_b")], by_column=True)
        self.log_image_grid(f"{stage}/samples", grid, "input | output | target")

    # --- validation / test ------------------------------------------------------------------------
    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        real_a, real_b = batch["A"], batch["B"]
        fake_b = self.translate_for_evaluation(real_a)
        self.val_metrics.update(to_unit_range(fake_b), to_unit_range(real_b))
        if self.val_identity is not None:
            self.val_identity.update(to_unit_range(real_a), to_unit_range(real_b))
        if batch_idx == 0:
            self._val_grid_batch = {"real_a": real_a, "fake_b": fake_b, "real_b": real_b}

    def evaluation_metrics(self) -> tuple[Any, ...]:
        return (self.val_metrics, self.val_identity)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        images = batch["A"] if "A" in batch else batch["image"]
        return self.translate_for_evaluation(images)
