"""The models a server holds: each checkpoint read once at start, named, and ready for its kind of request.

``--checkpoint PATH`` names the model after the file (``horse2zebra.ckpt`` -> ``horse2zebra``; a run folder after
the folder), ``--checkpoint NAME=PATH`` names it explicitly. What a model can do comes from the file itself: a
translator (CycleGAN, CUT, pix2pix: one :class:`~gan_translate.inference.translator.Translator` per direction it translates),
a sampler (DCGAN, StyleGAN2: ``latents`` / ``decode``, described by its ``sampler_spec``), or an AdaIN stylizer. Each network pass is a ``run`` function of a
list of payloads, so :class:`~gan_translate.serving.batching.DynamicBatcher` can batch requests through it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_translate.artifacts import build_model, load_checkpoint, resolve_checkpoint_path, training_image_size
from gan_translate.core.errors import UserError
from gan_translate.core.images import as_tensor_image, tensor_to_uint8
from gan_translate.inference.generation import Decoder
from gan_translate.inference.style import AdaINStylizer
from gan_translate.inference.translator import (
    Translator,
    resolve_device,
    translator_from_model,
    translator_with_settings,
)
from gan_translate.models.base import GANModule

__all__ = ["ServedModel", "TranslatorOptions", "load_catalog", "parse_model_spec"]

#: Names the API gives a meaning of its own (``model=gatys`` on /v1/stylize).
RESERVED_NAMES = frozenset({"gatys"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class TranslatorOptions:
    """How translators run: ``load_translator``'s options (precision, tiles for large images)."""

    precision: str = "fp32"
    """As ``load_translator``'s (``serve`` passes its ``--precision``, ``auto`` by default)."""
    tile: int | str | None = None
    tile_overlap: int = 64
    tile_stats_size: int = 1024
    tile_stats: str = "downscaled"


@dataclass
class ServedModel:
    """One loaded checkpoint: what ``GET /v1/models`` lists and what the endpoints run."""

    name: str
    kind: str
    """The registry name the file carries (``cyclegan``, ``pix2pix``, ``dcgan``, ``adain``, ...)."""
    capability: str
    """``translate``, ``sample`` or ``stylize``: which endpoint uses it."""
    source: str
    """The file name (not its folder: the API never shows where the server keeps its files)."""
    training_size: int | None
    translators: dict[str, Translator] = field(default_factory=dict)
    sampler: GANModule | None = None
    stylizer: AdaINStylizer | None = None
    in_channels: int = 3
    model: GANModule | None = None
    """A translator that takes per-request inference settings (UNSB's ``steps`` / ``seed``): kept to build them;
    None for the others, so that a server holds no discriminator it never runs."""

    @property
    def directions(self) -> list[str]:
        return list(self.translators)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "kind": self.kind, "capability": self.capability,
                                "endpoint": {"translate": "/v1/translate", "sample": "/v1/generate",
                                             "stylize": "/v1/stylize"}[self.capability],
                                "directions": self.directions, "training_size": self.training_size,
                                "file": self.source}
        if self.model is not None:
            info["settings"] = sorted(self.model.inference_settings)  # the optional /v1/translate fields it takes
        if self.sampler is not None:
            spec = self.sampler.sampler_spec  # what the model declares: no guessing from hyperparameter names
            info["resolution"], info["latent_dim"] = spec.resolution, spec.latent_dim
        return info

    # --- network passes (run in the batcher's worker thread) ---------------------------------------
    def translator_for(self, direction: str, settings: Mapping[str, Any]) -> Translator:
        """The translator of ``direction`` with a request's inference ``settings`` (none: the one built at start); a
        setting the model does not take is a one-line :class:`~gan_translate.core.errors.UserError`."""
        translator = self.translators[direction]
        if not settings:
            return translator
        if self.model is None:
            raise UserError(f"model {self.name!r} ({self.kind}) takes no inference settings; drop "
                            f"{', '.join(sorted(settings))}")
        return translator_with_settings(translator, self.model, settings)

    def translate_batch(self, payloads: Sequence[tuple[Any, ...]]) -> list[np.ndarray]:
        """``[(direction, uint8 image[, settings]), ...]`` of one direction, size and settings (``((name, value),
        ...)``, e.g. UNSB's steps and seed) -> uint8 results (one pass)."""
        translator = self.translator_for(payloads[0][0], dict(payloads[0][2]) if len(payloads[0]) > 2 else {})
        outputs = translator.translate_batch(torch.stack([as_tensor_image(image, translator.in_channels)
                                                           for _, image, *_ in payloads]))
        return [tensor_to_uint8(output) for output in outputs]

    def generate(self, payloads: Sequence[tuple[int, int, Decoder]]) -> list[list[np.ndarray]]:
        """``[(seed, count, decoder), ...]`` -> each request's images: the same as ``gan-translate generate --seed S
        --num N`` (``decoder``: :func:`~gan_translate.inference.generation.decoder_for` the sampler, with its truncation)."""
        assert self.sampler is not None
        results = []
        for seed, count, decode in payloads:
            latents = self.sampler.latents(count, torch.Generator().manual_seed(seed))
            results.append([tensor_to_uint8(image) for image in decode(latents)])
        return results

    def stylize_adain(self, payloads: Sequence[tuple[np.ndarray, np.ndarray, float]]) -> list[np.ndarray]:
        """``[(content, style, alpha)]`` -> results, one pass each (every request has its own style)."""
        assert self.stylizer is not None
        return [self.stylizer.stylize_batch([content], [style], alpha=alpha)[0] for content, style, alpha in payloads]


