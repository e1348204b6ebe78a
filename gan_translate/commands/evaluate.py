"""`gan-translate evaluate`: FID / KID / L1 / PSNR / SSIM of a checkpoint's translations, or of any two folders.

The flags become an :class:`~gan_translate.evaluation.evaluate.EvaluationRequest`; :mod:`gan_translate.evaluation.evaluate` says
what is scored against what, and what the JSON file (``--output``) holds.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from gan_translate.commands.options import DefaultsHelpFormatter, add_checkpoint, add_device, add_direction
from gan_translate.core.directions import DIRECTIONS
from gan_translate.core.files import atomic_write
from gan_translate.evaluation.evaluate import EvaluationRequest, evaluate, format_table

NAME = "evaluate"
HELP = "score translations (FID, KID, L1, PSNR, SSIM) from a checkpoint, or two folders of images"

_EPILOG = """examples:
  gan-translate evaluate --checkpoint runs/cyclegan_quickstart --data data/synthetic --feature random-conv --output eval.json
  gan-translate evaluate --real data/horse2zebra/testB --fake outputs/zebras --metrics fid,kid
  gan-translate evaluate --real photos/ --fake gatys_outputs/ --metrics psnr,ssim,l1"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = _EPILOG
    parser.formatter_class = _Formatter
    what = parser.add_argument_group("what to score: a checkpoint and its data, or existing images")
    add_checkpoint(what, "translator's", required=False)
    what.add_argument("--data", help="dataset root: testA/ testB/ [testA_gt/ testB_gt/], or pix2pix test/ (A|B) or test/A, test/B")
    what.add_argument("--split", default="test", help="split of --data to use (test, val)")
    what.add_argument("--input", help="with --checkpoint, instead of --data: a folder of images to translate")
    what.add_argument("--real", help="folder of real target-domain images (FID / KID reference)")
    what.add_argument("--fake", help="folder of generated images to score (without --checkpoint)")
    what.add_argument("--ground-truth", help="folder of ground-truth images, paired by file name (default for --fake: --real)")
    add_direction(what, help="translation direction of the checkpoint")
    what.add_argument("--data-direction", choices=DIRECTIONS, help="paired --data only: which side is the input; --direction when not given (BtoA for a pix2pix trained with data.direction BtoA)")
    how = parser.add_argument_group("how to score")
    how.add_argument("--metrics", default="auto", help="comma-separated: fid,kid,l1,psnr,ssim; auto = all the inputs allow")
    how.add_argument("--feature", default="inception", help="FID/KID feature network: inception, random-conv (offline, not comparable with published FIDs) or package.module:Class")
    how.add_argument("--image-size", type=int, default=299, help="FID/KID inputs: shorter side resized to this (bicubic, antialias), centre-cropped square")
    how.add_argument("--kid-subsets", type=int, default=100, help="KID subsets")
    how.add_argument("--kid-subset-size", type=int, default=1000, help="KID subset size (clamped to the number of images)")
    how.add_argument("--seed", type=int, default=0, help="seed of KID's subsets (and of any randomness in the generator)")
    how.add_argument("--steps", type=int, default=None,
                     help="a multi-step translator's generator passes (UNSB's NFE, 1 to its num_timesteps; default all); "
                          "its bridge noise is its default seed, 0")
    how.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    add_device(how)
    how.add_argument("--output", help="write the results to this JSON file")


class _Formatter(DefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def request_from_args(args: argparse.Namespace) -> EvaluationRequest:
    """The parsed flags as the library's typed request (flag ``--x-y`` is field ``x_y``)."""
    return EvaluationRequest(**{field.name: getattr(args, field.name) for field in fields(EvaluationRequest)})


def run(args: argparse.Namespace) -> int:
    result = evaluate(request_from_args(args))
    print(format_table(result))
    if args.output:
        with atomic_write(Path(args.output), "w") as handle:
            handle.write(json.dumps(result, indent=2, allow_nan=False) + "\n")
        print(f"wrote {args.output}")
    return 0
