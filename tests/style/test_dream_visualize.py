"""DeepDream and feature visualisation with the seeded random VGG19: the mechanics (what each ascent raises,
sizes, ranges, reproducibility) do not need trained features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_translate.core.errors import UserError
from gan_translate.data.synthetic import render_a, scene_for
from gan_translate.nn.vgg import VGG19Features
from gan_translate.style.dream import DreamConfig, activation_norm, deep_dream, dream_uint8
from gan_translate.style.visualize import VisualizeConfig, channel_activation, visualize_channels


@pytest.fixture(scope="module")
def vgg() -> VGG19Features:
    return VGG19Features(("relu2_1", "relu3_1"), weights="random", pooling="max")


def _photo(size: int = 64) -> np.ndarray:
    return render_a(scene_for(0, "testA", 0, size))


def test_dream_raises_the_activation_norm_in_every_octave(vgg: VGG19Features) -> None:
    image = torch.from_numpy(_photo()).permute(2, 0, 1)[None].float() / 127.5 - 1
    config = DreamConfig(layers=("relu3_1",), octaves=3, steps=5, lr=0.02)
    steps: list[tuple[int, int]] = []
    result = deep_dream(image, vgg, config, callback=lambda octave, step: steps.append((octave, step)))
    assert len(result.norms) == 3 and steps == [(o, s) for o in range(3) for s in range(5)]
    for before, after in result.norms:
        assert after > 1.2 * before
    assert result.image.shape == image.shape
    assert float(result.image.min()) >= -1 and float(result.image.max()) <= 1
    with torch.no_grad():
        assert float(activation_norm(vgg, result.image, ["relu3_1"])) > 1.5 * float(activation_norm(vgg, image, ["relu3_1"]))
    torch.testing.assert_close(deep_dream(image, vgg, config).image, result.image)  # seeded jitter: reproducible


def test_a_large_image_gets_the_dreamt_detail_at_full_resolution(vgg: VGG19Features) -> None:
    photo = _photo(96)[:, :80]
    config = DreamConfig(layers=("relu2_1",), octaves=2, steps=3)
    dreamt, result = dream_uint8(photo, vgg, config, max_side=48)
    assert dreamt.shape == photo.shape and dreamt.dtype == np.uint8
    assert result.image.shape[-2:] == (96, 80)
    assert np.abs(dreamt.astype(int) - photo.astype(int)).mean() > 1  # changed...
    # ...but only by the enlarged detail: the input's own sharp edges are still there (not a blurry upscale).
    def edges(image: np.ndarray) -> float:
        return float(np.abs(np.diff(image.astype(float), axis=1)).mean())

    assert edges(dreamt) >= 0.9 * edges(photo)


def test_dream_settings_are_checked(vgg: VGG19Features) -> None:
    with pytest.raises(UserError, match="octave_scale > 1"):
        DreamConfig(octave_scale=1.0)
    with pytest.raises(UserError, match="at least one layer"):
        DreamConfig(layers=())
    with pytest.raises(UserError, match="does not return relu5_1"):
        deep_dream(torch.zeros(1, 3, 32, 32), vgg, DreamConfig(layers=("relu5_1",)))


def test_feature_visualisation_raises_each_channel_by_a_large_factor(vgg: VGG19Features) -> None:
    # Without the blur (a regulariser that slows the ascent down: at the default 200 steps it reaches 5-40x too).
    config = VisualizeConfig(size=48, steps=40, blur_every=0)
    calls: list[int] = []
    images, start, end = visualize_channels(vgg, "relu3_1", [0, 5, 17], config, callback=calls.append)
    assert images.shape == (3, 3, 48, 48) and calls == list(range(40))
    assert float(images.min()) >= -1 and float(images.max()) <= 1
    assert bool((end > 4 * start.clamp_min(1e-4)).all()), (start, end)
    # Each image excites its own channel more than the others' images do (the optimisation is per channel).
    with torch.no_grad():
        for i, channel in enumerate([0, 5, 17]):
            own = float(channel_activation(vgg, images[i : i + 1], "relu3_1", [channel]))
            others = [float(channel_activation(vgg, images[j : j + 1], "relu3_1", [channel])) for j in range(3) if j != i]
            assert own > max(others)


def test_visualisation_settings_are_checked(vgg: VGG19Features) -> None:
    with pytest.raises(UserError, match="size >= 16"):
        VisualizeConfig(size=8)
    with pytest.raises(UserError, match="does not return relu4_1"):
        visualize_channels(vgg, "relu4_1", [0], VisualizeConfig(steps=1))
