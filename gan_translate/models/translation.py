"""What the translators share: their generator options and schedule, validation / test against ground truth,
and (for the adversarial ones) the discriminator and GAN loss.

``TranslationGAN`` builds ``generator`` networks from its options; ``AdversarialTranslationGAN`` adds
``discriminator`` networks and the GAN loss (CycleGAN, Pix2Pix). Their defaults are the classic CycleGAN's; a
subclass re-declares an option to change its default (Pix2Pix: ``generator: unet_256``, ``norm: batch``) and passes
the rest on with ``**kwargs``, so each option is defined and documented once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from gan_translate.losses import adversarial_loss
from gan_translate.models.base import GANModule, linear_decay_schedule
from gan_translate.nn import build_discriminator, build_generator

__all__ = ["AdversarialTranslationGAN", "TranslationGAN"]


class TranslationGAN(GANModule):
    """A model that translates images: generators built from its options, the classic schedule, and validation and
    test that score translations against a ground truth with paired metrics and log a sample grid of the first batch.

    Subclasses implement ``_evaluate`` (update the metrics, keep ``_val_grid_batch`` from batch 0) and
    ``evaluation_metrics`` (the ``MetricCollection``s to compute and reset at the end of an epoch).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        generator: str = "resnet_9blocks",
        generator_args: dict[str, Any] | None = None,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        init_type: str = "normal",
        init_gain: float = 0.02,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        sample_every_n_steps: int = 500,
        num_samples: int = 4,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            in_channels: channels of domain A (input) images.
            out_channels: channels of domain B (target) images.
            generator: generator name in the registry (``resnet_9blocks``, ``resnet``, ``unet_256``, ``unet``, ...).
            generator_args: extra arguments of that generator (e.g. ``{n_blocks: 2}`` for ``resnet``).
            ngf: generator width (filters in the first layer).
            norm: ``instance``, ``batch`` or ``none`` for every network.
            dropout: dropout in the generators (ResNet blocks; U-Net: the innermost decoder blocks).
            init_type: weight init (``normal``, ``xavier``, ``kaiming``, ``orthogonal``).
            init_gain: scale of the init.
            n_epochs: epochs at the initial learning rate.
            n_epochs_decay: epochs over which the learning rate decays linearly to zero.
            sample_every_n_steps: log a training sample grid every this many batches (0: never).
            num_samples: examples shown in each sample grid.
        """
        super().__init__(**kwargs)
        self._val_grid_batch: dict[str, Tensor] | None = None

    def forward(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """Translate a batch in [-1, 1] with the generator of ``direction``."""
        return self.translator(direction)(images)

    def image_channels(self, domain: str) -> int:
        """Channels of domain ``domain``'s images: A's are ``in_channels``, B's ``out_channels``."""
        return int(self.hparams.in_channels if domain == "A" else self.hparams.out_channels)

    def make_generator(self, in_channels: int, out_channels: int) -> nn.Module:
        """A generator from the model's options, ``in_channels`` -> ``out_channels``."""
        hp = self.hparams
        options = dict(ngf=hp.ngf, norm=hp.norm, dropout=hp.dropout, init_type=hp.init_type, init_gain=hp.init_gain)
        options.update(hp.generator_args or {})
        return build_generator(hp.generator, in_channels=in_channels, out_channels=out_channels, **options)

    def linear_decay(self, optimizers: Sequence[Any]) -> list[Any]:
        """The classic schedule of each optimiser: constant for ``n_epochs``, then linear decay over ``n_epochs_decay``."""
        return [linear_decay_schedule(opt, self.hparams.n_epochs, self.hparams.n_epochs_decay) for opt in optimizers]

    def evaluation_metrics(self) -> Sequence[Any]:
        raise NotImplementedError

    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        raise NotImplementedError

    def log_samples(self, stage: str, images: dict[str, Tensor]) -> None:
        raise NotImplementedError

    def _evaluate_epoch_end(self, stage: str) -> None:
        for metrics in self.evaluation_metrics():
            if metrics is None:
                continue
            if any(metric.update_called for metric in metrics.values()):
                values = metrics.compute()  # torchmetrics syncs the states across DDP processes here
                self.log_dict({k.replace("val/", f"{stage}/", 1): v for k, v in values.items()}, sync_dist=False)
            metrics.reset()
        if self._val_grid_batch is not None:
            self.log_samples(stage, self._val_grid_batch)
            self._val_grid_batch = None

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def on_validation_epoch_end(self) -> None:
        self._evaluate_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def on_test_epoch_end(self) -> None:
        self._evaluate_epoch_end("test")


class AdversarialTranslationGAN(TranslationGAN):
    """A translator trained against discriminators: their options and the GAN loss (``self.gan_loss``)."""

    def __init__(
        self,
        discriminator: str = "patchgan",
        discriminator_args: dict[str, Any] | None = None,
        ndf: int = 64,
        gan_loss: str = "lsgan",
        **kwargs: Any,
    ) -> None:
        """
        Args:
            discriminator: discriminator name (``patchgan``; ``basic`` is patchgan with 3 layers; ``pixel``).
            discriminator_args: extra arguments of the discriminator (e.g. ``{n_layers: 3}``).
            ndf: discriminator width.
            gan_loss: ``lsgan``, ``vanilla`` (BCE with logits) or ``hinge``.
        """
        super().__init__(**kwargs)
        self.gan_loss = adversarial_loss(gan_loss)

    def make_discriminator(self, in_channels: int) -> nn.Module:
        """A discriminator from the model's options, judging ``in_channels``-channel inputs."""
        hp = self.hparams
        options = dict(ndf=hp.ndf, norm=hp.norm, init_type=hp.init_type, init_gain=hp.init_gain)
        options.update(hp.discriminator_args or {})
        return build_discriminator(hp.discriminator, in_channels=in_channels, **options)
