"""StyleGAN2 + ADA at toy size: the regularisers against direct autograd computations, the EMA, style mixing,
ADA's controller and augmentations, exact resume, a fit through the CLI that `load_model` samples from, bf16."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F

from gan_translate.artifacts import load_model
from gan_translate.core.errors import UserError
from gan_translate.data.datamodules import ImageFolderDataModule
from gan_translate.models import MODELS, StyleGAN2
from gan_translate.models.augment import AdaptiveAugment, augment, brightness, contrast, cutout, saturation, translate
from gan_translate.models.base import CHECKPOINT_KEY
from tests.helpers import checkpoints, fit, load_raw, tiny_stylegan2_args

TINY = dict(resolution=32, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16, num_fixed_samples=4,
            make_gif=False)


def _model(**overrides) -> StyleGAN2:
    return StyleGAN2(**{**TINY, **overrides})


def _images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _noisy(model: StyleGAN2) -> StyleGAN2:
    """Non-zero noise strengths (they start at 0), so the random noise inputs matter too."""
    with torch.no_grad():
        for name, param in model.generator.named_parameters():
            if name.endswith("noise.weight"):
                param.normal_(0, 0.3)
    return model


# --- the module -----------------------------------------------------------------------------------
def test_registered_sampler_with_an_ema_generator() -> None:
    assert MODELS.get("stylegan2") is StyleGAN2
    model = _model()
    assert model.capabilities == {"sample"}
    keys = model.state_dict().keys()
    for key in ("generator_ema.mapping.w_avg", "pl_mean", "augment_pipe.p", "augment_pipe.sign_sum", "fixed_noise"):
        assert key in keys, key
    assert not any(p.requires_grad for p in model.generator_ema.parameters())
    model.train()
    assert model.generator.training and not model.generator_ema.training
    images = model.sample(3, torch.Generator().manual_seed(0))
    assert images.shape == (3, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    with pytest.raises(UserError, match="channels must be 1 or 3"):
        _model(channels=2)
    with pytest.raises(UserError, match="unknown augment mode 'sometimes'"):
        _model(augment="sometimes")


def test_decode_truncation_and_mixing_helpers() -> None:
    model = _model()
    torch.manual_seed(3)
    with torch.no_grad():  # a w_avg away from 0 and an EMA generator that is not the init
        model.generator_ema.mapping.w_avg.normal_()
    z = model.latents(5, torch.Generator().manual_seed(1))
    torch.testing.assert_close(model.decode(z), model.decode(z), rtol=0, atol=0)
    # Another batch size: the same images up to float rounding only (batched matmuls and the grouped convolution
    # of the modulated layers sum in another order), not bit for bit as DCGAN's.
    torch.testing.assert_close(model.decode(z, batch_size=2), model.decode(z), rtol=0, atol=1e-5)
    mean_image = model.decode(z, psi=0.0)
    torch.testing.assert_close(mean_image, mean_image[:1].expand_as(mean_image))  # psi 0: every w is w_avg
    assert not torch.allclose(model.decode(z, psi=0.7), model.decode(z))
    other = model.latents(5, torch.Generator().manual_seed(2))
    torch.testing.assert_close(model.mix(z, other, crossover=model.n_styles), model.decode(z))
    torch.testing.assert_close(model.mix(z, other, crossover=0), model.decode(other))
    grid = model.mixing_grid(z[:2], other[:3], crossover=4)
    assert grid.shape == (2, 3, 3, 32, 32)
    torch.testing.assert_close(grid[1, 2], model.mix(z[1:2], other[2:3], crossover=4)[0])


# --- the regularisers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["off", "fixed"])
def test_r1_equals_a_direct_autograd_computation(mode: str) -> None:
    model = _model(augment=mode, augment_p=0.5)
    real = _images()
    torch.manual_seed(7)  # the same augmentations in both computations
    penalty, logits = model.r1_penalty(real)
    x = real.clone().requires_grad_(True)
    torch.manual_seed(7)
    inputs = augment(x, 0.5) if mode == "fixed" else x
    (grads,) = torch.autograd.grad(model.discriminator(inputs).sum(), x)
    expected = grads.square().sum(dim=(1, 2, 3))
    assert logits.shape == (4, 1) and penalty.shape == (4,)
    torch.testing.assert_close(penalty, expected)
    assert float(expected.min()) > 0
    # a second-order term: its backward reaches the discriminator's weights
    penalty.mean().backward()
    assert model.discriminator.from_rgb.weight.grad is not None
    assert float(model.discriminator.from_rgb.weight.grad.abs().sum()) > 0


def test_path_length_equals_a_direct_computation() -> None:
    model = _noisy(_model(style_mixing_prob=0.0, pl_decay=0.1))
    model.pl_mean.fill_(0.3)
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1)) / math.sqrt(32 * 32)
    torch.manual_seed(5)  # the same random noise inputs of the synthesis network
    penalty, lengths = model.path_length_penalty(z, noise)

    generator = model.generator
    ws = generator.broadcast(generator.mapping(z))
    torch.manual_seed(5)
    images = generator.synthesis(ws)
    (grads,) = torch.autograd.grad((images * noise).sum(), ws)
    expected_lengths = grads.square().sum(dim=2).mean(dim=1).sqrt()
    expected_mean = 0.3 + 0.1 * (expected_lengths.mean() - 0.3)
    torch.testing.assert_close(lengths, expected_lengths)
    torch.testing.assert_close(penalty, (expected_lengths - expected_mean).square())
    torch.testing.assert_close(model.pl_mean, expected_mean.detach())
    penalty.mean().backward()
    assert float(generator.mapping.layers[0].weight.grad.abs().sum()) > 0  # through the ws into the mapping


def test_ema_update_formula() -> None:
    model = _model(ema_kimg=0.01, ema_rampup=None)
    with torch.no_grad():
        for param in model.generator.parameters():
            param.add_(torch.randn_like(param))
        model.generator.mapping.w_avg.normal_()
    old = {k: v.clone() for k, v in model.generator_ema.named_parameters()}
    beta = model.update_ema(batch_size=4, images_seen=1000)
    assert beta == pytest.approx(0.5 ** (4 / 10))
    for name, param in model.generator.named_parameters():
        torch.testing.assert_close(dict(model.generator_ema.named_parameters())[name], param.lerp(old[name], beta))
    torch.testing.assert_close(model.generator_ema.mapping.w_avg, model.generator.mapping.w_avg, rtol=0, atol=0)
    # the ramp-up: the half-life is at most ema_rampup * images seen, so the first update copies G
    ramped = _model(ema_kimg=10.0, ema_rampup=0.05)
    with torch.no_grad():
        ramped.generator.synthesis.const.add_(1.0)
    assert ramped.update_ema(batch_size=4, images_seen=0) == 0.0
    assert torch.equal(ramped.generator_ema.synthesis.const, ramped.generator.synthesis.const)
    assert ramped.update_ema(batch_size=4, images_seen=2000) == pytest.approx(0.5 ** (4 / 100))


def _mapping_outputs(model: StyleGAN2) -> tuple[list[torch.Tensor], torch.utils.hooks.RemovableHandle]:
    outputs: list[torch.Tensor] = []
    handle = model.generator.mapping.register_forward_hook(lambda module, args, out: outputs.append(out.detach()))
    return outputs, handle


def test_style_mixing_swaps_the_ws_at_the_crossover() -> None:
    model = _model(style_mixing_prob=1.0)
    n_styles = model.n_styles
    fed: list[torch.Tensor] = []
    model.generator.synthesis.register_forward_pre_hook(lambda module, args: fed.append(args[0].detach()))
    outputs, handle = _mapping_outputs(model)
    crossovers = set()
    for _ in range(40):
        outputs.clear()
        fed.clear()
        ws, _ = model.training_ws(torch.randn(3, 16))
        model.generator.synthesis(ws)
        w1, w2 = outputs  # the batch's w and the second latent's
        assert not torch.allclose(w1, w2)
        same_as_first = [bool(torch.equal(fed[0][:, i], w1)) for i in range(n_styles)]
        crossover = same_as_first.index(False)
        assert 1 <= crossover < n_styles and all(same_as_first[:crossover])
        assert all(torch.equal(fed[0][:, i], w2) for i in range(crossover, n_styles))
        crossovers.add(crossover)
    assert crossovers == set(range(1, n_styles))  # every crossover in [1, n_styles) occurs
    handle.remove()

    unmixed = _model(style_mixing_prob=0.0)
    outputs, handle = _mapping_outputs(unmixed)
    ws, w = unmixed.training_ws(torch.randn(3, 16))
    assert len(outputs) == 1 and torch.equal(ws, unmixed.generator.broadcast(w))
    handle.remove()


# --- ADA ------------------------------------------------------------------------------------------------
def test_ada_p_rises_when_d_is_overconfident_and_falls_otherwise() -> None:
    ada = AdaptiveAugment("ada", p=0.0, target=0.6, interval=4, kimg=1.0)  # +-32/1000 per adjustment of 4 x 8
    confident = torch.full((8, 1), 3.0)  # every real image judged real: r_t = 1 > 0.6
    unsure = torch.tensor([[1.0]] * 4 + [[-1.0]] * 4)  # r_t = 0 < 0.6
    for index in range(3):
        ada.observe(confident, index, batch_size=8)
    assert float(ada.p) == 0.0  # only after every 4th batch
    ada.observe(confident, 3, batch_size=8)
    assert float(ada.p) == pytest.approx(0.032) and float(ada.rt) == 1.0
    for index in range(4, 40):
        ada.observe(confident, index, batch_size=8)
    assert float(ada.p) == pytest.approx(0.32)
    for index in range(40, 48):
        ada.observe(unsure, index, batch_size=8)
    assert float(ada.p) == pytest.approx(0.256) and float(ada.rt) == 0.0
    for index in range(48, 200):
        ada.observe(unsure, index, batch_size=8)
    assert float(ada.p) == 0.0  # clamped
    fast = AdaptiveAugment("ada", kimg=0.01)
    for index in range(40):
        fast.observe(confident, index, batch_size=8)
        assert 0.0 <= float(fast.p) <= 1.0
    assert float(fast.p) == 1.0
    # the state is the module's: restored exactly
    copy = AdaptiveAugment("ada", kimg=1.0)
    ada.observe(confident, 200, batch_size=8)
    copy.load_state_dict(ada.state_dict())
    assert torch.equal(copy.p, ada.p) and torch.equal(copy.sign_sum, ada.sign_sum) and float(copy.sign_count) == 8
    for mode in ("fixed", "off"):
        other = AdaptiveAugment(mode, p=0.25, kimg=0.01)
        for index in range(8):
            other.observe(confident, index, batch_size=8)
        assert float(other.p) == 0.25


@pytest.mark.parametrize("op", [brightness, saturation, contrast, translate, cutout, augment])
def test_augmentations_are_identity_at_p0_and_differentiable(op) -> None:
    x = _images(6).requires_grad_(True)
    assert torch.equal(op(x, 0.0), x)
    torch.manual_seed(1)
    y = op(x, 1.0)
    assert y.shape == x.shape and not torch.equal(y, x)
    weights = torch.randn_like(y)
    (grad,) = torch.autograd.grad((y * weights).sum(), x)
    assert torch.isfinite(grad).all() and float(grad.abs().sum()) > 0


def test_translation_moves_whole_pixels_and_cutout_zeroes_half_the_side() -> None:
    x = _images(8)
    torch.manual_seed(0)
    moved = translate(x, 1.0)
    for image, original in zip(moved, x):
        found = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                 if torch.equal(image[:, max(dy, 0):32 + min(dy, 0), max(dx, 0):32 + min(dx, 0)],
                                original[:, max(-dy, 0):32 + min(-dy, 0), max(-dx, 0):32 + min(-dx, 0)])]
        assert found, "not an integer shift of at most 1/8 of the side"
    torch.manual_seed(0)
    holes = (cutout(x, 1.0) == 0).all(dim=1).sum(dim=(1, 2))
    assert int(holes.max()) <= 16 * 16 and int(holes.min()) >= 8 * 8  # a 16 px square, cut by the border at most in half


def test_generator_gradients_pass_through_the_augmentation() -> None:
    model = _model(augment="fixed", augment_p=1.0)
    ws, _ = model.training_ws(torch.randn(4, 16))
    fakes = model.generator.synthesis(ws)
    fakes.retain_grad()
    loss = F.softplus(-model.discriminator(model.augment_pipe(fakes))).mean()
    loss.backward()
    assert float(fakes.grad.abs().sum()) > 0
    assert float(model.generator.synthesis.const.grad.abs().sum()) > 0


# --- training ---------------------------------------------------------------------------------------
def _trainer(folder: Path, **kwargs) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(folder), **kwargs)


def _data(synthetic_root: Path) -> ImageFolderDataModule:
    return ImageFolderDataModule(root=str(synthetic_root / "trainB"), image_size=32, batch_size=4, num_workers=0)


def test_bf16_mixed_step_is_finite(synthetic_root: Path, tmp_path: Path) -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    trainer = _trainer(tmp_path, precision="bf16-mixed")
    trainer.fit(model, datamodule=_data(synthetic_root))
    assert trainer.global_step == 4  # G, path length, D, R1: both regularisers run on the first batch
    metrics = trainer.logged_metrics
    for key in ("d_loss", "g_loss", "r1", "pl_penalty", "pl_mean"):
        assert torch.isfinite(metrics[f"train/{key}_step"]), key
    assert float(metrics["train/r1_step"]) > 0 and float(metrics["train/pl_mean_step"]) > 0
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    assert any(not torch.equal(v, model.generator.state_dict()[k]) for k, v in before.items())


@pytest.fixture(scope="module")
def runs(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 batches straight, and 2 + a resume from that checkpoint to 4, through the CLI (W&B offline)."""
    images = synthetic_root / "trainB"
    # R1 and path length on batches 0 and 3, ADA adjustments after batches 1 and 3: all of it in both halves.
    extra = ["--model.r1_interval", "3", "--model.pl_interval", "3", "--model.sample_every_n_steps", "1",
             "--model.augment_p", "0.5"]
    straight = tmp_path_factory.mktemp("stylegan2_straight")
    fit([*tiny_stylegan2_args(images, straight, epochs=2, batches=2), *extra])
    halves = tmp_path_factory.mktemp("stylegan2_halves")
    fit([*tiny_stylegan2_args(images, halves, epochs=1, batches=2), *extra])
    first = checkpoints(halves)[-1]
    half = load_raw(first)
    fit([*tiny_stylegan2_args(images, halves, epochs=2, batches=2), *extra, "--ckpt_path", str(first)])
    return {"straight": checkpoints(straight)[-1], "resumed": checkpoints(halves)[-1], "half": half,  # type: ignore[dict-item]
            "straight_dir": straight}


