"""AdaIN's operation and networks, and the published weights' layout checked against a transcription of the
PyTorch port's ``net.py`` (its ``vgg`` and ``decoder`` Sequentials, written out here index by index)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn.adain import (
    AdaINDecoder,
    NormalisedVGGEncoder,
    adaptive_instance_norm,
    channel_mean_std,
    check_decoder_state,
    load_reference_state,
    map_reference_encoder,
)
from gan_translate.style.losses import mean_std_loss


def _reference_vgg_to_relu4_1() -> nn.Sequential:
    """The port's ``vgg`` up to relu4_1 (index 30), exactly as its net.py builds it."""
    pad = lambda: nn.ReflectionPad2d((1, 1, 1, 1))  # noqa: E731
    pool = lambda: nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)  # noqa: E731
    return nn.Sequential(
        nn.Conv2d(3, 3, (1, 1)),
        pad(), nn.Conv2d(3, 64, (3, 3)), nn.ReLU(),  # relu1-1 (3)
        pad(), nn.Conv2d(64, 64, (3, 3)), nn.ReLU(), pool(),
        pad(), nn.Conv2d(64, 128, (3, 3)), nn.ReLU(),  # relu2-1 (10)
        pad(), nn.Conv2d(128, 128, (3, 3)), nn.ReLU(), pool(),
        pad(), nn.Conv2d(128, 256, (3, 3)), nn.ReLU(),  # relu3-1 (17)
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(), pool(),
        pad(), nn.Conv2d(256, 512, (3, 3)), nn.ReLU(),  # relu4-1 (30)
    )


def _reference_decoder() -> nn.Sequential:
    pad = lambda: nn.ReflectionPad2d((1, 1, 1, 1))  # noqa: E731
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    return nn.Sequential(
        pad(), nn.Conv2d(512, 256, (3, 3)), nn.ReLU(), up(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(256, 128, (3, 3)), nn.ReLU(), up(),
        pad(), nn.Conv2d(128, 128, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(128, 64, (3, 3)), nn.ReLU(), up(),
        pad(), nn.Conv2d(64, 64, (3, 3)), nn.ReLU(),
        pad(), nn.Conv2d(64, 3, (3, 3)),
    )


def test_adain_gives_the_content_the_style_statistics() -> None:
    generator = torch.Generator().manual_seed(0)
    content = torch.randn(2, 8, 9, 7, generator=generator) * 3 + 1
    style = torch.randn(2, 8, 5, 6, generator=generator) * 0.5 - 2
    result = adaptive_instance_norm(content, style)
    mean, std = channel_mean_std(result)
    style_mean, style_std = channel_mean_std(style)
    torch.testing.assert_close(mean, style_mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(std, style_std, atol=1e-4, rtol=0)
    # The spatial pattern is the content's: the normalised maps agree (up to eps in the variances).
    content_mean, content_std = channel_mean_std(content)
    torch.testing.assert_close((result - mean) / std, (content - content_mean) / content_std, atol=1e-3, rtol=0)


def test_channel_statistics_match_the_reference_formula() -> None:
    features = torch.randn(3, 4, 6, 5)
    mean, std = channel_mean_std(features)
    flat = features.view(3, 4, -1)
    torch.testing.assert_close(mean, flat.mean(2).view(3, 4, 1, 1))
    torch.testing.assert_close(std, (flat.var(2) + 1e-5).sqrt().view(3, 4, 1, 1))  # Bessel's var, eps 1e-5


def test_style_loss_is_zero_for_equal_statistics_and_grows_with_their_distance() -> None:
    style = {"relu1_1": torch.randn(2, 4, 8, 8), "relu2_1": torch.randn(2, 6, 4, 4)}
    # Other pixels, the same per-channel statistics.
    same = {k: adaptive_instance_norm(torch.randn_like(v), v) for k, v in style.items()}
    assert float(mean_std_loss(same, style).max()) < 1e-6
    shifted = {k: v + 0.5 for k, v in style.items()}
    far = {k: v + 2.0 for k, v in style.items()}
    loss_near, loss_far = mean_std_loss(shifted, style), mean_std_loss(far, style)
    assert loss_near.shape == (2,)
    torch.testing.assert_close(loss_near, torch.full((2,), 2 * 0.25))  # two layers, mean off by 0.5
    assert bool((loss_far > loss_near).all())


def test_the_published_encoder_file_loads_onto_the_named_layers(tmp_path: Path) -> None:
    reference = _reference_vgg_to_relu4_1()
    torch.manual_seed(3)
    for module in reference:
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, std=0.1)
            nn.init.normal_(module.bias, std=0.1)
    file = tmp_path / "vgg_normalised.pth"
    torch.save(reference.state_dict(), file)

    encoder = NormalisedVGGEncoder()
    encoder.load_state_dict(map_reference_encoder(load_reference_state(str(file), "encoder"), str(file)))
    images = torch.rand(2, 3, 37, 29) * 2 - 1  # odd sizes: ceil_mode pooling must agree
    ours = encoder(images)
    x = (images + 1) / 2  # the port feeds [0, 1]
    expected = {}
    for index, layer in enumerate(reference):
        x = layer(x)
        if index in (3, 10, 17, 30):
            expected[{3: "relu1_1", 10: "relu2_1", 17: "relu3_1", 30: "relu4_1"}[index]] = x
    assert set(ours) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-5)


def test_the_published_decoder_file_loads_as_it_is(tmp_path: Path) -> None:
    reference = _reference_decoder()
    file = tmp_path / "decoder.pth"
    torch.save(reference.state_dict(), file)
    decoder = AdaINDecoder()
    assert list(decoder.state_dict()) == list(reference.state_dict())
    decoder.load_state_dict(check_decoder_state(load_reference_state(str(file), "decoder"), str(file)))
    features = torch.rand(1, 512, 5, 6)
    torch.testing.assert_close(decoder(features), reference(features))
    assert decoder(features).shape == (1, 3, 40, 48)


def test_wrong_or_missing_weight_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_reference_state(str(tmp_path / "nope.pth"), "AdaIN decoder weights")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="cannot read"):
        load_reference_state(str(broken), "AdaIN decoder weights")
    decoder_state = AdaINDecoder().state_dict()
    with pytest.raises(UserError, match="no '0.weight'"):
        map_reference_encoder(decoder_state, "decoder.pth")  # the two files swapped
    state = dict(_reference_vgg_to_relu4_1().state_dict())
    state["2.weight"] = torch.zeros(64, 3, 5, 5)
    with pytest.raises(UserError, match=r"'2.weight' \(conv1_1\) has shape"):
        map_reference_encoder(state)
    with pytest.raises(UserError, match="not the AdaIN port's decoder.pth layout"):
        check_decoder_state(NormalisedVGGEncoder().state_dict())
