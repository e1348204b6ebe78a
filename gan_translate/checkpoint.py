"""Loading checkpoints safely: no code from the file ever runs, and every failure is one clear line."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Iterable

import torch

from gan_translate.errors import CheckpointError
from gan_translate.models.base import CHECKPOINT_KEY, GANModule

# Keys Lightning/LightningCLI add to hyper_parameters that are not constructor arguments.
_NON_INIT_HPARAMS = ("_instantiator", "_class_path")


def newest_checkpoint(folders: Iterable[Path], pattern: str = "last*.ckpt") -> Path | None:
    """The most recently written file matching ``pattern`` anywhere under ``folders``, or None."""
    found = [file for folder in folders if folder.is_dir() for file in folder.rglob(pattern) if file.is_file()]
    return sorted(found, key=lambda file: file.stat().st_mtime)[-1] if found else None


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A ``.ckpt`` file, or a run folder: then its newest ``last.ckpt`` (else newest ``*.ckpt``)."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        newest = newest_checkpoint([path]) or newest_checkpoint([path], "*.ckpt")
        if newest is None:
            raise CheckpointError(f"no .ckpt file found under {path}")
        return newest
    raise CheckpointError(f"checkpoint not found: {path}")


def unsafe_detail(error: BaseException) -> str:
    """The telling line of torch's weights_only refusal (``Unsupported global: GLOBAL os.system``)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("Unsupported", "WeightsUnpickler error:")) or "unsupported GLOBAL" in line:
            # Keep "Unsupported global: GLOBAL os.system", not torch's advice on how to allow it anyway.
            line = line.split("WeightsUnpickler error:", 1)[-1].split(" was not an allowed global")[0].strip()
            return line.replace("Trying to load unsupported GLOBAL", "Unsupported global: GLOBAL")[:200]
    return next((line for line in lines if "Weights only load failed" not in line), "unsupported pickle data")[:200]


def unpickling_error(path: str | Path, error: BaseException) -> CheckpointError:
    """The one-line CheckpointError for a file ``torch.load(weights_only=True)`` refused (nothing ran)."""
    detail = unsafe_detail(error)
    if "global" in detail.lower():  # it names a function or class to call: code the file wanted to run
        return CheckpointError(
            f"refusing to load {path}: it holds objects that are not plain weights and could run code "
            f"when unpickled ({detail})"
        )
    return CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {detail}")


def _check_looks_like_torch_file(path: Path) -> None:
    """Name a file that is no torch.save output at all (an image, a text) before torch.load's cryptic errors."""
    with path.open("rb") as handle:
        head = handle.read(2)
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes): not a checkpoint")
    if not head.startswith((b"PK", b"\x80")):  # torch.save writes a zip archive; very old versions a raw pickle
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (expected a .ckpt written by `gan-translate fit`, or an exported .safetensors)"
        )


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """Read a gan-translate checkpoint with ``weights_only=True`` (tensors and plain containers only).

    ``mmap=True`` maps the tensors instead of reading them (for a quick validation of a large file).
    """
    path = resolve_checkpoint_path(path)
    if path.suffix == ".safetensors":
        return load_exported(path)
    _check_looks_like_torch_file(path)
    try:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as error:
            if not mmap or "mmap" not in str(error):
                raise
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # an old (non-zip) file
    except pickle.UnpicklingError as error:
        raise unpickling_error(path, error) from None
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - RuntimeError, EOFError, BadZipFile, IndexError ... on a bad file
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {first_line}") from None
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a gan-translate checkpoint (it was not written by `gan-translate fit`)")
    checkpoint["_path"] = str(path)
    return checkpoint


def load_exported(path: Path) -> dict[str, Any]:
    """A ``gan-translate export`` file (safetensors: a JSON header and raw tensors, no code) as a checkpoint dict."""
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            state_dict = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # noqa: BLE001 - safetensors raises its own error types for bad files
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {first_line}") from None
    if metadata.get("format") != "gan-translate-generator":
        raise CheckpointError(f"{path} is not a gan-translate export (made by `gan-translate export`)")
    try:
        return {
            CHECKPOINT_KEY: json.loads(metadata["gan_translate"]),
            "hyper_parameters": json.loads(metadata["hyper_parameters"]),
            "state_dict": state_dict,
            "_exported": json.loads(metadata["directions"]),  # {direction: state_dict prefix}
            "_path": str(path),
        }
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path} has unreadable gan-translate metadata ({error})") from None


class _NotExported(torch.nn.Module):
    """Stands in for a generator an export left out: any use is a one-line CheckpointError."""

    size_multiple = 1

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def eval(self) -> "_NotExported":  # inference_network() calls eval(): fail there, before any work
        raise CheckpointError(self.message)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise CheckpointError(self.message)


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
    try:
        missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    except RuntimeError as error:  # shapes that differ from what the hyperparameters build
        detail = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), str(error))[:200]
        raise CheckpointError(f"{path} does not match the {name} architecture it describes ({detail})") from None
    exported = checkpoint.get("_exported")
    if exported is not None:
        # An export holds only some generators: the rest of the model is expected to be missing.
        from gan_translate.commands.export import translator_prefixes

        kept = tuple(f"{prefix}." for prefix in exported.values())
        missing = [key for key in missing if key.startswith(kept)]
        for direction, prefix in translator_prefixes(model).items():
            if direction not in exported:
                setattr(model, prefix, _NotExported(
                    f"{path} was exported with the {', '.join(exported)} generator only; it cannot translate {direction}"
                ))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match the {name} architecture it describes "
            f"(missing {len(missing)} tensors, e.g. {missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})"
        )
    model.eval()
    return model
