"""A classic CycleGAN / pix2pix generator file (``latest_net_G_A.pth``, the zoo's ``horse2zebra.pth``) -> an export.

The classic project saves a bare generator ``state_dict`` with no word on its architecture. This module reads one
safely (``torch.load(weights_only=True)``: a crafted pickle is refused, nothing in it runs), renames its tensors
onto our :class:`~gan_translate.nn.resnet.ResnetGenerator` / :class:`~gan_translate.nn.unet.UnetGenerator`
(:mod:`gan_translate.nn.classic_keys`: legacy instance-norm keys dropped, every shape checked), puts that generator
into a CycleGAN (ResNet) or Pix2Pix (U-Net) model and writes the same ``.safetensors`` file ``gan-translate export``
writes, so ``translate``, ``evaluate``, ``load_translator`` and the rest read it unchanged.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gan_translate.artifacts.checkpoints import unpickling_error
from gan_translate.artifacts.export import write_generator_file
from gan_translate.core.directions import DIRECTIONS
from gan_translate.core.errors import CheckpointError, UserError
from gan_translate.core.version import __version__
from gan_translate.models import MODELS, GANModule
from gan_translate.models.pix2pix import INFERENCE_MODES
from gan_translate.nn.classic_keys import (
    CLASSIC_ARCHS,
    CLASSIC_NORMS,
    classic_network_args,
    map_classic_state,
    strip_legacy_keys,
)

__all__ = ["ClassicImport", "ImportedModel", "import_classic", "read_classic_state_dict"]

_IMPORT_MODELS = ("cyclegan", "pix2pix")


@dataclass(frozen=True)
class ClassicImport:
    """How to read a classic generator file; ``None`` fields take the classic defaults.

    ``model``: cyclegan for ResNets, pix2pix for U-Nets (the classic models' default ``--netG``). ``norm`` and
    ``dropout`` then default as the classic model trains: CycleGAN instance norm without dropout (its
    ``no_dropout=True``), pix2pix batch norm with dropout. ``direction``: the CycleGAN direction this generator
    translates (a pix2pix model has only AtoB). ``inference_mode`` (pix2pix): ``classic`` by default, the classic
    test script's behaviour (dropout on, batch statistics) that the published results come from.
    """

    arch: str
    norm: str | None = None
    dropout: bool | None = None
    direction: str = "AtoB"
    model: str | None = None
    inference_mode: str | None = None

    def resolved(self) -> ClassicImport:
        """These settings with every default filled in and every value checked (one-line UserErrors)."""
        if self.arch not in CLASSIC_ARCHS:
            raise UserError(f"unknown classic architecture {self.arch!r}; valid: {', '.join(CLASSIC_ARCHS)}")
        model = self.model or ("pix2pix" if self.arch.startswith("unet") else "cyclegan")
        norm = self.norm or ("batch" if model == "pix2pix" else "instance")
        if norm not in CLASSIC_NORMS:
            raise UserError(f"--norm must be one of {', '.join(CLASSIC_NORMS)} for a classic file, got {norm!r}")
        if model not in _IMPORT_MODELS:
            raise UserError(f"--model must be one of {', '.join(_IMPORT_MODELS)}, got {model!r}")
        if self.direction not in DIRECTIONS:
            raise UserError(f"--direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}")
        if model == "pix2pix" and self.direction != "AtoB":
            raise UserError("a pix2pix model translates one way (AtoB: the way it was trained); drop --direction BtoA")
        mode = self.inference_mode or ("classic" if model == "pix2pix" else None)
        if mode is not None and (model != "pix2pix" or mode not in INFERENCE_MODES):
            raise UserError(f"--inference-mode is for pix2pix imports: one of {', '.join(INFERENCE_MODES)}, got {mode!r}")
        dropout = model == "pix2pix" if self.dropout is None else self.dropout
        return ClassicImport(self.arch, norm, dropout, self.direction, model, mode)


@dataclass(frozen=True)
class ImportedModel:
    """What :func:`import_classic` wrote: the file, the model and direction it holds, and the network's size."""

    output: Path
    model: str
    direction: str
    settings: ClassicImport
    network_args: dict[str, int]
    stripped_keys: int


def read_classic_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a classic ``.pth`` file, read with ``weights_only=True``; every failure is one line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"classic generator file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise unpickling_error(path, error) from None
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - RuntimeError, EOFError, BadZipFile ... on a file that is no torch.save
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a readable PyTorch file (truncated or corrupt?): {first_line}") from None
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{path} is not a classic generator state_dict (expected a dict of named tensors)")
    return dict(state)


def _hyper_parameters(settings: ClassicImport, network: dict[str, int]) -> dict[str, Any]:
    """The model options that rebuild this generator; a BtoA CycleGAN generator maps out_channels -> in_channels."""
    source, target = network["in_channels"], network["out_channels"]
    if settings.direction == "BtoA":
        source, target = target, source
    hparams: dict[str, Any] = {"in_channels": source, "out_channels": target, "generator": settings.arch,
                               "ngf": network["ngf"], "norm": settings.norm, "dropout": settings.dropout}
    if settings.model == "pix2pix":
        hparams["inference_mode"] = settings.inference_mode
    elif source != target:
        hparams["lambda_identity"] = 0.0  # identity loss needs equal channels; only matters for fine-tuning
    return hparams


def _write_export(model: GANModule, output: Path, attribute: str, direction: str, source: Path) -> None:
    """The generator ``attribute`` of ``model`` as a ``gan-translate export`` file (same format and metadata)."""
    hparams = {k: v for k, v in dict(model.hparams).items() if not k.startswith("_")}
    info = {"model": model.model_name, "version": __version__, "imported_from": source.name}
    write_generator_file(model, output, {direction: attribute}, info, json.dumps(hparams))


def import_classic(
    path: str | Path, output: str | Path, settings: ClassicImport, overwrite: bool = False
) -> ImportedModel:
    """Read the classic generator ``path`` as ``settings`` describe and write it to ``output`` (``.safetensors``).

    Refuses, in one line naming the file and the first key at fault, a file whose tensors do not fit the
    architecture exactly (and suggests the flags its keys match); ``output`` is written atomically, never over an
    existing file unless ``overwrite``.
    """
    output, source = Path(output), Path(path).expanduser()
    if output.suffix != ".safetensors":
        raise UserError(f"--output must end in .safetensors, got {output}")
    if output.exists() and not overwrite:
        raise UserError(f"{output} already exists; pass --overwrite to replace it")
    settings = settings.resolved()
    state, stripped = strip_legacy_keys(read_classic_state_dict(source))
    network = classic_network_args(state, settings.arch, str(source))
    model = MODELS.get(str(settings.model))(**_hyper_parameters(settings, network))
    attribute = model.translators[settings.direction]
    generator = getattr(model, attribute)
    weights = map_classic_state(state, generator, str(source), settings.arch, str(settings.norm), bool(settings.dropout))
    generator.load_state_dict(weights, strict=True)
    _write_export(model, output, attribute, settings.direction, source)
    return ImportedModel(output, str(settings.model), settings.direction, settings, network, stripped)
