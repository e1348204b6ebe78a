"""Stylise image files with AdaIN: a trained checkpoint or the AdaIN port's published weights, any image size.

:func:`load_adain_stylizer` rebuilds the model from a checkpoint alone (``gan-translate fit`` of an AdaIN config) or
from ``vgg_normalised.pth`` + ``decoder.pth`` (no training). :class:`AdaINStylizer` takes uint8 images: the
content is padded (reflect) to the network's multiple of 8 and cropped back, so every result has its content's
size; style images larger than ``style_size`` are scaled down first (their statistics, not their size, matter).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_translate.artifacts import load_model, resolve_checkpoint_path
from gan_translate.core.errors import UserError
from gan_translate.core.images import match_channels, tensor_to_uint8, uint8_to_tensor
from gan_translate.inference.translator import pad_to_multiple, resolve_device
from gan_translate.models.adain import AdaIN
from gan_translate.style.gatys import resize_long_side, transfer_luminance

__all__ = ["AdaINStylizer", "load_adain_stylizer"]

#: The encoder halves the image three times before relu4_1, and the decoder doubles it three times.
SIZE_MULTIPLE = 8


@dataclass
class AdaINStylizer:
    """``stylizer(content, [style, ...]) -> uint8 result`` of the content's size (see the module docstring).

    Args:
        model: an :class:`~gan_translate.models.adain.AdaIN` (its device is where the work runs).
        style_size: style images are scaled so their long side is at most this many pixels (0: never).
        source: where the weights came from (a checkpoint file, or the published files), for summaries.
    """

    model: AdaIN
    style_size: int = 512
    source: str = ""

    @property
    def description(self) -> str:
        return self.model.description

    @property
    def device(self) -> torch.device:
        return next(self.model.decoder.parameters()).device

    def _style_tensor(self, style: np.ndarray) -> Tensor:
        tensor = match_channels(uint8_to_tensor(np.asarray(style)), 3)[None]
        if self.style_size and max(tensor.shape[-2:]) > self.style_size:
            tensor = resize_long_side(tensor, self.style_size)
        return tensor.to(self.device)

    @torch.inference_mode()
    def stylize_batch(
        self, contents: Sequence[np.ndarray], styles: Sequence[np.ndarray], weights: Sequence[float] | None = None,
        alpha: float = 1.0, preserve_color: bool = False,
    ) -> list[np.ndarray]:
        """Content images of one size, each in the blend of ``styles`` (``weights``); uint8 results of that size."""
        shapes = {np.asarray(c).shape[:2] for c in contents}
        if len(shapes) != 1:
            raise ValueError(f"stylize_batch needs content images of one size, got {sorted(shapes)}")
        if not styles:
            raise UserError("AdaIN needs at least one style image")
        content = torch.stack([match_channels(uint8_to_tensor(np.asarray(c)), 3) for c in contents]).to(self.device)
        padded, (height, width) = pad_to_multiple(content, SIZE_MULTIPLE, SIZE_MULTIPLE)
        style_tensors = [self._style_tensor(s) for s in styles]
        # One style batch per style: the statistics are per image, so a style is encoded once for the whole batch.
        output = self.model.stylize(padded, [s.expand(padded.shape[0], -1, -1, -1) for s in style_tensors],
                                    list(weights) if weights is not None else None, alpha)
        output = output[..., :height, :width].clamp(-1, 1)
        if preserve_color:
            output = transfer_luminance(output, content)
        return list(tensor_to_uint8(output.float().cpu()))

    def __call__(self, content: np.ndarray, styles: Sequence[np.ndarray] | np.ndarray, **options: Any) -> np.ndarray:
        """Stylise one uint8 image (with one style image, or a list of them); uint8 of the same size."""
        styles = [styles] if isinstance(styles, np.ndarray) else list(styles)
        return self.stylize_batch([content], styles, **options)[0]

    def stylize_many(
        self, images: Iterable[tuple[Any, np.ndarray]], styles: Sequence[np.ndarray], batch_size: int = 4, **options: Any
    ) -> Iterator[tuple[Any, np.ndarray]]:
        """``(key, uint8 image)`` pairs -> ``(key, result)``, batching images of equal size."""
        if batch_size < 1:
            raise UserError(f"--batch-size must be >= 1, got {batch_size}")
        buckets: dict[tuple[int, ...], list[tuple[Any, np.ndarray]]] = {}
        for key, image in images:
            bucket = buckets.setdefault(np.asarray(image).shape[:2], [])
            bucket.append((key, image))
            if len(bucket) >= batch_size:
                yield from self._flush(buckets.pop(np.asarray(image).shape[:2]), styles, options)
        for bucket in buckets.values():
            yield from self._flush(bucket, styles, options)

    def _flush(self, items: list[tuple[Any, np.ndarray]], styles: Sequence[np.ndarray], options: dict[str, Any]) -> Iterator[tuple[Any, np.ndarray]]:
        results = self.stylize_batch([image for _, image in items], styles, **options)
        yield from ((key, result) for (key, _), result in zip(items, results))


def load_adain_stylizer(
    checkpoint: str | Path | None = None, encoder_weights: str | None = None, decoder_weights: str | None = None,
    device: str = "auto", style_size: int = 512,
) -> AdaINStylizer:
    """An AdaIN stylizer from a checkpoint (or run folder), or from the published ``vgg_normalised.pth`` and
    ``decoder.pth`` of the PyTorch AdaIN port (``encoder_weights`` + ``decoder_weights``)."""
    if checkpoint is not None and (encoder_weights or decoder_weights):
        raise UserError("give either an AdaIN --checkpoint or the published --adain-encoder / --adain-decoder files, not both")
    if checkpoint is not None:
        path = resolve_checkpoint_path(checkpoint)
        model = load_model(path, capability="stylize", command="stylize --method adain")
        source = str(path)
    elif encoder_weights and decoder_weights:
        model = AdaIN(encoder="normalised", encoder_weights=encoder_weights)
        model.load_encoder_weights()
        model.load_decoder_weights(decoder_weights)
        source = f"{encoder_weights} + {decoder_weights}"
    else:
        raise UserError("AdaIN needs a --checkpoint (a trained AdaIN run), or both --adain-encoder vgg_normalised.pth "
                        "and --adain-decoder decoder.pth (the published weights)")
    model.to(resolve_device(device)).eval()
    return AdaINStylizer(model, style_size=style_size, source=source)
