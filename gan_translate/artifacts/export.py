"""``gan-translate export``'s file: a model's generator(s) as a small, safe ``.safetensors`` file for sharing.

The file holds only the generator weights of the chosen direction(s) and, in its metadata, the model name and
the hyperparameters needed to rebuild the network (JSON). ``translate``, :func:`gan_translate.load_translator`
and ``evaluate`` accept it wherever they accept a ``.ckpt`` (:func:`gan_translate.artifacts.load_checkpoint` reads
it). safetensors is a plain header plus raw tensor bytes: reading it cannot run code, unlike unpickling, and it is
a fraction of a training checkpoint's size (no discriminators, optimiser states or image pools).

:func:`export_model` also writes the files that run without this package (:mod:`gan_translate.artifacts.portable`):
``onnx`` (onnxruntime, any language) and ``torchscript`` (``torch.jit.load``, LibTorch), one direction each.

Sampling models (DCGAN, StyleGAN2) have no directions: every format holds the network their ``sampler_spec`` names,
DCGAN's ``generator`` or StyleGAN2's EMA copy ``generator_ema`` (:data:`SAMPLER_KEY` in the safetensors' direction
map, which :func:`~gan_translate.artifacts.load_model` reads back for ``generate``); the standalone files run the
model's ``export_program()``, latents to images (:class:`~gan_translate.artifacts.portable.PortableSampler`). Every
fact about a model comes from what it declares (``capabilities``, ``translators``, ``sampler_spec``,
``image_channels``, ``export_notes``, ``translator_export_program``), never from its hyperparameter names. The format follows the output's suffix; every file is written through :func:`gan_translate.core.files.atomic_write` and an
existing one is replaced only when asked. docs/export.md describes the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import save as safetensors_bytes

from gan_translate.artifacts.checkpoints import CHECKPOINT_KEY, EXPORT_FORMAT, load_checkpoint, model_name
from gan_translate.artifacts.models import build_model
from gan_translate.artifacts.portable import (
    ONNX_OPSET,
    PortableGenerator,
    PortableSampler,
    onnx_bytes,
    require_onnx_exporter,
    sampler_onnx_bytes,
    sampler_torchscript_bytes,
    torchscript_bytes,
)
from gan_translate.core.directions import DIRECTIONS, domains
from gan_translate.core.errors import CheckpointError, UserError
from gan_translate.core.files import atomic_write
from gan_translate.core.version import __version__
from gan_translate.models import MODELS, GANModule, models_that

__all__ = ["EXPORT_DIRECTIONS", "EXPORT_FORMATS", "FORMAT_SUFFIXES", "SAMPLER_KEY", "ExportResult", "export_format",
           "export_generators", "export_model", "is_sampler", "sampling_network", "write_generator_file"]

#: What ``--direction`` of an export may be: one direction, or every one the model has (safetensors only).
EXPORT_DIRECTIONS = (*DIRECTIONS, "both")
#: What ``--format`` may be.
EXPORT_FORMATS = ("safetensors", "onnx", "torchscript")
#: The suffix of ``--output`` -> the format it implies.
FORMAT_SUFFIXES = {".safetensors": "safetensors", ".onnx": "onnx", ".pt": "torchscript", ".torchscript": "torchscript"}
_LABELS = {"safetensors": "safetensors", "onnx": "ONNX", "torchscript": "TorchScript"}
#: The key of a sampler's network in a safetensors export's ``{direction: attribute}`` map (it has no direction).
SAMPLER_KEY = "sample"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote: the file, its format, the direction(s) in it (none for a sampler, whose
    network is ``sampler``, e.g. ``generator_ema``), and notes for the user."""

    path: Path
    format: str
    directions: list[str]
    notes: tuple[str, ...] = ()
    sampler: str = ""
    model: str = ""

    def summary(self) -> str:
        """One line for the command: what went where, and how big it is."""
        size_mb = self.path.stat().st_size / 2**20
        detail = f"ONNX opset {ONNX_OPSET}" if self.format == "onnx" else _LABELS[self.format]
        if self.sampler:
            return (f"exported the {self.model} sampler ({self.sampler}: latents -> images) to {self.path} "
                    f"({detail}, {size_mb:.1f} MiB)")
        generators = "generator" if len(self.directions) == 1 else "generators"
        return f"exported the {' and '.join(self.directions)} {generators} to {self.path} ({detail}, {size_mb:.1f} MiB)"


