"""`gan-translate stylize`: neural style transfer of files, folders or globs: Gatys (pixel optimisation, the
default) or AdaIN (``--method adain``: one forward pass of a trained decoder, any style, several styles mixed).

Outputs keep the input names (and sub-folders) and the contents' original sizes; ``stylize.json`` beside
them records the settings, the weights used and each image's time (and Gatys's final loss). The Gatys options
(:mod:`gan_translate.commands.gatys_options`) are shared with ``compare``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gan_translate.commands.gatys_options import add_gatys_arguments, stylizer_from_args
from gan_translate.commands.inputs import checked_outputs, collect_inputs, report_failures, resolve_style, summary_file
from gan_translate.commands.options import add_overwrite, start_wandb_for
from gan_translate.core.errors import DataError, UserError
from gan_translate.core.files import atomic_write
from gan_translate.core.images import tensor_to_uint8
from gan_translate.data.io import load_image, save_image
from gan_translate.style.gatys import StylizeProgress
from gan_translate.style.pipeline import Stylizer

NAME = "stylize"
HELP = "neural style transfer: Gatys (VGG19 Gram matrices, L-BFGS; the non-GAN baseline) or AdaIN (--method adain)"

SUMMARY_NAME = "stylize.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content", required=True, nargs="+", help="content images: files, folders (recursive) or glob patterns")
    parser.add_argument("--style", required=True, nargs="+",
                        help="the style image (a folder: its image number --style-index in sorted order); AdaIN: several, mixed by --style-weights")
    parser.add_argument("--style-index", type=int, default=0, help="which image of a --style folder (sorted)")
    parser.add_argument("--output", required=True, help="folder for the results (same names and sizes as the content images); "
                             "for a single content image, also an image file name (styled.png)")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="content images of equal size optimised together (faster on GPU; L-BFGS then shares one line search)")
    parser.add_argument("--suffix", default="", help="appended to each output file name before the extension")
    parser.add_argument("--log-every", type=int, default=50, help="with --wandb: log losses / the current image every N iterations")
    add_overwrite(parser)
    parser.add_argument("--allow-input-dir", action="store_true", help="allow --output to be a folder holding inputs (inputs are never overwritten)")
    add_gatys_arguments(parser)
    adain = parser.add_argument_group("AdaIN (--method adain)")
    adain.add_argument("--method", default="gatys", choices=("gatys", "adain"), help="style transfer method")
    adain.add_argument("--checkpoint", default=None, help="a trained AdaIN .ckpt or run folder")
    adain.add_argument("--adain-encoder", default=None, help="instead of --checkpoint: the AdaIN port's vgg_normalised.pth")
    adain.add_argument("--adain-decoder", default=None, help="instead of --checkpoint: the AdaIN port's decoder.pth")
    adain.add_argument("--alpha", type=float, default=1.0, help="content-style trade-off: 0 keeps the content, 1 is the full style")
    adain.add_argument("--style-weights", default=None, help="with several --style images: their weights, e.g. 0.3,0.7 (default equal)")
    adain.add_argument("--style-size", type=int, default=512, help="style images are scaled down to this long side first (0: never)")


@dataclass
class _Plan:
    """What one ``stylize`` run reads and writes."""

    inputs: list[tuple[Path, Path]]
    outputs: list[Path]
    folder: Path  # where the results go
    where: Path  # the output folder, or the one result file (for the summary line)
    summary: Path
    style_paths: list[Path]
    failures: list[tuple[Path, str]] = field(default_factory=list)
    batches: list[list[tuple[int, np.ndarray]]] = field(default_factory=list)


def _plan(args: argparse.Namespace) -> _Plan:
    """Check the arguments and outputs, read every content image (bad ones are reported), batch equal sizes."""
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    inputs = collect_inputs(args.content, exclude=args.output)
    output_plan = checked_outputs(inputs, args)
    outputs, output_dir, named_file = output_plan
    summary = summary_file(output_plan, SUMMARY_NAME, args.overwrite)
    where = outputs[0] if named_file else output_dir
    if args.method == "gatys" and len(args.style) > 1:
        raise UserError("Gatys takes one --style image; several styles mixed by --style-weights need --method adain")
    plan = _Plan(inputs, outputs, output_dir, where, summary, [resolve_style(spec, args.style_index) for spec in args.style])
    groups: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
    for index, (file, _) in enumerate(inputs):
        try:
            image = load_image(file)
        except DataError as error:
            plan.failures.append((file, str(error)))
            continue
        groups.setdefault(image.shape[:2], []).append((index, image))
    plan.batches = [items[i : i + args.batch_size] for items in groups.values() for i in range(0, len(items), args.batch_size)]
    return plan


def _progress_logger(
    progress: tqdm, wandb_run: Any, every: int, name: str, batch: int, done_before: int
) -> Callable[[StylizeProgress], None]:
    """The stylize callback: advances the bar; with W&B, logs losses and the current image every ``every`` iterations."""

    def log(info: StylizeProgress) -> None:
        progress.update(done_before + info.iteration - progress.n)
        progress.set_postfix(loss=f"{info.losses.get('total', float('nan')):.3g}", refresh=False)
        if wandb_run is None or every < 1 or (info.iteration % every and info.iteration != info.total_iterations):
            return
        import wandb

        wandb_run.log({
            **{f"loss/{key}": value for key, value in info.losses.items()},
            "iteration": info.iteration, "batch": batch, "scale": info.scale_index,
            f"intermediate/{name}": wandb.Image(tensor_to_uint8(info.image[0]), caption=f"{name} iteration {info.iteration}"),
        })

    return log


def _stylize_all(plan: _Plan, stylizer: Stylizer, style: np.ndarray, wandb_run: Any, log_every: int) -> list[dict[str, Any]]:
    """Stylise every batch, saving each result as it is done; one record per image."""
    records: list[dict[str, Any]] = []
    total = sum(stylizer.iterations_for(*items[0][1].shape[:2]) for items in plan.batches)
    with tqdm(total=total, desc="stylize", unit="it", disable=None) as progress:
        done_before = 0
        for batch_index, items in enumerate(plan.batches):
            log = _progress_logger(progress, wandb_run, log_every, plan.outputs[items[0][0]].name, batch_index, done_before)
            started = time.perf_counter()
            results, result = stylizer.stylize_batch([image for _, image in items], style, callback=log)
            seconds = time.perf_counter() - started
            done_before += result.iterations
            progress.update(done_before - progress.n)
            for (index, _), image, loss in zip(items, results, result.best_loss):
                save_image(image, plan.outputs[index])
                records.append({"input": str(plan.inputs[index][0]), "output": str(plan.outputs[index]),
                                "size": list(image.shape[:2]), "best_loss": loss, "iterations": result.iterations,
                                "seconds": seconds / len(items)})
                if wandb_run is not None:
                    import wandb

                    wandb_run.log({f"result/{plan.outputs[index].name}": wandb.Image(image, caption=stylizer.vgg_facts()["vgg"])})
    return records


def _style_weights(text: str | None, count: int) -> list[float] | None:
    if text is None:
        return None
    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--style-weights must be numbers like 0.3,0.7, got {text!r}") from None
    if len(weights) != count:
        raise UserError(f"--style-weights gives {len(weights)} weights for {count} --style images")
    return weights


def _run_adain(args: argparse.Namespace, plan: _Plan) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """AdaIN: every content image in one forward pass (equal sizes batched); the records and the settings."""
    from gan_translate.inference.style import load_adain_stylizer

    stylizer = load_adain_stylizer(args.checkpoint, args.adain_encoder, args.adain_decoder, args.device, args.style_size)
    if not stylizer.model.pretrained:
        print("warning: AdaIN with an untrained (random) VGG encoder: the results only test the pipeline", file=sys.stderr)
    styles = [load_image(path) for path in plan.style_paths]
    options = {"weights": _style_weights(args.style_weights, len(styles)), "alpha": args.alpha,
               "preserve_color": args.preserve_color}
    settings = {"method": "adain", "description": stylizer.description, "weights_source": stylizer.source,
                "styles": [str(p) for p in plan.style_paths], **options}
    images = ((index, image) for batch in plan.batches for index, image in batch)
    records: list[dict[str, Any]] = []
    last = time.perf_counter()
    with tqdm(total=sum(len(b) for b in plan.batches), desc="stylize (adain)", unit="img", disable=None) as progress:
        for index, image in stylizer.stylize_many(images, styles, batch_size=args.batch_size, **options):
            save_image(image, plan.outputs[index])
            now = time.perf_counter()
            records.append({"input": str(plan.inputs[index][0]), "output": str(plan.outputs[index]),
                            "size": list(image.shape[:2]), "seconds": now - last})
            last = now
            progress.update(1)
    return records, settings


def _run_gatys(args: argparse.Namespace, plan: _Plan) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Gatys: each batch optimised in turn (with W&B logging when asked); the records and the settings."""
    style = load_image(plan.style_paths[0])
    stylizer = stylizer_from_args(args)
    facts = {"method": "gatys", "settings": stylizer.description, **stylizer.vgg_facts(), **stylizer.settings()}
    run_config = {"command": NAME, "style": str(plan.style_paths[0]), "content": [str(f) for f, _ in plan.inputs],
                  "description": stylizer.description, **facts}
    wandb_run = start_wandb_for(args, plan.folder, NAME, run_config)
    try:
        records = _stylize_all(plan, stylizer, style, wandb_run, args.log_every)
    finally:
        if wandb_run is not None:
            wandb_run.summary.update(stylizer.vgg_facts())
            wandb_run.finish()
    return records, {"description": stylizer.description, **facts}


def run(args: argparse.Namespace) -> int:
    plan = _plan(args)
    started = time.perf_counter()
    records, settings = (_run_adain if args.method == "adain" else _run_gatys)(args, plan)
    elapsed = time.perf_counter() - started
    summary = {"style": [str(p) for p in plan.style_paths] if len(plan.style_paths) > 1 else str(plan.style_paths[0]),
               **settings, "images": records, "seconds": elapsed,
               "failed": [{"input": str(file), "error": reason} for file, reason in plan.failures]}
    with atomic_write(plan.summary, "w") as handle:
        handle.write(json.dumps(summary, indent=2, default=str) + "\n")
    styles = ", ".join(p.name for p in plan.style_paths)
    print(f"stylized {len(records)} of {len(plan.inputs)} images with {styles} into {plan.where} "
          f"in {elapsed:.1f} s ({settings['description']})")
    return report_failures(plan.failures)
