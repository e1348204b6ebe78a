"""Preprocessing: output shapes/ranges per preprocess option, determinism, and per-worker seeding."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

from gan_translate.core.errors import UserError
from gan_translate.data.io import load_image
from gan_translate.data.single import ImageFolderDataset
from gan_translate.data.transforms import (
    FIXED_SIZE_PREPROCESS,
    PREPROCESS_OPTIONS,
    build_transform,
    seed_transform,
    seed_worker,
)

LOAD, CROP = 40, 32


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _gradient(h: int = 48, w: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy * 5, xx * 5, (yy + xx) * 2], axis=2).astype(np.uint8)


def _expected_hw(preprocess: str, h: int, w: int) -> tuple[int, int]:
    if preprocess in FIXED_SIZE_PREPROCESS:
        return CROP, CROP
    if preprocess == "scale_width":
        return round(h * LOAD / w), LOAD
    return h, w  # none


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("preprocess", PREPROCESS_OPTIONS)
def test_every_preprocess_shape_dtype_range(preprocess: str, train: bool) -> None:
    t = build_transform(preprocess, LOAD, CROP, flip=True, train=train)
    for h, w in [(50, 70), (20, 24), (33, 33)]:  # bigger and smaller than the crop
        out = t(image=_image(h, w))["image"]
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
        assert tuple(out.shape) == (3, *_expected_hw(preprocess, h, w))
        assert torch.isfinite(out).all() and out.min() >= -1.0 and out.max() <= 1.0


def test_normalisation_maps_0_255_to_minus1_plus1() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    img[:, 2:] = 255
    out = build_transform("none", train=False)(image=img)["image"]
    assert out[:, :, :2].eq(-1).all() and out[:, :, 2:].eq(1).all()


@pytest.mark.parametrize("preprocess", PREPROCESS_OPTIONS)
def test_eval_transform_is_deterministic(preprocess: str) -> None:
    img = _image(50, 70)
    t1 = build_transform(preprocess, LOAD, CROP, flip=True, train=False, seed=1)
    t2 = build_transform(preprocess, LOAD, CROP, flip=True, train=False, seed=2)
    first = t1(image=img)["image"]
    for _ in range(3):
        assert torch.equal(t1(image=img)["image"], first)
    assert torch.equal(t2(image=img)["image"], first)


def test_eval_resize_and_crop_resizes_straight_to_crop_size() -> None:
    img = _gradient(64, 64)
    out = build_transform("resize_and_crop", LOAD, CROP, train=False)(image=img)["image"]
    ref = build_transform("resize", LOAD, CROP, train=False)(image=img)["image"]
    assert torch.equal(out, ref)  # the whole image, not a center crop of a 40 px resize


def test_train_transform_is_random_but_seedable() -> None:
    img = _gradient()
    t = build_transform("resize_and_crop", LOAD, CROP, seed=0)
    outs = [t(image=img)["image"] for _ in range(10)]
    assert len({o.sum().item() for o in outs}) > 3
    seed_transform(t, 0)
    assert all(torch.equal(t(image=img)["image"], o) for o in outs)


def test_unknown_preprocess_lists_valid_names() -> None:
    with pytest.raises(UserError, match="unknown preprocess 'zoom'.*resize_and_crop.*scale_width"):
        build_transform("zoom")
    with pytest.raises(UserError, match="positive"):
        build_transform("resize", 0, 0)


def test_additional_targets_get_identical_geometry() -> None:
    t = build_transform("resize_and_crop", LOAD, CROP, additional_targets={"B": "image"}, seed=3)
    img = _image(50, 60)
    for _ in range(20):
        out = t(image=img, B=img.copy())
        assert torch.equal(out["image"], out["B"])


def test_seeded_children_are_not_correlated() -> None:
    """Compose.set_random_seed alone gives crop and flip identical streams: flip <=> crop near the top.

    seed_transform must make them share one stream, so the crop position and the flip are independent.
    """
    rows, cols = np.mgrid[0:100, 0:100]
    img = np.stack([rows, cols, cols], axis=2).astype(np.uint8)  # channel 0: row, channel 1: column
    t = build_transform("crop", crop_size=10, flip=True)
    top_flipped, top_kept = [], []
    for s in range(400):
        seed_transform(t, s)
        out = t(image=img)["image"]
        top = round((float(out[0, 0, 0]) + 1) * 127.5)
        flipped = bool(out[1, 0, 0] > out[1, 0, -1])
        (top_flipped if flipped else top_kept).append(top)
    assert 120 < len(top_flipped) < 280
    assert abs(np.mean(top_flipped) - np.mean(top_kept)) < 12  # correlated streams give ~45 px


# --- DataLoader workers -----------------------------------------------------------------------
@pytest.fixture()
def identical_images(tmp_path: Path) -> Path:
    img = _gradient()
    for i in range(8):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
    return tmp_path


def _stream(folder: Path, seed: int, init=seed_worker, workers: int = 2) -> list[torch.Tensor]:
    ds = ImageFolderDataset(folder, build_transform("crop", crop_size=CROP, flip=True))
    loader = DataLoader(
        ds,
        batch_size=1,
        num_workers=workers,
        worker_init_fn=init,
        generator=torch.Generator().manual_seed(seed),
    )
    return [batch["image"][0] for batch in loader]


def test_workers_do_not_repeat_augmentations_and_seed_reproduces(identical_images: Path) -> None:
    out = _stream(identical_images, seed=123)
    # 2 workers take items alternately: item 2k comes from worker 0, item 2k+1 from worker 1.
    same_pairs = sum(torch.equal(out[2 * k], out[2 * k + 1]) for k in range(4))
    assert same_pairs == 0
    assert len({tuple(o.flatten()[:64].tolist()) for o in out}) >= 6
    again = _stream(identical_images, seed=123)
    assert all(torch.equal(a, b) for a, b in zip(out, again))
    other = _stream(identical_images, seed=124)
    assert not all(torch.equal(a, b) for a, b in zip(out, other))


def test_without_seed_worker_the_trap_is_real(identical_images: Path) -> None:
    """Guards the test above: without reseeding, forked workers replay the same augmentations."""
    out = _stream(identical_images, seed=123, init=None)
    assert all(torch.equal(out[2 * k], out[2 * k + 1]) for k in range(4))


# --- property test: any mode, any size -> the requested crop --------------------------------
_TMP = tempfile.TemporaryDirectory()


def _write(mode: str, h: int, w: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    elif mode in ("L", "P"):
        img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")
        if mode == "P":
            img = img.convert("P")
    else:
        channels = 4 if mode == "RGBA" else 3
        img = Image.fromarray(rng.integers(0, 256, (h, w, channels), dtype=np.uint8), mode)
    path = Path(_TMP.name) / f"{mode.replace(';', '_')}_{h}x{w}_{seed}.png"
    img.save(path)
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 80),
    w=st.integers(1, 80),
    mode=st.sampled_from(["L", "RGB", "RGBA", "P", "I;16"]),
    preprocess=st.sampled_from(sorted(FIXED_SIZE_PREPROCESS)),
    train=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_any_image_gives_requested_crop(
    h: int, w: int, mode: str, preprocess: str, train: bool, seed: int
) -> None:
    img = load_image(_write(mode, h, w, seed))
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    out = build_transform(preprocess, LOAD, CROP, train=train, seed=seed)(image=img)["image"]
    assert tuple(out.shape) == (3, CROP, CROP) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= -1.0 and out.max() <= 1.0
