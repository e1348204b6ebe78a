"""``gan-translate export``'s file: a model's generator(s) as a small, safe ``.safetensors`` file for sharing.

The file holds only the generator weights of the chosen direction(s) and, in its metadata, the model name and
the hyperparameters needed to rebuild the network (JSON). ``translate``, :func:`gan_translate.load_translator`
and ``evaluate`` accept it wherever they accept a ``.ckpt`` (:func:`gan_translate.artifacts.load_checkpoint` reads
it). safetensors is a plain header plus raw tensor bytes: reading it cannot run code, unlike unpickling, and it is
a fraction of a training checkpoint's size (no discriminators, optimiser states or image pools).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save as safetensors_bytes

from gan_translate.artifacts.checkpoints import CHECKPOINT_KEY, EXPORT_FORMAT, load_checkpoint, model_name
from gan_translate.artifacts.models import build_model
from gan_translate.directions import DIRECTIONS
from gan_translate.errors import CheckpointError, UserError
from gan_translate.files import atomic_write

__all__ = ["EXPORT_DIRECTIONS", "export_generators"]

#: What ``--direction`` of an export may be: one direction, or every one the model has.
EXPORT_DIRECTIONS = (*DIRECTIONS, "both")


def export_generators(checkpoint_path: str | Path, output: str | Path, direction: str = "both") -> list[str]:
    """Write the generator(s) of ``checkpoint_path`` to ``output`` (atomically); returns the exported directions."""
    output = Path(output)
    if output.suffix != ".safetensors":
        raise UserError(f"--output must end in .safetensors, got {output}")
    state = load_checkpoint(checkpoint_path)
    model = build_model(state, capability="translate", command="export")
    translators = dict(model.translators)
    wanted = list(translators) if direction == "both" else [direction]
    missing = [d for d in wanted if d not in translators]
    if missing:
        raise UserError(f"a {model_name(state)} model has no {missing[0]} generator; valid: {', '.join(translators)}")
    keep = tuple(f"{translators[d]}." for d in wanted)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k.startswith(keep)}
    hparams = {k: v for k, v in dict(state.get("hyper_parameters", {})).items() if not k.startswith("_")}
    try:
        hparams_json = json.dumps(hparams)
    except TypeError as error:
        raise CheckpointError(f"cannot export {state['_path']}: its hyperparameters are not plain values ({error})") from None
    metadata = {
        "format": EXPORT_FORMAT,
        "gan_translate": json.dumps({k: v for k, v in state[CHECKPOINT_KEY].items() if k != "wandb_run_id"}),
        "hyper_parameters": hparams_json,
        "directions": json.dumps({d: translators[d] for d in wanted}),
    }
    with atomic_write(output, durable=True) as handle:
        handle.write(safetensors_bytes(tensors, metadata=metadata))
    return wanted
