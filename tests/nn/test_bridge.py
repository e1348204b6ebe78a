"""UNSB's networks (gan_translate/nn/bridge.py): the step embedding, shapes, conditioning, gradients, PatchNCE
features, parameter counts, init and argument errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn import ResnetGenerator
from gan_translate.nn.bridge import (
    AdaptiveAffine,
    TimeConditionedPatchDiscriminator,
    TimeConditionedResnetBlock,
    TimeConditionedResnetGenerator,
    timestep_embedding,
)
from gan_translate.nn.patch_sample import PatchSampleMLP


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def tiny_generator(**kwargs: object) -> TimeConditionedResnetGenerator:
    options: dict[str, object] = dict(ngf=4, n_blocks=2, mapping_layers=1)
    options.update(kwargs)
    return TimeConditionedResnetGenerator(**options)  # type: ignore[arg-type]


def tiny_discriminator(**kwargs: object) -> TimeConditionedPatchDiscriminator:
    options: dict[str, object] = dict(in_channels=3, ndf=4, n_layers=2)
    options.update(kwargs)
    return TimeConditionedPatchDiscriminator(**options)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the step embedding

@pytest.mark.parametrize(
    ("dim", "max_positions", "frequencies"),
    [
        (4, 10000, [1.0, 1e-4]),  # half 2: 10000 ** (-i / 1)
        (6, 10000, [1.0, 1e-2, 1e-4]),  # half 3: 10000 ** (-i / 2)
        (7, 10000, [1.0, 1e-2, 1e-4]),  # odd: the same, then one zero column
        (6, 100, [1.0, 0.1, 0.01]),
    ],
)
def test_timestep_embedding_by_hand(dim: int, max_positions: int, frequencies: list[float]) -> None:
    steps = torch.tensor([0, 1, 7, 250])
    expected = torch.tensor(
        [
            [math.sin(s * f) for f in frequencies] + [math.cos(s * f) for f in frequencies] + [0.0] * (dim % 2)
            for s in steps.tolist()
        ]
    )
    got = timestep_embedding(steps, dim, max_positions)
    assert got.shape == (4, dim) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert torch.equal(got[0], torch.tensor([0.0] * (dim // 2) + [1.0] * (dim // 2) + [0.0] * (dim % 2)))


def test_timestep_embedding_refuses_bad_input() -> None:
    with pytest.raises(UserError, match="dim >= 4"):
        timestep_embedding(torch.tensor([1]), 3)
    with pytest.raises(UserError, match="1-D"):
        timestep_embedding(torch.tensor([[1]]), 8)


# ----------------------------------------------------------------------------- shapes and ranges

def test_generator_keeps_odd_multiples_and_range() -> None:
    g = tiny_generator()
    assert (g.size_multiple, g.min_size, g.latent_dim) == (4, 8, 16)
    x = torch.randn(2, 3, 36, 44) * 3
    y = g(x, torch.tensor([0, 5]), torch.randn(2, g.latent_dim))
    assert y.shape == (2, 3, 36, 44)
    assert y.abs().max() <= 1 and torch.isfinite(y).all()


def test_generator_other_channels_and_downsampling() -> None:
    g = tiny_generator(in_channels=1, out_channels=2, n_downsampling=3, antialias=False, padding_type="zero")
    assert g.size_multiple == 8
    assert g(torch.randn(1, 1, 40, 24), torch.tensor([2]), torch.randn(1, 16)).shape == (1, 2, 40, 24)


@pytest.mark.parametrize(
    ("antialias", "shape"),
    [
        # Each 4x4 stride-1 conv (padding 1) takes one pixel off, each blurred subsampling halves, rounding up:
        # 36 -> 35 -> 18 -> 17 -> 9 -> (last block, no downsampling) 8 -> (final conv) 7; 44 -> 43 -> 22 -> 21 -> 11 -> 10 -> 9.
        (True, (2, 1, 7, 9)),
        # The classic strides: each 4x4 stride-2 conv halves, rounding down: 36 -> 18 -> 9 -> 8 -> 7; 44 -> 22 -> 11 -> 10 -> 9.
        (False, (2, 1, 7, 9)),
    ],
)
def test_discriminator_patch_map(antialias: bool, shape: tuple[int, ...]) -> None:
    d = tiny_discriminator(antialias=antialias)
    out = d(torch.randn(2, 3, 36, 44), torch.tensor([1, 3]))
    assert out.shape == shape and torch.isfinite(out).all()


def test_full_size_discriminator_gives_30x30_for_256() -> None:
    d = TimeConditionedPatchDiscriminator(3, ndf=8)  # n_layers 3, as the PatchGAN's 70x70 patches
    assert d(torch.randn(1, 3, 256, 256), torch.tensor([0])).shape == (1, 1, 30, 30)


# ----------------------------------------------------------------------------- conditioning and gradients

def test_step_and_latent_change_the_generated_image() -> None:
    torch.manual_seed(0)
    g = tiny_generator()
    x, z = torch.randn(1, 3, 32, 32), torch.randn(1, g.latent_dim)
    base = g(x, torch.tensor([1]), z)
    other_step = g(x, torch.tensor([4]), z)
    other_z = g(x, torch.tensor([1]), torch.randn(1, g.latent_dim))
    assert (base - other_step).abs().max() > 1e-5
    assert (base - other_z).abs().max() > 1e-5
    torch.testing.assert_close(g(x, torch.tensor([1]), z), base)  # and nothing else does (no hidden noise)


def test_the_step_survives_the_instance_norm() -> None:
    """The time input is added after the norm: in front of an instance norm a per-channel constant is removed, so
    the block would ignore it (the reference's placement)."""
    torch.manual_seed(0)
    block = TimeConditionedResnetBlock(8, "instance", False, "reflect", time_dim=6, latent_dim=5)
    x, w = torch.randn(2, 8, 8, 8), torch.randn(2, 5)
    first, second = block(x, torch.randn(2, 6), w), block(x, torch.randn(2, 6), w)
    assert (first - second).abs().max() > 1e-2


def test_one_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    g, d = tiny_generator(), tiny_discriminator()
    x, steps = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    loss = d(g(x, steps, torch.randn(2, g.latent_dim)), steps).square().mean()
    loss.backward()
    for net in (g, d):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().max() > 1e-12, f"{type(net).__name__}.{name} gets no gradient"
    # The conditioning parts are among them: the time MLP, the mapping, each block's time and affine layers.
    names = [name for name, _ in g.named_parameters()]
    for part in ("time_embedding.", "mapping.", "model.12.time.", "model.12.affine.", "model.13.time.", "model.13.affine."):
        assert any(name.startswith(part) for name in names), part


def test_discriminator_depends_on_the_step_and_takes_pairs() -> None:
    torch.manual_seed(0)
    d = tiny_discriminator(in_channels=12)  # the energy network E: (x_t, x_1) against another (x_t, x_1)
    pair, other = torch.randn(2, 6, 32, 32), torch.randn(2, 6, 32, 32)
    scored = d(pair, torch.tensor([2]), other)
    torch.testing.assert_close(scored, d(torch.cat([pair, other], dim=1), torch.tensor([2])), rtol=0, atol=0)
    assert (scored - d(pair, torch.tensor([5]), other)).abs().max() > 1e-6
    with pytest.raises(UserError, match="12 input channels"):
        d(pair, torch.tensor([2]))


def test_one_step_is_shared_by_the_batch() -> None:
    g, d = tiny_generator(), tiny_discriminator()
    x, z = torch.randn(3, 3, 32, 32), torch.randn(3, g.latent_dim)
    torch.testing.assert_close(g(x, torch.tensor([2]), z), g(x, torch.tensor([2, 2, 2]), z))
    torch.testing.assert_close(g(x, torch.tensor(2), z), g(x, torch.tensor([2, 2, 2]), z))
    torch.testing.assert_close(d(x, torch.tensor([2])), d(x, torch.tensor([2, 2, 2])))


def test_bad_conditions_are_one_line_errors() -> None:
    g, d = tiny_generator(), tiny_discriminator()
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(UserError, match=r"latent of shape \(2, 16\), got \(2, 8\)"):
        g(x, torch.tensor([1, 2]), torch.randn(2, 8))
    with pytest.raises(UserError, match=r"one step per image, shape \(2,\) or \(1,\), got \(3,\)"):
        g(x, torch.tensor([1, 2, 3]), torch.randn(2, 16))
    with pytest.raises(UserError, match="one step per image"):
        d(x, torch.tensor([[1], [2]]))


# ----------------------------------------------------------------------------- PatchNCE features

def test_resnet9_feature_layers_mean_what_they_mean_in_cut() -> None:
    g = TimeConditionedResnetGenerator(ngf=4, n_blocks=9, mapping_layers=0)
    classic = ResnetGenerator(ngf=4, n_blocks=9, antialias=True)
    assert g.default_feature_layers() == classic.default_feature_layers() == [0, 4, 8, 12, 16]
    layers = g.default_feature_layers()
    assert g.feature_channels(layers) == classic.feature_channels(layers) == [3, 8, 16, 16, 16]
    # The same layer kinds in the same places, the residual blocks replaced by conditioned ones.
    kinds = [type(m).__name__.replace("TimeConditioned", "") for m in g.model]
    assert kinds == [type(m).__name__ for m in classic.model]
    assert (g.first_block, g.decoder_start) == (classic.first_block, classic.decoder_start) == (12, 21)


def test_features_are_the_forward_activations() -> None:
    torch.manual_seed(0)
    g = tiny_generator()
    layers = g.default_feature_layers()
    assert layers == [0, 4, 8, 12, 13]  # two blocks: the first and the last
    x, steps, z = torch.randn(2, 3, 32, 32), torch.tensor([1, 2]), torch.randn(2, 16)
    feats = g.features(x, layers, steps, z)
    assert [f.shape[1] for f in feats] == g.feature_channels(layers)
    assert [tuple(f.shape[2:]) for f in feats] == [(38, 38), (32, 32), (16, 16), (8, 8), (8, 8)]
    output, again = g.forward_with_features(x, layers, steps, z)
    torch.testing.assert_close(output, g(x, steps, z))
    for a, b in zip(feats, again):
        torch.testing.assert_close(a, b)
    # Unordered layers come back in the order asked for.
    torch.testing.assert_close(g.features(x, [12, 4], steps, z)[0], feats[3])


def test_patch_sampler_runs_on_the_features() -> None:
    torch.manual_seed(0)
    g = tiny_generator()
    layers = g.default_feature_layers()
    heads = PatchSampleMLP(g.feature_channels(layers), 16)
    feats = g.features(torch.randn(2, 3, 32, 32), layers, torch.tensor([0]), torch.randn(2, 16))
    projected = heads(feats, PatchSampleMLP.sample_locations(feats, 32))
    assert [p.shape for p in projected] == [(64, 16)] * len(layers)
    torch.testing.assert_close(projected[0].norm(dim=1), torch.ones(64))
    sum(p.sum() for p in projected).backward()
    assert g.mapping[1].weight.grad is not None and g.time_embedding.net[0].weight.grad is not None


def test_feature_layers_outside_the_encoder_are_refused() -> None:
    g = tiny_generator()
    with pytest.raises(UserError, match="encoder layers 0 to 13"):
        g.check_feature_layers([0, 14])
    with pytest.raises(UserError, match="encoder layers"):
        g.features(torch.randn(1, 3, 32, 32), [], torch.tensor([0]), torch.randn(1, 16))


# ----------------------------------------------------------------------------- parameter counts

def generator_params(cin: int, cout: int, ngf: int, blocks: int, n_down: int, mapping_layers: int) -> int:
    """Instance norm (so every conv has a bias), latent and time width L = 4 ngf."""
    conv = lambda i, o, k: i * o * k * k + o  # noqa: E731 - a one-line formula reads best inline
    linear = lambda i, o: i * o + o  # noqa: E731
    dim, width = ngf * 2**n_down, 4 * ngf
    down = sum(conv(ngf * 2**i, ngf * 2 ** (i + 1), 3) for i in range(n_down))
    block = 2 * conv(dim, dim, 3) + linear(width, dim) + linear(width, 2 * dim)  # two convs, time, affine
    up = sum(conv(ngf * 2**i, ngf * 2 ** (i - 1), 3) for i in range(n_down, 0, -1))
    time = linear(ngf, width) + linear(width, width)
    mapping = (1 + mapping_layers) * linear(width, width)
    return conv(cin, ngf, 7) + down + blocks * block + up + conv(ngf, cout, 7) + time + mapping


def discriminator_params(cin: int, ndf: int, n_layers: int) -> int:
    """Instance norm; time width 4 ndf; channels ndf, 2 ndf, ... capped at 8 ndf."""
    width = 4 * ndf
    channels = [cin, ndf, *(ndf * min(2**n, 8) for n in range(1, n_layers + 1))]
    blocks = sum(a * b * 16 + b + width * b + b for a, b in zip(channels, channels[1:]))  # 4x4 conv + time linear
    return 2 * (width * width + width) + blocks + channels[-1] * 16 + 1


def test_parameter_counts_of_a_tiny_configuration() -> None:
    # ngf 4, 2 blocks, 2 downsamplings, 1 extra mapping layer, by hand (weights + biases):
    #   stem 7x7 3->4: 588 + 4 = 592; down 3x3 4->8: 288 + 8 = 296; 8->16: 1152 + 16 = 1168
    #   per block (dim 16): two 3x3 16->16 convs 2 * (2304 + 16) = 4640, time Linear(16, 16) 272,
    #   affine Linear(16, 32) 544: 5456, two blocks 10912
    #   up 3x3 16->8: 1152 + 8 = 1160; 8->4: 288 + 4 = 292; out 7x7 4->3: 588 + 3 = 591
    #   time MLP Linear(4, 16) 80 + Linear(16, 16) 272 = 352; mapping 2 x Linear(16, 16) = 544
    #   592 + 296 + 1168 + 10912 + 1160 + 292 + 591 + 352 + 544 = 15907
    g = tiny_generator()
    assert n_params(g) == generator_params(3, 3, 4, 2, 2, 1) == 15907
    # ndf 4, n_layers 2, 3 channels: time MLP 2 x Linear(16, 16) = 544;
    #   block 0: 4x4 3->4 196 + Linear(16, 4) 68; block 1: 4x4 4->8 520 + Linear(16, 8) 136;
    #   block 2: 4x4 8->16 2064 + Linear(16, 16) 272; final 4x4 16->1: 257
    #   544 + 264 + 656 + 2336 + 257 = 4057
    assert n_params(tiny_discriminator()) == discriminator_params(3, 4, 2) == 4057


def test_full_size_parameter_counts() -> None:
    # The reference's ResnetGenerator_ncsn (ngf 64, 9 blocks, n_mlp 3) has 14,684,419 parameters, of which its nine
    # unused `style` layers are 9 x Linear(256, 512) = 9 x 131,584 = 1,184,256: 13,500,163 is the rest. Its
    # NLayerDiscriminator_ncsn (ndf 64, 3 layers) has 3,143,041 for 3 channels and 3,152,257 for E's 12
    # (9 more input channels x 64 filters x 16 = 9216).
    assert generator_params(3, 3, 64, 9, 2, 3) == 13_500_163
    assert discriminator_params(3, 64, 3) == 3_143_041
    assert discriminator_params(12, 64, 3) == 3_152_257
    assert n_params(TimeConditionedResnetGenerator()) == 13_500_163
    assert n_params(TimeConditionedPatchDiscriminator(12)) == 3_152_257


def test_batch_norm_drops_the_biases_before_it() -> None:
    g, d = tiny_generator(norm="batch"), tiny_discriminator(norm="batch")
    assert all(m.bias is None for m in g.model[12].modules() if isinstance(m, nn.Conv2d))
    assert d.blocks[0].conv.bias is not None and d.blocks[1].conv.bias is None  # the first block has no norm


# ----------------------------------------------------------------------------- init and errors

def test_init_keeps_the_affine_layers_at_the_identity() -> None:
    torch.manual_seed(0)
    g = TimeConditionedResnetGenerator(ngf=16, n_blocks=2)
    affine = [m.linear for m in g.modules() if isinstance(m, AdaptiveAffine)]
    others = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and all(m is not a for a in affine)]
    assert len(affine) == 2
    for gain in (0.02, 0.05):  # as built, and re-initialised by initialize()
        for linear in affine:
            assert torch.equal(linear.bias, torch.cat([torch.ones(64), torch.zeros(64)]))
        assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in others if m.bias is not None)
        weights = torch.cat([m.weight.flatten() for m in [*affine, *others]])
        assert abs(weights.std().item() - gain) < gain / 20 and abs(weights.mean().item()) < gain / 20
        g.initialize("normal", 0.05)