def export_format(output: str | Path, requested: str | None = None) -> str:
    """The format of an export to ``output``: ``requested``, which must agree with the suffix, or the suffix's own."""
    output = Path(output)
    implied = FORMAT_SUFFIXES.get(output.suffix.lower())
    if requested is not None and requested not in EXPORT_FORMATS:
        raise UserError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {requested!r}")
    if implied is None:
        raise UserError(f"--output {output}: {output.suffix or 'no suffix'} names no export format; "
                        f"end it in {', '.join(FORMAT_SUFFIXES)}")
    if requested is not None and requested != implied:
        wanted = " or ".join(s for s, f in FORMAT_SUFFIXES.items() if f == requested)
        raise UserError(f"--format {requested} does not match --output {output} (a {implied} name); end it in {wanted}")
    return implied


def export_model(
    checkpoint_path: str | Path, output: str | Path, fmt: str | None = None, direction: str | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Export the generator(s) of ``checkpoint_path`` to ``output`` in ``fmt`` (default: from the suffix).

    ``direction``: ``AtoB`` / ``BtoA``, or ``both`` (safetensors only; its default). An ONNX / TorchScript file
    holds one generator: the model's only one by default. A sampler (DCGAN, StyleGAN2) has no direction: any
    ``direction`` is refused, and its file holds the network ``decode`` runs (:func:`sampling_network`). Mistakes
    raise a one-line :class:`UserError`, before the checkpoint is read where they can be; ``output`` is only
    replaced with ``overwrite``.
    """
    output = Path(output)
    fmt = export_format(output, fmt)
    if fmt != "safetensors" and direction == "both":
        raise UserError(f"--direction both is only for .safetensors exports: a {_LABELS[fmt]} file holds one "
                        "generator; pass --direction AtoB or BtoA (or none for a sampler)")
    if fmt == "onnx":
        require_onnx_exporter()
    if output.exists() and not overwrite:
        raise UserError(f"{output} already exists; pass --overwrite to replace it")
    state = load_checkpoint(checkpoint_path)
    model = _exportable_model(state)
    if is_sampler(model):
        return _export_sampler(model, state, output, fmt, direction)
    if fmt == "safetensors":
        return ExportResult(output, fmt, _write_translators(model, state, output, direction or "both"))
    chosen = _one_direction(model, state, direction, fmt)
    generator = _portable_generator(model, state, chosen)
    data = onnx_bytes(generator) if fmt == "onnx" else torchscript_bytes(generator)
    with atomic_write(output, durable=True) as handle:
        handle.write(data)
    return ExportResult(output, fmt, [chosen], model.export_notes())


def is_sampler(model: GANModule) -> bool:
    """Whether ``model`` generates from latents rather than translating images (DCGAN, StyleGAN2)."""
    return not model.translators and "sample" in model.capabilities


def sampling_network(model: GANModule) -> str:
    """The attribute of the network a sampler's ``decode`` runs, as the model declares it (``sampler_spec.network``:
    StyleGAN2 samples, evaluates and exports ``generator_ema``, DCGAN its ``generator``)."""
    return model.sampler_spec.network


def _exportable_model(state: dict[str, Any]) -> GANModule:
    """The model of ``state``; one that neither translates nor samples (AdaIN stylizes) is a one-line CapabilityError."""
    name = model_name(state)
    capabilities = MODELS.get(name).capabilities if name in MODELS else frozenset()
    # A sampler needs no "translate" capability; every other model keeps build_model's usual check and message.
    samples = "sample" in capabilities and "translate" not in capabilities
    return build_model(state, capability=None if samples else "translate", command="export",
                       hint=f", or one that samples images: {', '.join(models_that('sample'))}")


def _export_sampler(model: GANModule, state: dict[str, Any], output: Path, fmt: str, direction: str | None) -> ExportResult:
    """Write a sampler's network to ``output`` in ``fmt``; a ``direction`` is refused (a sampler has none)."""
    name = model_name(state)
    if direction is not None:
        raise UserError(f"a {name} model samples images from latents and has no directions: drop --direction {direction}")
    attribute = sampling_network(model)
    info = {k: v for k, v in state[CHECKPOINT_KEY].items() if k != "wandb_run_id"}
    hparams_json = _hparams_json(state)
    if fmt == "safetensors":
        write_generator_file(model, output, {SAMPLER_KEY: attribute}, info, hparams_json)
    else:
        sampler = _portable_sampler(model, name, attribute, info, hparams_json)
        data = sampler_onnx_bytes(sampler) if fmt == "onnx" else sampler_torchscript_bytes(sampler)
        with atomic_write(output, durable=True) as handle:
            handle.write(data)
    return ExportResult(output, fmt, [], sampler=attribute, model=name)


