"""Rebuilding a model from a checkpoint or export alone: the file names its model and holds its hyperparameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gan_translate.artifacts.checkpoints import load_checkpoint, model_name
from gan_translate.core.errors import CapabilityError, CheckpointError
from gan_translate.core.files import file_sha256
from gan_translate.models import MODELS, GANModule
from gan_translate.models.capabilities import CAPABILITY_USES, Capability, capability_use
from gan_translate.models.distill import Teacher, use_teacher_loader
from gan_translate.models.registry import models_that

__all__ = ["build_model", "load_model", "load_teacher"]

# Keys Lightning/LightningCLI add to hyper_parameters that are not constructor arguments.
_NON_INIT_HPARAMS = ("_instantiator", "_class_path")



class _NotExported(torch.nn.Module):
    """Stands in for a generator an export left out: any use is a one-line CheckpointError."""

    size_multiple = 1

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def eval(self) -> _NotExported:  # inference_network() calls eval(): fail there, before any work
        raise CheckpointError(self.message)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise CheckpointError(self.message)


def _check_capability(checkpoint: dict[str, Any], capability: Capability | None, command: str, hint: str) -> None:
    name = model_name(checkpoint)
    if capability is None or name not in MODELS or capability in MODELS.get(name).capabilities:
        return
    what = f"`{command}` needs" if command else "this needs"
    raise CapabilityError(
        f"{checkpoint.get('_path', 'checkpoint')} is a {name} checkpoint; {what} a model that "
        f"{CAPABILITY_USES[capability][0]}: {', '.join(models_that(capability))}{hint} ({name} {capability_use(MODELS.get(name).capabilities)})"
    )


def build_model(
    checkpoint: dict[str, Any], capability: Capability | None = None, command: str = "", hint: str = ""
) -> GANModule:
    """Rebuild the LightningModule from a loaded checkpoint's own hyperparameters and load its weights (eval mode).

    ``capability`` (``translate``, ``sample``): refuse, naming ``command`` and the models that can, a model that
    cannot do what the caller needs (``hint`` is added to that message).
    """
    _check_capability(checkpoint, capability, command, hint)
    name = model_name(checkpoint)
    path = checkpoint.get("_path", "checkpoint")
    if name not in MODELS:
        raise CheckpointError(f"{path} names an unknown model {name!r}; valid: {', '.join(MODELS.names())}")
    hparams = {k: v for k, v in dict(checkpoint.get("hyper_parameters", {})).items() if k not in _NON_INIT_HPARAMS}
    model = MODELS.get(name)(**hparams)
    try:
        missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    except RuntimeError as error:  # shapes that differ from what the hyperparameters build
        detail = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), str(error))[:200]
        raise CheckpointError(f"{path} does not match the {name} architecture it describes ({detail})") from None
    exported = checkpoint.get("_exported")
    if exported is not None:
        # An export holds only some generators: the rest of the model is expected to be missing.
        kept = tuple(f"{attribute}." for attribute in exported.values())
        missing = [key for key in missing if key.startswith(kept)]
        for direction, attribute in model.translators.items():
            if direction not in exported:
                setattr(model, attribute, _NotExported(
                    f"{path} was exported with the {', '.join(exported)} generator only; it cannot translate {direction}"
                ))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match the {name} architecture it describes "
            f"(missing {len(missing)} tensors, e.g. {missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})"
        )
    model.eval()
    return model


def load_model(
    path: str | Path, capability: Capability | None = None, command: str = "", hint: str = ""
) -> GANModule:
    """:func:`load_checkpoint` then :func:`build_model`: a ``.ckpt`` / ``.safetensors`` file or run folder -> model."""
    return build_model(load_checkpoint(path), capability, command, hint)


def load_teacher(path: str | Path) -> Teacher:
    """A translator's file (``.ckpt``, ``.safetensors`` export or run folder) as a distillation teacher: the rebuilt
    model, the file's SHA-256 (what the student records), whether it holds discriminators (a ``fit`` checkpoint does,
    an export does not) and the folder it was trained on."""
    checkpoint = load_checkpoint(path)
    model = build_model(checkpoint, "translate", command="model.teacher of distill")
    data = checkpoint.get("datamodule_hyper_parameters")
    root = data.get("root") if isinstance(data, dict) else None
    resolved = str(checkpoint["_path"])
    return Teacher(model=model, path=resolved, sha256=file_sha256(resolved),
                   has_discriminators="_exported" not in checkpoint, data_root=str(root) if root else None)


use_teacher_loader(load_teacher)  # the models band reads teacher files through this (models.distill.load_teacher)
