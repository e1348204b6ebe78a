"""Gatys et al. (2016) neural style transfer by optimising the pixels of an image.

:func:`stylize` minimises ``style_weight · L_style + content_weight · L_content + tv_weight · L_tv``
(see :mod:`gan_translate.style.losses`) over the pixels of a batch of images, starting from the content
image (default), white noise or the style image.

Design decisions, each visible in the result:

* **Iterations, not calls.** ``torch.optim.LBFGS.step()`` runs up to ``max_iter`` iterations per call.
  Each call here gets ``max_iter = min(lbfgs_max_iter, iterations left)`` and the optimiser state's
  ``n_iter`` counter says how many ran, so exactly ``steps`` iterations run per scale. The only exception
  is a true stationary point (gradient exactly zero; ``tolerance_grad`` and ``tolerance_change`` are 0),
  reported by ``StylizeResult.converged``.
* **Valid pixels by projection.** The optimised image stays in the framework's [-1, 1]: every evaluation
  first clamps the pixels in place (projected descent, as the PyTorch tutorial does for L-BFGS), so each
  loss that is recorded belongs to the valid image it was computed on. The gradient is projected too: a
  pixel at a bound gets no gradient component pushing it further out (it may still move back in), as in
  bound-constrained L-BFGS-B. Without that, L-BFGS keeps proposing steps the clamp undoes and its line
  search stalls (measured at 32 px: up to 12 evaluations per iteration and up to 30x higher final losses).
  A tanh parametrisation would also keep the range, but it slows pixels near black and white and cannot
  start from a content image with exact 0 / 255 values.
* **Best, not last.** Every evaluation is checked against the lowest total loss seen so far *per image*
  and the best pixels are kept; L-BFGS line searches and Adam both visit worse points late in a run.
* **Coarse-to-fine.** With ``sizes=(256, 512)`` the image is optimised with its long side at 256 px, then
  the best result is upsampled (bilinear) to start the 512 px run. ``steps`` is per scale. Losses of
  different scales are not comparable, so the best image is chosen within the last scale.
* **Batches.** ``content`` may hold N images (one style for all, or N styles); Gram matrices and losses
  are per image, the objective is their sum. Adam treats every pixel independently, so batching changes
  nothing; L-BFGS shares its line search and curvature history across the batch, so batched results
  differ slightly from one-by-one results.
* **Colour preservation** (``preserve_color``, Gatys et al. 2017, "luminance-only transfer" done after
  optimisation): the result's luma (Y of BT.601 YCbCr) is kept and its chroma (Cb, Cr) replaced by the
  content image's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_translate.core.errors import UserError
from gan_translate.style.losses import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_STYLE_LAYERS,
    content_loss,
    gram_matrix,
    style_loss,
    total_variation,
)

__all__ = [
    "INITS",
    "OPTIMIZERS",
    "GatysConfig",
    "StylizeProgress",
    "StylizeResult",
    "build_extractor",
    "resize_long_side",
    "rgb_to_ycbcr",
    "stylize",
    "transfer_luminance",
    "ycbcr_to_rgb",
]

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
LINE_SEARCHES = ("strong_wolfe", "none")

# VGG19 halves the resolution four times before relu5_1: below this the deepest features are empty.
MIN_SIDE = 16


@dataclass
class GatysConfig:
    """Settings of one Gatys optimisation. Defaults follow the paper where it says, else common practice.

    The weights belong to this project's losses: Gram matrices divided by ``C·H·W``, per-layer MSE,
    VGG fed ImageNet-normalised [0, 1] images (the PyTorch tutorial's convention, where ``1e6 : 1`` is
    the usual style : content ratio). Other normalisations need other weights.
    """

    steps: int = 300
    """Optimiser iterations per scale (L-BFGS iterations, not ``step()`` calls; Adam steps)."""
    optimizer: str = "lbfgs"
    lr: float | None = None
    """Learning rate; ``None`` picks 1.0 for L-BFGS and 0.02 for Adam (pixels in [-1, 1])."""
    style_weight: float = 1e6
    content_weight: float = 1.0
    tv_weight: float = 0.0
    """The paper has no TV term; a positive weight smooths high-frequency noise (not calibrated here)."""
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    content_layers: tuple[str, ...] = DEFAULT_CONTENT_LAYERS
    style_layer_weights: Mapping[str, float] | None = None
    """Per-layer weights ``w_l`` of the style loss; ``None`` (or a missing layer) means 1.0."""
    content_layer_weights: Mapping[str, float] | None = None
    init: str = "content"
    """Starting image: ``content``, ``noise`` (uniform white noise, the paper's choice) or ``style``."""
    sizes: tuple[int, ...] = ()
    """Long side of each scale, coarse to fine; empty: optimise at the content tensor's own size."""
    style_scale: float = 1.0
    """The style image is resized so its long side is ``style_scale`` times the current scale's."""
    preserve_color: bool = False
    seed: int = 0
    lbfgs_max_iter: int = 20
    """Iterations per ``LBFGS.step()`` call (torch's ``max_iter``); only the progress granularity depends on it."""
    lbfgs_history: int = 100
    line_search: str = "none"
    """L-BFGS line search: ``none`` (step ``lr`` scaled by L-BFGS's curvature estimate, as in the classic
    implementations: one evaluation per iteration) or ``strong_wolfe`` (1.2-4 evaluations per iteration
    for similar losses in our measurements; it guards against badly scaled custom losses)."""

    def __post_init__(self) -> None:
        self.style_layers = tuple(self.style_layers)
        self.content_layers = tuple(self.content_layers)
        self.sizes = tuple(int(s) for s in self.sizes)
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.init not in INITS:
            raise UserError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.line_search not in LINE_SEARCHES:
            raise UserError(f"line_search must be one of {', '.join(LINE_SEARCHES)}, got {self.line_search!r}")
        if self.steps < 0:
            raise UserError(f"steps must be >= 0, got {self.steps}")
        if self.lbfgs_max_iter < 1 or self.lbfgs_history < 1:
            raise UserError("lbfgs_max_iter and lbfgs_history must be >= 1")
        if self.lr is not None and not self.lr > 0:
            raise UserError(f"lr must be > 0, got {self.lr}")
        for name in ("style_weight", "content_weight", "tv_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise UserError(f"{name} must be a finite number >= 0, got {value}")
        if not self.style_layers and not self.content_layers:
            raise UserError("at least one style or content layer is needed")
        if any(s < 1 for s in self.sizes):
            raise UserError(f"sizes must be positive, got {self.sizes}")
        if not self.style_scale > 0:
            raise UserError(f"style_scale must be > 0, got {self.style_scale}")

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimiser's default when it is ``None``."""
        if self.lr is not None:
            return float(self.lr)
        return 1.0 if self.optimizer == "lbfgs" else 0.02

    @property
    def layers(self) -> tuple[str, ...]:
        """Every VGG layer the losses read (style first), without duplicates."""
        return tuple(dict.fromkeys((*self.style_layers, *self.content_layers)))


@dataclass
class StylizeProgress:
    """What the callback sees after each completed iteration (L-BFGS: reported as ``n_iter`` advances)."""

    iteration: int
    """Iterations completed so far, over all scales."""
    total_iterations: int
    scale_index: int
    size: tuple[int, int]
    losses: dict[str, float]
    """The latest evaluation's weighted losses (``total``, ``style``, ``content``, ``tv``), summed over the batch."""
    image: Tensor
    """The current iterate (N, 3, H, W) in [-1, 1], detached; do not modify."""


@dataclass
class StylizeResult:
    """The outcome of :func:`stylize`."""

    image: Tensor
    """The best image per input, (N, 3, H, W) in [-1, 1] on the CPU, at the last scale's size."""
    history: list[dict[str, float]]
    """One entry per loss evaluation: ``scale``, ``iteration`` (of the point evaluated, counted over all scales;
    0 is the start), and the weighted ``total``, ``style``, ``content``, ``tv`` losses summed over the batch."""
    best_loss: list[float]
    """Per image: the lowest total loss seen at the last scale (that of ``image`` before colour preservation)."""
    iterations: int
    """Optimiser iterations actually run, over all scales (``steps * len(sizes)`` unless ``converged``)."""
    evaluations: int = 0
    converged: bool = False
    """True when L-BFGS reached a zero gradient before running every iteration."""
    seconds: float = 0.0


Callback = Callable[[StylizeProgress], None]


# ------------------------------------------------------------------------------------------ helpers


def resize_long_side(images: Tensor, long_side: int, min_side: int = 1) -> Tensor:
    """Resize NCHW images so the longer side is ``long_side`` (aspect kept, short side >= ``min_side``)."""
    height, width = images.shape[-2:]
    scale = long_side / max(height, width)
    size = (max(min_side, round(height * scale)), max(min_side, round(width * scale)))
    return resize_to(images, size)


def resize_to(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize NCHW images to ``size``; antialiased when shrinking, so small scales do not alias."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(-1, 1)


# Full-range BT.601 (JPEG) RGB -> YCbCr, on [0, 1] values.
_RGB_TO_YCBCR = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)


def rgb_to_ycbcr(images: Tensor) -> Tensor:
    """NCHW RGB in [-1, 1] -> YCbCr with Y in [0, 1] and Cb, Cr in [-0.5, 0.5]."""
    rgb = (images + 1.0) / 2.0
    return torch.einsum("ij,njhw->nihw", _RGB_TO_YCBCR.to(images), rgb)


def ycbcr_to_rgb(ycbcr: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_ycbcr`, clamped to [-1, 1]."""
    inverse = torch.linalg.inv(_RGB_TO_YCBCR.double()).to(ycbcr)
    rgb = torch.einsum("ij,njhw->nihw", inverse, ycbcr)
    return (rgb * 2.0 - 1.0).clamp(-1.0, 1.0)


def transfer_luminance(result: Tensor, content: Tensor) -> Tensor:
    """Keep ``result``'s luma and take ``content``'s chroma (same size required): colour-preserving transfer."""
    if result.shape[-2:] != content.shape[-2:]:
        content = resize_to(content, tuple(result.shape[-2:]))
    y = rgb_to_ycbcr(result)[:, :1]
    cbcr = rgb_to_ycbcr(content.to(result))[:, 1:]
    return ycbcr_to_rgb(torch.cat([y, cbcr.expand(result.shape[0], -1, -1, -1)], dim=1))


def build_extractor(
    config: GatysConfig | None = None, weights: str = "imagenet", pooling: str = "avg", device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """The VGG19 extractor :func:`stylize` needs for ``config``'s layers, on ``device``."""
    from gan_translate.nn.vgg import VGG19Features

    config = config or GatysConfig()
    return VGG19Features(config.layers, weights=weights, pooling=pooling).to(device)


def _initial_image(kind: str, content: Tensor, style: Tensor, seed: int) -> Tensor:
    if kind == "content":
        return content.clone()
    if kind == "noise":
        generator = torch.Generator().manual_seed(seed)  # CPU noise: the same start on every device
        return (torch.rand(content.shape, generator=generator) * 2 - 1).to(content)
    return resize_to(style, tuple(content.shape[-2:])).expand_as(content).clone()


# ------------------------------------------------------------------------------------------ optimisation


class _Scale:
    """One scale's optimisation state: targets, the image being optimised, and the best image so far."""

    def __init__(self, extractor: torch.nn.Module, content: Tensor, style: Tensor, init: Tensor, config: GatysConfig) -> None:
        self.extractor = extractor
        self.config = config
        with torch.no_grad():
            style_features = extractor(style) if config.style_layers else {}
            content_features = extractor(content) if config.content_layers else {}
        self.style_targets = {layer: gram_matrix(style_features[layer]) for layer in config.style_layers}
        self.content_targets = {layer: content_features[layer] for layer in config.content_layers}
        # A contiguous copy: L-BFGS views the gradient as one flat vector.
        self.image = init.detach().clamp(-1, 1).clone(memory_format=torch.contiguous_format).requires_grad_(True)
        self.best = self.image.detach().clone()
        self.best_loss = torch.full((init.shape[0],), math.inf, device=init.device)
        self.last: dict[str, float] = {}
        self.evaluations = 0
        self.iterate = 0
        """Iteration whose point is being evaluated (0: the start), set by the optimisation loop."""
        self.history: list[dict[str, float]] = []

    def evaluate(self) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-image weighted losses of the (clamped) current image; records the best image."""
        with torch.no_grad():
            self.image.clamp_(-1.0, 1.0)  # projection: every evaluated image is a valid image
        config = self.config
        features = self.extractor(self.image)
        zero = self.image.new_zeros(self.image.shape[0])
        parts = {
            "style": config.style_weight * style_loss(features, self.style_targets, config.style_layer_weights)
            if self.style_targets and config.style_weight > 0 else zero,
            "content": config.content_weight * content_loss(features, self.content_targets, config.content_layer_weights)
            if self.content_targets and config.content_weight > 0 else zero,
            "tv": config.tv_weight * total_variation(self.image) if config.tv_weight > 0 else zero,
        }
        total = parts["style"] + parts["content"] + parts["tv"]
        with torch.no_grad():
            per_image = total.detach()
            better = per_image < self.best_loss
            if better.any():
                self.best[better] = self.image.detach()[better]
                self.best_loss = torch.where(better, per_image, self.best_loss)
        self.evaluations += 1
        self.last = {"total": float(per_image.sum()), **{k: float(v.detach().sum()) for k, v in parts.items()}}
        self.history.append({"iteration": float(self.iterate), **self.last})
        return total, parts


def _project_gradient(image: Tensor) -> None:
    """Zero the gradient of pixels at a bound that the descent direction (-grad) would push outside."""
    grad = image.grad
    if grad is None:
        return
    with torch.no_grad():
        outward = ((image >= 1.0) & (grad < 0)) | ((image <= -1.0) & (grad > 0))
        grad.masked_fill_(outward, 0.0)


def _optimise_scale(scale: _Scale, config: GatysConfig, report: Callable[[int], None]) -> tuple[int, bool]:
    """Run ``config.steps`` iterations on ``scale``; ``report(completed)`` as they complete.

    Returns the iterations run and whether L-BFGS stopped early at an exact stationary point.
    """
    steps = config.steps
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam([scale.image], lr=config.learning_rate)

        def adam_closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            total, _ = scale.evaluate()
            total.sum().backward()
            _project_gradient(scale.image)
            return total.sum()

        for done in range(steps):
            scale.iterate = done  # Adam evaluates the point before its update
            optimizer.step(adam_closure)
            report(done + 1)
        scale.iterate = steps
        return steps, False

    optimizer = torch.optim.LBFGS(
        [scale.image],
        lr=config.learning_rate,
        max_iter=config.lbfgs_max_iter,
        history_size=config.lbfgs_history,
        # Zero tolerances: stop only at an exact stationary point, so `steps` iterations really run.
        tolerance_grad=0.0,
        tolerance_change=0.0,
        line_search_fn=None if config.line_search == "none" else config.line_search,
    )
    state = optimizer.state[scale.image]
    done = 0
    call_start = 0  # the optimiser's n_iter when the current step() call began

    def lbfgs_closure() -> Tensor:
        # n_iter counts iterations begun, including the one in progress, whose point is evaluated now.
        in_call = int(state.get("n_iter", 0)) - call_start
        scale.iterate = done + in_call
        optimizer.zero_grad(set_to_none=False)
        total, _ = scale.evaluate()
        total.sum().backward()
        _project_gradient(scale.image)
        report(done + max(in_call - 1, 0))
        return total.sum()

    converged = False
    while done < steps:
        chunk = min(config.lbfgs_max_iter, steps - done)
        group = optimizer.param_groups[0]
        group["max_iter"] = chunk
        # Enough evaluations that the line search never cuts an iteration budget short.
        group["max_eval"] = chunk * 30
        call_start = int(state.get("n_iter", 0))
        optimizer.step(lbfgs_closure)
        ran = int(state["n_iter"]) - call_start
        if ran == 0:  # zero gradient at the start of the call: nothing left to do
            converged = True
            break
        done += ran
        report(done)
    scale.iterate = done
    return done, converged


def stylize(
    content: Tensor,
    style: Tensor,
    extractor: torch.nn.Module,
    config: GatysConfig | None = None,
    callback: Callback | None = None,
) -> StylizeResult:
    """Gatys style transfer of ``content`` (N, 3, H, W) in [-1, 1] towards ``style`` ((1 or N), 3, h, w).

    ``extractor`` maps [-1, 1] images to ``{layer: features}`` for at least ``config.layers``
    (:class:`gan_translate.nn.vgg.VGG19Features`; :func:`build_extractor` makes one); the work runs on its
    device. ``callback`` gets a :class:`StylizeProgress` after each iteration. Returns the best image of
    the last scale (see the module docstring for iterations, clamping, scales and batching).
    """
    config = config or GatysConfig()
    if content.ndim != 4 or content.shape[1] != 3 or style.ndim != 4 or style.shape[1] != 3:
        raise ValueError(f"content and style must be (N, 3, H, W), got {tuple(content.shape)} and {tuple(style.shape)}")
    if style.shape[0] not in (1, content.shape[0]):
        raise ValueError(f"style batch must be 1 or match content's {content.shape[0]}, got {style.shape[0]}")
    missing = [layer for layer in config.layers if layer not in getattr(extractor, "layers", config.layers)]
    if missing:
        raise ValueError(f"the extractor does not return layer(s) {', '.join(missing)}")
    device = next(iter(extractor.buffers()), next(iter(extractor.parameters()), torch.empty(0))).device
    content = content.detach().to(device, torch.float32)
    style = style.detach().to(device, torch.float32)

    sizes = config.sizes or (max(content.shape[-2:]),)
    total_iterations = config.steps * len(sizes)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    previous: Tensor | None = None
    iterations = evaluations = 0
    converged = False
    scale: _Scale | None = None
    scaled_content = content
    for scale_index, long_side in enumerate(sizes):
        scaled_content = resize_long_side(content, long_side, MIN_SIDE)
        scaled_style = resize_long_side(style, max(MIN_SIDE, round(long_side * config.style_scale)), MIN_SIDE)
        if previous is None:
            init = _initial_image(config.init, scaled_content, scaled_style, config.seed)
        else:
            init = resize_to(previous, tuple(scaled_content.shape[-2:]))
        scale = _Scale(extractor, scaled_content, scaled_style, init, config)
        base = iterations
        reported = [base]

        def report(
            completed: int, scale: _Scale = scale, base: int = base, index: int = scale_index, reported: list[int] = reported
        ) -> None:
            if callback is None or base + completed <= reported[0]:
                return
            reported[0] = base + completed
            callback(
                StylizeProgress(
                    iteration=base + completed,
                    total_iterations=total_iterations,
                    scale_index=index,
                    size=(int(scale.image.shape[-2]), int(scale.image.shape[-1])),
                    losses=dict(scale.last),
                    image=scale.image.detach(),
                )
            )

        ran, converged = _optimise_scale(scale, config, report)
        # The last update of a run is never evaluated by the optimiser itself: evaluate it once.
        with torch.no_grad():
            scale.evaluate()
        history.extend({"scale": float(scale_index), **entry, "iteration": base + entry["iteration"]} for entry in scale.history)
        iterations += ran
        evaluations += scale.evaluations
        previous = scale.best
        if converged:
            break

    assert scale is not None
    image = scale.best
    if config.preserve_color:
        image = transfer_luminance(image, scaled_content)
    return StylizeResult(
        image=image.detach().cpu(),
        history=history,
        best_loss=[float(v) for v in scale.best_loss.cpu()],
        iterations=iterations,
        evaluations=evaluations,
        converged=converged,
        seconds=time.perf_counter() - started,
    )


def parse_sizes(text: str | Sequence[int] | None) -> tuple[int, ...]:
    """``"256,512"`` -> ``(256, 512)``; a UserError names the bad value."""
    if text is None or text == "":
        return ()
    if not isinstance(text, str):
        return tuple(int(v) for v in text)
    try:
        sizes = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise UserError(f"--scales must be comma-separated pixel sizes like 256,512, got {text!r}") from None
    if not sizes or any(s < MIN_SIDE for s in sizes):
        raise UserError(f"--scales needs sizes of at least {MIN_SIDE} px, got {text!r}")
    return sizes