def test_resume_is_exact(runs: dict) -> None:
    straight, resumed = load_raw(runs["straight"]), load_raw(runs["resumed"])
    assert runs["half"]["global_step"] == 2 + 1 + 2 + 1  # batch 0 has both regularisation steps
    assert straight["global_step"] == resumed["global_step"] == 2 * 4 + 2 + 2
    assert straight["state_dict"].keys() == resumed["state_dict"].keys()
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    for opt_a, opt_b in zip(straight["optimizer_states"], resumed["optimizer_states"], strict=True):
        for index, state in opt_a["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b["state"][index][name])), (index, name)
    # the run did exercise what must be restored
    state = straight["state_dict"]
    assert float(state["augment_pipe.p"]) not in (0.0, 0.5) and float(runs["half"]["state_dict"]["augment_pipe.p"]) != 0.5
    assert float(state["pl_mean"]) > 0
    assert not torch.equal(state["generator_ema.synthesis.const"], state["generator.synthesis.const"])
    assert torch.equal(state["generator_ema.mapping.w_avg"], state["generator.mapping.w_avg"])
    assert float(state["generator.mapping.w_avg"].abs().sum()) > 0


def test_fit_through_the_cli_then_load_model_samples_reproducibly(runs: dict) -> None:
    raw = load_raw(runs["straight"])
    assert raw[CHECKPOINT_KEY]["model"] == "stylegan2" and raw["hyper_parameters"]["channel_max"] == 16
    model = load_model(runs["straight"], capability="sample")
    assert isinstance(model, StyleGAN2)
    first = model.sample(4, torch.Generator().manual_seed(0))
    second = model.sample(4, torch.Generator().manual_seed(0))
    assert first.shape == (4, 3, 32, 32) and torch.isfinite(first).all()
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    again = load_model(runs["straight"], capability="sample").sample(4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    # the logs reach W&B as DCGAN's do
    wandb_files = list(runs["straight_dir"].rglob("offline-run-*/*.wandb"))
    assert len(wandb_files) == 1
    logged = wandb_files[0].read_bytes()
    for key in ("train/d_loss", "train/g_loss", "train/r1", "train/pl_penalty", "train/pl_mean", "train/augment_p",
                "train/ada_rt", "train/d_real_sign"):
        assert key.encode() in logged, key
    assert list(runs["straight_dir"].rglob("offline-run-*/files/media/images/**/*fixed_noise*.png"))
