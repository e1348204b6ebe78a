"""`gan-translate compare`: a trained translator and the Gatys baseline side by side on the same inputs.

Writes, under ``--output``:

* ``grids/<name>.png`` - one grid per input: input | translator | Gatys | AdaIN (with an AdaIN model) | ground
  truth (with ``--ground-truth``),
  under a header row naming the columns and over a footer with the Gatys settings (and, with random VGG
  weights, "VGG: random weights (untrained)");
* ``translator/<name>``, ``gatys/<name>`` (and ``adain/<name>``) - the results at the input's size;
* ``results.csv``, ``results.md``, ``results.json`` - per image and method: seconds, the style and content losses
  of the result under the Gatys VGG (the same yardstick for every method: Gram style loss against the style image,
  content loss against the input), and with ground truth L1 / PSNR / SSIM on a [0, 1] scale, plus a mean row per
  method;
* with ``--wandb``: the table (``wandb.Table``) and the grids.

The pictures, metrics and tables are made by :mod:`gan_translate.evaluation.comparison`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gan_translate.commands.gatys_options import add_gatys_arguments, stylizer_from_args
from gan_translate.commands.inputs import check_output_folder, collect_inputs, relative_names, resolve_style, result_name
from gan_translate.commands.options import add_checkpoint, add_direction, add_overwrite, start_wandb_for
from gan_translate.core.errors import UserError
from gan_translate.core.files import atomic_write
from gan_translate.data.io import load_image, save_image
from gan_translate.evaluation.comparison import (
    METRICS,
    csv_text,
    ground_truth_files,
    image_metrics,
    make_grid,
    markdown_text,
    mean_rows,
    table_columns,
    vgg_losses,
)
from gan_translate.inference.style import AdaINStylizer, load_adain_stylizer
from gan_translate.inference.translator import Translator, load_translator
from gan_translate.style.pipeline import Stylizer

NAME = "compare"
HELP = "compare a translator checkpoint (CycleGAN, Pix2Pix, ...) with the Gatys style-transfer baseline (grids, timings, L1/PSNR/SSIM)"

RESULT_FILES = ("results.csv", "results.md", "results.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_checkpoint(parser)
    parser.add_argument("--input", required=True, nargs="+", help="input images: files, folders (recursive) or glob patterns")
    parser.add_argument("--style", required=True, help="style image for Gatys, or a folder (its first image in sorted order, see --style-index)")
    parser.add_argument("--style-index", type=int, default=0, help="which image of a --style folder (sorted)")
    parser.add_argument("--ground-truth", default=None, help="folder with the true target of each input, under the same relative name")
    parser.add_argument("--output", required=True, help="folder for grids/, translator/, gatys/ and results.{csv,md,json}")
    add_direction(parser)
    add_overwrite(parser, "earlier results in the output folder")
    add_gatys_arguments(parser)
    adain = parser.add_argument_group("AdaIN beside them (optional)")
    adain.add_argument("--adain-checkpoint", default=None, help="a trained AdaIN .ckpt or run folder")
    adain.add_argument("--adain-encoder", default=None, help="instead: the AdaIN port's vgg_normalised.pth")
    adain.add_argument("--adain-decoder", default=None, help="instead: the AdaIN port's decoder.pth")
    adain.add_argument("--alpha", type=float, default=1.0, help="AdaIN's content-style trade-off")


@dataclass
class _Plan:
    """The files one ``compare`` run reads and writes."""

    output: Path
    inputs: list[tuple[Path, Path]]
    names: list[Path]
    grids: list[Path]
    translated: list[Path]
    gatys: list[Path]
    adain: list[Path] | None
    truth: list[Path] | None
    style_path: Path


def _plan(args: argparse.Namespace) -> _Plan:
    """The inputs and every output path, checked before any model is loaded (nothing is overwritten)."""
    output = Path(args.output)
    inputs = collect_inputs(args.input, exclude=output)
    names = relative_names(inputs)
    plan = _Plan(
        output, inputs, names,
        grids=[output / "grids" / name.with_suffix(".png") for name in names],
        translated=[output / "translator" / result_name(name) for name in names],
        gatys=[output / "gatys" / result_name(name) for name in names],
        adain=[output / "adain" / result_name(name) for name in names] if _adain_asked(args) else None,
        truth=ground_truth_files(names, Path(args.ground_truth)) if args.ground_truth else None,
        style_path=resolve_style(args.style, args.style_index),
    )
    if output.resolve() in {file.resolve().parent for file, _ in inputs}:
        raise UserError(f"output folder {output} holds input images; choose another --output")
    for outputs in (plan.grids, plan.translated, plan.gatys, *([plan.adain] if plan.adain else [])):
        check_output_folder(inputs, outputs, output, True, args.overwrite)
    for result_file in RESULT_FILES:
        if (output / result_file).exists() and not args.overwrite:
            raise UserError(f"{output / result_file} already exists; pass --overwrite to replace earlier results")
    return plan


def _adain_asked(args: argparse.Namespace) -> bool:
    return bool(args.adain_checkpoint or args.adain_encoder or args.adain_decoder)


@dataclass
class _Methods:
    """The methods compared, and how their pictures are labelled."""

    translator: Translator
    stylizer: Stylizer
    style: np.ndarray
    direction: str
    adain: AdaINStylizer | None = None
    alpha: float = 1.0
    labels: list[str] = field(default_factory=list)
    footer: str = ""

    @property
    def random_vgg(self) -> bool:
        return not self.stylizer.extractor.pretrained


def _methods(args: argparse.Namespace, plan: _Plan) -> _Methods:
    translator = load_translator(args.checkpoint, direction=args.direction, device=args.device, command=NAME)
    methods = _Methods(translator, stylizer_from_args(args), load_image(plan.style_path), args.direction, alpha=args.alpha)
    methods.labels = ["input", f"{translator.model_name} {args.direction}", "Gatys (random VGG!)" if methods.random_vgg else "Gatys"]
    if _adain_asked(args):
        methods.adain = load_adain_stylizer(args.adain_checkpoint, args.adain_encoder, args.adain_decoder, args.device)
        methods.labels.append("AdaIN" if methods.adain.model.pretrained else "AdaIN (random VGG!)")
    methods.labels += ["ground truth"] if plan.truth else []
    methods.footer = f"Gatys: {methods.stylizer.description}; style {plan.style_path.name}"
    if methods.random_vgg:
        methods.footer += ". The Gatys column is NOT style transfer (untrained features), only a pipeline check."
    return methods


def _timed(call: Any, *args: Any, **kwargs: Any) -> tuple[np.ndarray, float]:
    tick = time.perf_counter()
    result = call(*args, **kwargs)
    return result, time.perf_counter() - tick


def _compare_one(index: int, plan: _Plan, methods: _Methods) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Every method on input ``index``, timed; saves the results and the grid; returns the table rows and grid."""
    file, name, facts = plan.inputs[index][0], str(plan.names[index]), methods.stylizer.vgg_facts()
    image = load_image(file)
    results = {"translator": _timed(methods.translator, image), "gatys": _timed(methods.stylizer, image, methods.style)}
    if methods.adain is not None:
        results["adain"] = _timed(methods.adain, image, methods.style, alpha=methods.alpha)
    rows = [{"image": name, "method": method, "seconds": seconds, **facts,
             **vgg_losses(methods.stylizer, output, image, methods.style)} for method, (output, seconds) in results.items()]
    panels = [image, *(output for output, _ in results.values())]
    if plan.truth is not None:
        target = load_image(plan.truth[index])
        if target.shape[:2] != image.shape[:2]:
            raise UserError(f"ground truth {plan.truth[index]} is {target.shape[1]}x{target.shape[0]} but {file} is "
                            f"{image.shape[1]}x{image.shape[0]}; they must have the same size")
        panels.append(target)
        for row, (output, _) in zip(rows, results.values()):
            row.update(image_metrics(output, target))
        rows.append({"image": name, "method": "input (unchanged)", "seconds": None, **image_metrics(image, target), **facts})
    grid = make_grid(panels, methods.labels, methods.footer)
    for folder, (output, _) in zip((plan.translated, plan.gatys, plan.adain), results.values()):
        save_image(output, folder[index])  # type: ignore[index]
    save_image(grid, plan.grids[index])
    return rows, grid


