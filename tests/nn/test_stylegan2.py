"""StyleGAN2 networks: equalised lr, (de)modulation statistics, noise, truncation, style mixing, minibatch std,
shapes, gradients, the builders (no classic init) and config-F parameter counts."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from gan_translate.nn.stylegan2 import (
    STYLEGAN2_RESOLUTIONS,
    Blur,
    EqualConv2d,
    EqualLinear,
    MappingNetwork,
    MinibatchStdDev,
    ModulatedConv2d,
    NoiseInjection,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    SynthesisNetwork,
    ToRGB,
    stylegan2_channels,
    unfuse_modulated_convs,
)

# Tiny networks: 32 channels from 16x16 down (channel_base 512 // res), 32-d latents.
TINY = {"z_dim": 32, "w_dim": 32, "channel_base": 512, "channel_max": 32}
TINY_D = {"channel_base": 512, "channel_max": 32}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.fixture
def g32() -> StyleGAN2Generator:
    return StyleGAN2Generator(32, **TINY)


# ----------------------------------------------------------------------------- equalised learning rate

def test_equal_linear_stores_n01_over_lr_mul_and_scales_by_fan_in() -> None:
    lin = EqualLinear(512, 256, lr_mul=0.01)
    assert lin.weight.std().item() == pytest.approx(100, rel=0.03)  # N(0, 1) / lr_mul
    effective = lin.weight * lin.weight_gain
    assert effective.std().item() == pytest.approx(1 / math.sqrt(512), rel=0.03)  # He init, whatever lr_mul
    # Biases: effective value bias_init at init, runtime scale lr_mul.
    assert torch.all(lin(torch.zeros(1, 512)) == 0)
    style = EqualLinear(16, 8, bias_init=1.0)
    torch.testing.assert_close(style(torch.zeros(2, 16)), torch.ones(2, 8))
    slow = EqualLinear(16, 8, bias_init=1.0, lr_mul=0.01)
    torch.testing.assert_close(slow(torch.zeros(2, 16)), torch.ones(2, 8))


def test_equal_conv_scale_and_lrelu_gain() -> None:
    conv = EqualConv2d(64, 32, 3, padding=1, activation="lrelu")
    assert conv.weight.std().item() == pytest.approx(1, rel=0.03)
    assert conv.weight_gain == pytest.approx(1 / math.sqrt(64 * 9))
    assert torch.all(conv.bias == 0)
    x = torch.randn(4, 64, 8, 8)
    linear = F.conv2d(x, conv.weight * conv.weight_gain, padding=1)
    torch.testing.assert_close(conv(x), F.leaky_relu(linear, 0.2) * math.sqrt(2))
    with pytest.raises(UserError, match="linear, lrelu"):
        EqualConv2d(1, 1, 1, activation="relu")


# ----------------------------------------------------------------------------- mapping, w_avg, truncation

def test_mapping_pixel_norm_makes_z_scale_irrelevant() -> None:
    mapping = MappingNetwork(32, 48, n_layers=8)
    assert len(mapping.layers) == 8 and all(layer.lr_mul == 0.01 for layer in mapping.layers)
    z = torch.randn(4, 32)
    w = mapping(z)
    assert w.shape == (4, 48)
    torch.testing.assert_close(mapping(3 * z), w)
    assert [name for name, _ in mapping.named_buffers()] == ["w_avg"]
    assert "w_avg" not in dict(mapping.named_parameters())


def test_w_avg_moves_only_when_asked() -> None:
    mapping = MappingNetwork(8, 8)
    assert torch.all(mapping.w_avg == 0)
    w = mapping(torch.randn(16, 8))
    assert torch.all(mapping.w_avg == 0)  # forward never touches it
    mapping.update_w_avg(w, beta=0.9)
    torch.testing.assert_close(mapping.w_avg, 0.1 * w.mean(0))
    before = mapping.w_avg.clone()
    mapping.update_w_avg(w[:, None].expand(-1, 4, -1))  # per-layer ws average the same
    torch.testing.assert_close(mapping.w_avg, 0.995 * before + 0.005 * w.mean(0))


def test_truncate_lerps_towards_w_avg_with_optional_cutoff() -> None:
    mapping = MappingNetwork(8, 8)
    mapping.w_avg.copy_(torch.randn(8))
    w = torch.randn(3, 8)
    torch.testing.assert_close(mapping.truncate(w, 0.7), mapping.w_avg + 0.7 * (w - mapping.w_avg))
    torch.testing.assert_close(mapping.truncate(w, 1.0), w)
    ws = torch.randn(3, 6, 8)
    cut = mapping.truncate(ws, 0.0, cutoff=2)
    torch.testing.assert_close(cut[:, :2], mapping.w_avg.expand(3, 2, 8))
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])
    with pytest.raises(UserError, match="per-layer"):
        mapping.truncate(w, 0.5, cutoff=2)


def test_psi_zero_gives_the_w_avg_image_for_every_seed(g32: StyleGAN2Generator) -> None:
    g32.mapping.update_w_avg(g32.mapping(torch.randn(64, 32)), beta=0.0)  # a non-trivial w_avg
    with torch.no_grad():
        images = g32(torch.randn(3, 32), psi=0.0, noise_mode="const")
        mean_image = g32.synthesis(g32.broadcast(g32.mapping.w_avg[None]), noise_mode="const")
        plain = g32(torch.randn(3, 32), noise_mode="const")
    for image in images:
        torch.testing.assert_close(image, mean_image[0], rtol=1e-5, atol=1e-5)
    assert (plain[0] - plain[1]).abs().max() > 1e-2  # without truncation the seeds differ


def test_truncation_cutoff_keeps_the_fine_layers(g32: StyleGAN2Generator) -> None:
    z = torch.randn(2, 32)
    _, ws = g32(z, psi=0.5, truncation_cutoff=3, return_ws=True)
    full = g32.broadcast(g32.mapping(z))
    torch.testing.assert_close(ws[:, 3:], full[:, 3:])
    torch.testing.assert_close(ws[:, :3], g32.mapping.truncate(full[:, :3], 0.5))


# ----------------------------------------------------------------------------- modulated convolution

def test_demodulation_restores_unit_variance() -> None:
    torch.manual_seed(1)
    conv = ModulatedConv2d(64, 64, 3, w_dim=32, demodulate=True)
    x = torch.randn(8, 64, 16, 16)  # unit-variance activations
    w = torch.randn(8, 32)
    with torch.no_grad():
        y = conv(x, w)[..., 1:-1, 1:-1]  # interior: the zero padding lowers the border's variance
        assert 0.85 < y.std().item() < 1.15
        # The style's magnitude does not matter at all (style bias 0, so styles are linear in w).
        conv.affine.bias.zero_()
        torch.testing.assert_close(conv(x, 3 * w), conv(x, w), rtol=1e-4, atol=1e-5)
        assert 0.85 < conv(x, 3 * w)[..., 1:-1, 1:-1].std().item() < 1.15


def test_without_demodulation_the_style_scales_the_output() -> None:
    conv = ModulatedConv2d(64, 64, 3, w_dim=32, demodulate=False)
    x, w = torch.randn(8, 64, 16, 16), torch.randn(8, 32)
    with torch.no_grad():
        conv.affine.bias.zero_()
        small, big = conv(x, w).std().item(), conv(x, 3 * w).std().item()
    assert big / small == pytest.approx(3, rel=1e-3)


def test_grouped_conv_equals_a_per_sample_conv() -> None:
    conv = ModulatedConv2d(6, 5, 3, w_dim=4)
    x, w = torch.randn(3, 6, 8, 8), torch.randn(3, 4)
    y = conv(x, w)
    for i in range(3):
        styles = conv.affine(w[i : i + 1])[0]
        weight = conv.weight * conv.weight_gain * styles[None, :, None, None]
        weight = weight / weight.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        torch.testing.assert_close(y[i : i + 1], F.conv2d(x[i : i + 1], weight, padding=1))


def test_up_conv_doubles_the_size_and_bilinear_is_the_1331_filter() -> None:
    conv = ModulatedConv2d(4, 6, 3, w_dim=8, up=True)
    assert conv(torch.randn(2, 4, 8, 8), torch.randn(2, 8)).shape == (2, 6, 16, 16)
    # The documented equivalence: 2x bilinear (half-pixel) = zero insertion + the [1, 3, 3, 1] filter, inside.
    x = torch.randn(1, 1, 8, 8)
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 4
    fir = F.conv_transpose2d(x, torch.outer(taps, taps)[None, None], stride=2, padding=1)
    bilinear = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(bilinear[..., 1:-1, 1:-1], fir[..., 1:-1, 1:-1])


def test_to_rgb_has_no_demodulation_and_adds_the_upsampled_skip() -> None:
    rgb = ToRGB(8, 3, w_dim=4)
    assert not rgb.conv.demodulate and rgb.conv.kernel_size == 1
    x, w, skip = torch.randn(2, 8, 8, 8), torch.randn(2, 4), torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(rgb(x, w, skip), rgb(x, w) + F.interpolate(skip, scale_factor=2, mode="bilinear"))


# ----------------------------------------------------------------------------- noise

def test_noise_modes() -> None:
    noise = NoiseInjection(4, resolution=8)
    assert noise.weight.shape == (4,) and torch.all(noise.weight == 0)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(noise(x, "random"), x)  # the scale starts at 0
    with torch.no_grad():
        noise.weight.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert torch.equal(noise(x, "none"), x)
    const = noise(x, "const")
    assert torch.equal(const, noise(x, "const"))
    torch.testing.assert_close(const - x, (noise.weight[None, :, None, None] * noise.noise_const).expand(2, -1, -1, -1))
    assert not torch.equal(noise(x, "random"), noise(x, "random"))
    # One per-pixel map per sample, shared by the channels (channel 2 gets twice channel 1's).
    delta = noise(x, "random") - x
    torch.testing.assert_close(delta[:, 2], 2 * delta[:, 1])
    fixed = torch.ones(2, 1, 8, 8)
    torch.testing.assert_close(noise(x, "random", noise=fixed) - x, noise.weight[None, :, None, None].expand(2, 4, 8, 8))
    assert "noise_const" in noise.state_dict()
    with pytest.raises(UserError, match="random, const, none"):
        noise(x, "fixed")


def test_const_noise_is_deterministic_and_random_noise_is_not(g32: StyleGAN2Generator) -> None:
    for m in g32.modules():  # give the noise a visible effect (it starts at 0)
        if isinstance(m, NoiseInjection):
            nn.init.constant_(m.weight, 0.5)
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        a, b = g32(z, noise_mode="const"), g32(z.clone(), noise_mode="const")
        r1, r2 = g32(z, noise_mode="random"), g32(z, noise_mode="random")
        n1, n2 = g32(z, noise_mode="none"), g32(z, noise_mode="none")
    assert torch.equal(a, b) and torch.equal(n1, n2)
    assert not torch.allclose(r1, r2)


# ----------------------------------------------------------------------------- style mixing

def test_mix_styles_takes_layers_from_w1_below_the_crossover(g32: StyleGAN2Generator) -> None:
    w1, w2 = torch.randn(2, 32), torch.randn(2, 32)
    for k in (0, 3, g32.n_styles):
        ws = g32.mix_styles(w1, w2, k)
        assert ws.shape == (2, g32.n_styles, 32)
        torch.testing.assert_close(ws[:, :k], w1[:, None].expand(-1, k, -1))
        torch.testing.assert_close(ws[:, k:], w2[:, None].expand(-1, g32.n_styles - k, -1))
    with pytest.raises(UserError, match=r"\[0, 8\]"):
        g32.mix_styles(w1, w2, 9)


def test_crossover_at_n_styles_is_the_w1_image(g32: StyleGAN2Generator) -> None:
    z1, z2 = torch.randn(2, 32), torch.randn(2, 32)
    with torch.no_grad():
        w1, w2 = g32.mapping(z1), g32.mapping(z2)
        own = g32(z1, noise_mode="const")
        assert torch.equal(g32.synthesis(g32.mix_styles(w1, w2, g32.n_styles), noise_mode="const"), own)
        mixed = g32.synthesis(g32.mix_styles(w1, w2, 4), noise_mode="const")
    assert not torch.allclose(mixed, own)


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize(("resolution", "n_styles"), [(32, 8), (64, 10)])
def test_shapes(resolution: int, n_styles: int) -> None:
    g = StyleGAN2Generator(resolution, **TINY)
    d = StyleGAN2Discriminator(resolution, **TINY_D)
    assert g.n_styles == g.synthesis.n_styles == n_styles
    assert g.size_multiple == 1 and g.latent_dim == 32
    with torch.no_grad():
        images, ws = g(torch.randn(3, 32), return_ws=True)
        assert images.shape == (3, 3, resolution, resolution)
        assert ws.shape == (3, n_styles, 32)
        assert g(torch.randn(3, 32, 1, 1)).shape == images.shape
        assert d(images).shape == (3, 1)


def test_grey_images_and_explicit_channels() -> None:
    synthesis = SynthesisNetwork(32, w_dim=8, channels={4: 16, 8: 16, 16: 8, 32: 4}, out_channels=1)
    assert synthesis.blocks[-1].torgb.conv.in_channels == 4
    assert synthesis(torch.randn(2, 8, 8)).shape == (2, 1, 32, 32)
    d = StyleGAN2Discriminator(32, in_channels=1, **TINY_D)
    assert d(torch.randn(2, 1, 32, 32)).shape == (2, 1)
    with pytest.raises(UserError, match="channels has no entry for resolution"):
        SynthesisNetwork(32, channels={4: 8, 8: 8})


def test_input_checks(g32: StyleGAN2Generator) -> None:
    with pytest.raises(ValueError, match=r"\(N, 32\)"):
        g32(torch.randn(2, 31))
    with pytest.raises(ValueError, match=r"\(N, 8, 32\)"):
        g32.synthesis(torch.randn(2, 7, 32))
    d = StyleGAN2Discriminator(32, **TINY_D)
    with pytest.raises(UserError, match="3x32x32"):
        d(torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize("cls", [StyleGAN2Generator, StyleGAN2Discriminator, SynthesisNetwork])
@pytest.mark.parametrize("resolution", [16, 48, 2048])
def test_unsupported_resolution(cls: type[nn.Module], resolution: int) -> None:
    with pytest.raises(UserError, match=rf"resolution={resolution}.*32, 64, 128, 256, 512, 1024"):
        cls(resolution)


def test_channels_per_resolution() -> None:
    assert stylegan2_channels(1024) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
    assert stylegan2_channels(32, 512, 32) == {4: 32, 8: 32, 16: 32, 32: 16}
    with pytest.raises(UserError, match="at least 64"):
        stylegan2_channels(64, channel_base=32)


# ----------------------------------------------------------------------------- discriminator

def test_blur_is_normalised_and_halves_with_stride_2() -> None:
    x = torch.full((1, 2, 8, 8), 3.0)
    torch.testing.assert_close(Blur(pad=2)(x)[..., 2:-2, 2:-2], torch.full((1, 2, 5, 5), 3.0))
    assert Blur(pad=1, stride=2)(x).shape == (1, 2, 4, 4)


def test_minibatch_std_matches_a_direct_computation() -> None:
    mbstd = MinibatchStdDev(group_size=2, channels=1)
    x = torch.randn(4, 3, 2, 2)
    y = mbstd(x)
    assert y.shape == (4, 4, 2, 2)
    # group i % 2: samples (0, 2) and (1, 3)
    for members in ((0, 2), (1, 3)):
        expected = x[list(members)].std(dim=0, unbiased=False).mean()
        for i in members:
            torch.testing.assert_close(y[i, 3], expected.expand(2, 2), rtol=1e-4, atol=1e-6)
    same = mbstd(torch.ones(4, 3, 2, 2))[:, 3]
    assert torch.all(same < 1e-3)


@pytest.mark.parametrize(("n", "group"), [(1, 1), (2, 2), (3, 3), (4, 4), (5, 1), (6, 3), (7, 1), (8, 4), (10, 2)])
def test_minibatch_std_group_for_any_batch(n: int, group: int) -> None:
    assert MinibatchStdDev(group_size=4).group_for(n) == group


def test_discriminator_takes_batches_not_divisible_by_the_group() -> None:
    d = StyleGAN2Discriminator(32, **TINY_D, mbstd_group_size=4, mbstd_channels=2)
    with torch.no_grad():
        for n in (1, 3, 5, 6):
            assert d(torch.randn(n, 3, 32, 32)).shape == (n, 1)
    with pytest.raises(UserError, match="mbstd_channels=3"):
        StyleGAN2Discriminator(32, **TINY_D, mbstd_channels=3)


def test_discriminator_structure() -> None:
    d = StyleGAN2Discriminator(64, **TINY_D)
    assert len(d.blocks) == 4  # 64 -> 32 -> 16 -> 8 -> 4
    for block in d.blocks:
        assert block.skip[1].bias is None and block.skip[1].weight.shape[-1] == 1
    assert d.conv.in_channels == 32 + 1 and d.fc.in_features == 32 * 16 and d.out.out_features == 1


# ----------------------------------------------------------------------------- gradients

def test_gradient_reaches_every_parameter(g32: StyleGAN2Generator) -> None:
    d = StyleGAN2Discriminator(32, **TINY_D)
    logits = d(g32(torch.randn(4, 32)))
    logits.square().mean().backward()
    for net in (g32, d):
        for name, p in net.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert g32.mapping.w_avg.grad is None and not g32.mapping.w_avg.requires_grad


# ----------------------------------------------------------------------------- builders

def test_registered_and_built_without_classic_init() -> None:
    assert "stylegan2" in GENERATORS.names() and "stylegan2" in DISCRIMINATORS.names()
    g = build_generator("stylegan2", resolution=32, **TINY)
    d = build_discriminator("stylegan2", resolution=32, **TINY_D)
    assert isinstance(g, StyleGAN2Generator) and isinstance(d, StyleGAN2Discriminator)
    # Equalised lr keeps N(0, 1) weights (the classic init would make them N(0, 0.02)) and its style biases of 1.
    assert g.synthesis.blocks[-1].layers[0].conv.weight.std().item() == pytest.approx(1, rel=0.1)
    assert torch.all(g.synthesis.blocks[-1].layers[0].conv.affine.bias == 1)
    assert d.blocks[0].conv0.weight.std().item() == pytest.approx(1, rel=0.1)


def test_builders_refuse_classic_init_options() -> None:
    with pytest.raises(UserError, match=r"'stylegan2'.*init_gain"):
        build_generator("stylegan2", resolution=32, init_gain=0.02, **TINY)
    with pytest.raises(UserError, match=r"'stylegan2'.*init_type") as err:
        build_discriminator("stylegan2", resolution=32, init_type="normal", **TINY_D)
    assert "it accepts: resolution" in str(err.value) and "init_gain" not in str(err.value).split("accepts:")[1]


def test_supported_resolutions_constant() -> None:
    assert STYLEGAN2_RESOLUTIONS == (32, 64, 128, 256, 512, 1024)


# ----------------------------------------------------------------------------- parameter counts (config F)

def _config_f_counts(resolution: int, z_dim: int = 512, w_dim: int = 512, rgb: int = 3) -> tuple[int, int, int]:
    """Counted from the paper's architecture, independently of the modules: (mapping, G, D); G with this
    implementation's per-channel noise scales."""
    ch = {2**i: min(32768 // 2**i, 512) for i in range(2, resolution.bit_length())}
    mapping = z_dim * w_dim + w_dim + 7 * (w_dim * w_dim + w_dim)

    def style_layer(c_in: int, c_out: int) -> int:  # affine + 3x3 weight + noise scales + bias
        return (w_dim * c_in + c_in) + c_out * c_in * 9 + c_out + c_out

    def to_rgb(c_in: int) -> int:  # affine + 1x1 weight + bias
        return (w_dim * c_in + c_in) + rgb * c_in + rgb

    g = mapping + ch[4] * 16 + style_layer(ch[4], ch[4]) + to_rgb(ch[4])
    for r in list(ch)[1:]:
        g += style_layer(ch[r // 2], ch[r]) + style_layer(ch[r], ch[r]) + to_rgb(ch[r])
    d = rgb * ch[resolution] + ch[resolution]
    for r in list(ch)[:0:-1]:
        c_in, c_out = ch[r], ch[r // 2]
        d += (c_in * c_in * 9 + c_in) + (c_out * c_in * 9 + c_out) + c_out * c_in
    c4 = ch[4]
    d += ((c4 + 1) * c4 * 9 + c4) + (16 * c4 * c4 + c4) + (c4 + 1)
    return mapping, g, d


@pytest.mark.parametrize("resolution", [256, 1024])
def test_config_f_parameter_counts(resolution: int) -> None:
    with torch.device("meta"):
        g = StyleGAN2Generator(resolution)
        d = StyleGAN2Discriminator(resolution)
    mapping, g_count, d_count = _config_f_counts(resolution)
    assert n_params(g.mapping) == mapping == 8 * 512 * 512 + 8 * 512 == 2_101_248
    assert n_params(g) == g_count
    assert n_params(d) == d_count
    if resolution == 1024:
        # The paper's config F: G 30.0M, D 29.0M (rounded). With one noise scale per layer, as the official code,
        # G is 30,370,060 parameters (the total the official PyTorch code reports for config F at 1024 px).
        noise_extra = sum(m.weight.numel() - 1 for m in g.modules() if isinstance(m, NoiseInjection))
        assert n_params(g) - noise_extra == 30_370_060
        assert n_params(g) == pytest.approx(30.0e6, rel=0.02)
        assert n_params(d) == pytest.approx(29.0e6, rel=0.01)
    else:
        # Fewer resolutions: the 512-channel layers are all there, only the narrow high-resolution ones go.
        _, g_1024, d_1024 = _config_f_counts(1024)
        assert 29.9e6 < n_params(g) < g_1024 and 28.7e6 < n_params(d) < d_1024


@pytest.mark.parametrize(("up", "demodulate"), [(False, True), (True, True), (False, False)])
def test_the_unfused_modulated_conv_is_the_same_function(up: bool, demodulate: bool) -> None:
    """The exports' form (scale the inputs, one shared conv, demodulate the outputs) equals the grouped one, with the
    same parameters and state_dict keys; only the copy an export traces is switched."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 3, w_dim=8, demodulate=demodulate, up=up)
    x, w = torch.randn(3, 6, 8, 8), torch.randn(3, 8)
    unfused = unfuse_modulated_convs(copy.deepcopy(conv))
    assert conv.fused and not unfused.fused
    assert list(unfused.state_dict()) == list(conv.state_dict())
    torch.testing.assert_close(unfused(x, w), conv(x, w), atol=1e-5, rtol=1e-5)
