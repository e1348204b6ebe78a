"""The student networks (issue 28): mobile ResNet and narrow ResNet presets, and the MAC / parameter counter."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn import GENERATORS, MobileResnetGenerator, ResnetGenerator, build_generator
from gan_translate.nn.cost import count_macs, count_params
from gan_translate.nn.student import H2Z_STUDENT_BLOCK_CHANNELS, H2Z_STUDENT_CHANNELS, NARROW_RESNETS, MobileResnetBlock

TINY: dict[str, Any] = {"channels": [4, 6, 8, 4, 6, 4], "n_blocks": 2}


def tiny(**kwargs: Any) -> MobileResnetGenerator:
    return MobileResnetGenerator(**{**TINY, **kwargs})


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(("h", "w"), [(12, 20), (20, 12), (28, 36)])  # odd multiples of the size multiple, 4
@pytest.mark.parametrize("padding_type", ["reflect", "replicate", "zero"])
def test_mobile_resnet_preserves_size(h: int, w: int, padding_type: str) -> None:
    g = tiny(padding_type=padding_type, in_channels=1, out_channels=2)
    assert g.size_multiple == 4 and g.min_size == 8
    y = g(torch.randn(2, 1, h, w))
    assert y.shape == (2, 2, h, w) and y.abs().max() <= 1


@pytest.mark.parametrize("name", ["narrow_resnet_ngf12", "narrow_resnet_ngf16"])
def test_narrow_presets_preserve_odd_multiple_sizes(name: str) -> None:
    g = build_generator(name, n_blocks=NARROW_RESNETS[name]["n_blocks"])  # an agreeing pinned value is fine
    assert type(g) is ResnetGenerator and g.model[1].out_channels == NARROW_RESNETS[name]["ngf"]
    assert g(torch.randn(1, 3, 12, 20)).shape == (1, 3, 12, 20)


def test_mobile_resnet_refuses_sizes_off_its_multiple() -> None:
    with pytest.raises(UserError, match="multiples of 4, got 10x12"):
        tiny()(torch.randn(1, 3, 10, 12))


def test_mobile_resnet_blocks_are_depthwise_separable_with_the_given_widths() -> None:
    g = MobileResnetGenerator(channels=[4, 6, 8, 5, 6, 4], block_channels=[3, 7], n_blocks=2)
    blocks = [m for m in g.model if isinstance(m, MobileResnetBlock)]
    assert len(blocks) == 2
    for block, hidden in zip(blocks, [3, 7], strict=True):
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        # depthwise 3x3 (8 groups), pointwise 8 -> hidden, depthwise 3x3 (hidden groups), pointwise hidden -> 8
        assert [(c.in_channels, c.out_channels, c.kernel_size, c.groups) for c in convs] == [
            (8, 8, (3, 3), 8), (8, hidden, (1, 1), 1), (hidden, hidden, (3, 3), hidden), (hidden, 8, (1, 1), 1)]
    dense = [(m.in_channels, m.out_channels) for m in g.model if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert dense == [(3, 4), (4, 6), (6, 8), (8, 6), (6, 4), (4, 3)]  # stem, down1, down2, up1, up2, output


def test_h2z_student_has_gan_compressions_parameter_count() -> None:
    # GAN Compression's README: its retrained horse2zebra student (config 16_16_32_16_32_32_16_16) has 0.357 M
    g = build_generator("mobile_resnet_h2z")
    assert g.channels == H2Z_STUDENT_CHANNELS and g.block_channels == H2Z_STUDENT_BLOCK_CHANNELS
    assert count_params(g) == 356_867


# ----------------------------------------------------------------------------- gradients, features


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("mobile_resnet", {**TINY, "norm": "instance", "dropout": True}),
     ("mobile_resnet", {**TINY, "norm": "batch", "block_channels": [2, 5]}),
     ("mobile_resnet", {**TINY, "norm": "none", "padding_type": "zero"}),
     ("narrow_resnet_ngf12", {})],
)
def test_gradients_reach_every_parameter(name: str, kwargs: dict[str, Any]) -> None:
    g = build_generator(name, **kwargs)
    (g(torch.randn(2, 3, 12, 12)) ** 2).mean().backward()
    for pname, p in g.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


def test_default_feature_layers_sit_where_the_resnets_do() -> None:
    g = MobileResnetGenerator(channels=[4, 6, 8, 4, 6, 4])  # 9 blocks
    # the padded input, the two downsampling convs, the first and fifth residual blocks (CUT's choice)
    assert g.default_feature_layers() == [0, 4, 7, 10, 14] == ResnetGenerator(ngf=4).default_feature_layers()
    assert g.feature_channels(g.default_feature_layers()) == [3, 6, 8, 8, 8]
    assert tiny().default_feature_layers() == [0, 4, 7, 10, 11]  # two blocks: the last stands in for the fifth


@pytest.mark.parametrize("layers", [None, [11, 2, 0, 5]])
def test_features_have_the_channels_feature_channels_says(layers: list[int] | None) -> None:
    g = tiny().eval()
    layers = layers or g.default_feature_layers()
    x = torch.randn(1, 3, 12, 20)
    feats = g.features(x, layers)
    assert [f.shape[1] for f in feats] == g.feature_channels(layers)
    out, same = g.forward_with_features(x, layers)
    assert torch.equal(out, g(x)) and all(torch.equal(a, b) for a, b in zip(feats, same, strict=True))


def test_feature_layers_outside_the_encoder_are_refused() -> None:
    g = tiny()
    with pytest.raises(UserError, match="encoder layers 0 to 11"):
        g.features(torch.randn(1, 3, 8, 8), [12])


# ----------------------------------------------------------------------------- counting


def test_count_macs_matches_a_hand_count() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),             # 8*10*10 outputs x 3*3*3 = 27 MACs each: 21,600
        nn.ReLU(),                                 # not counted
        nn.Conv2d(8, 8, 3, padding=1, groups=8),   # depthwise: 8*10*10 outputs x 1*3*3 = 9 each: 7,200
        nn.Conv2d(8, 4, 1),                        # pointwise: 4*10*10 outputs x 8 each: 3,200
        nn.ConvTranspose2d(4, 2, 2, stride=2),     # each of 4*10*10 inputs into 2 channels x 2*2 taps: 3,200
    )
    per_image = 21_600 + 7_200 + 3_200 + 3_200  # = 35,200; biases are additions, not counted
    assert count_macs(net, (2, 3, 10, 10)) == 2 * per_image
    assert count_macs(net, (2, 3, 10, 10), meta=False) == 2 * per_image
    assert next(net.parameters()).device.type == "cpu"  # counted on a copy: the network stays where it was
    assert count_params(net) == (3 * 8 * 9 + 8) + (8 * 9 + 8) + (8 * 4 + 4) + (4 * 2 * 4 + 2)
    net[0].weight.requires_grad_(False)
    assert count_params(net, trainable_only=True) == count_params(net) - 3 * 8 * 9


def test_resnet9_teacher_is_49_6_g_macs() -> None:
    # /work/shared/REFERENCE.md, issue 28: FlopCounterMode gives the ngf 64 ResNet-9 at 256 px 49.6 G MACs
    with torch.device("meta"):  # no weights, no arithmetic: well under a second
        teacher = ResnetGenerator(ngf=64, n_blocks=9)
    assert count_macs(teacher, (1, 3, 256, 256)) == pytest.approx(49.6e9, rel=0.01)


def test_count_macs_refuses_empty_sizes() -> None:
    with pytest.raises(UserError, match="input_size"):
        count_macs(tiny(), (1, 3, 0, 8))


# ----------------------------------------------------------------------------- the registry


def test_students_are_registered() -> None:
    names = set(GENERATORS.names())
    assert {"mobile_resnet", "mobile_resnet_h2z", *NARROW_RESNETS} <= names


def test_registry_builds_students_by_name_with_checked_keywords() -> None:
    g = build_generator("mobile_resnet", **TINY, norm="batch", init_gain=0.05)
    assert isinstance(g, MobileResnetGenerator) and g.channels == (4, 6, 8, 4, 6, 4)
    # the models' one-number width does not apply to per-stage widths: a model's ngf (always passed) leaves them alone
    assert build_generator("mobile_resnet", **TINY, ngf=16).channels == (4, 6, 8, 4, 6, 4)
    with pytest.raises(UserError, match="unexpected argument.*width"):
        build_generator("mobile_resnet", width=16)
    with pytest.raises(UserError, match="'mobile_resnet_h2z' has n_blocks=9, got n_blocks=6; use 'mobile_resnet'"):
        build_generator("mobile_resnet_h2z", n_blocks=6)
    with pytest.raises(UserError, match="'narrow_resnet_ngf12' has ngf=12, got ngf=16; use 'resnet'"):
        build_generator("narrow_resnet_ngf12", ngf=16)
    assert isinstance(build_generator("mobile_resnet_h2z", channels=list(H2Z_STUDENT_CHANNELS)), MobileResnetGenerator)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"channels": [4, 6, 8]}, "must have 6 entries, got 3"),
     ({"channels": [4, 6, 0, 4, 6, 4]}, "positive integers"),
     ({"channels": [4, 6, 8.5, 4, 6, 4]}, "positive integers"),
     ({"channels": "4,6,8,4,6,4"}, "list of integers"),
     ({"block_channels": [4]}, "block_channels must have 2 entries, got 1"),
     ({"n_blocks": -1}, "n_blocks must be an integer >= 0"),
     ({"in_channels": 0}, "in_channels / out_channels"),
     ({"norm": "layer"}, "norm"),
     ({"padding_type": "circular"}, "padding type")],
)
def test_bad_arguments_are_one_line_user_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message) as caught:
        build_generator("mobile_resnet", **{**TINY, **kwargs})
    assert "\n" not in str(caught.value)
