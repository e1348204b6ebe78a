"""A translator and the Gatys baseline side by side: labelled picture rows, per-image metrics and result tables.

``gan-translate compare`` puts these together; they work on uint8 images and plain row dicts, so a notebook can
use them too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_translate.core.errors import UserError
from gan_translate.core.grids import make_grid
from gan_translate.core.images import match_channels, to_unit_range, uint8_to_tensor
from gan_translate.data.io import IMG_EXTENSIONS
from gan_translate.metrics import paired_metrics
from gan_translate.style.gatys import MIN_SIDE, resize_long_side
from gan_translate.style.losses import content_loss, gram_matrix, style_loss
from gan_translate.style.pipeline import Stylizer

__all__ = [
    "METRICS",
    "csv_text",
    "ground_truth_files",
    "image_metrics",
    "make_grid",
    "markdown_text",
    "mean_rows",
    "table_columns",
    "vgg_losses",
]

#: The paired metrics a comparison with ground truth reports.
METRICS = ("l1", "psnr", "ssim")
#: The losses every result is scored with under the same VGG (:func:`vgg_losses`).
VGG_LOSSES = ("style_loss", "content_loss")


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


@torch.no_grad()
def vgg_losses(stylizer: Stylizer, output: np.ndarray, content: np.ndarray, style: np.ndarray) -> dict[str, float]:
    """The Gatys losses (unweighted) of ``output`` under ``stylizer``'s VGG: Gram style loss against ``style`` (scaled
    to the output's long side) and content loss against ``content``, at the output's size."""
    extractor, config = stylizer.extractor, stylizer.config
    device = next(iter(extractor.buffers())).device

    def tensor(image: np.ndarray) -> torch.Tensor:
        return match_channels(uint8_to_tensor(np.asarray(image)), 3)[None].to(device)

    out = tensor(output)
    features = extractor(out)
    style_features = extractor(resize_long_side(tensor(style), max(out.shape[-2:]), MIN_SIDE))
    content_features = extractor(tensor(content))
    grams = {layer: gram_matrix(style_features[layer]) for layer in config.style_layers}
    return {
        "style_loss": float(style_loss(features, grams, config.style_layer_weights)[0]),
        "content_loss": float(content_loss(features, {k: content_features[k] for k in config.content_layers})[0]),
    }


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


# -------------------------------------------------------------------------------------------- tables


def mean_rows(rows: list[dict[str, Any]], methods: Sequence[str]) -> list[dict[str, Any]]:
    means = []
    for method in methods:
        subset = [row for row in rows if row["method"] == method]
        mean: dict[str, Any] = {"image": "mean", "method": method}
        for key in ("seconds", *VGG_LOSSES, *METRICS):
            values = [row[key] for row in subset if isinstance(row.get(key), (int, float))]
            mean[key] = sum(values) / len(values) if values else None
        means.append(mean)
    return means


def _fmt(value: Any, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if key in VGG_LOSSES:
            return f"{value:.3g}"
        return f"{value:.4f}" if key in ("l1", "ssim", "seconds") else f"{value:.2f}"
    return str(value)


def table_columns(with_metrics: bool) -> list[str]:
    return ["image", "method", "seconds", *VGG_LOSSES, *(METRICS if with_metrics else ()), "vgg_weights"]


def csv_text(rows: list[dict[str, Any]], with_metrics: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=table_columns(with_metrics), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _fmt(row.get(key), key) for key in table_columns(with_metrics)})
    return buffer.getvalue()


def markdown_text(rows: list[dict[str, Any]], with_metrics: bool, header_lines: Sequence[str]) -> str:
    titles = {"image": "image", "method": "method", "seconds": "time / image (s)", "l1": "L1 ↓", "psnr": "PSNR (dB) ↑",
              "ssim": "SSIM ↑", "style_loss": "style loss ↓", "content_loss": "content loss ↓"}
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
