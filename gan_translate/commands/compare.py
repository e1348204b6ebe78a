"""`gan-translate compare`: a trained translator and the Gatys baseline side by side on the same inputs.

Writes, under ``--output``:

* ``grids/<name>.png`` - one grid per input: input | translator | Gatys | ground truth (with ``--ground-truth``),
  under a header row naming the columns and over a footer with the Gatys settings (and, with random VGG
  weights, "VGG: random weights (untrained)");
* ``translator/<name>`` and ``gatys/<name>`` - the two results at the input's size;
* ``results.csv``, ``results.md``, ``results.json`` - per image and method: seconds, and with ground truth
  L1 / PSNR / SSIM on a [0, 1] scale (``gan_translate.metrics``), plus a mean row per method;
* with ``--wandb``: the table (``wandb.Table``) and the grids.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from gan_translate.commands.inputs import check_output_folder, collect_inputs, relative_names, result_name
from gan_translate.commands.stylize import (
    _write_json,
    add_gatys_arguments,
    build_stylizer,
    resolve_style,
    start_wandb,
    vgg_fields,
)
from gan_translate.errors import UserError

NAME = "compare"
HELP = "compare a CycleGAN / Pix2Pix checkpoint with the Gatys style-transfer baseline (grids, timings, L1/PSNR/SSIM)"

RESULT_FILES = ("results.csv", "results.md", "results.json")
METRICS = ("l1", "psnr", "ssim")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a .ckpt file, or a run folder (its newest last.ckpt is used)")
    parser.add_argument("--input", required=True, nargs="+", help="input images: files, folders (recursive) or glob patterns")
    parser.add_argument("--style", required=True, help="style image for Gatys, or a folder (its first image in sorted order, see --style-index)")
    parser.add_argument("--style-index", type=int, default=0, help="which image of a --style folder (sorted)")
    parser.add_argument("--ground-truth", default=None, help="folder with the true target of each input, under the same relative name")
    parser.add_argument("--output", required=True, help="folder for grids/, translator/, gatys/ and results.{csv,md,json}")
    parser.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="translation direction")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results in the output folder")
    add_gatys_arguments(parser)


def _ground_truth_files(names: Sequence[Path], folder: Path) -> list[Path]:
    """The file of each input in ``folder``: same relative name, or same stem with another image extension."""
    from gan_translate.data.io import IMG_EXTENSIONS

    if not folder.is_dir():
        raise UserError(f"--ground-truth folder not found: {folder}")
    found = []
    for name in names:
        path = folder / name
        if not path.is_file():
            others = [path.with_suffix(ext) for ext in IMG_EXTENSIONS] + [path.with_suffix(ext.upper()) for ext in IMG_EXTENSIONS]
            path = next((p for p in others if p.is_file()), path)
        if not path.is_file():
            raise UserError(f"no ground truth for {name}: expected {folder / name}")
        found.append(path)
    return found


def _image_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """L1 / PSNR / SSIM of one uint8 image against its ground truth, on a [0, 1] scale."""
    import torch

    from gan_translate.data.io import uint8_to_tensor
    from gan_translate.metrics import paired_metrics, to_unit_range

    metrics = paired_metrics()
    # contiguous: torchmetrics views the tensors flat, and uint8_to_tensor returns a permuted view
    prediction_t = to_unit_range(uint8_to_tensor(prediction)[None]).contiguous()
    target_t = to_unit_range(uint8_to_tensor(target)[None]).contiguous()
    metrics.update(prediction_t, target_t)
    with torch.no_grad():
        values = metrics.compute()
    return {key: float(value) for key, value in values.items()}


# -------------------------------------------------------------------------------------------- the grid


def _font():  # noqa: ANN202 - a PIL font
    from PIL import ImageFont

    return ImageFont.load_default()


def _wrap(text: str, width: int, draw: Any, font: Any) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}".strip()
            if line and draw.textlength(candidate, font=font) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def make_grid(panels: Sequence[np.ndarray], labels: Sequence[str], footer: str = "", min_panel: int = 128) -> np.ndarray:
    """Panels side by side (uint8 HxWx3, one size) under a header naming them, over a wrapped footer.

    Small images are enlarged by an integer factor (nearest neighbour, so pixels stay visible) until a
    panel is at least ``min_panel`` px wide and every label fits.
    """
    from PIL import Image, ImageDraw

    height, width = panels[0].shape[:2]
    font = _font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max(int(math.ceil(measure.textlength(label, font=font))) for label in labels) + 8
    factor = max(1, math.ceil(max(min_panel, label_width) / width))
    panel_w, panel_h = width * factor, height * factor
    gap = 4
    total_w = len(panels) * panel_w + (len(panels) + 1) * gap
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (10, 2)
    line_h = ascent + descent + 2
    footer_lines = _wrap(footer, total_w - 2 * gap, measure, font) if footer else []
    header_h = line_h + 2 * gap
    footer_h = len(footer_lines) * line_h + (gap if footer_lines else 0)
    canvas = Image.new("RGB", (total_w, header_h + panel_h + gap + footer_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for index, (panel, label) in enumerate(zip(panels, labels)):
        x = gap + index * (panel_w + gap)
        text_w = draw.textlength(label, font=font)
        draw.text((x + (panel_w - text_w) / 2, gap), label, fill=(0, 0, 0), font=font)
        image = Image.fromarray(np.ascontiguousarray(panel[..., :3]))
        if factor > 1:
            image = image.resize((panel_w, panel_h), Image.NEAREST)
        canvas.paste(image, (x, header_h))
    for line_index, line in enumerate(footer_lines):
        draw.text((gap, header_h + panel_h + gap + line_index * line_h), line, fill=(150, 0, 0), font=font)
    return np.asarray(canvas)


# -------------------------------------------------------------------------------------------- tables


def _mean_rows(rows: list[dict[str, Any]], methods: Sequence[str]) -> list[dict[str, Any]]:
    means = []
    for method in methods:
        subset = [row for row in rows if row["method"] == method]
        mean: dict[str, Any] = {"image": "mean", "method": method}
        for key in ("seconds", *METRICS):
            values = [row[key] for row in subset if isinstance(row.get(key), (int, float))]
            mean[key] = sum(values) / len(values) if values else None
        means.append(mean)
    return means


def _fmt(value: Any, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if key in ("l1", "ssim", "seconds") else f"{value:.2f}"
    return str(value)


def _table_columns(with_metrics: bool) -> list[str]:
    return ["image", "method", "seconds", *(METRICS if with_metrics else ()), "vgg_weights"]


def _csv_text(rows: list[dict[str, Any]], with_metrics: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_table_columns(with_metrics), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _fmt(row.get(key), key) for key in _table_columns(with_metrics)})
    return buffer.getvalue()


def _markdown_text(rows: list[dict[str, Any]], with_metrics: bool, header_lines: Sequence[str]) -> str:
    titles = {"image": "image", "method": "method", "seconds": "time / image (s)", "l1": "L1 ↓", "psnr": "PSNR (dB) ↑",
              "ssim": "SSIM ↑"}
    columns = [c for c in _table_columns(with_metrics) if c != "vgg_weights"]
    lines = ["# gan-translate compare", "", *header_lines, ""]
    lines.append("| " + " | ".join(titles[c] for c in columns) + " |")
    lines.append("|" + "|".join("---" if c in ("image", "method") else "---:" for c in columns) + "|")
    for row in rows:
        cells = [_fmt(row.get(c), c) for c in columns]
        if row["image"] == "mean":
            cells = [f"**{cell}**" if cell else cell for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -------------------------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    from gan_translate.data.io import load_image, save_image
    from gan_translate.inference import load_translator

    output_dir = Path(args.output)
    inputs = collect_inputs(args.input, exclude=output_dir)
    names = relative_names(inputs)
    grids = [output_dir / "grids" / name.with_suffix(".png") for name in names]
    translated = [output_dir / "translator" / result_name(name) for name in names]
    gatys = [output_dir / "gatys" / result_name(name) for name in names]
    if output_dir.resolve() in {file.resolve().parent for file, _ in inputs}:
        raise UserError(f"output folder {output_dir} holds input images; choose another --output")
    for outputs in (grids, translated, gatys):
        check_output_folder(inputs, outputs, output_dir, True, args.overwrite)
    for result_file in RESULT_FILES:
        if (output_dir / result_file).exists() and not args.overwrite:
            raise UserError(f"{output_dir / result_file} already exists; pass --overwrite to replace earlier results")
    truth = _ground_truth_files(names, Path(args.ground_truth)) if args.ground_truth else None
    style_path = resolve_style(args.style, args.style_index)
    style = load_image(style_path)

    translator = load_translator(args.checkpoint, direction=args.direction, device=args.device)
    stylizer = build_stylizer(args)
    vgg = vgg_fields(stylizer.extractor)
    random_vgg = not stylizer.extractor.pretrained
    translator_label = f"{translator.model_name} {args.direction}"
    gatys_label = "Gatys (random VGG!)" if random_vgg else "Gatys"
    labels = ["input", translator_label, gatys_label] + (["ground truth"] if truth else [])
    footer = f"Gatys: {stylizer.description}; style {style_path.name}"
    if random_vgg:
        footer += ". The Gatys column is NOT style transfer (untrained features), only a pipeline check."

    methods = ["translator", "gatys"] + (["input (unchanged)"] if truth else [])
    run_config = {"command": NAME, "checkpoint": str(args.checkpoint), "direction": args.direction, "style": str(style_path),
                  "ground_truth": args.ground_truth, "gatys_settings": stylizer.description, **vgg}
    wandb_run = start_wandb(args, output_dir, NAME, run_config)
    rows: list[dict[str, Any]] = []
    grid_images: list[tuple[str, np.ndarray]] = []
    started = time.perf_counter()
    try:
        warmed_up = False
        for index, (file, _) in enumerate(tqdm(inputs, desc="compare", unit="img", disable=None)):
            image = load_image(file)
            if not warmed_up:  # the first call pays for allocation / kernel selection: keep it out of the timings
                translator(image)
                warmed_up = True
            tick = time.perf_counter()
            translation = translator(image)
            translator_seconds = time.perf_counter() - tick
            tick = time.perf_counter()
            stylized = stylizer(image, style)
            gatys_seconds = time.perf_counter() - tick

            panels = [image, translation, stylized]
            row_t = {"image": str(names[index]), "method": "translator", "seconds": translator_seconds, **vgg}
            row_g = {"image": str(names[index]), "method": "gatys", "seconds": gatys_seconds, **vgg}
            new_rows = [row_t, row_g]
            if truth is not None:
                target = load_image(truth[index])
                if target.shape[:2] != image.shape[:2]:
                    raise UserError(
                        f"ground truth {truth[index]} is {target.shape[1]}x{target.shape[0]} but {file} is "
                        f"{image.shape[1]}x{image.shape[0]}; they must have the same size"
                    )
                panels.append(target)
                row_t.update(_image_metrics(translation, target))
                row_g.update(_image_metrics(stylized, target))
                new_rows.append({"image": str(names[index]), "method": "input (unchanged)", "seconds": None,
                                 **_image_metrics(image, target), **vgg})
            grid = make_grid(panels, labels, footer)
            save_image(translation, translated[index])
            save_image(stylized, gatys[index])
            save_image(grid, grids[index])
            rows.extend(new_rows)
            grid_images.append((str(names[index]), grid))

        elapsed = time.perf_counter() - started
        table = rows + _mean_rows(rows, methods)
        for row in table:
            row.setdefault("vgg_weights", vgg["vgg_weights"])
        with_metrics = truth is not None
        header = [
            f"- translator: `{translator_label}` from `{args.checkpoint}`",
            f"- Gatys: {stylizer.description}",
            f"- style image: `{style_path}`" + (f"; ground truth: `{args.ground_truth}`" if with_metrics else "; no ground truth"),
            f"- device: {stylizer.extractor.mean.device}; times are per image, translator after one warm-up pass",
        ]
        if with_metrics:
            header.append("- L1, PSNR (data range 1) and SSIM on [0, 1] pixels against the ground truth; "
                          "`input (unchanged)` is the input itself, the do-nothing baseline")
        if random_vgg:
            header.insert(0, f"**{vgg['vgg']}**: the Gatys rows are a pipeline check, not a style-transfer result.")
        output_dir.mkdir(parents=True, exist_ok=True)
        _write_text(output_dir / "results.csv", _csv_text(table, with_metrics))
        markdown = _markdown_text(table, with_metrics, header)
        _write_text(output_dir / "results.md", markdown)
        _write_json(output_dir / "results.json", {
            **run_config, "seconds_total": elapsed, "rows": table,
            "gatys": {"steps": stylizer.config.steps, "optimizer": stylizer.config.optimizer, "sizes": list(stylizer.sizes)},
        })
        if wandb_run is not None:
            import wandb

            columns = _table_columns(with_metrics)
            wandb_run.log({
                "compare/results": wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in table]),
                **{f"compare/grid/{name}": wandb.Image(grid, caption=footer) for name, grid in grid_images},
            })
            for mean in _mean_rows(rows, methods):
                for key in ("seconds", *METRICS):
                    if mean.get(key) is not None:
                        wandb_run.summary[f"{mean['method']}/{key}"] = mean[key]
            wandb_run.summary.update(vgg)
    finally:
        if wandb_run is not None:
            wandb_run.finish()

    print(markdown, end="")
    print(f"compared {len(inputs)} images in {elapsed:.1f} s; grids and results in {output_dir}")
    if random_vgg:
        print(f"warning: {vgg['vgg']}: the Gatys results are not style transfer", file=sys.stderr)
    return 0