def _report(args: argparse.Namespace, plan: _Plan, methods: _Methods, rows: list[dict[str, Any]], elapsed: float) -> tuple[str, list[dict[str, Any]]]:
    """Write results.{csv,md,json}; returns the Markdown table and the rows with their means."""
    names = ["translator", "gatys"] + (["adain"] if methods.adain else []) + (["input (unchanged)"] if plan.truth else [])
    facts = methods.stylizer.vgg_facts()
    table = [{**row, "vgg_weights": row.get("vgg_weights", facts["vgg_weights"])} for row in rows + mean_rows(rows, names)]
    with_metrics = plan.truth is not None
    header = [
        f"- translator: `{methods.labels[1]}` from `{args.checkpoint}`",
        f"- Gatys: {methods.stylizer.description}",
        *([f"- AdaIN: {methods.adain.description} ({methods.adain.source}), alpha {methods.alpha}"] if methods.adain else []),
        "- style / content loss: of each result under the Gatys VGG (Gram matrices against the style image, features "
        "against the input), the same yardstick for every method",
        f"- style image: `{plan.style_path}`" + (f"; ground truth: `{args.ground_truth}`" if with_metrics else "; no ground truth"),
        f"- device: {methods.stylizer.extractor.mean.device}; times are per image, translator after one warm-up pass",
    ]
    if with_metrics:
        header.append("- L1, PSNR (data range 1) and SSIM on [0, 1] pixels against the ground truth; "
                      "`input (unchanged)` is the input itself, the do-nothing baseline")
    if methods.random_vgg:
        header.insert(0, f"**{facts['vgg']}**: the Gatys rows are a pipeline check, not a style-transfer result.")
    markdown = markdown_text(table, with_metrics, header)
    config = _run_config(args, plan, methods)
    results = {**config, "seconds_total": elapsed, "rows": table,
               "gatys": {"steps": methods.stylizer.config.steps, "optimizer": methods.stylizer.config.optimizer,
                         "sizes": list(methods.stylizer.sizes)}}
    for name, text in (("results.csv", csv_text(table, with_metrics)), ("results.md", markdown),
                       ("results.json", json.dumps(results, indent=2, default=str) + "\n")):
        with atomic_write(plan.output / name, "w", newline="") as handle:
            handle.write(text)
    return markdown, table


