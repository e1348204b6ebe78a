"""Procedural two-domain scenes with exact ground truth (numpy + PIL only, no torch).

A :class:`Scene` is a background colour plus 2-4 shapes (circles, rectangles, triangles) with integer
geometry, later shapes drawn on top of earlier ones. One scene is rendered four ways:

* :func:`render_a` - domain A: flat warm colours (beige background, red/orange/yellow shapes);
* :func:`render_b` - domain B: the same scene with the R and B channels swapped (warm -> cool) and thin
  diagonal stripes, 25% darker, inside every shape. A -> B is a simple, learnable function of the image;
* :func:`render_labels` - pix2pix input: background black, each shape a flat saturated colour by type;
* :func:`render_photo` - pix2pix target: colour by type, vertical shading and a dark outline on a fixed
  warm background. It is computed from the label map alone (:func:`photo_from_labels`), so the paired
  task is exactly learnable and pixel-aligned.

:func:`make_synthetic` writes an unpaired set (trainA/trainB from *different* scenes, as with real data)
whose test images come with ground truth (testA_gt, testB_gt), plus an aligned pix2pix set. Rendering
uses PIL's aliasing-free drawing on integer coordinates and integer colour arithmetic, so the same seed
gives byte-identical files.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gan_translate.core.errors import DataError, UserError
from gan_translate.core.files import atomic_write

__all__ = [
    "KINDS",
    "SPLITS",
    "SYNTHETIC_VERSION",
    "Scene",
    "Shape",
    "ensure_synthetic",
    "make_synthetic",
    "photo_from_labels",
    "random_scene",
    "render_a",
    "render_b",
    "render_labels",
    "render_photo",
    "scene_for",
]

#: Bumped whenever the rendering changes, so an old set on disk is not mistaken for a current one.
SYNTHETIC_VERSION = 1
MIN_SIZE = 16

KINDS: tuple[str, ...] = ("circle", "rect", "triangle")

#: Random stream of every split: each image has its own generator seeded with (seed, stream, index), so
#: trainA and trainB hold different scenes and a larger n_train keeps the first images unchanged.
SPLITS: dict[str, int] = {
    "trainA": 0,
    "trainB": 1,
    "testA": 2,
    "testB": 3,
    "paired/train": 4,
    "paired/val": 5,
    "paired/test": 6,
}

Colour = tuple[int, int, int]

BACKGROUND_A: Colour = (225, 205, 170)  # beige; jittered per scene
WARM_PALETTE: tuple[Colour, ...] = (
    (200, 40, 35),  # red
    (175, 55, 40),  # brick
    (225, 75, 45),  # vermilion
    (235, 120, 40),  # orange
    (245, 160, 50),  # amber
    (240, 200, 60),  # yellow
)
# Jitters are small enough that no shape colour can reach the background colour (their B channels
# stay > 80 apart), so foreground masks can be read back from the images.
BACKGROUND_JITTER = 12
SHAPE_JITTER = 12

# Index 0 is the background, then one entry per KINDS.
LABEL_COLOURS: tuple[Colour, ...] = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
PHOTO_COLOURS: tuple[Colour, ...] = ((238, 226, 204), (205, 45, 35), (235, 130, 35), (240, 205, 55))

_FILE_NAME = "{:06d}.png"
_META_NAME = "synthetic.json"
# Written first and removed last: a folder holding it is an interrupted generation of ours.
_PARTIAL_NAME = ".synthetic-partial"
_GENERATOR = "gan_translate.data.synthetic"
_TOP_LEVEL = ("trainA", "trainB", "testA", "testB", "testA_gt", "testB_gt", "paired")


@dataclass(frozen=True)
class Shape:
    """One shape: ``kind`` in :data:`KINDS`, integer ``points`` and its domain-A ``colour``.

    Circles and rectangles hold their bounding box ``((x0, y0), (x1, y1))``, triangles their three
    vertices, all in pixels of the scene's ``size``.
    """

    kind: str
    points: tuple[tuple[int, int], ...]
    colour: Colour


@dataclass(frozen=True)
class Scene:
    """A background colour and shapes (drawn in order, later on top), laid out for ``size`` pixels."""

    size: int
    background: Colour
    shapes: tuple[Shape, ...]


def _jitter(rng: np.random.Generator, colour: Colour, amount: int) -> Colour:
    values = np.asarray(colour) + rng.integers(-amount, amount + 1, size=3)
    r, g, b = (int(v) for v in np.clip(values, 0, 255))
    return (r, g, b)


def random_scene(rng: np.random.Generator, size: int) -> Scene:
    """Draw a scene for ``size`` x ``size`` pixels: a warm background and 2-4 warm shapes that may overlap."""
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE}, got {size}")
    background = _jitter(rng, BACKGROUND_A, BACKGROUND_JITTER)
    shapes = []
    for _ in range(int(rng.integers(2, 5))):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        colour = _jitter(rng, WARM_PALETTE[int(rng.integers(len(WARM_PALETTE)))], SHAPE_JITTER)
        # Centres keep every shape at least partly inside the image.
        cx, cy = rng.uniform(0.15, 0.85, size=2) * size
        if kind == "circle":
            r = rng.uniform(0.10, 0.28) * size
            points = [(cx - r, cy - r), (cx + r, cy + r)]
        elif kind == "rect":
            hw, hh = rng.uniform(0.08, 0.28, size=2) * size
            points = [(cx - hw, cy - hh), (cx + hw, cy + hh)]
        else:
            # Jittered equilateral triangle: never degenerate, never a sliver.
            r = rng.uniform(0.14, 0.32) * size
            angles = rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3 + rng.uniform(-0.35, 0.35, 3)
            radii = r * rng.uniform(0.8, 1.1, size=3)
            points = list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles)))
        shapes.append(Shape(kind, tuple((int(round(x)), int(round(y))) for x, y in points), colour))
    return Scene(size=size, background=background, shapes=tuple(shapes))


def scene_for(seed: int, split: str, index: int, size: int) -> Scene:
    """The scene of file ``{index + 1:06d}.png`` of ``split`` (a key of :data:`SPLITS`) in a set made with ``seed``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return random_scene(np.random.default_rng([seed, SPLITS[split], index]), size)


