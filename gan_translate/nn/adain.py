"""AdaIN's networks (Huang & Belongie 2017): the operation, its decoder, and the published "normalised" VGG encoder.

* :func:`adaptive_instance_norm`: each channel of the content features gets the style features' mean and standard
  deviation (over H x W; variance with Bessel's correction and ``eps`` 1e-5, as the reference code).
* :class:`AdaINDecoder`: the encoder's mirror from relu4_1 back to RGB: reflection padding, nearest-neighbour
  upsampling, no normalisation; its ``Sequential`` indices are those of the PyTorch port's ``decoder.pth``
  (convolutions at 1, 5, 8, 11, 14, 18, 21, 25, 28), so those files load as they are. It outputs RGB in [0, 1]
  (unbounded: there is no final activation).
* :class:`NormalisedVGGEncoder`: the port's ``vgg_normalised.pth`` (a Caffe VGG-19 turned into a 53-module
  ``Sequential``: a leading 1x1 convolution that does the colour normalisation, reflection padding, max pooling
  with ``ceil_mode``; inputs in [0, 1]), with named layers. :func:`map_reference_encoder` maps that file's
  integer keys onto them (its layers past relu4_1 are not needed).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from gan_translate.core.errors import UserError

__all__ = [
    "ADAIN_LAYERS",
    "REFERENCE_ENCODER_KEYS",
    "AdaINDecoder",
    "NormalisedVGGEncoder",
    "adaptive_instance_norm",
    "channel_mean_std",
    "check_decoder_state",
    "load_reference_state",
    "map_reference_encoder",
]

#: The encoder layers AdaIN's losses read; relu4_1 is the one the operation works on.
ADAIN_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

#: ``vgg_normalised.pth`` index -> the layer it is here (convolutions up to conv4_1).
REFERENCE_ENCODER_KEYS: dict[int, str] = {
    0: "preprocess", 2: "conv1_1", 5: "conv1_2", 9: "conv2_1", 12: "conv2_2", 16: "conv3_1", 19: "conv3_2",
    22: "conv3_3", 25: "conv3_4", 29: "conv4_1",
}


def channel_mean_std(features: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per image and channel: the mean and ``sqrt(var + eps)`` over H x W, each ``(N, C, 1, 1)``."""
    if features.ndim != 4:
        raise ValueError(f"channel_mean_std expects NCHW features, got shape {tuple(features.shape)}")
    flat = features.flatten(2)
    mean = flat.mean(dim=2)[..., None, None]
    std = (flat.var(dim=2) + eps).sqrt()[..., None, None]
    return mean, std


def adaptive_instance_norm(content: Tensor, style: Tensor, eps: float = 1e-5) -> Tensor:
    """The content features, each channel normalised and given the style features' mean and std."""
    content_mean, content_std = channel_mean_std(content, eps)
    style_mean, style_std = channel_mean_std(style, eps)
    return (content - content_mean) / content_std * style_std + style_mean


def _pad_conv(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3)]


class AdaINDecoder(nn.Sequential):
    """relu4_1 features (512 channels) -> RGB in [0, 1], in the layout of the PyTorch port's ``decoder.pth``."""

    def __init__(self) -> None:
        upsample = nn.Upsample(scale_factor=2, mode="nearest")
        super().__init__(
            *_pad_conv(512, 256), nn.ReLU(), upsample,
            *_pad_conv(256, 256), nn.ReLU(), *_pad_conv(256, 256), nn.ReLU(), *_pad_conv(256, 256), nn.ReLU(),
            *_pad_conv(256, 128), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"),
            *_pad_conv(128, 128), nn.ReLU(), *_pad_conv(128, 64), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"),
            *_pad_conv(64, 64), nn.ReLU(), *_pad_conv(64, 3),
        )


class NormalisedVGGEncoder(nn.Module):
    """The published AdaIN encoder up to relu4_1: ``encoder(images in [-1, 1]) -> {"relu1_1": ..., ...}``, frozen.

    Weights: :func:`map_reference_encoder` of ``vgg_normalised.pth``; without them the layers keep a seeded random
    initialisation (tests, offline smoke runs: the results are then not style transfer).
    """

    _BLOCKS: tuple[tuple[str, ...], ...] = (("conv1_1", "conv1_2"), ("conv2_1", "conv2_2"),
                                            ("conv3_1", "conv3_2", "conv3_3", "conv3_4"), ("conv4_1",))
    _WIDTHS = {"conv1": 64, "conv2": 128, "conv3": 256, "conv4": 512}

    def __init__(self) -> None:
        super().__init__()
        self.preprocess = nn.Conv2d(3, 3, 1)
        channels = 3
        for block in self._BLOCKS:
            for name in block:
                width = self._WIDTHS[name.split("_")[0]]
                self.add_module(name, nn.Conv2d(channels, width, 3))
                channels = width
        self.pad = nn.ReflectionPad2d(1)
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(module.bias)
        self.requires_grad_(False)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        x = self.preprocess((images + 1.0) / 2.0)  # the file's network takes [0, 1]
        out: dict[str, Tensor] = {}
        for index, block in enumerate(self._BLOCKS):
            if index:
                x = self.pool(x)
            for name in block:
                x = torch.relu(getattr(self, name)(self.pad(x)))
                if name.endswith("_1"):
                    out[f"relu{name[4:]}"] = x
        return out


def load_reference_state(path: str, what: str) -> dict[str, Tensor]:
    """A published ``.pth`` state dict read safely (``weights_only``); a missing or unreadable file is one line."""
    from pathlib import Path

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"{what} not found: {file} (the PyTorch AdaIN port's file; see docs/style_transfer.md)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - unpickling refusals and corrupt files are the same mistake here
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise UserError(f"cannot read {what} {file} as a plain state dict: {first}") from None
    if not isinstance(state, Mapping):
        raise UserError(f"{file} holds a {type(state).__name__}, not a state dict")
    return dict(state)


def map_reference_encoder(state: Mapping[str, Tensor], source: str = "the encoder state dict") -> dict[str, Tensor]:
    """``vgg_normalised.pth``'s ``{"0.weight", "2.weight", ...}`` -> :class:`NormalisedVGGEncoder`'s keys, every
    tensor's shape checked against the network: a mismatch is one line naming the first key at fault."""
    reference = NormalisedVGGEncoder().state_dict()
    mapped: dict[str, Tensor] = {}
    for index, name in REFERENCE_ENCODER_KEYS.items():
        for part in ("weight", "bias"):
            key, target = f"{index}.{part}", f"{name}.{part}"
            if key not in state:
                raise UserError(f"{source} has no {key!r} ({name}): not the AdaIN port's vgg_normalised.pth layout")
            tensor = state[key]
            if tuple(tensor.shape) != tuple(reference[target].shape):
                raise UserError(f"{source}: {key!r} ({name}) has shape {tuple(tensor.shape)}, expected "
                                f"{tuple(reference[target].shape)}")
            mapped[target] = tensor
    return mapped


def check_decoder_state(state: Mapping[str, Tensor], source: str = "the decoder state dict") -> dict[str, Tensor]:
    """``decoder.pth`` checked key by key against :class:`AdaINDecoder` (the same layout)."""
    expected = AdaINDecoder().state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise UserError(f"{source} has no {key!r}: not the AdaIN port's decoder.pth layout")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise UserError(f"{source}: {key!r} has shape {tuple(state[key].shape)}, expected {tuple(tensor.shape)}")
    return {key: state[key] for key in expected}
