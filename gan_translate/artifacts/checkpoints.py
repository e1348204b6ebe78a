"""Finding and reading the files a model is kept in, safely: no code from a file ever runs, every failure is one line.

Two formats are read (:data:`MODEL_FILE_SUFFIXES`):

* ``.ckpt``: a Lightning checkpoint written by ``gan-translate fit``, read with ``weights_only=True`` (tensors and
  plain containers only); its ``hyper_parameters`` rebuild the model (:mod:`gan_translate.artifacts.models`) and
  its ``"gan_translate"`` entry names the model;
* ``.safetensors``: an export (:mod:`gan_translate.artifacts.export`): generator weights plus the same facts as
  JSON metadata. safetensors is a header plus raw tensor bytes, so reading it cannot run code either.

Both are returned as the same dict: ``{"gan_translate": {...}, "hyper_parameters": {...}, "state_dict": {...},
"_path": str}`` (an export adds ``"_exported": {direction: generator attribute}``).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from gan_translate.core.errors import CheckpointError
from gan_translate.models.base import CHECKPOINT_KEY

__all__ = [
    "CHECKPOINT_KEY",
    "EXPORT_FORMAT",
    "MODEL_FILE_SUFFIXES",
    "load_checkpoint",
    "model_name",
    "newest_checkpoint",
    "resolve_checkpoint_path",
    "training_image_size",
    "unpickling_error",
]

#: Value of the ``format`` metadata entry of ``gan-translate export`` files.
EXPORT_FORMAT = "gan-translate-generator"
#: The files ``translate``, ``evaluate``, ``generate``, ... accept as ``--checkpoint``.
MODEL_FILE_SUFFIXES = (".ckpt", ".safetensors")


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
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            state_dict = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # noqa: BLE001 - safetensors raises its own error types for bad files
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {first_line}") from None
    if metadata.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path} is not a gan-translate export (made by `gan-translate export`)")
    try:
        return {
            CHECKPOINT_KEY: json.loads(metadata["gan_translate"]),
            "hyper_parameters": json.loads(metadata["hyper_parameters"]),
            "state_dict": state_dict,
            "_exported": json.loads(metadata["directions"]),  # {direction: generator attribute (state_dict prefix)}
            "_path": str(path),
        }
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path} has unreadable gan-translate metadata ({error})") from None


def model_name(checkpoint: dict[str, Any]) -> str:
    """The registry name of the model a checkpoint holds (``cyclegan``, ``pix2pix``, ``dcgan``, ...)."""
    return str(checkpoint[CHECKPOINT_KEY].get("model", ""))


def training_image_size(checkpoint: dict[str, Any]) -> int | None:
    """The side (px) of the images the model was trained on, when the file says: the datamodule's crop / image
    size of a ``fit`` checkpoint (``transform.crop_size``; flat ``crop_size`` in 0.1 files), or a generator's
    ``resolution``; None for files that do not record it (exports)."""
    data = checkpoint.get("datamodule_hyper_parameters")
    data = data if isinstance(data, dict) else {}
    transform = data.get("transform") if isinstance(data.get("transform"), dict) else {}
    candidates = (transform.get("crop_size"), data.get("crop_size"), data.get("image_size"),
                  (checkpoint.get("hyper_parameters") or {}).get("resolution"))
    return next((value for value in candidates if isinstance(value, int) and value > 0), None)
