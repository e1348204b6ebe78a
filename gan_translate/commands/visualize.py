"""`gan-translate visualize`: feature visualisation: for each chosen channel of a VGG19 layer, the image that
excites it most (optimised from noise, with jitter, total-variation and blur regularisers).

Writes ``<layer>/c<NNN>.png`` per channel, ``<layer>_grid.png`` (every channel labelled with its activation before
and after) and ``visualize.json`` (settings and activations).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tqdm import tqdm

from gan_translate.commands.options import add_device, add_overwrite, add_vgg_options, vgg_extractor_from_args
from gan_translate.core.errors import UserError
from gan_translate.core.files import atomic_write
from gan_translate.core.grids import make_grid
from gan_translate.core.images import tensor_to_uint8
from gan_translate.data.io import save_image
from gan_translate.nn.vgg import vgg19_layer_names
from gan_translate.style.visualize import VisualizeConfig, visualize_channels

NAME = "visualize"
HELP = "feature visualisation: the images that excite chosen channels of a VGG19 layer, as files and a labelled grid"

SUMMARY_NAME = "visualize.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = VisualizeConfig()
    parser.add_argument("--output", required=True, help="folder for the images, the grid and visualize.json")
    parser.add_argument("--layer", default="relu4_1", help="VGG19 layer (relu1_1 ... relu5_4): shallow layers see textures, deep ones parts")
    parser.add_argument("--channels", default="0-15", help="channels to show: 0-15, 3,7,42 or a mix (0-3,10)")
    parser.add_argument("--size", type=int, default=defaults.size, help="side (px) of each image")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="Adam steps")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate on the pixels ([-1, 1] units)")
    parser.add_argument("--jitter", type=int, default=defaults.jitter, help="largest random shift (px) before each step")
    parser.add_argument("--tv-weight", type=float, default=defaults.tv_weight, help="total-variation penalty (smoothness)")
    parser.add_argument("--blur-every", type=int, default=defaults.blur_every, help="blur the image every N steps (0: never)")
    parser.add_argument("--batch-size", type=int, default=16, help="channels optimised together")
    parser.add_argument("--columns", type=int, default=8, help="channels per row of the grid")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the starting noise and the jitter")
    add_vgg_options(parser, pooling="avg")
    add_device(parser)
    add_overwrite(parser)


def parse_channels(text: str, count: int) -> list[int]:
    """``"0-3,10"`` -> ``[0, 1, 2, 3, 10]``, each checked against the layer's ``count`` channels."""
    channels: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        first, dash, last = part.partition("-")
        try:
            span = range(int(first), int(last) + 1) if dash else [int(first)]
        except ValueError:
            raise UserError(f"--channels must look like 0-15 or 3,7,42; got {part!r}") from None
        channels.extend(span)
    bad = [c for c in channels if not 0 <= c < count]
    if bad or not channels:
        raise UserError(f"--channels {text!r}: the layer has channels 0-{count - 1}")
    return list(dict.fromkeys(channels))


def _check(args: argparse.Namespace) -> VisualizeConfig:
    if args.layer not in vgg19_layer_names():
        raise UserError(f"--layer {args.layer!r} is not a VGG19 layer; valid: {', '.join(vgg19_layer_names())}")
    if args.batch_size < 1 or args.columns < 1:
        raise UserError(f"--batch-size and --columns must be >= 1, got {args.batch_size} and {args.columns}")
    return VisualizeConfig(size=args.size, steps=args.steps, lr=args.lr, jitter=args.jitter, tv_weight=args.tv_weight,
                           blur_every=args.blur_every, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    config = _check(args)
    output = Path(args.output).expanduser()
    grid_path, summary_path, folder = output / f"{args.layer}_grid.png", output / SUMMARY_NAME, output / args.layer
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output} is a file, not a folder")
    existing = [p for p in (grid_path, summary_path, folder) if p.exists()]
    if existing and not args.overwrite:
        raise UserError(f"{existing[0]} already exists; pass --overwrite to replace earlier results")
    extractor = vgg_extractor_from_args(args, [args.layer], "these pictures")
    channels = parse_channels(args.channels, extractor.channels(args.layer))
    started = time.perf_counter()
    panels, labels, records = [], [], []
    batches = [channels[i : i + args.batch_size] for i in range(0, len(channels), args.batch_size)]
    with tqdm(total=len(batches) * config.steps, desc=f"visualize {args.layer}", unit="step", disable=None) as progress:
        for batch in batches:
            images, start, end = visualize_channels(extractor, args.layer, batch, config, callback=lambda _: progress.update(1))
            for channel, image, before, after in zip(batch, tensor_to_uint8(images), start.tolist(), end.tolist()):
                save_image(image, folder / f"c{channel:03d}.png")
                panels.append(image)
                labels.append(f"{channel}: {before:.2g} -> {after:.2g}")
                records.append({"channel": channel, "file": str(folder / f"c{channel:03d}.png"),
                                "activation_before": before, "activation_after": after})
    footer = f"{args.layer} of {extractor.description}; labels: channel: mean activation from noise -> optimised"
    save_image(make_grid(panels, labels, footer, columns=args.columns), grid_path)
    elapsed = time.perf_counter() - started
    summary = {"command": NAME, "layer": args.layer, "vgg": extractor.description, "settings": vars(config),
               "channels": records, "grid": str(grid_path), "seconds": elapsed}
    with atomic_write(summary_path, "w") as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    print(f"visualised {len(channels)} channels of {args.layer} into {output} ({grid_path.name}) in {elapsed:.1f} s "
          f"({extractor.description})")
    return 0
