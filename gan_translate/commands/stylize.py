"""`gan-translate stylize`: Gatys neural style transfer of files, folders or globs with one style image.

Outputs keep the input names (and sub-folders) and the contents' original sizes; ``stylize.json`` beside
them records the settings, the VGG weights used and each image's final loss and time. The Gatys options
(:mod:`gan_translate.commands.gatys_options`) are shared with ``compare``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gan_translate.commands.gatys_options import add_gatys_arguments, stylizer_from_args
from gan_translate.commands.inputs import (
    check_output_folder,
    collect_inputs,
    plan_outputs,
    report_failures,
    resolve_style,
)
from gan_translate.commands.options import add_overwrite, start_wandb_for
from gan_translate.data.io import load_image, save_image
from gan_translate.errors import DataError, UserError
from gan_translate.files import atomic_write
from gan_translate.images import tensor_to_uint8
from gan_translate.style.gatys import StylizeProgress
from gan_translate.style.pipeline import Stylizer

NAME = "stylize"
HELP = "Gatys neural style transfer (VGG19 Gram matrices, L-BFGS): the non-GAN baseline"

SUMMARY_NAME = "stylize.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content", required=True, nargs="+", help="content images: files, folders (recursive) or glob patterns")
    parser.add_argument("--style", required=True, help="the style image (a folder: its first image in sorted order, see --style-index)")
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


@dataclass
class _Plan:
    """What one ``stylize`` run reads and writes."""

    inputs: list[tuple[Path, Path]]
    outputs: list[Path]
    folder: Path  # where the results go
    where: Path  # the output folder, or the one result file (for the summary line)
    summary: Path
    style_path: Path
    failures: list[tuple[Path, str]] = field(default_factory=list)
    batches: list[list[tuple[int, np.ndarray]]] = field(default_factory=list)


def _plan(args: argparse.Namespace) -> _Plan:
    """Check the arguments and outputs, read every content image (bad ones are reported), batch equal sizes."""
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    inputs = collect_inputs(args.content, exclude=args.output)
    outputs, output_dir, named_file = plan_outputs(inputs, args.output, args.suffix)
    check_output_folder(inputs, outputs, output_dir, args.allow_input_dir or named_file, args.overwrite)
    # With --output naming the result file, its settings go beside it, not into a shared stylize.json.
    summary = outputs[0].with_name(f"{outputs[0].stem}.{SUMMARY_NAME}") if named_file else output_dir / SUMMARY_NAME
    if summary.exists() and not args.overwrite:
        raise UserError(f"{summary} already exists; pass --overwrite to replace earlier results")
    where = outputs[0] if named_file else output_dir
    plan = _Plan(inputs, outputs, output_dir, where, summary, resolve_style(args.style, args.style_index))
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


def run(args: argparse.Namespace) -> int:
    plan = _plan(args)
    style = load_image(plan.style_path)
    stylizer = stylizer_from_args(args)
    facts = {**stylizer.vgg_facts(), **stylizer.settings()}
    run_config = {"command": NAME, "style": str(plan.style_path), "content": [str(f) for f, _ in plan.inputs],
                  "description": stylizer.description, **facts}
    wandb_run = start_wandb_for(args, plan.folder, NAME, run_config)
    started = time.perf_counter()
    try:
        records = _stylize_all(plan, stylizer, style, wandb_run, args.log_every)
    finally:
        if wandb_run is not None:
            wandb_run.summary.update(stylizer.vgg_facts())
            wandb_run.finish()
    elapsed = time.perf_counter() - started
    summary = {"style": str(plan.style_path), "settings": stylizer.description, **facts, "images": records,
               "seconds": elapsed, "failed": [{"input": str(file), "error": reason} for file, reason in plan.failures]}
    with atomic_write(plan.summary, "w") as handle:
        handle.write(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"stylized {len(records)} of {len(plan.inputs)} images with {plan.style_path.name} into {plan.where} "
          f"in {elapsed:.1f} s ({stylizer.description})")
    return report_failures(plan.failures)
