"""The files a model lives in: finding, reading, rebuilding, exporting and writing them.

* :mod:`~gan_translate.artifacts.checkpoints`: resolve a ``.ckpt`` / ``.safetensors`` file or run folder, read it
  safely (``weights_only``, one-line errors);
* :mod:`~gan_translate.artifacts.models`: rebuild the model a file describes (:func:`load_model`), checking it can
  do what the caller needs;
* :mod:`~gan_translate.artifacts.export`: write the generator-only ``.safetensors`` export, and (through
  :mod:`~gan_translate.artifacts.portable`) the ONNX / TorchScript files that run without this package (translators:
  image -> image; samplers: latents -> images);
* :mod:`~gan_translate.artifacts.checkpoint_io`: Lightning's checkpoint plugin with atomic saves and safe loads.
"""

from __future__ import annotations

from gan_translate.artifacts.checkpoint_io import AtomicCheckpointIO, atomic_torch_save
from gan_translate.artifacts.checkpoints import (
    CHECKPOINT_KEY,
    EXPORT_FORMAT,
    MODEL_FILE_SUFFIXES,
    load_checkpoint,
    model_name,
    newest_checkpoint,
    resolve_checkpoint_path,
    training_image_size,
)
from gan_translate.artifacts.export import (
    EXPORT_DIRECTIONS,
    EXPORT_FORMATS,
    FORMAT_SUFFIXES,
    SAMPLER_KEY,
    ExportResult,
    export_format,
    export_generators,
    export_model,
    is_sampler,
    sampling_network,
)
from gan_translate.artifacts.models import build_model, load_model

__all__ = [
    "CHECKPOINT_KEY",
    "EXPORT_DIRECTIONS",
    "EXPORT_FORMAT",
    "EXPORT_FORMATS",
    "FORMAT_SUFFIXES",
    "MODEL_FILE_SUFFIXES",
    "SAMPLER_KEY",
    "AtomicCheckpointIO",
    "ExportResult",
    "atomic_torch_save",
    "build_model",
    "export_format",
    "export_generators",
    "export_model",
    "is_sampler",
    "load_checkpoint",
    "load_model",
    "model_name",
    "newest_checkpoint",
    "resolve_checkpoint_path",
    "sampling_network",
    "training_image_size",
]
