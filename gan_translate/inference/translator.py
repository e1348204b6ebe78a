"""Translate images with a trained generator rebuilt from its checkpoint alone.

Any image size works: each batch is padded (reflect) up to the generator's ``size_multiple`` and the
output is cropped back, so every result has exactly its input's height and width. Only images of the
same size are batched together, because padding an image to a neighbour's size would change what
instance norm sees and so the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from gan_translate.artifacts import load_model, resolve_checkpoint_path
from gan_translate.core.directions import check_direction, domains
from gan_translate.core.errors import UserError
from gan_translate.core.hardware import AUTO_PRECISION, resolve_auto_precision
from gan_translate.core.images import as_tensor_image, tensor_to_uint8, to_rgb_array
from gan_translate.inference.tiling import TileOptions, auto_tile_size, fit_tiles, tiled_forward, tiled_translate
from gan_translate.models.base import GANModule

__all__ = [
    "INFERENCE_PRECISIONS",
    "Translator",
    "autocast_dtype",
    "check_precision",
    "compile_for_inference",
    "load_translator",
    "pad_to_multiple",
    "prepare_for_inference",
    "resolve_device",
    "resolve_inference_precision",
    "translator_from_model",
    "translator_with_settings",
]

INFERENCE_PRECISIONS = ("fp32", "bf16", "fp16")
# Channels-last for inference by device type, where the benchmark measured it faster (benchmarks/RESULTS.md).
# CPU (oneDNN, 2-core AMD EPYC with AVX512-BF16): slower for the ResNet / U-Net generators, in fp32 and in
# bf16 (instance norm and reflection padding reorder the memory back and forth). CUDA (H200, cuDNN 9.19): slower
# too, with bf16 included (CycleGAN translate batch 8: 1028 img/s bf16, 817 bf16 + channels-last).
DEFAULT_INFERENCE_CHANNELS_LAST: dict[str, bool] = {"cpu": False, "cuda": False}


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; a device this machine lacks or cannot name is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {device} asked for, but no CUDA GPU is available; use --device cpu")
        count = torch.cuda.device_count()
        if target.index is not None and not 0 <= target.index < count:
            raise UserError(f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    elif target.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(f"--device {device} asked for, but Apple's MPS is not available here; use --device cpu")
    elif target.type != "cpu":
        raise UserError(f"--device {device} is not supported; use auto, cpu, cuda, cuda:N or mps")
    return target


def pad_to_multiple(batch: Tensor, multiple: int, min_size: int = 1) -> tuple[Tensor, tuple[int, int]]:
    """Pad H and W on the bottom/right up to a multiple (and to at least ``min_size``); returns the padded
    batch and the original size."""
    height, width = batch.shape[-2:]
    pad_h = -(-max(height, min_size) // multiple) * multiple - height
    pad_w = -(-max(width, min_size) // multiple) * multiple - width
    if pad_h == 0 and pad_w == 0:
        return batch, (height, width)
    # Reflection keeps edge statistics natural; it needs the pad to be smaller than the side.
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(batch, (0, pad_w, 0, pad_h), mode=mode), (height, width)


def check_precision(precision: str) -> None:
    """A precision name ``load_translator`` takes (``auto`` or one of ``INFERENCE_PRECISIONS``), else one line."""
    if precision != AUTO_PRECISION and precision not in INFERENCE_PRECISIONS:
        raise UserError(f"precision must be auto or one of {', '.join(INFERENCE_PRECISIONS)}, got {precision!r}")


def resolve_inference_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """``(precision, why)``: ``auto`` becomes ``bf16`` where ``device`` runs bf16 fast (a GPU of compute capability
    >= 8.0, a CPU with AVX512-BF16 / AMX: :mod:`gan_translate.core.hardware`, as training's ``auto``) and ``fp32``
    elsewhere, with the reason; a named precision is returned as given, with no reason."""
    check_precision(precision)
    if precision != AUTO_PRECISION:
        return precision, ""
    choice = resolve_auto_precision(device.type)
    return ("bf16" if choice.precision == "bf16-mixed" else "fp32"), choice.reason


def autocast_dtype(precision: str) -> torch.dtype | None:
    """``fp32`` -> None (no autocast), ``bf16`` -> bfloat16, ``fp16`` -> float16."""
    if precision not in INFERENCE_PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(INFERENCE_PRECISIONS)}, got {precision!r}")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def prepare_for_inference(
    network: nn.Module, device: torch.device, channels_last: bool | None = None
) -> tuple[nn.Module, bool]:
    """Move ``network`` to ``device`` (in place), reorder its weights channels-last when asked; returns both.

    ``channels_last=None`` picks the measured default: see ``DEFAULT_INFERENCE_CHANNELS_LAST``.
    """
    network.to(device)
    if channels_last is None:
        channels_last = DEFAULT_INFERENCE_CHANNELS_LAST.get(device.type, False)
    if channels_last:
        network.to(memory_format=torch.channels_last)
    return network, channels_last


def compile_for_inference(network: nn.Module) -> nn.Module:
    """``torch.compile`` ``network`` in place for inference only, with weight freezing (constant folding and
    prepacked convolution weights); the first call compiles (about 15 s for a ResNet-9 on a 2-core CPU).
    Calls must then run under ``torch.inference_mode`` / ``no_grad``, as :class:`Translator` does."""
    network.compile(options={"freezing": True})
    return network


@dataclass
class Translator:
    """A generator ready for inference: ``translator(image) -> image`` at the input's own size."""

    network: nn.Module
    device: torch.device
    size_multiple: int
    in_channels: int
    model_name: str
    direction: str
    hparams: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    """``fp32``, or ``bf16`` / ``fp16`` autocast (faster on CPUs with AVX512-BF16 and on GPUs; outputs
    differ from fp32 by a few uint8 levels: benchmarks/RESULTS.md). Never ``auto``: that is resolved on loading."""
    precision_reason: str = ""
    """Why ``auto`` chose ``precision`` on this device (empty when the precision was named)."""
    channels_last: bool = False
    """Feed the network channels-last (NHWC) batches; set together with its weights by ``load_translator``."""
    min_size: int = 1
    """Smaller images are padded up to this many pixels a side (and cropped back): the network's smallest input."""
    checkpoint_path: str = ""
    """The file the generator was read from (a run folder resolves to its newest checkpoint)."""
    tile: TileOptions | None = None
    """Images larger than ``tile.size`` on a side are translated tile by tile (:mod:`gan_translate.inference.tiling`)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The inference settings the network was built with (UNSB's ``steps`` / ``seed``; empty: the model's defaults)."""

    def precision_note(self) -> str:
        """``bf16 (auto: this CPU has AVX512-BF16)``: the precision that runs, and why when ``auto`` chose it."""
        return self.precision + (f" (auto: {self.precision_reason})" if self.precision_reason else "")

    def needs_tiles(self, height: int, width: int) -> bool:
        """Whether an image of this size is translated tile by tile."""
        return self.tile is not None and max(height, width) > self.tile.size

    @torch.inference_mode()
    def translate_batch(self, batch: Tensor) -> Tensor:
        """NCHW in [-1, 1] (all the same size) -> NCHW in [-1, 1], same H and W (tiled when ``tile`` says so)."""
        if self.needs_tiles(*batch.shape[-2:]):
            assert self.tile is not None
            results = [tiled_forward(self._forward, self.network, image, self.tile, self.device, self.size_multiple)
                       .clamp_(-1, 1) for image in batch.split(1)]
            return results[0] if len(results) == 1 else torch.cat(results)  # no copy of a lone large image
        return self._forward(batch)

    def _forward(self, batch: Tensor) -> Tensor:
        """The network on ``batch`` padded to its size multiple, cropped back, clamped, on the CPU."""
        padded, (height, width) = pad_to_multiple(batch.to(self.device), self.size_multiple, self.min_size)
        if self.channels_last:
            padded = padded.contiguous(memory_format=torch.channels_last)
        dtype = autocast_dtype(self.precision)
        if dtype is None:
            output = self.network(padded)
        else:
            with torch.autocast(self.device.type, dtype=dtype):
                output = self.network(padded)
        return output[..., :height, :width].float().clamp(-1, 1).contiguous().cpu()

    def __call__(self, image: np.ndarray | Image.Image | Tensor) -> np.ndarray:
        """Translate one image; returns a uint8 HxWxC array of the same height and width."""
        if not isinstance(image, Tensor):
            array = to_rgb_array(image) if isinstance(image, Image.Image) else np.asarray(image)
            if self.needs_tiles(*array.shape[:2]):
                return self._translate_tiled(array)
        tensor = as_tensor_image(image, self.in_channels)
        return tensor_to_uint8(self.translate_batch(tensor.unsqueeze(0))[0])

    def _translate_tiled(self, array: np.ndarray) -> np.ndarray:
        """A large uint8 photo tile by tile, streamed: never a float copy of the photo or of its result."""
        if array.dtype != np.uint8:
            raise UserError(f"expected a uint8 image array, got dtype {array.dtype}")
        assert self.tile is not None
        with torch.inference_mode():
            return tiled_translate(self._forward, self.network, array, self.tile, self.device, self.size_multiple,
                                   self.in_channels)

    def translate_many(
        self, images: Iterable[tuple[Any, np.ndarray]], batch_size: int = 8
    ) -> Iterator[tuple[Any, np.ndarray]]:
        """Translate ``(key, uint8 image)`` pairs, batching images of equal size; yields ``(key, result)``."""
        if batch_size < 1:
            raise UserError(f"--batch-size must be >= 1, got {batch_size}")
        buckets: dict[tuple[int, ...], list[tuple[Any, Tensor]]] = {}
        pending = 0

        def flush(shape: tuple[int, ...]) -> Iterator[tuple[Any, np.ndarray]]:
            nonlocal pending
            items = buckets.pop(shape)
            pending -= len(items)
            outputs = self.translate_batch(torch.stack([tensor for _, tensor in items]))
            for (key, _), output in zip(items, outputs):
                yield key, tensor_to_uint8(output)

        for key, image in images:
            if not isinstance(image, Tensor) and self.needs_tiles(*np.shape(image)[:2]):
                yield key, self._translate_tiled(np.asarray(image))  # one large image at a time, streamed
                continue
            tensor = as_tensor_image(image, self.in_channels)
            shape = tuple(tensor.shape)
            if self.needs_tiles(*shape[-2:]):  # one large image at a time: never several in memory
                yield key, tensor_to_uint8(self.translate_batch(tensor.unsqueeze(0))[0])
                continue
            buckets.setdefault(shape, []).append((key, tensor))
            pending += 1
            if len(buckets[shape]) >= batch_size:
                yield from flush(shape)
            elif pending >= 4 * batch_size:
                # Many distinct sizes: bound memory by flushing the fullest bucket.
                yield from flush(max(buckets, key=lambda s: len(buckets[s])))
        for shape in list(buckets):
            yield from flush(shape)


def load_translator(
    checkpoint: str | Path,
    direction: str = "AtoB",
    device: str = "auto",
    precision: str = "fp32",
    channels_last: bool | None = None,
    compile: bool = False,  # noqa: A002 - torch's word for it
    command: str = "translate",
    hint: str = "",
    tile: int | str | None = None,
    tile_overlap: int | str = "auto",
    tile_stats_size: int = 1024,
    tile_stats: str = "downscaled",
    settings: Mapping[str, Any] | None = None,
) -> Translator:
    """Rebuild the generator for ``direction`` from a translator's checkpoint or export (file or run folder).

    ``precision``: ``fp32`` (default, exact), ``bf16`` or ``fp16`` autocast (bf16 on a CPU with AVX512-BF16:
    ~2x faster, outputs within a few uint8 levels of fp32), or ``auto`` (``bf16`` where the device runs it fast,
    else ``fp32``: the ``translate`` and ``serve`` default; the choice and its reason are on the translator). ``channels_last``: NHWC weights and batches; None
    picks it where it was measured faster (``DEFAULT_INFERENCE_CHANNELS_LAST``). ``compile``:
    ``torch.compile`` with frozen weights (the first batch of each image size compiles). Measured speeds and
    output differences: benchmarks/RESULTS.md. ``command`` names the caller in the error for a checkpoint of a
    model that does not translate, and ``hint`` is added to it. ``tile``: translate images larger than this many
    pixels a side tile by tile (``"auto"``: the largest tile half the device's free memory holds), overlapping by
    ``tile_overlap`` px (``"auto"``: from the network's receptive field), norm statistics of the whole image (``tile_stats``: ``downscaled`` to ``tile_stats_size``, or
    ``exact``; :mod:`gan_translate.inference.tiling`). ``settings``: inference settings the model declares
    (``inference_settings``: UNSB's ``steps`` and ``seed``), passed to its ``inference_network``; a model that does not
    take one refuses it in one line. Only the settings given are passed: the rest keep the model's defaults.
    """
    if tile is not None and compile:  # before the file is read, as every option check
        raise UserError("--tile and --compile do not go together (tiles change the norm layers at every call); drop one")
    check_direction(direction, "--direction")
    check_precision(precision)  # a bad name fails before the checkpoint is read
    path = resolve_checkpoint_path(checkpoint)  # a run folder: its newest checkpoint, named in the summaries
    model = load_model(path, capability="translate", command=command, hint=hint)
    return translator_from_model(model, direction, device, precision, channels_last, compile, tile, tile_overlap,
                                 tile_stats_size, tile_stats, checkpoint_path=str(path), settings=settings)


def translator_from_model(
    model: GANModule,
    direction: str = "AtoB",
    device: str = "auto",
    precision: str = "fp32",
    channels_last: bool | None = None,
    compile: bool = False,  # noqa: A002 - torch's word for it
    tile: int | str | None = None,
    tile_overlap: int | str = "auto",
    tile_stats_size: int = 1024,
    tile_stats: str = "downscaled",
    checkpoint_path: str = "",
    settings: Mapping[str, Any] | None = None,
) -> Translator:
    """The :class:`Translator` of ``direction`` of a loaded translation ``model`` (options as :func:`load_translator`);
    a server builds one per direction from a single read of the file."""
    if tile is not None and compile:
        raise UserError("--tile and --compile do not go together (tiles change the norm layers at every call); drop one")
    check_direction(direction, "--direction")
    check_precision(precision)
    settings = dict(settings or {})
    network = model.inference_network(direction, **settings)
    target = resolve_device(device)
    precision, precision_reason = resolve_inference_precision(precision, target)
    network, channels_last = prepare_for_inference(network, target, channels_last)
    if compile:
        compile_for_inference(network)
    # The generator of a direction takes its source domain's images (the model says how many channels they have).
    in_channels = model.image_channels(domains(direction)[0])
    size_multiple = int(getattr(network, "size_multiple", 1))
    tile_options = _tile_options(tile, tile_overlap, TileOptions(stats_size=tile_stats_size, statistics=tile_stats),
                                 network, target, size_multiple, in_channels, int(getattr(network, "min_size", 1)))
    return Translator(
        tile=tile_options,
        network=network,
        device=target,
        size_multiple=size_multiple,
        min_size=int(getattr(network, "min_size", 1)),
        in_channels=in_channels,
        model_name=model.model_name,
        direction=direction,
        hparams=dict(model.hparams),
        precision=precision,
        precision_reason=precision_reason,
        channels_last=channels_last,
        checkpoint_path=checkpoint_path,
        settings=settings,
    )


def translator_with_settings(translator: Translator, model: GANModule, settings: Mapping[str, Any]) -> Translator:
    """``translator`` (built from ``model``) running ``model.inference_network(direction, **settings)`` instead: a
    server's per-request ``steps`` / ``seed``. Device, precision and tiles are kept (the tile overlap was measured on
    the default network: the settings change the bridge's steps and noise, not the generator's receptive field).
    Cheap: the network shares the generator's weights; ``settings`` the model does not take are a one-line error."""
    if not settings:
        return translator
    network = model.inference_network(translator.direction, **settings)
    network, _ = prepare_for_inference(network, translator.device, translator.channels_last)
    return replace(translator, network=network, settings={**translator.settings, **settings})


def _tile_options(
    tile: int | str | None, overlap: int | str, options: TileOptions, network: nn.Module, device: torch.device,
    size_multiple: int, in_channels: int, min_size: int = 1,
) -> TileOptions | None:
    """``--tile N|auto`` and ``--tile-overlap N|auto`` with the other tile ``options``: the side rounded up to the
    network's size multiple (no padding per tile), ``auto`` from the device's free memory; the overlap and the
    blending margin from the network's measured receptive field (:func:`gan_translate.inference.tiling.fit_tiles`), an
    ``auto`` overlap kept below half the tile."""
    if tile is None:
        return None
    overlap_px: int | None = None
    if overlap != "auto":
        try:
            overlap_px = int(overlap)
        except ValueError:
            raise UserError(f"--tile-overlap must be a number of pixels or auto, got {overlap!r}") from None
    if tile == "auto":
        side = auto_tile_size(network, device, size_multiple, in_channels)
        if overlap_px is not None:
            overlap_px = min(overlap_px, max(0, side // 2 - 1))
    else:
        try:
            side = -(-max(int(tile), 1) // size_multiple) * size_multiple
        except ValueError:
            raise UserError(f"--tile must be a number of pixels or auto, got {tile!r}") from None
    sized = replace(options, size=side, overlap=0 if overlap_px is None else overlap_px)  # checks the values
    return fit_tiles(sized, overlap_px, network, device, size_multiple, in_channels, min_size)
