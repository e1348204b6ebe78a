"""Gatys et al. (2016) losses as small pure functions: Gram matrices, style, content, total variation.

All losses return **one value per image** (shape ``(N,)``), so a batch of content images can be
optimised together while each image keeps its own loss (for "best image" tracking and reporting).
Sum them over the batch for the objective.

Gram normalisation: ``G = F Fᵀ / (C·H·W)`` for a feature map ``F`` reshaped to ``C x (H·W)``. Dividing by
the number of elements makes the Gram entries (and so the style loss) independent of image size and
roughly comparable across layers of different width, which is what lets one ``style_weight`` work at
256 and at 512 px and in coarse-to-fine runs. The price: loss weights only carry over between
implementations that use the same normalisation (the paper's ``1 / (4 N² M²)`` factor, the PyTorch
tutorial's ``C·H·W`` and plain ``H·W`` differ by orders of magnitude), so the default weights in
:class:`gan_translate.style.gatys.GatysConfig` belong to this normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from gan_translate.nn.adain import channel_mean_std

__all__ = [
    "DEFAULT_CONTENT_LAYERS",
    "DEFAULT_STYLE_LAYERS",
    "content_loss",
    "gram_matrix",
    "mean_std_loss",
    "style_loss",
    "total_variation",
]

#: The paper's layers (Gatys, Ecker & Bethge, CVPR 2016).
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)


def gram_matrix(features: Tensor) -> Tensor:
    """``(N, C, H, W)`` -> ``(N, C, C)``: ``F Fᵀ / (C·H·W)`` per image (see the module docstring)."""
    if features.ndim != 4:
        raise ValueError(f"gram_matrix expects NCHW features, got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def _per_image_mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error over all but the batch dimension; ``b`` may have batch 1 (broadcast)."""
    return (a - b).pow(2).flatten(1).mean(dim=1)


def style_loss(
    features: Mapping[str, Tensor],
    target_grams: Mapping[str, Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """``Σ_l w_l · MSE(G(F_l), G_target_l)`` per image, over the layers of ``target_grams``.

    ``target_grams[l]`` is ``(1, C, C)`` (one style for the whole batch) or ``(N, C, C)`` (one per image).
    Missing ``layer_weights`` entries count 1.
    """
    total: Tensor | None = None
    for layer, target in target_grams.items():
        weight = 1.0 if layer_weights is None else float(layer_weights.get(layer, 1.0))
        term = weight * _per_image_mse(gram_matrix(features[layer]), target)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_loss needs at least one style layer")
    return total


def content_loss(
    features: Mapping[str, Tensor],
    target_features: Mapping[str, Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """``Σ_l w_l · MSE(F_l, P_l)`` per image, over the layers of ``target_features`` (the content image's)."""
    total: Tensor | None = None
    for layer, target in target_features.items():
        weight = 1.0 if layer_weights is None else float(layer_weights.get(layer, 1.0))
        term = weight * _per_image_mse(features[layer], target)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("content_loss needs at least one content layer")
    return total


def total_variation(images: Tensor) -> Tensor:
    """Squared total variation per image: mean of squared horizontal plus mean of squared vertical differences.

    Zero for a constant image; a horizontal ramp with step ``a`` gives ``a²``. Squared (not absolute)
    differences keep the objective smooth, which L-BFGS needs.
    """
    if images.ndim != 4:
        raise ValueError(f"total_variation expects NCHW images, got shape {tuple(images.shape)}")
    n = images.shape[0]
    dx = images[..., :, 1:] - images[..., :, :-1]
    dy = images[..., 1:, :] - images[..., :-1, :]
    zero = images.new_zeros(n)
    tv_x = dx.pow(2).reshape(n, -1).mean(dim=1) if dx.numel() else zero
    tv_y = dy.pow(2).reshape(n, -1).mean(dim=1) if dy.numel() else zero
    return tv_x + tv_y


def mean_std_loss(features: Mapping[str, Tensor], target: Mapping[str, Tensor], eps: float = 1e-5) -> Tensor:
    """AdaIN's style loss per image: ``Σ_l MSE(μ(F_l), μ(S_l)) + MSE(σ(F_l), σ(S_l))`` over the layers of
    ``target`` (channel means and standard deviations over H x W, as :func:`gan_translate.nn.adain.channel_mean_std`)."""
    total: Tensor | None = None
    for layer, style in target.items():
        mean, std = channel_mean_std(features[layer], eps)
        style_mean, style_std = channel_mean_std(style, eps)
        term = _per_image_mse(mean, style_mean) + _per_image_mse(std, style_std)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("mean_std_loss needs at least one layer")
    return total
