"""Property-based tests (hypothesis) of what must hold for every input, not just the examples we thought of.

tests/test_transforms.py already checks "any mode, any size -> the requested crop"; here: lossless save/load
round trips, every image mode loading as uint8 RGB of its own size, translate-style padding restoring exact
sizes and pixels, and the resumable data stream (order and per-item seeds) surviving any interruption.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from gan_translate.core.images import tensor_to_uint8, uint8_to_tensor
from gan_translate.data.io import load_image, save_image
from gan_translate.data.options import ImageTransform
from gan_translate.data.resumable import ResumableSampler
from gan_translate.inference.translator import Translator, pad_to_multiple

_TMP = tempfile.TemporaryDirectory()
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.integers(1, 70)


@st.composite
def uint8_images(draw: st.DrawFn, channels: tuple[int, ...] = (0, 3)) -> np.ndarray:
    h, w, c = draw(sizes), draw(sizes), draw(st.sampled_from(channels))
    seed = draw(st.integers(0, 2**16))
    shape = (h, w) if c == 0 else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@FAST
@given(image=uint8_images(), suffix=st.sampled_from([".png", ".bmp", ".tif", ".ppm"]))
def test_lossless_save_load_round_trip(image: np.ndarray, suffix: str) -> None:
    path = Path(_TMP.name) / f"round{suffix}"
    save_image(image, path)
    back = load_image(path)
    expected = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(back, expected)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left behind


@FAST
@given(h=sizes, w=sizes, mode=st.sampled_from(["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]),
       seed=st.integers(0, 2**16))
def test_every_mode_loads_as_uint8_rgb_of_its_size(h: int, w: int, mode: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    if mode in ("I;16", "I", "F"):
        data = {"I;16": rng.integers(0, 65536, (h, w)).astype(np.uint16), "I": rng.integers(0, 65536, (h, w)).astype(np.int32),
                "F": rng.random((h, w), dtype=np.float32)}[mode]
        image = Image.fromarray(data)
    else:
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    suffix = ".tif" if mode in ("CMYK", "I", "F", "PA") else ".png"
    path = Path(_TMP.name) / f"mode_{mode.replace(';', '_')}{suffix}"
    image.save(path)
    out = load_image(path)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8


@FAST
@given(image=uint8_images(channels=(3,)))
def test_tensor_round_trip_is_exact(image: np.ndarray) -> None:
    tensor = uint8_to_tensor(image)
    assert tensor.min() >= -1 and tensor.max() <= 1
    np.testing.assert_array_equal(tensor_to_uint8(tensor), image)


@FAST
@given(h=sizes, w=sizes, multiple=st.sampled_from([1, 2, 4, 8, 16, 32, 64, 256]), min_size=st.sampled_from([1, 4, 8, 20]),
       seed=st.integers(0, 2**16))
def test_pad_to_multiple_then_crop_restores_the_image(h: int, w: int, multiple: int, min_size: int, seed: int) -> None:
    batch = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    padded, (oh, ow) = pad_to_multiple(batch, multiple, min_size)
    assert (oh, ow) == (h, w)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert min(padded.shape[-2:]) >= min_size
    for side, padded_side in zip((h, w), padded.shape[-2:]):
        assert max(side, min_size) <= padded_side < max(side, min_size) + multiple
    assert torch.equal(padded[..., :h, :w], batch)


class _Shifted(nn.Module):
    """A stand-in generator that only accepts sizes that are multiples of 8 and maps x -> -x."""

    size_multiple = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0
        return -x


@FAST
@given(image=uint8_images(channels=(0, 3)))
def test_translator_keeps_every_size_and_pixel_alignment(image: np.ndarray) -> None:
    translator = Translator(network=_Shifted(), device=torch.device("cpu"), size_multiple=8, in_channels=3,
                            model_name="test", direction="AtoB")
    out = translator(image)
    assert out.shape == (*image.shape[:2], 3) and out.dtype == np.uint8
    rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(out, 255 - rgb)  # -x in [-1, 1] is 255 - v in uint8: pixels stay in place


# --- the resumable data stream ------------------------------------------------------------------------------
def _batches(sampler: ResumableSampler, batch_size: int) -> list[list[tuple[int, int]]]:
    items = list(sampler)
    return [items[i: i + batch_size] for i in range(0, len(items), batch_size)]


@FAST
@given(length=st.integers(1, 60), batch_size=st.integers(1, 8), world=st.integers(1, 4), epoch=st.integers(0, 5),
       consumed=st.integers(0, 20), seed=st.integers(0, 2**31))
def test_resumed_stream_is_the_rest_of_the_uninterrupted_one(
    length: int, batch_size: int, world: int, epoch: int, consumed: int, seed: int
) -> None:
    for rank in range(world):
        full = ResumableSampler(length, seed=seed, num_replicas=world, rank=rank)
        full.batch_size = batch_size
        full.set_epoch(epoch)
        uninterrupted = _batches(full, batch_size)
        consumed_here = min(consumed, len(uninterrupted))
        full.batches_consumed = consumed_here
        state = full.state_dict()

        resumed = ResumableSampler(length, seed=seed, num_replicas=world, rank=rank)
        resumed.batch_size = batch_size
        resumed.load_state_dict(state)
        assert len(resumed) == len(full)  # Lightning counts the skipped batches as seen
        assert _batches(resumed, batch_size) == uninterrupted[consumed_here:]
        # the next epoch starts from its beginning again
        resumed.set_epoch(epoch + 1)
        assert len(list(resumed)) == len(full)


@FAST
@given(length=st.integers(1, 60), world=st.integers(1, 4), seed=st.integers(0, 2**31), epoch=st.integers(0, 5))
def test_ranks_share_out_every_item_and_epochs_differ(length: int, world: int, seed: int, epoch: int) -> None:
    samplers = [ResumableSampler(length, seed=seed, num_replicas=world, rank=r) for r in range(world)]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    streams = [list(s) for s in samplers]
    assert len({len(s) for s in streams}) == 1  # equal shares: no rank waits for another
    assert {index for stream in streams for index, _ in stream} == set(range(length))
    item_seeds = [item_seed for stream in streams for _, item_seed in stream]
    assert len(set(item_seeds)) == len(item_seeds)  # one augmentation seed per position (32-bit: no collisions here)
    again = ResumableSampler(length, seed=seed, num_replicas=world, rank=0)
    again.set_epoch(epoch)
    assert list(again) == streams[0]  # a pure function of (seed, epoch): nothing else
    if length > 3:
        again.set_epoch(epoch + 1)
        assert list(again) != streams[0]


def test_training_stream_does_not_depend_on_workers(synthetic_root: Path) -> None:
    """Per-item seeds: the same batches (order, random B, crops, flips) with 0 or 2 DataLoader workers."""
    from gan_translate.data import UnpairedDataModule

    def epochs(num_workers: int) -> list[torch.Tensor]:
        dm = UnpairedDataModule(str(synthetic_root), transform=ImageTransform(load_size=36, crop_size=32), batch_size=2, num_workers=num_workers)
        dm.setup("fit")
        loader = dm.train_dataloader()
        out = []
        for epoch in (0, 1):
            loader.sampler.set_epoch(epoch)
            out += [torch.cat([batch["A"], batch["B"]]) for batch in loader]
        return out

    serial, parallel = epochs(0), epochs(2)
    assert len(serial) == len(parallel) == 8
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    assert not torch.equal(serial[0], serial[4])  # epoch 1 is not a replay of epoch 0


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("gpu", "unknown device 'gpu'"),
        ("cuda:x", "unknown device 'cuda:x'"),
        ("meta", "--device meta is not supported"),
        ("xpu", "--device xpu is not supported"),
        ("mps", "Apple's MPS is not available here"),
    ],
)
def test_unusable_devices_are_one_line(device: str, message: str) -> None:
    from gan_translate.core.errors import UserError
    from gan_translate.inference.translator import resolve_device

    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(UserError, match=re.escape(message)):
        resolve_device(device)
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU is available"):
            resolve_device("cuda:1")
