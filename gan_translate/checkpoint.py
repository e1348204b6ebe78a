"""Loading checkpoints safely: no code from the file ever runs, and every failure is one clear line."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Iterable

import torch

from gan_translate.errors import CheckpointError
from gan_translate.models.base import CHECKPOINT_KEY, GANModule

# Keys Lightning/LightningCLI add to hyper_parameters that are not constructor arguments.
_NON_INIT_HPARAMS = ("_instantiator", "_class_path")


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A ``.ckpt`` file, or a run folder: then its newest ``last.ckpt`` (else newest ``*.ckpt``)."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        candidates = sorted(path.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime) or sorted(
            path.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime
        )
        if not candidates:
            raise CheckpointError(f"no .ckpt file found under {path}")
        return candidates[-1]
    raise CheckpointError(f"checkpoint not found: {path}")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a gan-translate checkpoint with ``weights_only=True`` (tensors and plain containers only)."""
    path = resolve_checkpoint_path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only refuses any object that would need code from the file to rebuild.
        detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else "unsupported object"
        raise CheckpointError(
            f"refusing to load {path}: it holds objects that are not plain weights and could run code "
            f"when unpickled ({detail})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {first_line}") from None
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a gan-translate checkpoint (it was not written by `gan-translate fit`)")
    checkpoint["_path"] = str(path)
    return checkpoint


def model_name(checkpoint: dict[str, Any]) -> str:
    return str(checkpoint[CHECKPOINT_KEY].get("model", ""))


def build_model(checkpoint: dict[str, Any], allowed: Iterable[str] | None = None, command: str = "") -> GANModule:
    """Rebuild the LightningModule from the checkpoint's own hyperparameters and load its weights."""
    from gan_translate.models import MODELS

    name = model_name(checkpoint)
    path = checkpoint.get("_path", "checkpoint")
    allowed = list(allowed) if allowed is not None else None
    if allowed is not None and name not in allowed:
        what = f"`{command}` " if command else ""
        raise CheckpointError(
            f"{path} is a {name} checkpoint; {what}needs one of: {', '.join(allowed)}"
        )
    if name not in MODELS:
        raise CheckpointError(f"{path} names an unknown model {name!r}; valid: {', '.join(MODELS.names())}")
    hparams = {k: v for k, v in dict(checkpoint.get("hyper_parameters", {})).items() if k not in _NON_INIT_HPARAMS}
    model = MODELS.get(name)(**hparams)
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match the {name} architecture it describes "
            f"(missing {len(missing)} tensors, e.g. {missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})"
        )
    model.eval()
    return model
