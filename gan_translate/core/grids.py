"""Labelled picture grids: uint8 panels under a header naming each, over a wrapped footer (the command outputs
people look at: ``compare``'s rows, ``visualize``'s channel sheets)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["make_grid"]

GAP = 4


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


def make_grid(
    panels: Sequence[np.ndarray], labels: Sequence[str], footer: str = "", min_panel: int = 128, columns: int | None = None
) -> np.ndarray:
    """Panels (uint8 HxWx3, one size) in rows of ``columns`` (default: one row), each under its label, over a
    wrapped footer.

    Small images are enlarged by an integer factor (nearest neighbour, so pixels stay visible) until a
    panel is at least ``min_panel`` px wide and every label fits.
    """
    if len(panels) != len(labels) or not panels:
        raise ValueError(f"make_grid needs one label per panel, got {len(panels)} panels and {len(labels)} labels")
    columns = min(columns or len(panels), len(panels))
    rows = math.ceil(len(panels) / columns)
    height, width = panels[0].shape[:2]
    font = _font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max(int(math.ceil(measure.textlength(label, font=font))) for label in labels) + 8
    factor = max(1, math.ceil(max(min_panel, label_width) / width))
    panel_w, panel_h = width * factor, height * factor
    total_w = columns * panel_w + (columns + 1) * GAP
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (10, 2)
    line_h = ascent + descent + 2
    footer_lines = _wrap(footer, total_w - 2 * GAP, measure, font) if footer else []
    header_h = line_h + 2 * GAP
    row_h = header_h + panel_h
    footer_h = len(footer_lines) * line_h + (GAP if footer_lines else 0)
    canvas = Image.new("RGB", (total_w, rows * row_h + GAP + footer_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for index, (panel, label) in enumerate(zip(panels, labels)):
        x = GAP + (index % columns) * (panel_w + GAP)
        y = (index // columns) * row_h
        text_w = draw.textlength(label, font=font)
        draw.text((x + (panel_w - text_w) / 2, y + GAP), label, fill=(0, 0, 0), font=font)
        image = Image.fromarray(np.ascontiguousarray(panel[..., :3]))
        if factor > 1:
            image = image.resize((panel_w, panel_h), Image.NEAREST)
        canvas.paste(image, (x, y + header_h))
    for line_index, line in enumerate(footer_lines):
        draw.text((GAP, rows * row_h + GAP + line_index * line_h), line, fill=(150, 0, 0), font=font)
    return np.asarray(canvas)
