"""gan_translate.core.images: conversions between uint8 arrays and [-1, 1] tensors, and between channel counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.core.errors import UserError
from gan_translate.core.images import (
    LUMA_WEIGHTS,
    as_tensor_image,
    images_to_uint8,
    match_channels,
    tensor_to_uint8,
    to_unit_range,
    uint8_batch,
    uint8_to_tensor,
)


def test_round_trip_is_exact() -> None:
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = uint8_to_tensor(image)
    assert tensor.shape == (3, 5, 7) and float(tensor.min()) >= -1 and float(tensor.max()) <= 1
    np.testing.assert_array_equal(tensor_to_uint8(tensor), image)
    np.testing.assert_array_equal(tensor_to_uint8(tensor[None])[0], image)
    np.testing.assert_array_equal(images_to_uint8(tensor).permute(1, 2, 0).numpy(), image)
    assert uint8_batch(image).shape == (1, 3, 5, 7) and uint8_batch(image).dtype == torch.uint8


def test_out_of_range_and_nan_values_are_clamped() -> None:
    values = torch.tensor([[[-3.0, 2.0, float("nan"), 0.0]]])
    assert tensor_to_uint8(values).ravel().tolist() == [0, 255, 128, 128]
    assert to_unit_range(values.nan_to_num()).ravel().tolist() == [0.0, 1.0, 0.5, 0.5]


def test_channels() -> None:
    rgb = torch.rand(2, 3, 4, 4) * 2 - 1
    grey = match_channels(rgb, 1)
    expected = sum(w * rgb[:, i : i + 1] for i, w in enumerate(LUMA_WEIGHTS))
    torch.testing.assert_close(grey, expected)
    assert match_channels(grey, 3).shape == (2, 3, 4, 4)
    rgba = torch.cat([rgb, torch.ones(2, 1, 4, 4)], dim=1)
    torch.testing.assert_close(match_channels(rgba, 3), rgb)
    assert match_channels(rgb[0], 1).shape == (1, 4, 4)  # CHW too
    with pytest.raises(UserError, match="2-channel"):
        match_channels(rgb[:, :2], 3)


def test_any_image_becomes_a_generator_input() -> None:
    grey = np.full((4, 6), 200, np.uint8)
    assert as_tensor_image(grey, 3).shape == (3, 4, 6)
    assert as_tensor_image(Image.new("RGBA", (6, 4), (255, 0, 0, 0)), 3).shape == (3, 4, 6)  # alpha on white
    with pytest.raises(UserError, match="uint8"):
        as_tensor_image(grey.astype(np.float32), 3)
    with pytest.raises(UserError, match="2-channel image to a 3-channel generator"):
        as_tensor_image(torch.zeros(2, 4, 4), 3)


def test_large_images_convert_in_bands_with_the_same_result() -> None:
    from gan_translate.core.images import images_to_uint8

    tall = torch.rand(3, 1100, 7, generator=torch.Generator().manual_seed(0)) * 2.2 - 1.1  # past 512 rows, some clamped
    expected = images_to_uint8(tall).permute(1, 2, 0).numpy()
    result = tensor_to_uint8(tall)
    assert result.shape == (1100, 7, 3) and result.flags["C_CONTIGUOUS"]
    assert np.array_equal(result, expected)
