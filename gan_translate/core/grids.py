"""The one picture-grid function: uint8 panels in rows and columns with white gaps, optionally each under a label
and over a wrapped footer.

Every grid people look at is made here: the training sample grids (real A | fake B | reconstructed A, one example a
row), the progress and ``generate --grid`` sheets (square-ish), the served ``/v1/generate`` grid, ``compare``'s rows
and ``visualize``'s channel sheets (labelled). Panels are uint8 ``HxW`` / ``HxWxC`` arrays (a uint8 ``NHWC`` array
is a sequence of them): tensors become uint8 first with ``gan_translate.core.images.tensor_to_uint8``, so a grid
shows the same rounded pixels as a saved or logged image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["LABELLED_GAP", "LABELLED_MIN_PANEL", "make_grid"]

#: Gap and smallest panel width of labelled grids: pictures people read side by side (``compare``, ``visualize``).
LABELLED_GAP = 4
LABELLED_MIN_PANEL = 128
#: Gap of unlabelled grids (sample sheets), pixel for pixel: torchvision's ``make_grid(padding=2)`` layout.
PLAIN_GAP = 2
WHITE = 255


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


def _rgb(panel: np.ndarray) -> np.ndarray:
    """A uint8 panel as ``HxWx3``: grey repeated (as torchvision's grids do), an alpha channel dropped."""
    array = np.asarray(panel)
    if array.dtype != np.uint8:
        raise ValueError(f"make_grid expects uint8 panels, got {array.dtype} (convert tensors with tensor_to_uint8)")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"make_grid expects HxW, HxWx1, HxWx3 or HxWx4 panels, got shape {array.shape}")
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[..., :3]


def make_grid(
    panels: Sequence[np.ndarray] | np.ndarray,
    labels: Sequence[str] | None = None,
    footer: str = "",
    *,
    columns: int | None = None,
    square: bool = False,
    by_column: bool = False,
    gap: int | None = None,
    min_panel: int | None = None,
) -> np.ndarray:
    """Panels of one size in a grid -> one uint8 ``HxWx3`` picture on white.

    Args:
        panels: uint8 ``HxW`` / ``HxWxC`` images (or one ``NHWC`` array), in reading order.
        labels: one per panel, drawn centred above it; None for a plain grid.
        footer: text wrapped under the grid (red: the caveats of a comparison).
        columns: panels per row; default one row, or square-ish (``ceil(sqrt(N))``) with ``square``.
        square: the default ``columns`` is ``ceil(sqrt(N))`` (sample sheets) instead of all in one row.
        by_column: each of ``panels`` is a column: an ``NHWC`` batch of N examples, one a row (real A | fake B |
            reconstructed A); ``columns`` is then the number of batches.
        gap: white pixels between and around the panels; default 4 with labels, 2 without.
        min_panel: small panels are enlarged by an integer factor (nearest neighbour, so pixels stay visible) to
            at least this width and the width of every label; default 128 with labels, none without.
    """
    if by_column:
        batches = [np.asarray(batch) for batch in panels]
        if not batches or len({len(batch) for batch in batches}) != 1:
            raise ValueError(f"make_grid(by_column=True) needs batches of one length, got {[len(b) for b in batches]}")
        columns = len(batches)
        panels = [batch[row] for row in range(len(batches[0])) for batch in batches]  # reading order: row by row
    count = len(panels)
    if not count:
        raise ValueError("make_grid needs at least one panel")
    if labels is not None and len(labels) != count:
        raise ValueError(f"make_grid needs one label per panel, got {count} panels and {len(labels)} labels")
    labelled = labels is not None
    gap = (LABELLED_GAP if labelled else PLAIN_GAP) if gap is None else gap
    min_panel = (LABELLED_MIN_PANEL if labelled else 1) if min_panel is None else min_panel
    columns = min(columns or (math.isqrt(count - 1) + 1 if square else count), count)
    rows = math.ceil(count / columns)
    height, width = np.asarray(panels[0]).shape[:2]
    font = _font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max(int(math.ceil(measure.textlength(label, font=font))) for label in labels) + 8 if labels else 0
    factor = max(1, math.ceil(max(min_panel, label_width) / width))
    panel_w, panel_h = width * factor, height * factor
    total_w = columns * panel_w + (columns + 1) * gap
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (10, 2)
    line_h = ascent + descent + 2
    footer_lines = _wrap(footer, total_w - 2 * gap, measure, font) if footer else []
    # A labelled row starts with its labels' line; a plain row with one gap (torchvision's layout).
    header_h = line_h + 2 * gap if labelled else gap
    row_h = header_h + panel_h
    footer_h = len(footer_lines) * line_h + (gap if footer_lines else 0)
    canvas = Image.new("RGB", (total_w, rows * row_h + gap + footer_h), (WHITE, WHITE, WHITE))
    draw = ImageDraw.Draw(canvas)
    for index in range(count):
        row, column = divmod(index, columns)
        x, y = gap + column * (panel_w + gap), row * row_h
        if labels is not None:
            text_w = draw.textlength(labels[index], font=font)
            draw.text((x + (panel_w - text_w) / 2, y + gap), labels[index], fill=(0, 0, 0), font=font)
        image = Image.fromarray(np.ascontiguousarray(_rgb(panels[index])))
        if image.size != (width, height):
            raise ValueError(f"make_grid needs panels of one size, got {width}x{height} and {image.width}x{image.height}")
        if factor > 1:
            image = image.resize((panel_w, panel_h), Image.NEAREST)
        canvas.paste(image, (x, y + header_h))
    for line_index, line in enumerate(footer_lines):
        draw.text((gap, rows * row_h + gap + line_index * line_h), line, fill=(150, 0, 0), font=font)
    return np.array(canvas)  # writable, as every other picture the framework hands out
