"""A translator and the Gatys baseline side by side: labelled picture rows, per-image metrics and result tables.

``gan-translate compare`` puts these together; they work on uint8 images and plain row dicts, so a notebook can
use them too.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gan_translate.data.io import IMG_EXTENSIONS
from gan_translate.errors import UserError
from gan_translate.images import to_unit_range, uint8_to_tensor
from gan_translate.metrics import paired_metrics

__all__ = [
    "METRICS",
    "csv_text",
    "ground_truth_files",
    "image_metrics",
    "make_grid",
    "markdown_text",
    "mean_rows",
    "table_columns",
]

#: The paired metrics a comparison with ground truth reports.
METRICS = ("l1", "psnr", "ssim")


def ground_truth_files(names: Sequence[Path], folder: Path) -> list[Path]:
    """The file of each input in ``folder``: same relative name, or same stem with another image extension."""
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


def image_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """L1 / PSNR / SSIM of one uint8 image against its ground truth, on a [0, 1] scale."""
    metrics = paired_metrics()
    # contiguous: torchmetrics views the tensors flat, and uint8_to_tensor returns a permuted view
    prediction_t = to_unit_range(uint8_to_tensor(prediction)[None]).contiguous()
    target_t = to_unit_range(uint8_to_tensor(target)[None]).contiguous()
    metrics.update(prediction_t, target_t)
    with torch.no_grad():
        values = metrics.compute()
    return {key: float(value) for key, value in values.items()}


# -------------------------------------------------------------------------------------------- the grid


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
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


def mean_rows(rows: list[dict[str, Any]], methods: Sequence[str]) -> list[dict[str, Any]]:
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


def table_columns(with_metrics: bool) -> list[str]:
    return ["image", "method", "seconds", *(METRICS if with_metrics else ()), "vgg_weights"]


def csv_text(rows: list[dict[str, Any]], with_metrics: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=table_columns(with_metrics), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _fmt(row.get(key), key) for key in table_columns(with_metrics)})
    return buffer.getvalue()


def markdown_text(rows: list[dict[str, Any]], with_metrics: bool, header_lines: Sequence[str]) -> str:
    titles = {"image": "image", "method": "method", "seconds": "time / image (s)", "l1": "L1 ↓", "psnr": "PSNR (dB) ↑",
              "ssim": "SSIM ↑"}
    columns = [c for c in table_columns(with_metrics) if c != "vgg_weights"]
    lines = ["# gan-translate compare", "", *header_lines, ""]
    lines.append("| " + " | ".join(titles[c] for c in columns) + " |")
    lines.append("|" + "|".join("---" if c in ("image", "method") else "---:" for c in columns) + "|")
    for row in rows:
        cells = [_fmt(row.get(c), c) for c in columns]
        if row["image"] == "mean":
            cells = [f"**{cell}**" if cell else cell for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
