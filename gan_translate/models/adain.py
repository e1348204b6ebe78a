"""AdaIN (Huang & Belongie, ICCV 2017): arbitrary style transfer in one forward pass.

A frozen VGG-19 encodes the content and the style image; adaptive instance normalisation gives the content's
relu4_1 features the style's channel statistics; a trained decoder turns the result into an image. Training
only fits the decoder: the content loss compares the output's relu4_1 features with the AdaIN target (not with the
content image's features), the style loss the channel means and standard deviations of relu1_1 .. relu4_1 with
the style image's. ``alpha`` (inference only) blends the target with the content's own features.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from gan_translate.core.errors import UserError
from gan_translate.core.grids import make_grid
from gan_translate.core.images import match_channels, tensor_to_uint8
from gan_translate.models.base import GANModule
from gan_translate.models.registry import register_model
from gan_translate.nn.adain import (
    ADAIN_LAYERS,
    AdaINDecoder,
    NormalisedVGGEncoder,
    adaptive_instance_norm,
    check_decoder_state,
    load_reference_state,
    map_reference_encoder,
)
from gan_translate.nn.vgg import RANDOM_WEIGHTS_NOTE, VGG19Features
from gan_translate.style.losses import mean_std_loss

__all__ = ["AdaIN", "EncoderLayout"]

EncoderLayout = Literal["imagenet", "normalised"]


@register_model("adain")
class AdaIN(GANModule):
    """A frozen VGG-19 encoder to relu4_1, the AdaIN operation and a trained decoder (the mirror of the encoder).

    Defaults are the PyTorch reference's: style weight 10, content weight 1, Adam 1e-4 (0.9, 0.999) decaying as
    ``lr / (1 + 5e-5 * iteration)``; the data (``StyleDataModule``) crops 256 px of images resized to 512.

    Args:
        encoder: ``imagenet``: torchvision's VGG-19 (zero padding, ImageNet normalisation inside); ``normalised``: the
            AdaIN port's ``vgg_normalised.pth`` layout (a 1x1 colour convolution, reflection padding).
        encoder_weights: ``imagenet`` (torchvision's weights, from the torch hub cache or downloaded), ``random``
            (untrained: tests and smoke runs only, every output says so) or a path (a torchvision VGG-19 state
            dict, or ``vgg_normalised.pth`` for the normalised layout). Read once, when training or testing starts;
            afterwards the checkpoint holds the encoder, so it rebuilds without the file.
        style_weight: weight of the style (channel mean and std) loss.
        content_weight: weight of the content loss.
        lr_decay: the learning rate at iteration i is ``lr / (1 + lr_decay * i)``.
        sample_every_n_steps: log a content | style | output grid every this many batches (0: never).
        num_samples: examples in each grid.
    """

    capabilities = frozenset({"stylize"})

    def __init__(
        self,
        encoder: EncoderLayout = "imagenet",
        encoder_weights: str = "imagenet",
        style_weight: float = 10.0,
        content_weight: float = 1.0,
        lr: float = 1e-4,
        beta1: float = 0.9,
        lr_decay: float = 5e-5,
        sample_every_n_steps: int = 500,
        num_samples: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, beta1=beta1, **kwargs)
        if encoder not in ("imagenet", "normalised"):
            raise UserError(f"model.encoder must be imagenet or normalised, got {encoder!r}")
        if style_weight < 0 or content_weight < 0 or lr_decay < 0:
            raise UserError("model.style_weight, model.content_weight and model.lr_decay must be >= 0")
        # The structure only: the weights are read by load_encoder_weights (no file is needed to rebuild a checkpoint).
        self.encoder: nn.Module = (VGG19Features(ADAIN_LAYERS, weights="random", pooling="max") if encoder == "imagenet"
                                   else NormalisedVGGEncoder())
        self.decoder = AdaINDecoder()
        # Saved in checkpoints: whether the encoder holds the weights `encoder_weights` names (random ones count).
        self.register_buffer("encoder_loaded", torch.tensor(encoder_weights == "random"))

    # --- the networks ------------------------------------------------------------------------------
    @property
    def pretrained(self) -> bool:
        """Whether the encoder is a trained VGG (else the results are a pipeline check, not style transfer)."""
        return self.hparams.encoder_weights != "random"

    @property
    def description(self) -> str:
        """One line naming the encoder, for captions and tables."""
        if not self.pretrained:
            return f"AdaIN, {RANDOM_WEIGHTS_NOTE}"
        return f"AdaIN, VGG-19 {self.hparams.encoder} encoder ({self.hparams.encoder_weights})"

    def load_encoder_weights(self) -> None:
        """Read the encoder's weights from ``encoder_weights`` (once; a checkpoint already holds them)."""
        hp = self.hparams
        if bool(self.encoder_loaded):
            return
        if hp.encoder == "imagenet":
            state = VGG19Features(ADAIN_LAYERS, weights=hp.encoder_weights, pooling="max").state_dict()
        else:
            state = map_reference_encoder(load_reference_state(hp.encoder_weights, "AdaIN encoder weights"),
                                          hp.encoder_weights)
        self.encoder.load_state_dict(state)
        self.encoder_loaded.fill_(True)

    def load_decoder_weights(self, path: str) -> None:
        """Load the AdaIN port's ``decoder.pth`` (to stylise without training)."""
        self.decoder.load_state_dict(check_decoder_state(load_reference_state(path, "AdaIN decoder weights"), path))

    def configure_model(self) -> None:
        super().configure_model()
        self.load_encoder_weights()

    def train(self, mode: bool = True) -> AdaIN:
        super().train(mode)
        self.encoder.eval()  # frozen: nothing in it may behave differently while the decoder trains
        return self

    def encode(self, images: Tensor) -> dict[str, Tensor]:
        """RGB images in [-1, 1] -> relu1_1 .. relu4_1 features."""
        return self.encoder(match_channels(images, 3))

    def decode(self, features: Tensor) -> Tensor:
        """relu4_1 features -> images in [-1, 1] (the decoder's [0, 1] mapped; not clamped while training)."""
        return self.decoder(features) * 2.0 - 1.0

    def stylize(self, content: Tensor, styles: list[Tensor], weights: list[float] | None = None, alpha: float = 1.0) -> Tensor:
        """Content images in [-1, 1] (a batch of one size) rendered in the styles (one, or several mixed by
        ``weights``: their AdaIN targets are blended, as in the paper); ``alpha`` 0 keeps the content's features,
        1 is the full style. The output has the batch's size when H and W are multiples of 8; see
        :mod:`gan_translate.inference.style` for any size."""
        if not 0.0 <= alpha <= 1.0:
            raise UserError(f"alpha must be between 0 and 1, got {alpha}")
        weights = weights or [1.0 / len(styles)] * len(styles)
        if len(weights) != len(styles) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise UserError(f"style weights must be one non-negative number per style, got {weights} for {len(styles)} styles")
        content_features = self.encode(content)["relu4_1"]
        target = sum((w / sum(weights)) * adaptive_instance_norm(content_features, self.encode(s)["relu4_1"])
                     for w, s in zip(weights, styles))
        return self.decode(alpha * target + (1.0 - alpha) * content_features)

    # --- training -------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        return self.adam(self.decoder.parameters())

    def losses(self, content: Tensor, style: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """The weighted content and style losses of the decoder's output, and the output."""
        hp = self.hparams
        with torch.no_grad():
            style_features = self.encode(style)
            target = adaptive_instance_norm(self.encode(content)["relu4_1"], style_features["relu4_1"])
        output = self.decode(target)
        output_features = self.encode(output)
        losses = {
            "content": nn.functional.mse_loss(output_features["relu4_1"], target) * hp.content_weight,
            "style": mean_std_loss(output_features, style_features).mean() * hp.style_weight,
        }
        return losses, output

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        hp = self.hparams
        optimizer = self.optimizers()
        for group in optimizer.param_groups:  # the reference's inverse decay, per iteration (exact on resume)
            group["lr"] = hp.lr / (1.0 + hp.lr_decay * self.iteration)
        content, style = batch["A"], batch["B"]
        losses, output = self.losses(content, style)
        total = losses["content"] + losses["style"]
        self.backward_step(optimizer, total, losses)  # NaN check first: a NaN never reaches the weights
        logged = {f"train/{k}": v for k, v in {**losses, "total": total}.items()}
        self.log_training_values(logged, content.shape[0], prog_bar=("train/total",), optimizers={"decoder": optimizer.optimizer})
        every = hp.sample_every_n_steps
        if every and self.iteration % every == 0:
            self.log_samples("train", content, style, output)

    def log_samples(self, stage: str, content: Tensor, style: Tensor, output: Tensor) -> None:
        n = self.hparams.num_samples
        grid = make_grid([tensor_to_uint8(x[:n]) for x in (content, style, output)], by_column=True)
        self.log_image_grid(f"{stage}/samples", grid, "content | style | output")
