"""`gan-translate export`: a training checkpoint -> a small, safe ``.safetensors`` file for sharing.

The file holds only the generator weights of the chosen direction(s) and, in its metadata, the model name and
the hyperparameters needed to rebuild the network (JSON). ``translate``, :func:`gan_translate.load_translator`
and ``evaluate`` accept it wherever they accept a ``.ckpt``. safetensors is a plain header plus raw tensor
bytes: reading it cannot run code, unlike unpickling, and it is a fraction of a training checkpoint's size
(no discriminators, optimiser states or image pools).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gan_translate.errors import CheckpointError, UserError

NAME = "export"
HELP = "export the generator(s) of a checkpoint to a .safetensors file (weights + hyperparameters)"

#: Value of the ``format`` metadata entry of exported files.
EXPORT_FORMAT = "gan-translate-generator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a .ckpt file, or a run folder (its newest last.ckpt is used)")
    parser.add_argument("--output", required=True, help="the .safetensors file to write")
    parser.add_argument(
        "--direction", choices=["AtoB", "BtoA", "both"], default="both",
        help="generator(s) to export; 'both' keeps every direction the model has",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def network_prefix(model: Any, network: Any) -> str:
    """The state_dict prefix (``generator_ab``) of ``network`` inside ``model``."""
    for name, module in model.named_modules():
        if module is network and name:
            return name
    raise CheckpointError(f"cannot find the {type(network).__name__} network inside the {type(model).__name__} model")


def translator_prefixes(model: Any) -> dict[str, str]:
    """``{direction: state_dict prefix}`` for every direction ``model`` can translate."""
    prefixes = {}
    for direction in ("AtoB", "BtoA"):
        try:
            network = model.translator(direction)
        except (UserError, NotImplementedError):
            continue
        prefixes[direction] = network_prefix(model, network)
    return prefixes


def export_generators(checkpoint_path: str | Path, output: str | Path, direction: str = "both") -> list[str]:
    """Write the generator(s) of ``checkpoint_path`` to ``output``; returns the exported directions."""
    from safetensors.torch import save_file

    from gan_translate.checkpoint import build_model, load_checkpoint, model_name
    from gan_translate.checkpoint_io import _fsync_folder
    from gan_translate.inference import TRANSLATOR_MODELS

    output = Path(output)
    if output.suffix != ".safetensors":
        raise UserError(f"--output must end in .safetensors, got {output}")
    state = load_checkpoint(checkpoint_path)
    model = build_model(state, allowed=TRANSLATOR_MODELS, command="export")
    prefixes = translator_prefixes(model)
    wanted = list(prefixes) if direction == "both" else [direction]
    missing = [d for d in wanted if d not in prefixes]
    if missing:
        raise UserError(f"a {model_name(state)} model has no {missing[0]} generator; valid: {', '.join(prefixes)}")
    keep = tuple(f"{prefixes[d]}." for d in wanted)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k.startswith(keep)}
    hparams = {k: v for k, v in dict(state.get("hyper_parameters", {})).items() if not k.startswith("_")}
    try:
        hparams_json = json.dumps(hparams)
    except TypeError as error:
        raise CheckpointError(f"cannot export {state['_path']}: its hyperparameters are not plain values ({error})") from None
    metadata = {
        "format": EXPORT_FORMAT,
        "gan_translate": json.dumps({k: v for k, v in state["gan_translate"].items() if k != "wandb_run_id"}),
        "hyper_parameters": hparams_json,
        "directions": json.dumps({d: prefixes[d] for d in wanted}),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    # Atomic, like every file this project writes: a temp file in the same folder, then a rename.
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.replace(output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(output.parent)
    return wanted


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise UserError(f"{output} already exists; pass --overwrite to replace it")
    directions = export_generators(args.checkpoint, output, args.direction)
    size_mb = output.stat().st_size / 2**20
    print(f"exported the {' and '.join(directions)} generator(s) to {output} ({size_mb:.1f} MiB)")
    return 0
