"""`gan-translate export`: a training checkpoint -> a small file for sharing or deployment.

``.safetensors`` (weights + hyperparameters, read back by gan-translate), or one direction's generator as an
``.onnx`` graph or a TorchScript ``.pt`` program that run without gan-translate (docs/export.md). A sampler
(DCGAN, StyleGAN2's EMA generator) becomes a latents -> images file (StyleGAN2's with a truncation input ``psi``).
"""

from __future__ import annotations

import argparse

from gan_translate.artifacts import EXPORT_DIRECTIONS, EXPORT_FORMATS, export_model
from gan_translate.commands.options import add_checkpoint, add_direction, add_overwrite

NAME = "export"
HELP = ("export a checkpoint's generator(s): .safetensors (gan-translate), .onnx or TorchScript .pt (standalone); "
        "translators: image -> image, samplers (dcgan, stylegan2): latents z -> images")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_checkpoint(parser)
    parser.add_argument("--output", required=True,
                        help="the file to write: .safetensors, .onnx, or .pt / .torchscript (TorchScript)")
    parser.add_argument("--format", choices=EXPORT_FORMATS, default=None,
                        help="the file format (default: from the --output suffix, which must agree with it)")
    add_direction(parser, EXPORT_DIRECTIONS,
                  help="translators only: generator(s) to export; safetensors default 'both' (every direction the "
                       "model has); ONNX / TorchScript hold one (default: the model's only one). Samplers (dcgan, "
                       "stylegan2) have none: their files hold the network decode runs (StyleGAN2: generator_ema, "
                       "constant noise, a psi truncation input)")
    parser.set_defaults(direction=None)
    add_overwrite(parser, "an existing output file")


def run(args: argparse.Namespace) -> int:
    result = export_model(args.checkpoint, args.output, args.format, args.direction, overwrite=args.overwrite)
    for note in result.notes:
        print(note)
    print(result.summary())
    return 0
