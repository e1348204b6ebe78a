"""Gatys losses and optimisation at toy size (32-64 px) with the seeded random VGG19 (labelled untrained).

Random features are enough to check the mechanics: losses, iteration counting, best-image tracking,
pixel range, colour preservation, batching and coarse-to-fine.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from gan_translate.core.errors import UserError
from gan_translate.core.images import uint8_to_tensor
from gan_translate.data.synthetic import render_a, render_b, scene_for
from gan_translate.nn.vgg import VGG19Features
from gan_translate.style import GatysConfig, Stylizer, stylize
from gan_translate.style.gatys import StylizeProgress, rgb_to_ycbcr, transfer_luminance
from gan_translate.style.losses import content_loss, gram_matrix, style_loss, total_variation
from gan_translate.style.pipeline import working_sizes

# Shallow layers keep the mechanical tests fast; the paper's layers are used where it matters.
SMALL = dict(style_layers=("relu1_1", "relu2_1", "relu3_1"), content_layers=("relu2_2",))


@pytest.fixture(scope="module")
def small_vgg() -> VGG19Features:
    return VGG19Features(("relu1_1", "relu2_1", "relu2_2", "relu3_1"), weights="random")


@pytest.fixture(scope="module")
def paper_vgg() -> VGG19Features:
    return VGG19Features(GatysConfig().layers, weights="random")


def _scene(split: str, index: int, size: int, renderer: Callable[..., np.ndarray] = render_a) -> torch.Tensor:
    return uint8_to_tensor(renderer(scene_for(0, split, index, size)))[None].contiguous()


@pytest.fixture(scope="module")
def pair32() -> tuple[torch.Tensor, torch.Tensor]:
    return _scene("testA", 0, 32), _scene("trainB", 0, 32, render_b)


# ------------------------------------------------------------------------------------------- losses


def test_gram_matrix_by_hand() -> None:
    # image 0: channel 0 = [[1, 2], [3, 4]], channel 1 = [[0, 1], [0, 1]]  -> F = [[1, 2, 3, 4], [0, 1, 0, 1]]
    # F Fᵀ = [[30, 6], [6, 2]], divided by C*H*W = 2*2*2 = 8
    first = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]])
    second = torch.ones(2, 2, 2)  # F Fᵀ = [[4, 4], [4, 4]] -> 0.5 everywhere
    gram = gram_matrix(torch.stack([first, second]))
    assert gram.shape == (2, 2, 2)
    torch.testing.assert_close(gram[0], torch.tensor([[3.75, 0.75], [0.75, 0.25]]))
    torch.testing.assert_close(gram[1], torch.full((2, 2), 0.5))
    # the normalisation makes a tiled (larger) texture give the same Gram matrix
    torch.testing.assert_close(gram_matrix(first.repeat(1, 2, 2)[None]), gram[:1])


def test_style_and_content_losses_vanish_on_their_own_images(small_vgg: VGG19Features, pair32: tuple[torch.Tensor, torch.Tensor]) -> None:
    content, style = pair32
    with torch.no_grad():
        f_style, f_content = small_vgg(style), small_vgg(content)
    grams = {layer: gram_matrix(f_style[layer]) for layer in SMALL["style_layers"]}
    targets = {layer: f_content[layer] for layer in SMALL["content_layers"]}
    assert style_loss(f_style, grams).item() == 0.0
    assert content_loss(f_content, targets).item() == 0.0
    assert style_loss(f_content, grams).item() > 0 and content_loss(f_style, targets).item() > 0
    # per image, with a single style broadcast over the batch; per-layer weights scale the terms
    batch = {k: torch.cat([f_style[k], f_content[k]]) for k in f_style}
    losses = style_loss(batch, grams)
    assert losses.shape == (2,) and losses[0] == 0 and losses[1] > 0
    halved = style_loss(batch, grams, {layer: 0.5 for layer in grams})
    torch.testing.assert_close(halved, losses / 2)


def test_total_variation_of_constant_and_ramp() -> None:
    assert total_variation(torch.full((2, 3, 8, 8), 0.3)).tolist() == [0.0, 0.0]
    step = 0.1
    ramp = (torch.arange(8.0) * step).view(1, 1, 1, 8).expand(1, 3, 5, 8)  # horizontal ramp
    torch.testing.assert_close(total_variation(ramp), torch.tensor([step**2]))
    torch.testing.assert_close(total_variation(ramp.transpose(-1, -2)), torch.tensor([step**2]))


# ------------------------------------------------------------------------------------------- optimisation


@pytest.mark.parametrize("line_search", ["strong_wolfe", "none"])
def test_lbfgs_lowers_the_loss_by_a_large_factor_at_64px(paper_vgg: VGG19Features, line_search: str) -> None:
    # the paper's layers and the default weights, random features
    content, style = _scene("testA", 0, 64), _scene("trainB", 0, 64, render_b)
    result = stylize(content, style, paper_vgg, GatysConfig(steps=6, line_search=line_search))
    first = result.history[0]["total"]
    assert result.iterations == 6
    assert first / result.best_loss[0] > 10, (first, result.best_loss)


def test_adam_lowers_the_loss(small_vgg: VGG19Features, pair32: tuple[torch.Tensor, torch.Tensor]) -> None:
    content, style = pair32
    result = stylize(content, style, small_vgg, GatysConfig(steps=8, optimizer="adam", lr=0.05, **SMALL))
    assert result.iterations == 8 and result.evaluations == 9  # 8 steps + the final point
    assert result.best_loss[0] < 0.5 * result.history[0]["total"]


@pytest.mark.parametrize("line_search", ["none", "strong_wolfe"])
def test_lbfgs_runs_exactly_the_iterations_asked(small_vgg: VGG19Features, pair32: tuple[torch.Tensor, torch.Tensor], monkeypatch: pytest.MonkeyPatch, line_search: str) -> None:
    calls: list[tuple[int, int]] = []  # (max_iter of the call, iterations it ran) as the optimiser itself counts them

    class SpyLBFGS(torch.optim.LBFGS):
        def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor | None:
            state = self.state[self._params[0]]
            before = state.get("n_iter", 0)
            loss = super().step(closure)
            calls.append((self.param_groups[0]["max_iter"], self.state[self._params[0]]["n_iter"] - before))
            return loss

    monkeypatch.setattr(torch.optim, "LBFGS", SpyLBFGS)
    content, style = pair32
    config = GatysConfig(steps=7, lbfgs_max_iter=5, line_search=line_search, **SMALL)
    seen: list[int] = []
    result = stylize(content, style, small_vgg, config, callback=lambda p: seen.append(p.iteration))
    assert result.iterations == 7 and not result.converged
    assert sum(ran for _, ran in calls) == 7, calls
    assert calls[0] == (5, 5) and calls[-1][0] <= 2  # a call count of 2 would be wrong by a factor of 3.5
    assert seen == sorted(set(seen)) and seen[-1] == 7 and seen[0] >= 1
    assert max(entry["iteration"] for entry in result.history) == 7


def test_best_image_is_kept_not_the_last(small_vgg: VGG19Features, pair32: tuple[torch.Tensor, torch.Tensor]) -> None:
    content, style = pair32
    steps = 4

    def spoil_last_step(progress: StylizeProgress) -> None:
        # A bad last update (as a line search or a large Adam step can make): the final point is worse.
        if progress.iteration == steps:
            progress.image.copy_(torch.rand(progress.image.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1)

    result = stylize(content, style, small_vgg, GatysConfig(steps=steps, optimizer="adam", lr=0.05, **SMALL), callback=spoil_last_step)
    totals = [entry["total"] for entry in result.history]
    assert totals[-1] > 2 * min(totals), "the last point evaluated should be the spoiled one"
    assert result.best_loss[0] == pytest.approx(min(totals), rel=1e-6)
    # the returned pixels are the best ones: their loss, computed afresh, is the best loss
    with torch.no_grad():
        features, f_content, f_style = small_vgg(result.image), small_vgg(content), small_vgg(style)
    recomputed = 1e6 * style_loss(features, {k: gram_matrix(f_style[k]) for k in SMALL["style_layers"]}) + content_loss(
        features, {k: f_content[k] for k in SMALL["content_layers"]}
    )
    assert recomputed.item() == pytest.approx(result.best_loss[0], rel=1e-4)


def test_gradient_is_projected_at_the_bounds() -> None:
    from gan_translate.style.gatys import _project_gradient

    image = torch.tensor([1.0, 1.0, -1.0, -1.0, 0.5, 0.5], requires_grad=True)
    image.grad = torch.tensor([-2.0, 2.0, 2.0, -2.0, -2.0, 2.0])
    _project_gradient(image)
    # descent moves along -grad: a pixel at a bound keeps only the component that brings it back inside
    assert image.grad.tolist() == [0.0, 2.0, 0.0, -2.0, -2.0, 2.0]


@pytest.mark.parametrize("optimizer,init", [("adam", "noise"), ("lbfgs", "style")])
def test_pixels_stay_in_range(small_vgg: VGG19Features, pair32: tuple[torch.Tensor, torch.Tensor], optimizer: str, init: str) -> None:
    content, style = pair32
    config = GatysConfig(steps=4, optimizer=optimizer, lr=2.0 if optimizer == "adam" else None, init=init, seed=3, **SMALL)
    image = stylize(content, style, small_vgg, config).image
    assert image.shape == content.shape and torch.isfinite(image).all()
    assert image.min() >= -1 and image.max() <= 1


def test_colour_preservation_keeps_the_content_chroma(small_vgg: VGG19Features, pair32: tuple[torch.Tensor, torch.Tensor]) -> None:
    content, style = pair32
    config = GatysConfig(steps=4, line_search="none", preserve_color=True, **SMALL)
    plain = stylize(content, style, small_vgg, GatysConfig(steps=4, line_search="none", **SMALL)).image
    kept = stylize(content, style, small_vgg, config).image
    chroma_error = (rgb_to_ycbcr(kept)[:, 1:] - rgb_to_ycbcr(content)[:, 1:]).abs().mean()
    assert chroma_error < 0.01
    assert (rgb_to_ycbcr(plain)[:, 1:] - rgb_to_ycbcr(content)[:, 1:]).abs().mean() > 3 * chroma_error
    # the luminance is the stylised one
    assert (rgb_to_ycbcr(kept)[:, :1] - rgb_to_ycbcr(plain)[:, :1]).abs().mean() < 0.01


def test_transfer_luminance_exact_in_gamut() -> None:
    result = torch.rand(1, 3, 8, 8) * 0.4 - 0.2  # mid-grey area: in gamut whatever the chroma
    content = torch.rand(1, 3, 8, 8) * 0.4 - 0.2
    mixed = transfer_luminance(result, content)
    torch.testing.assert_close(rgb_to_ycbcr(mixed)[:, :1], rgb_to_ycbcr(result)[:, :1], atol=1e-5, rtol=0)
    torch.testing.assert_close(rgb_to_ycbcr(mixed)[:, 1:], rgb_to_ycbcr(content)[:, 1:], atol=1e-5, rtol=0)


def test_batch_has_per_image_grams_and_matches_one_by_one_with_adam(small_vgg: VGG19Features) -> None:
    contents = torch.cat([_scene("testA", 0, 32), _scene("testA", 1, 32)])
    styles = torch.cat([_scene("trainB", 0, 32, render_b), _scene("trainB", 1, 32, render_b)])
    config = GatysConfig(steps=3, optimizer="adam", **SMALL)
    batched = stylize(contents, styles, small_vgg, config)
    assert batched.image.shape == contents.shape and len(batched.best_loss) == 2
    for i in range(2):
        single = stylize(contents[i : i + 1], styles[i : i + 1], small_vgg, config)
        torch.testing.assert_close(batched.image[i : i + 1], single.image, atol=1e-4, rtol=0)
        assert batched.best_loss[i] == pytest.approx(single.best_loss[0], rel=1e-4)
    # one style for the whole batch works too
    assert len(stylize(contents, styles[:1], small_vgg, config).best_loss) == 2


def test_coarse_to_fine_runs_every_scale(small_vgg: VGG19Features) -> None:
    content = _scene("testA", 0, 48)[..., :40]  # 48 x 40, not square
    style = _scene("trainB", 0, 32, render_b)
    progress: list[tuple[int, int, tuple[int, int]]] = []
    config = GatysConfig(steps=3, sizes=(24, 48), line_search="none", **SMALL)
    result = stylize(content, style, small_vgg, config, callback=lambda p: progress.append((p.iteration, p.total_iterations, p.size)))
    assert result.iterations == 6
    assert result.image.shape == (1, 3, 48, 40)
    assert {entry["scale"] for entry in result.history} == {0.0, 1.0}
    assert progress[-1][:2] == (6, 6)
    assert progress[0][2] == (24, 20) and progress[-1][2] == (48, 40)


def test_config_is_checked() -> None:
    with pytest.raises(UserError, match="optimizer must be one of lbfgs, adam"):
        GatysConfig(optimizer="sgd")
    with pytest.raises(UserError, match="init"):
        GatysConfig(init="zeros")
    with pytest.raises(UserError, match="style_weight"):
        GatysConfig(style_weight=-1)
    assert GatysConfig(optimizer="adam").learning_rate == 0.02 and GatysConfig().learning_rate == 1.0


def test_stylizer_keeps_size_and_never_upscales(small_vgg: VGG19Features) -> None:
    assert working_sizes(20, 10, (512,)) == (20,)
    assert working_sizes(600, 300, (256, 512)) == (256, 512)
    assert working_sizes(100, 80, (256, 512)) == (100,)
    rng = np.random.default_rng(0)
    content = rng.integers(0, 255, (23, 41, 3), dtype=np.uint8)
    style = rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)
    stylizer = Stylizer(small_vgg, GatysConfig(steps=2, line_search="none", **SMALL), sizes=(32,))
    out = stylizer(content, style)
    assert out.shape == content.shape and out.dtype == np.uint8
    assert stylizer.iterations_for(23, 41) == 2
    assert "random weights (untrained)" in stylizer.description
    assert not math.isnan(float(out.mean()))