# --------------------------------------------------------------------------------------------- rendering


def _shape_ids(scene: Scene, size: int | None) -> np.ndarray:
    """HxW uint8 map: 0 for background, k for the k-th shape where it is visible."""
    size = scene.size if size is None else size
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)  # mode "L" with a flat fill: no anti-aliasing, exact integer output
    for k, shape in enumerate(scene.shapes, start=1):
        # Integer rescaling so a scene can be rendered at another size, still exactly.
        half = scene.size // 2
        pts = [((x * size + half) // scene.size, (y * size + half) // scene.size) for x, y in shape.points]
        if shape.kind == "circle":
            draw.ellipse(pts, fill=k)
        elif shape.kind == "rect":
            draw.rectangle(pts, fill=k)
        else:
            draw.polygon(pts, fill=k)
    return np.asarray(canvas)


def _stripe_mask(ids: np.ndarray, n_shapes: int) -> np.ndarray:
    """Thin diagonal stripes inside each shape (period ~6 px at 64 px, a third of it dark).

    The phase starts at each shape's visible top-left-most pixel, so the stripes can be inferred from
    the shape itself rather than from absolute image position (which a convolution cannot see).
    """
    size = ids.shape[0]
    period = max(4, round(6 * size / 64))
    width = max(1, round(period / 3))
    diag = np.add.outer(np.arange(ids.shape[0]), np.arange(ids.shape[1]))
    mask = np.zeros(ids.shape, dtype=bool)
    for k in range(1, n_shapes + 1):
        region = ids == k
        if region.any():
            d = diag[region]
            mask[region] = (d - d.min()) % period < width
    return mask


def render_a(scene: Scene, size: int | None = None) -> np.ndarray:
    """Domain A: flat warm colours. uint8 HxWx3; ``size`` defaults to the scene's own."""
    lut = np.array([scene.background, *(s.colour for s in scene.shapes)], dtype=np.uint8)
    return lut[_shape_ids(scene, size)]


def render_b(scene: Scene, size: int | None = None) -> np.ndarray:
    """Domain B: the A colours with R and B swapped, plus darker (x0.75) diagonal stripes inside shapes."""
    lut = np.array([scene.background, *(s.colour for s in scene.shapes)], dtype=np.uint8)[:, ::-1]
    ids = _shape_ids(scene, size)
    image = lut[ids]
    stripes = _stripe_mask(ids, len(scene.shapes))
    image[stripes] = (image[stripes].astype(np.uint16) * 3 // 4).astype(np.uint8)
    return image


def _type_map(scene: Scene, size: int | None) -> np.ndarray:
    types = np.array([0, *(KINDS.index(s.kind) + 1 for s in scene.shapes)], dtype=np.uint8)
    return types[_shape_ids(scene, size)]


def render_labels(scene: Scene, size: int | None = None) -> np.ndarray:
    """Label map: background black, circles red, rectangles green, triangles blue. uint8 HxWx3."""
    return np.array(LABEL_COLOURS, dtype=np.uint8)[_type_map(scene, size)]


def render_photo(scene: Scene, size: int | None = None) -> np.ndarray:
    """Paired target: colour by type, vertical shading, dark outline; ``photo_from_labels(render_labels(...))``."""
    return _photo_from_types(_type_map(scene, size))


def photo_from_labels(labels: np.ndarray) -> np.ndarray:
    """The exact label map -> photo mapping that the paired task asks a model to learn."""
    rgb = labels.astype(np.int32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    types = np.full(codes.shape, -1, dtype=np.int16)
    for t, (r, g, b) in enumerate(LABEL_COLOURS):
        types[codes == (r << 16 | g << 8 | b)] = t
    if (types < 0).any():
        y, x = np.argwhere(types < 0)[0]
        raise ValueError(f"not a synthetic label map: colour {tuple(int(v) for v in labels[y, x])} at x={x}, y={y}")
    return _photo_from_types(types.astype(np.uint8))


def _photo_from_types(types: np.ndarray) -> np.ndarray:
    h, w = types.shape
    # Shading from the distance to the top of the region in the same column: a gradient that follows
    # each shape's upper contour and that the label map alone determines.
    depth = np.zeros((h, w), dtype=np.int32)
    for y in range(1, h):
        depth[y] = np.where(types[y] == types[y - 1], depth[y - 1] + 1, 0)
    shade = np.clip(1120 - depth * 800 // h, 600, 1120)  # per mille: brighter at the top, darker below
    base = np.array(PHOTO_COLOURS, dtype=np.int32)[types]
    photo = np.minimum(base * shade[..., None] // 1000, 255)
    # Outline: shape pixels with another type within `width` pixels. Edge padding: the image border
    # is not a shape boundary.
    width = 1 if h < 128 else 2
    padded = np.pad(types, width, mode="edge")
    edge = np.zeros((h, w), dtype=bool)
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            edge |= padded[width + dy : width + dy + h, width + dx : width + dx + w] != types
    edge &= types > 0
    photo[edge] = base[edge] * 35 // 100
    background = types == 0
    photo[background] = base[background]  # the background stays flat
    return photo.astype(np.uint8)


def _render_aligned(scene: Scene) -> np.ndarray:
    """pix2pix aligned format: label map (A) | photo (B), side by side."""
    return np.concatenate([render_labels(scene), render_photo(scene)], axis=1)


# ------------------------------------------------------------------------------------------ on disk

# split -> [(folder, renderer)]: every split's scenes and the folders their renderings go to.
_OUTPUTS: dict[str, list[tuple[str, Callable[[Scene], np.ndarray]]]] = {
    "trainA": [("trainA", render_a)],
    "trainB": [("trainB", render_b)],
    "testA": [("testA", render_a), ("testA_gt", render_b)],
    "testB": [("testB", render_b), ("testB_gt", render_a)],
    "paired/train": [("paired/train", _render_aligned)],
    "paired/val": [("paired/val", _render_aligned)],
    "paired/test": [("paired/test", _render_aligned)],
}


def _split_counts(n_train: int, n_test: int) -> dict[str, int]:
    return {split: n_train if split in ("trainA", "trainB", "paired/train") else n_test for split in SPLITS}


def _params(size: int, n_train: int, n_test: int, seed: int) -> dict[str, int]:
    if size < MIN_SIZE:
        raise UserError(f"synthetic size must be at least {MIN_SIZE} pixels, got {size}")
    if n_train < 1 or n_test < 1:
        raise UserError(f"synthetic n_train and n_test must be at least 1, got {n_train} and {n_test}")
    if seed < 0:
        raise UserError(f"synthetic seed must be >= 0, got {seed}")
    # int(): numpy integers from a config would not survive json.dumps.
    values = {"size": size, "n_train": n_train, "n_test": n_test, "seed": seed}
    return {"version": SYNTHETIC_VERSION, **{k: int(v) for k, v in values.items()}}


def _read_meta(root: Path) -> dict | None:
    try:
        meta = json.loads((root / _META_NAME).read_text())
    except (OSError, ValueError):
        return None
    # Another tool's synthetic.json is not ours: treat the folder as foreign.
    return meta if isinstance(meta, dict) and meta.get("generator") == _GENERATOR else None


def _same_params(meta: dict | None, params: dict[str, int]) -> bool:
    return meta is not None and all(meta.get(k) == v for k, v in params.items())


def _is_complete(root: Path, params: dict[str, int]) -> bool:
    """A finished set with these parameters: metadata matches, no partial marker, every file present."""
    if not _same_params(_read_meta(root), params) or (root / _PARTIAL_NAME).exists():
        return False
    for split, count in _split_counts(params["n_train"], params["n_test"]).items():
        expected = {_FILE_NAME.format(i + 1) for i in range(count)}
        for folder, _ in _OUTPUTS[split]:
            try:
                if not expected <= set(os.listdir(root / folder)):
                    return False
            except OSError:
                return False
    return True


def _prepare(root: Path, params: dict[str, int], overwrite: bool, refusal_hint: str = "") -> None:
    """Make ``root`` ready for a fresh set, refusing to touch files that are not ours unless ``overwrite``."""
    if root.exists() and not root.is_dir():
        raise DataError(f"synthetic data root {root} is a file, not a folder")
    root.mkdir(parents=True, exist_ok=True)
    entries = {p.name for p in root.iterdir()}
    ours = {*_TOP_LEVEL, _META_NAME, _PARTIAL_NAME}
    if entries and not overwrite:
        meta = _read_meta(root)
        interrupted = _PARTIAL_NAME in entries and entries <= ours
        damaged = _same_params(meta, params) and entries <= ours  # our set with files deleted since
        if meta is not None and not _same_params(meta, params):
            found = ", ".join(f"{k} {meta.get(k)}" for k in params)
            raise DataError(
                f"{root} holds a synthetic set made with other parameters ({found}); "
                f"{refusal_hint or 'pass overwrite=True (--overwrite) or choose another folder'}"
            )
        if not (interrupted or damaged):
            raise DataError(
                f"{root} is not empty and holds no synthetic set; "
                f"{refusal_hint or 'choose an empty folder or pass overwrite=True (--overwrite)'}"
            )
    # Only the generator's own entries are removed; anything else in root is left alone.
    for name in ours & entries:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    (root / _PARTIAL_NAME).write_text(json.dumps(params, sort_keys=True) + "\n")


def _save_png(image: np.ndarray, path: Path) -> None:
    # Fixed encoder settings and no metadata chunks: the same pixels give the same bytes.
    Image.fromarray(image).save(path, format="PNG", compress_level=6)


def make_synthetic(
    root: str | Path,
    size: int = 64,
    n_train: int = 200,
    n_test: int = 20,
    seed: int = 0,
    overwrite: bool = False,
    refusal_hint: str = "",
) -> Path:
    """Write the synthetic dataset under ``root`` and return ``root`` as a Path.

    Layout (files ``000001.png`` ...): ``trainA/ trainB/`` (n_train each, different scenes),
    ``testA/ testB/`` (n_test each) with ``testA_gt/`` (B rendering of each testA scene, same name) and
    ``testB_gt/`` (A rendering of each testB scene), ``paired/{train,val,test}/`` (label map | photo,
    ``2 * size`` wide; n_train, n_test, n_test images), and ``synthetic.json`` (parameters, written last).

    If ``root`` already holds a complete set with the same parameters nothing is rewritten. A folder
    holding anything else raises :class:`DataError` unless ``overwrite``, which regenerates the set
    (replacing only the generator's own sub-folders and files).
    """
    from tqdm import tqdm  # imported here: the renderers above need nothing beyond numpy and PIL

    root = Path(root)
    params = _params(size, n_train, n_test, seed)
    if not overwrite and _is_complete(root, params):
        return root
    _prepare(root, params, overwrite, refusal_hint)

    counts = _split_counts(n_train, n_test)
    for split in counts:
        for folder, _ in _OUTPUTS[split]:
            (root / folder).mkdir(parents=True, exist_ok=True)
    total = sum(counts.values())
    bar = tqdm(total=total, desc=f"synthetic data -> {root}", unit="scene", disable=total <= 50, leave=False)
    with bar:
        for split, count in counts.items():
            for i in range(count):
                scene = scene_for(seed, split, i, size)
                for folder, render in _OUTPUTS[split]:
                    _save_png(render(scene), root / folder / _FILE_NAME.format(i + 1))
                bar.update()

    meta = {
        "generator": _GENERATOR,
        **params,
        "folders": {folder: counts[split] for split in counts for folder, _ in _OUTPUTS[split]},
    }
    with atomic_write(root / _META_NAME, "w") as handle:  # the set counts as complete only once this lands
        handle.write(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    (root / _PARTIAL_NAME).unlink()
    return root


def ensure_synthetic(
    root: str | Path, size: int = 64, n_train: int = 200, n_test: int = 20, seed: int = 0, refusal_hint: str = ""
) -> Path:
    """Return ``root``, generating the synthetic set there first if it is missing or incomplete.

    ``refusal_hint`` replaces the advice of the error for a ``root`` holding other data (the caller knows
    its own options better than ``overwrite=True``)."""
    return make_synthetic(root, size=size, n_train=n_train, n_test=n_test, seed=seed, overwrite=False,
                          refusal_hint=refusal_hint)