def _run_config(args: argparse.Namespace, plan: _Plan, methods: _Methods) -> dict[str, Any]:
    return {"command": NAME, "checkpoint": str(args.checkpoint), "direction": args.direction, "style": str(plan.style_path),
            "ground_truth": args.ground_truth, "gatys_settings": methods.stylizer.description, **methods.stylizer.vgg_facts()}


def _log_to_wandb(wandb_run: Any, table: list[dict[str, Any]], grids: list[tuple[str, np.ndarray]], methods: _Methods,
                  with_metrics: bool) -> None:
    import wandb

    columns = table_columns(with_metrics)
    wandb_run.log({
        "compare/results": wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in table]),
        **{f"compare/grid/{name}": wandb.Image(grid, caption=methods.footer) for name, grid in grids},
    })
    for mean in (row for row in table if row["image"] == "mean"):
        for key in ("seconds", *METRICS):
            if mean.get(key) is not None:
                wandb_run.summary[f"{mean['method']}/{key}"] = mean[key]
    wandb_run.summary.update(methods.stylizer.vgg_facts())


def run(args: argparse.Namespace) -> int:
    plan = _plan(args)
    methods = _methods(args, plan)
    wandb_run = start_wandb_for(args, plan.output, NAME, _run_config(args, plan, methods))
    rows: list[dict[str, Any]] = []
    grids: list[tuple[str, np.ndarray]] = []
    started = time.perf_counter()
    try:
        methods.translator(load_image(plan.inputs[0][0]))  # the first call pays for allocations: not in the timings
        for index in tqdm(range(len(plan.inputs)), desc="compare", unit="img", disable=None):
            new_rows, grid = _compare_one(index, plan, methods)
            rows.extend(new_rows)
            grids.append((str(plan.names[index]), grid))
        markdown, table = _report(args, plan, methods, rows, time.perf_counter() - started)
        if wandb_run is not None:
            _log_to_wandb(wandb_run, table, grids, methods, plan.truth is not None)
    finally:
        if wandb_run is not None:
            wandb_run.finish()
    print(markdown, end="")
    print(f"compared {len(plan.inputs)} images in {time.perf_counter() - started:.1f} s; grids and results in {plan.output}")
    if methods.random_vgg:
        print(f"warning: {methods.stylizer.vgg_facts()['vgg']}: the Gatys results are not style transfer", file=sys.stderr)
    return 0
