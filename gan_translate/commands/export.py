"""`gan-translate export`: a training checkpoint -> a small, safe ``.safetensors`` file for sharing."""

from __future__ import annotations

import argparse
from pathlib import Path

from gan_translate.artifacts import EXPORT_DIRECTIONS, export_generators
from gan_translate.commands.options import add_checkpoint, add_direction, add_overwrite
from gan_translate.errors import UserError

NAME = "export"
HELP = "export the generator(s) of a checkpoint to a .safetensors file (weights + hyperparameters)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_checkpoint(parser)
    parser.add_argument("--output", required=True, help="the .safetensors file to write")
    add_direction(parser, EXPORT_DIRECTIONS, help="generator(s) to export; 'both' keeps every direction the model has")
    parser.set_defaults(direction="both")
    add_overwrite(parser, "an existing output file")


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise UserError(f"{output} already exists; pass --overwrite to replace it")
    directions = export_generators(args.checkpoint, output, args.direction)
    size_mb = output.stat().st_size / 2**20
    print(f"exported the {' and '.join(directions)} generator(s) to {output} ({size_mb:.1f} MiB)")
    return 0
