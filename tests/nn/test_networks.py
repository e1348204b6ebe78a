"""The networks: exact classic parameter counts, shapes, gradients, init, dropout, name/kwarg errors."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn import (
    DISCRIMINATORS,
    GENERATORS,
    DCGANDiscriminator,
    DCGANGenerator,
    PatchDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    build_discriminator,
    build_generator,
    init_weights,
    norm_layer,
    uses_bias,
)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def count(net: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


# ----------------------------------------------------------------------------- registries

def test_registered_names() -> None:
    assert GENERATORS.names() == sorted(
        ["resnet", "resnet_9blocks", "resnet_6blocks", "unet", "unet_256", "unet_128", "dcgan", "stylegan2",
         "mobile_resnet", "mobile_resnet_h2z", "narrow_resnet_ngf12", "narrow_resnet_ngf16"]
    )
    assert DISCRIMINATORS.names() == sorted(["patchgan", "basic", "pixel", "dcgan", "stylegan2"])


def test_importing_networks_does_not_import_lightning() -> None:
    code = (
        "import sys, gan_translate.nn; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ----------------------------------------------------------------------------- parameter counts

# Every row of the REFERENCE.md table (3 -> 3 channels, ngf = ndf = 64). Built on the meta device:
# no memory, no forward pass, just the layers.
PARAM_COUNTS = [
    ("G", "resnet_9blocks", {}, "instance", 11_378_179),
    ("G", "resnet_9blocks", {}, "batch", 11_383_427),
    ("G", "resnet_6blocks", {}, "instance", 7_837_699),
    ("G", "resnet_6blocks", {}, "batch", 7_841_411),
    ("G", "resnet", {}, "instance", 11_378_179),  # default n_blocks is 9
    ("G", "unet_256", {}, "instance", 54_409_603),
    ("G", "unet_256", {}, "batch", 54_413_955),
    ("G", "unet_128", {}, "instance", 41_825_667),
    ("G", "unet_128", {}, "batch", 41_828_995),
    ("G", "unet", {}, "batch", 54_413_955),  # default num_downs is 8
    ("D", "basic", {"in_channels": 3}, "instance", 2_764_737),
    ("D", "basic", {"in_channels": 3}, "batch", 2_765_633),
    ("D", "basic", {"in_channels": 6}, "instance", 2_767_809),
    ("D", "basic", {"in_channels": 6}, "batch", 2_768_705),
    ("D", "patchgan", {"in_channels": 6, "n_layers": 3}, "batch", 2_768_705),
]


@pytest.mark.parametrize(("role", "name", "kwargs", "norm", "expected"), PARAM_COUNTS)
def test_classic_parameter_counts(role: str, name: str, kwargs: dict[str, Any], norm: str, expected: int) -> None:
    build = build_generator if role == "G" else build_discriminator
    with torch.device("meta"):
        net = build(name, norm=norm, **kwargs)
    assert n_params(net) == expected


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize(("h", "w"), [(32, 32), (36, 20), (64, 48)])
@pytest.mark.parametrize("padding_type", ["reflect", "replicate", "zero"])
def test_resnet_preserves_size(h: int, w: int, padding_type: str) -> None:
    g = ResnetGenerator(in_channels=3, out_channels=1, ngf=8, n_blocks=1, padding_type=padding_type)
    assert g.size_multiple == 4
    y = g(torch.randn(2, 3, h, w))
    assert y.shape == (2, 1, h, w)
    assert y.abs().max() <= 1


def test_resnet_n_downsampling_sets_size_multiple() -> None:
    g = ResnetGenerator(ngf=4, n_blocks=1, n_downsampling=3)
    assert g.size_multiple == 8
    assert g(torch.randn(1, 3, 40, 24)).shape == (1, 3, 40, 24)


@pytest.mark.parametrize(("h", "w"), [(32, 32), (64, 96)])
def test_unet_preserves_size(h: int, w: int) -> None:
    g = UnetGenerator(in_channels=1, out_channels=3, num_downs=5, ngf=4, norm="instance")
    assert g.size_multiple == 32
    y = g(torch.randn(2, 1, h, w))
    assert y.shape == (2, 3, h, w)
    assert y.abs().max() <= 1


def test_unet_default_size_multiple() -> None:
    with torch.device("meta"):
        assert UnetGenerator().size_multiple == 256
        assert build_generator("unet_128").size_multiple == 128
        assert build_generator("resnet_9blocks").size_multiple == 4


@pytest.mark.parametrize(
    ("net", "shape"),
    [
        (ResnetGenerator(ngf=4, n_blocks=1), (1, 3, 30, 32)),
        (UnetGenerator(ngf=4, num_downs=5), (1, 3, 32, 48 + 8)),
    ],
)
def test_generators_reject_sizes_off_their_multiple(net: nn.Module, shape: tuple[int, ...]) -> None:
    with pytest.raises(UserError, match=f"multiples of {net.size_multiple}"):
        net(torch.randn(*shape))


def test_patchgan_gives_30x30_for_256() -> None:
    # The map size depends only on the strides and kernels, not on ndf.
    d = PatchDiscriminator(in_channels=6, ndf=8)
    assert d(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)


def test_pixel_discriminator_one_logit_per_pixel() -> None:
    d = PixelDiscriminator(ndf=8)
    assert d(torch.randn(2, 3, 17, 9)).shape == (2, 1, 17, 9)


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes_and_ranges(image_size: int, channels: int) -> None:
    g = build_generator("dcgan", latent_dim=16, out_channels=channels, ngf=4, image_size=image_size)
    d = build_discriminator("dcgan", in_channels=channels, ndf=4, image_size=image_size)
    assert g.size_multiple == 1
    fake = g(torch.randn(3, 16))
    assert fake.shape == (3, channels, image_size, image_size)
    assert fake.abs().max() <= 1 and fake.std() > 0
    assert g(torch.randn(3, 16, 1, 1)).shape == fake.shape
    logits = d(fake)
    assert logits.shape == (3,)


def test_dcgan_64_is_the_classic_stack() -> None:
    g = DCGANGenerator()
    sizes = [1]
    for m in g.modules():
        if isinstance(m, nn.ConvTranspose2d):
            sizes.append((sizes[-1] - 1) * m.stride[0] - 2 * m.padding[0] + m.kernel_size[0])
    assert sizes == [1, 4, 8, 16, 32, 64]
    assert [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)] == [512, 256, 128, 64, 3]


@pytest.mark.parametrize(
    "make",
    [
        lambda: DCGANDiscriminator(ndf=4, image_size=32),
        lambda: PatchDiscriminator(ndf=4, n_layers=2),
        lambda: PixelDiscriminator(ndf=4),
    ],
    ids=["dcgan", "patchgan", "pixel"],
)
def test_discriminators_return_unbounded_logits(make: Callable[[], torch.nn.Module]) -> None:
    # Built here, after the autouse seed: built at collection time, the weights depended on which tests were
    # collected, and the DCGAN one (one logit per image) could give four logits of one sign.
    d = make()
    assert count(d, nn.Sigmoid) == count(d, nn.Tanh) == 0
    last = [m for m in d.modules() if isinstance(m, nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(1000)
    out = d(torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert out.min() < -1 and out.max() > 1  # both signs, beyond a sigmoid's range


def test_dcgan_input_checks() -> None:
    g = DCGANGenerator(latent_dim=8, ngf=4, image_size=32)
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        g(torch.randn(2, 7))
    d = DCGANDiscriminator(ndf=4, image_size=32)
    with pytest.raises(UserError, match="32x32"):
        d(torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize("cls", [DCGANGenerator, DCGANDiscriminator])
def test_dcgan_unsupported_image_size(cls: type[nn.Module]) -> None:
    with pytest.raises(UserError, match=r"image_size=48.*32, 64, 128"):
        cls(image_size=48)


# ----------------------------------------------------------------------------- gradients

# Tiny kwargs and an input for every registered name; the coverage test below keeps it complete.
GEN_CASES: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "resnet": ({"ngf": 8, "n_blocks": 2, "dropout": True}, (2, 3, 32, 32)),
    "resnet_9blocks": ({"ngf": 4}, (1, 3, 16, 16)),
    "resnet_6blocks": ({"ngf": 4, "norm": "batch"}, (2, 3, 16, 16)),
    "unet": ({"ngf": 4, "num_downs": 5, "norm": "instance"}, (1, 3, 32, 32)),
    "unet_256": ({"ngf": 2}, (2, 3, 256, 256)),
    "unet_128": ({"ngf": 2, "norm": "none"}, (1, 3, 128, 128)),
    "dcgan": ({"ngf": 4, "latent_dim": 8, "image_size": 32}, (3, 8)),
    "stylegan2": ({"resolution": 32, "z_dim": 8, "w_dim": 8, "channel_base": 128, "channel_max": 8}, (2, 8)),
    "mobile_resnet": ({"channels": [4, 6, 8, 4, 6, 4], "n_blocks": 2}, (1, 3, 16, 16)),
    "mobile_resnet_h2z": ({}, (1, 3, 16, 16)),
    "narrow_resnet_ngf12": ({}, (1, 3, 16, 16)),
    "narrow_resnet_ngf16": ({}, (1, 3, 16, 16)),
}
DISC_CASES: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "patchgan": ({"ndf": 4, "n_layers": 2}, (2, 3, 32, 32)),
    "basic": ({"ndf": 4, "in_channels": 6}, (2, 6, 64, 64)),
    "pixel": ({"ndf": 4, "norm": "batch"}, (2, 3, 16, 16)),
    "dcgan": ({"ndf": 4, "image_size": 32, "norm": "instance"}, (2, 3, 32, 32)),
    "stylegan2": ({"resolution": 32, "channel_base": 128, "channel_max": 8}, (3, 3, 32, 32)),
}


def test_gradient_cases_cover_every_registered_name() -> None:
    assert sorted(GEN_CASES) == GENERATORS.names()
    assert sorted(DISC_CASES) == DISCRIMINATORS.names()


@pytest.mark.parametrize(
    ("build", "name", "kwargs", "shape"),
    [(build_generator, n, k, s) for n, (k, s) in GEN_CASES.items()]
    + [(build_discriminator, n, k, s) for n, (k, s) in DISC_CASES.items()],
    ids=[f"G-{n}" for n in GEN_CASES] + [f"D-{n}" for n in DISC_CASES],
)
def test_backward_gives_finite_grads(build: Any, name: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> None:
    net = build(name, **kwargs)
    out = net(torch.randn(*shape))
    assert torch.isfinite(out).all()
    (out.float() ** 2).mean().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in net.parameters())


# ----------------------------------------------------------------------------- init

def test_classic_init_statistics() -> None:
    g = build_generator("resnet_6blocks", ngf=16, norm="batch")
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    for conv in convs:
        if conv.weight.numel() >= 10_000:
            assert abs(conv.weight.std().item() - 0.02) < 0.002
            assert abs(conv.weight.mean().item()) < 0.002
        if conv.bias is not None:
            assert torch.all(conv.bias == 0)
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    weights = torch.cat([bn.weight.detach() for bn in bns])
    assert abs(weights.mean().item() - 1) < 0.01
    assert abs(weights.std().item() - 0.02) < 0.005
    assert all(torch.all(bn.bias == 0) for bn in bns)


def test_init_gain_and_type_pass_through() -> None:
    g = build_generator("resnet", ngf=16, n_blocks=1, init_gain=0.05)
    big = max((m for m in g.modules() if isinstance(m, nn.Conv2d)), key=lambda m: m.weight.numel())
    assert abs(big.weight.std().item() - 0.05) < 0.005

    g = build_generator("resnet", ngf=16, n_blocks=1, init_type="kaiming")
    big = max((m for m in g.modules() if isinstance(m, nn.Conv2d)), key=lambda m: m.weight.numel())
    fan_in = big.weight[0].numel()
    assert abs(big.weight.std().item() / (2 / fan_in) ** 0.5 - 1) < 0.1


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_every_init_type_runs(init_type: str) -> None:
    d = init_weights(PatchDiscriminator(ndf=8, norm="batch"), init_type, 0.02)
    assert all(torch.isfinite(p).all() for p in d.parameters())
    biases = [m.bias for m in d.modules() if isinstance(m, nn.Conv2d) and m.bias is not None]
    assert biases and all(torch.all(b == 0) for b in biases)


def test_orthogonal_init_is_orthogonal() -> None:
    lin = init_weights(nn.Sequential(nn.Linear(64, 16)), "orthogonal", 0.5)[0]
    torch.testing.assert_close(lin.weight @ lin.weight.T, 0.25 * torch.eye(16), atol=1e-5, rtol=0)


def test_bad_init_arguments() -> None:
    with pytest.raises(UserError, match="kaiming, normal, orthogonal, xavier"):
        build_generator("resnet", ngf=4, n_blocks=1, init_type="uniform")
    with pytest.raises(UserError, match="gain"):
        init_weights(nn.Conv2d(1, 1, 1), "normal", -1.0)


# ----------------------------------------------------------------------------- layers

def test_norm_layers() -> None:
    inst = norm_layer("instance", 4)
    assert isinstance(inst, nn.InstanceNorm2d) and not inst.affine and not inst.track_running_stats
    bn = norm_layer("batch", 4)
    assert isinstance(bn, nn.BatchNorm2d) and bn.affine
    assert isinstance(norm_layer("none", 4), nn.Identity)
    with pytest.raises(UserError, match="batch, instance, none"):
        norm_layer("group", 4)


def test_uses_bias_follows_the_norm() -> None:
    assert uses_bias("instance") and uses_bias("none") and not uses_bias("batch")
    with pytest.raises(UserError, match="valid names"):
        uses_bias("layer")


# ----------------------------------------------------------------------------- dropout

@pytest.mark.parametrize("name", GENERATORS.names())
def test_no_dropout_when_off(name: str) -> None:
    kwargs = {"dropout": False} if "dropout" in inspect.signature(GENERATORS.get(name)).parameters else {}
    with torch.device("meta"):
        assert count(build_generator(name, **kwargs), nn.Dropout) == 0


def test_unet_256_dropout_in_the_three_innermost_ngf8_decoder_blocks() -> None:
    with torch.device("meta"):
        g = build_generator("unet_256")
    blocks = [b for b in g.ups if any(isinstance(m, nn.Dropout) for m in b)]
    assert count(g, nn.Dropout) == len(blocks) == 3
    for b in blocks:
        (drop,) = [m for m in b if isinstance(m, nn.Dropout)]
        (up,) = [m for m in b if isinstance(m, nn.ConvTranspose2d)]
        assert drop.p == 0.5
        assert (up.in_channels, up.out_channels) == (64 * 8 * 2, 64 * 8)
    assert blocks == list(g.ups[1:4])  # right after the innermost block


def test_resnet_dropout_once_per_block() -> None:
    with torch.device("meta"):
        assert count(ResnetGenerator(n_blocks=2, dropout=True), nn.Dropout) == 2


# ----------------------------------------------------------------------------- names and kwargs

@pytest.mark.parametrize(("build", "registry"), [(build_generator, GENERATORS), (build_discriminator, DISCRIMINATORS)])
def test_unknown_name_lists_valid_ones(build: Any, registry: Any) -> None:
    with pytest.raises(UserError) as err:
        build("nope")
    assert "'nope'" in str(err.value)
    for name in registry.names():
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("build", "name"),
    [(build_generator, n) for n in GENERATORS.names()] + [(build_discriminator, n) for n in DISCRIMINATORS.names()],
)
def test_unexpected_kwarg_is_named(build: Any, name: str) -> None:
    with pytest.raises(UserError, match=rf"'{name}'.*bogus"):
        build(name, bogus=1)


def test_kwarg_of_another_network_is_refused() -> None:
    with pytest.raises(UserError, match=r"'dcgan'.*in_channels"):
        build_generator("dcgan", in_channels=3)
    with pytest.raises(UserError, match=r"'pixel'.*n_layers"):
        build_discriminator("pixel", n_layers=3)


@pytest.mark.parametrize(
    ("build", "name", "kwargs"),
    [
        (build_generator, "resnet_9blocks", {"n_blocks": 6}),
        (build_generator, "resnet_6blocks", {"n_blocks": 9}),
        (build_generator, "unet_256", {"num_downs": 7}),
        (build_generator, "unet_128", {"num_downs": 8}),
        (build_discriminator, "basic", {"n_layers": 4}),
    ],
)
def test_kwarg_contradicting_the_name_is_refused(build: Any, name: str, kwargs: dict[str, Any]) -> None:
    (key,) = kwargs
    with pytest.raises(UserError, match=rf"'{name}'.*{key}"):
        build(name, **kwargs)


def test_kwarg_agreeing_with_the_name_is_fine() -> None:
    with torch.device("meta"):
        assert count(build_generator("resnet_9blocks", n_blocks=9), nn.Conv2d) == 2 + 2 + 9 * 2
        assert build_generator("unet_128", num_downs=7).size_multiple == 128


def test_bad_values_raise_user_errors() -> None:
    with pytest.raises(UserError, match="reflect, replicate, zero"):
        build_generator("resnet", padding_type="circular")
    with pytest.raises(UserError, match="batch, instance, none"):
        build_discriminator("patchgan", norm="group")
    with pytest.raises(UserError, match="num_downs"):
        UnetGenerator(num_downs=1)
    with pytest.raises(UserError, match="n_blocks"):
        ResnetGenerator(n_blocks=-1)
    with pytest.raises(UserError, match="n_layers"):
        PatchDiscriminator(n_layers=0)


# ----------------------------------------------------------------------------- CUT's additions
def test_antialiased_resnet_keeps_the_classic_parameters_and_sizes() -> None:
    plain, smooth = ResnetGenerator(n_blocks=9), ResnetGenerator(n_blocks=9, antialias=True)
    assert sum(p.numel() for p in smooth.parameters()) == sum(p.numel() for p in plain.parameters()) == 11_378_179
    small = ResnetGenerator(ngf=8, n_blocks=2, antialias=True)
    assert small(torch.rand(2, 3, 36, 20) * 2 - 1).shape == (2, 3, 36, 20)


def test_blur_resampling_keeps_flat_images_flat() -> None:
    from gan_translate.nn.antialias import BlurDownsample, BlurUpsample, binomial_filter

    assert binomial_filter(3).sum().item() == pytest.approx(1.0) and binomial_filter(3)[1, 1].item() == pytest.approx(0.25)
    flat = torch.full((1, 2, 6, 8), 0.3)
    torch.testing.assert_close(BlurDownsample(2)(flat), torch.full((1, 2, 3, 4), 0.3))
    torch.testing.assert_close(BlurUpsample(2)(flat), torch.full((1, 2, 12, 16), 0.3))


@pytest.mark.parametrize("antialias", [False, True])
def test_encoder_features_are_the_layer_outputs(antialias: bool) -> None:
    g = ResnetGenerator(ngf=8, n_blocks=9, antialias=antialias)
    layers = g.default_feature_layers()
    assert layers == ([0, 4, 8, 12, 16] if antialias else [0, 4, 7, 10, 14])  # CUT's 0,4,8,12,16 when antialiased
    x = torch.rand(1, 3, 32, 32)
    features = g.features(x, layers)
    assert [f.shape[1] for f in features] == g.feature_channels(layers) == [3, 16, 32, 32, 32]
    expected, out = [], x
    for index, layer in enumerate(g.model[:17]):
        out = layer(out)
        if index in layers:
            expected.append(out)
    for got, want in zip(features, expected):
        torch.testing.assert_close(got, want)
    assert g.decoder_start == (21 if antialias else 19)  # stem 4 + downsampling (4 or 3 layers each) x2 + 9 blocks
    with pytest.raises(UserError, match=f"encoder layers 0 to {g.decoder_start - 1} of this generator"):
        g.features(x, [g.decoder_start])


def test_patch_sampler_takes_the_same_locations_everywhere() -> None:
    from gan_translate.nn.patch_sample import PatchSampleMLP

    torch.manual_seed(0)
    features = [torch.rand(2, 3, 8, 8), torch.rand(2, 16, 4, 4)]
    heads = PatchSampleMLP([3, 16], channels=0)  # no MLP: the sampled features themselves, normalised
    locations = heads.sample_locations(features, num_patches=10)
    assert [len(w) for w in locations] == [10, 10] and all(len(set(w.tolist())) == 10 for w in locations)
    out = heads(features, locations)
    assert [tuple(o.shape) for o in out] == [(20, 3), (20, 16)]
    for feature, where, sampled in zip(features, locations, out):
        for image in range(2):
            direct = feature[image].flatten(1)[:, where].T  # (P, C) at those positions of this image
            torch.testing.assert_close(sampled[image * 10 : (image + 1) * 10], torch.nn.functional.normalize(direct, dim=1))
    mlp = PatchSampleMLP([3, 16], channels=32)
    assert [tuple(o.shape) for o in mlp(features, locations)] == [(20, 32), (20, 32)]
    assert all(torch.allclose(o.norm(dim=1), torch.ones(20)) for o in mlp(features, locations))
    small = heads.sample_locations([torch.rand(1, 1, 2, 2)], num_patches=10)
    assert sorted(small[0].tolist()) == [0, 1, 2, 3]  # all positions when there are fewer
