"""`gan-translate dream`: DeepDream of files, folders or globs (gradient ascent on VGG19 activations, over octaves).

Outputs keep the input names (and sub-folders) and sizes; ``dream.json`` beside them records the settings and,
per image, the layers' activation norm before and after each octave (it rises: that is the dream).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gan_translate.commands.inputs import checked_outputs, collect_inputs, report_failures, summary_file
from gan_translate.commands.options import add_device, add_overwrite, add_vgg_options, vgg_extractor_from_args
from gan_translate.core.errors import DataError, UserError
from gan_translate.core.files import atomic_write
from gan_translate.data.io import load_image, save_image
from gan_translate.style.dream import DreamConfig, dream_uint8

NAME = "dream"
HELP = "DeepDream: amplify what VGG19 layers see in images (octaves, jitter, normalised gradient ascent)"

SUMMARY_NAME = "dream.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DreamConfig()
    parser.add_argument("--input", required=True, nargs="+", help="images: files, folders (recursive) or glob patterns")
    parser.add_argument("--output", required=True, help="folder for the results (same names and sizes); for one input, also a file name")
    parser.add_argument("--layers", default=",".join(defaults.layers),
                        help="comma-separated VGG19 layers whose activations are amplified (deeper: objects; shallower: textures)")
    parser.add_argument("--octaves", type=int, default=defaults.octaves, help="image pyramid levels, dreamt smallest first")
    parser.add_argument("--octave-scale", type=float, default=defaults.octave_scale, help="size ratio between octaves")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="ascent steps per octave")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="step size, in [-1, 1] pixel units (the gradient is normalised)")
    parser.add_argument("--jitter", type=int, default=defaults.jitter, help="largest random shift (px) before each step")
    parser.add_argument("--size", type=int, default=512,
                        help="long side (px) the dream runs at; larger images get the dreamt detail enlarged onto them (0: full size)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the jitter")
    parser.add_argument("--suffix", default="", help="appended to each output file name before the extension")
    add_vgg_options(parser, pooling="max")
    add_device(parser)
    add_overwrite(parser)
    parser.add_argument("--allow-input-dir", action="store_true", help="allow --output to be a folder holding inputs (inputs are never overwritten)")


def _config(args: argparse.Namespace) -> DreamConfig:
    if args.size < 0 or 0 < args.size < 16:
        raise UserError(f"--size must be 0 (full size) or at least 16 px, got {args.size}")
    layers = tuple(part.strip() for part in args.layers.split(",") if part.strip())
    return DreamConfig(layers=layers, octaves=args.octaves, octave_scale=args.octave_scale, steps=args.steps,
                       lr=args.lr, jitter=args.jitter, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    inputs = collect_inputs(args.input, exclude=args.output)
    plan = checked_outputs(inputs, args)
    outputs = plan.files
    summary_path = summary_file(plan, SUMMARY_NAME, args.overwrite)
    extractor = vgg_extractor_from_args(args, config.layers, "the dreams")
    records: list[dict[str, Any]] = []
    failures: list[tuple[Path, str]] = []
    started = time.perf_counter()
    with tqdm(total=len(inputs) * config.octaves * config.steps, desc="dream", unit="step", disable=None) as progress:
        for (file, _), output in zip(inputs, outputs):
            try:
                image = load_image(file)
            except DataError as error:
                failures.append((file, str(error)))
                progress.update(config.octaves * config.steps)
                continue
            progress.set_postfix(image=file.name, refresh=False)
            begun = time.perf_counter()
            dreamt, result = dream_uint8(image, extractor, config, args.size, callback=lambda *_: progress.update(1))
            save_image(dreamt, output)
            records.append({"input": str(file), "output": str(output), "size": list(image.shape[:2]),
                            "seconds": time.perf_counter() - begun,
                            "activation_norm": [{"before": before, "after": after} for before, after in result.norms]})
    elapsed = time.perf_counter() - started
    summary = {"command": NAME, "vgg": extractor.description, "settings": vars(config) | {"size": args.size},
               "images": records, "seconds": elapsed,
               "failed": [{"input": str(file), "error": reason} for file, reason in failures]}
    with atomic_write(summary_path, "w") as handle:
        handle.write(json.dumps(summary, indent=2, default=str) + "\n")
    where = outputs[0] if plan.named_file else plan.folder
    print(f"dreamt {len(records)} of {len(inputs)} images on {', '.join(config.layers)} into {where} "
          f"in {elapsed:.1f} s ({extractor.description})")
    return report_failures(failures)