def _portable_sampler(model: GANModule, name: str, attribute: str, info: dict[str, Any], hparams_json: str) -> PortableSampler:
    """The sampler's export program and what its file records: the shapes ``decode`` gives, as the model declares them."""
    spec = model.sampler_spec
    z_dim, resolution, channels = spec.latent_dim, spec.resolution, spec.channels
    noise = ", constant noise" if spec.constant_noise else ""
    metadata = {
        "producer": f"gan-translate {__version__}",
        "version": __version__,
        "model": name,
        "network": attribute,
        "gan_translate": json.dumps(info),
        "hyper_parameters": hparams_json,
        "description": f"the {attribute} of a {name} model{noise}: latents z ({z_dim}) -> "
                       f"{channels}x{resolution}x{resolution} images in [-1, 1], as its decode(z) gives",
    }
    return PortableSampler(model.export_program(), z_dim, resolution, channels, spec.truncation,
                           f"the {attribute} of a {name} model", metadata)


def _one_direction(model: GANModule, state: dict[str, Any], direction: str | None, fmt: str) -> str:
    """The direction an ONNX / TorchScript file holds: the one asked for, or the model's only one."""
    translators = list(model.translators)
    if direction is None:
        if len(translators) == 1:
            return translators[0]
        raise UserError(f"a {model_name(state)} model has {len(translators)} generators and a {_LABELS[fmt]} file "
                        f"holds one: pass --direction {' or '.join(translators)}")
    if direction not in translators:
        raise UserError(f"a {model_name(state)} model has no {direction} generator; valid: {', '.join(translators)}")
    return direction


def _portable_generator(model: GANModule, state: dict[str, Any], direction: str) -> PortableGenerator:
    """What the model's export of ``direction`` runs (``translator_export_program``: its eval-mode generator, or UNSB's
    bridge with its noise inputs) and what its file records (the same shapes translate uses)."""
    program = model.translator_export_program(direction)
    network = program.network
    source, target = domains(direction)
    multiple = int(getattr(network, "size_multiple", 1))
    info = {k: v for k, v in state[CHECKPOINT_KEY].items() if k != "wandb_run_id"}
    metadata = {
        "producer": f"gan-translate {__version__}",
        "model": model_name(state),
        "direction": direction,
        "gan_translate": json.dumps(info),
        "hyper_parameters": _hparams_json(state),
        "description": f"the {direction} generator of a {model_name(state)} model: {source} images -> {target} images",
    }
    return PortableGenerator(network, multiple, max(int(getattr(network, "min_size", 1)), multiple),
                             model.image_channels(source), model.image_channels(target), metadata, program.inputs)


def _hparams_json(state: dict[str, Any]) -> str:
    """The checkpoint's public hyperparameters as JSON: what rebuilds the network (they must be plain values)."""
    hparams = {k: v for k, v in dict(state.get("hyper_parameters", {})).items() if not k.startswith("_")}
    try:
        return json.dumps(hparams)
    except TypeError as error:
        raise CheckpointError(f"cannot export {state['_path']}: its hyperparameters are not plain values ({error})") from None


def export_generators(checkpoint_path: str | Path, output: str | Path, direction: str = "both") -> list[str]:
    """Write the generator(s) of ``checkpoint_path`` to ``output`` (atomically); returns the exported directions
    (a sampler's: ``[network attribute]``, e.g. ``["generator_ema"]``)."""
    output = Path(output)
    if output.suffix != ".safetensors":
        raise UserError(f"--output must end in .safetensors, got {output}")
    state = load_checkpoint(checkpoint_path)
    model = _exportable_model(state)
    if is_sampler(model):
        # "both" is this function's default, so only an explicit direction is refused for a sampler.
        return [_export_sampler(model, state, output, "safetensors", None if direction == "both" else direction).sampler]
    return _write_translators(model, state, output, direction)


def _write_translators(model: GANModule, state: dict[str, Any], output: Path, direction: str) -> list[str]:
    """The safetensors export of a translator's generator(s) for ``direction`` (or ``both``); returns the directions."""
    translators = dict(model.translators)
    wanted = list(translators) if direction == "both" else [direction]
    missing = [d for d in wanted if d not in translators]
    if missing:
        raise UserError(f"a {model_name(state)} model has no {missing[0]} generator; valid: {', '.join(translators)}")
    info = {k: v for k, v in state[CHECKPOINT_KEY].items() if k != "wandb_run_id"}
    write_generator_file(model, output, {d: translators[d] for d in wanted}, info, _hparams_json(state))
    return wanted


def write_generator_file(
    model: Any, output: str | Path, directions: dict[str, str], info: dict[str, Any], hparams_json: str,
) -> None:
    """The export file itself: the weights of ``directions``' generators (``{direction: attribute}``) of ``model``,
    with ``info`` (model name, version, ...) and the hyperparameters as metadata, written atomically and durably."""
    keep = tuple(f"{attribute}." for attribute in directions.values())
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k.startswith(keep)}
    metadata = {
        "format": EXPORT_FORMAT,
        "gan_translate": json.dumps(info),
        "hyper_parameters": hparams_json,
        "directions": json.dumps(directions),
    }
    with atomic_write(output, durable=True) as handle:
        handle.write(safetensors_bytes(tensors, metadata=metadata))