def parse_model_spec(spec: str) -> tuple[str | None, str]:
    """``NAME=PATH`` -> (NAME, PATH); a plain ``PATH`` -> (None, PATH) (an existing file whose name holds '=' too)."""
    name, sep, path = spec.partition("=")
    if sep and name and not Path(spec).exists():
        if not _NAME.match(name):
            raise UserError(f"--checkpoint {spec}: model names are letters, digits, '.', '_' and '-' (got {name!r})")
        if name in RESERVED_NAMES:
            raise UserError(f"--checkpoint {spec}: {name!r} names the built-in Gatys style transfer; choose another name")
        return name, path
    return None, spec


def _default_name(path: Path, given: Path) -> str:
    stem = given.name if given.is_dir() else path.stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "model"
    return name[:64]


def load_catalog(specs: Sequence[str], device: str = "auto", options: TranslatorOptions | None = None,
                 style_size: int = 512) -> dict[str, ServedModel]:
    """Every ``--checkpoint`` (``PATH`` or ``NAME=PATH``) loaded onto ``device``; names made unique (``-2``, ...)."""
    if not specs:
        raise UserError("serve needs at least one --checkpoint (a .ckpt / .safetensors file or a run folder)")
    options = options or TranslatorOptions()
    target = resolve_device(device)
    catalog: dict[str, ServedModel] = {}
    for spec in specs:
        name, location = parse_model_spec(spec)
        path = resolve_checkpoint_path(location)
        if name is None:
            name = base = _default_name(path, Path(location).expanduser())
            counter = 2
            while name in catalog or name in RESERVED_NAMES:
                name, counter = f"{base}-{counter}", counter + 1
        elif name in catalog:
            raise UserError(f"--checkpoint {spec}: the name {name!r} is already taken by {catalog[name].source}")
        catalog[name] = _load_one(name, path, target, options, style_size)
    return catalog


def _load_one(name: str, path: Path, device: torch.device, options: TranslatorOptions, style_size: int) -> ServedModel:
    checkpoint = load_checkpoint(path)
    model = build_model(checkpoint)
    served = ServedModel(name=name, kind=model.model_name, capability="", source=path.name,
                         training_size=training_image_size(checkpoint))
    if "translate" in model.capabilities:
        served.capability = "translate"
        directions = list(checkpoint.get("_exported") or model.translators)
        for direction in directions:
            served.translators[direction] = translator_from_model(
                model, direction, str(device), options.precision, tile=options.tile, tile_overlap=options.tile_overlap,
                tile_stats_size=options.tile_stats_size, tile_stats=options.tile_stats, checkpoint_path=str(path))
        if model.inference_settings:
            served.model = model
    elif "sample" in model.capabilities:
        served.capability = "sample"
        served.sampler = model.to(device).eval()
    elif "stylize" in model.capabilities:
        served.capability = "stylize"
        served.stylizer = AdaINStylizer(model.to(device).eval(), style_size=style_size, source=path.name)  # type: ignore[arg-type]
    else:
        raise UserError(f"{path}: a {model.model_name} model has nothing a server can run (no translate, sample or stylize)")
    return served