def test_init_type_and_gain_pass_through() -> None:
    torch.manual_seed(0)
    d = TimeConditionedPatchDiscriminator(3, ndf=16, init_gain=0.1)
    weights = torch.cat([m.weight.flatten() for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))])
    assert abs(weights.std().item() - 0.1) < 5e-3
    with pytest.raises(UserError, match="init type"):
        tiny_generator(init_type="nope")


def test_wrong_size_is_the_one_line_error() -> None:
    g = tiny_generator()
    message = "TimeConditionedResnetGenerator needs a height and width that are multiples of 4, got 34x44"
    with pytest.raises(UserError, match=message):
        g(torch.randn(1, 3, 34, 44), torch.tensor([0]), torch.randn(1, 16))
    with pytest.raises(UserError, match=message):
        g.features(torch.randn(1, 3, 34, 44), [0], torch.tensor([0]), torch.randn(1, 16))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: tiny_generator(n_blocks=-1), "n_blocks must be >= 0"),
        (lambda: tiny_generator(n_downsampling=-1), "n_downsampling must be >= 0"),
        (lambda: tiny_generator(mapping_layers=-1), "mapping_layers must be >= 0"),
        (lambda: tiny_generator(ngf=2), "ngf must be >= 4"),
        (lambda: tiny_generator(padding_type="circular"), "padding type"),
        (lambda: tiny_generator(norm="layer"), "norm"),
        (lambda: tiny_discriminator(n_layers=0), "n_layers must be >= 1"),
        (lambda: tiny_discriminator(norm="layer"), "norm"),
    ],
)
def test_bad_arguments_raise_user_errors(build: object, match: str) -> None:
    with pytest.raises(UserError, match=match):
        build()  # type: ignore[operator]
