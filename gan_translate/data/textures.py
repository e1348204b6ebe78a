"""Procedural style images: stripes, checks, dots, rings, waves and blotches in random palettes (numpy + PIL).

The offline stand-in for WikiArt in the AdaIN quickstart: each texture has strong, distinct colour and texture
statistics, which is what AdaIN's style loss (channel means and standard deviations of VGG features) sees. The same
``(seed, index, size)`` always gives the same image. :func:`ensure_textures` writes a set once (atomically, with a
``textures.json`` recording its parameters) and reuses it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gan_translate.core.errors import DataError
from gan_translate.core.files import atomic_write

__all__ = ["KINDS", "ensure_textures", "texture"]

_META = "textures.json"


def _palette(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` saturated colours far enough apart to read as a pattern."""
    hues = (rng.random() + np.arange(n) / n + rng.normal(0, 0.04, n)) % 1.0
    value = rng.uniform(0.55, 1.0, n)
    saturation = rng.uniform(0.5, 1.0, n)
    k = (np.array([5.0, 3.0, 1.0])[None, :] + hues[:, None] * 6.0) % 6.0
    rgb = value[:, None] - value[:, None] * saturation[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (rgb * 255.0).round().astype(np.uint8)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))


def _stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _grid(size)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(size / 16, size / 4)
    return ((x * np.cos(angle) + y * np.sin(angle)) / period).astype(np.int64)


def _checks(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _grid(size)
    cell = rng.uniform(size / 12, size / 4)
    return (x // cell + y // cell).astype(np.int64)


def _dots(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _grid(size)
    spacing = rng.uniform(size / 10, size / 4)
    radius = spacing * rng.uniform(0.2, 0.45)
    dx, dy = (x % spacing) - spacing / 2, (y % spacing) - spacing / 2
    return (np.hypot(dx, dy) < radius).astype(np.int64) + ((x // spacing + y // spacing) % 2).astype(np.int64) * 2


def _rings(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _grid(size)
    cx, cy = rng.uniform(0, size, 2)
    return (np.hypot(x - cx, y - cy) / rng.uniform(size / 20, size / 6)).astype(np.int64)


def _waves(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _grid(size)
    field = sum(np.sin((x * np.cos(a) + y * np.sin(a)) * 2 * np.pi / rng.uniform(size / 8, size / 2) + rng.uniform(0, 6.3))
                for a in rng.uniform(0, np.pi, 3))
    return np.digitize(field, np.linspace(-2.0, 2.0, 5))


def _blotches(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = rng.random((max(2, size // 16),) * 2)
    fine = np.kron(coarse, np.ones((16, 16)))[:size, :size]
    fine = np.pad(fine, ((0, size - fine.shape[0]), (0, size - fine.shape[1])), mode="edge")
    return np.digitize(fine, np.quantile(fine, [0.25, 0.5, 0.75]))


KINDS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "stripes": _stripes, "checks": _checks, "dots": _dots, "rings": _rings, "waves": _waves, "blotches": _blotches,
}


def texture(seed: int, index: int, size: int) -> np.ndarray:
    """Texture ``index`` of the set ``seed``: uint8 ``size x size x 3``; its kind cycles through :data:`KINDS`."""
    rng = np.random.default_rng([seed, index])
    kind = list(KINDS.values())[index % len(KINDS)]
    labels = kind(rng, size)
    colours = _palette(rng, int(rng.integers(2, 5)))
    image = colours[labels % len(colours)].astype(np.float64)
    image += rng.normal(0, rng.uniform(2, 12), image.shape)  # a little grain: real styles are never flat
    return np.clip(image, 0, 255).round().astype(np.uint8)


def ensure_textures(root: str | Path, count: int = 64, size: int = 128, seed: int = 0) -> Path:
    """``root`` holding ``count`` textures (``000001.png`` ...), written now unless a set with these parameters is
    there already; a folder of other files is refused (one line) rather than mixed into."""
    from PIL import Image

    root = Path(root)
    params = {"count": count, "size": size, "seed": seed, "generator": __name__}
    meta = root / _META
    if meta.is_file():
        if json.loads(meta.read_text()) == params:
            return root
        raise DataError(f"{root} holds textures made with other parameters ({meta}); point style_root at a new folder")
    if root.is_dir() and any(p.name != _META and not p.name.startswith(".") for p in root.iterdir()):
        raise DataError(f"{root} is not empty and is not a texture set: point style_root at an empty or new folder")
    if count < 1 or size < 16:
        raise DataError(f"a texture set needs count >= 1 and size >= 16, got {count} and {size}")
    for index in range(count):
        with atomic_write(root / f"{index + 1:06d}.png") as handle:
            Image.fromarray(texture(seed, index, size)).save(handle, format="PNG")
    with atomic_write(meta, "w") as handle:  # the set counts as complete only once this lands
        handle.write(json.dumps(params, indent=2, sort_keys=True) + "\n")
    return root
