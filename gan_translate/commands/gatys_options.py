"""The Gatys style-transfer flags ``stylize`` and ``compare`` share, and the stylizer they describe."""

from __future__ import annotations

import argparse

from gan_translate.commands.options import add_device, add_vgg_options, add_wandb_options, warn_if_random_vgg
from gan_translate.core.errors import UserError
from gan_translate.inference.translator import resolve_device
from gan_translate.style.gatys import INITS, LINE_SEARCHES, OPTIMIZERS, GatysConfig, parse_sizes
from gan_translate.style.losses import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
from gan_translate.style.pipeline import Stylizer, build_stylizer

__all__ = ["add_gatys_arguments", "gatys_config_from_args", "stylizer_from_args"]


def _layers(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _layer_weights(text: str | None) -> dict[str, float] | None:
    """``"relu1_1=0.5,relu2_1=1"`` -> dict; a UserError names a malformed entry."""
    if not text:
        return None
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            weights[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"layer weights must look like relu1_1=1,relu2_1=0.5; got {part!r}") from None
    return weights


def add_gatys_arguments(parser: argparse.ArgumentParser) -> None:
    """The Gatys options shared by ``stylize`` and ``compare``."""
    group = parser.add_argument_group("Gatys style transfer")
    group.add_argument("--size", type=int, default=512, help="long side (px) the optimisation runs at; smaller images keep their size")
    group.add_argument("--scales", default=None, help="coarse-to-fine long sides, e.g. 256,512 (overrides --size; --steps per scale)")
    group.add_argument("--steps", type=int, default=300, help="optimiser iterations per scale (L-BFGS iterations, not step() calls)")
    group.add_argument("--optimizer", default="lbfgs", choices=OPTIMIZERS, help="pixel optimiser")
    group.add_argument("--lr", type=float, default=None, help="learning rate (default: 1.0 for lbfgs, 0.02 for adam)")
    group.add_argument("--line-search", default="none", choices=LINE_SEARCHES,
                       help="L-BFGS line search (none: one evaluation per iteration, as the classic implementations)")
    group.add_argument("--lbfgs-max-iter", type=int, default=20, help="L-BFGS iterations per step() call (progress granularity only)")
    group.add_argument("--style-weight", type=float, default=1e6, help="weight of the style (Gram) loss; Gram = F F^T / (C*H*W)")
    group.add_argument("--content-weight", type=float, default=1.0, help="weight of the content (relu4_2) loss")
    group.add_argument("--tv-weight", type=float, default=0.0, help="weight of the total-variation smoothness loss")
    group.add_argument("--style-layers", type=_layers, default=DEFAULT_STYLE_LAYERS, help="comma-separated VGG19 layers for the style loss")
    group.add_argument("--content-layers", type=_layers, default=DEFAULT_CONTENT_LAYERS, help="comma-separated VGG19 layers for the content loss")
    group.add_argument("--style-layer-weights", default=None, help="per-layer style weights, e.g. relu1_1=1,relu5_1=0.5 (default 1 each)")
    group.add_argument("--init", default="content", choices=INITS, help="starting image")
    group.add_argument("--style-scale", type=float, default=1.0, help="style image long side relative to the working size")
    group.add_argument("--preserve-color", action="store_true", help="keep the content's colours (luminance-only transfer, YCbCr)")
    add_vgg_options(group, pooling="avg")
    add_device(group)
    group.add_argument("--seed", type=int, default=0, help="seed of the noise initialisation")
    add_wandb_options(parser)


def gatys_config_from_args(args: argparse.Namespace) -> tuple[GatysConfig, tuple[int, ...]]:
    """The :class:`GatysConfig` and the per-scale long sides the options ask for."""
    sizes = parse_sizes(args.scales) if args.scales else (args.size,)
    if any(s < 16 for s in sizes):
        raise UserError(f"--size must be at least 16 px, got {min(sizes)}")
    config = GatysConfig(
        steps=args.steps,
        optimizer=args.optimizer,
        lr=args.lr,
        style_weight=args.style_weight,
        content_weight=args.content_weight,
        tv_weight=args.tv_weight,
        style_layers=args.style_layers,
        content_layers=args.content_layers,
        style_layer_weights=_layer_weights(args.style_layer_weights),
        init=args.init,
        sizes=sizes,
        style_scale=args.style_scale,
        preserve_color=args.preserve_color,
        seed=args.seed,
        lbfgs_max_iter=args.lbfgs_max_iter,
        line_search=args.line_search,
    )
    return config, sizes


def stylizer_from_args(args: argparse.Namespace) -> Stylizer:
    """The Stylizer the options describe (may raise the missing-VGG-weights UserError).

    With ``--vgg-weights random`` a warning line goes to stderr: the results are not style transfer.
    """
    config, sizes = gatys_config_from_args(args)
    stylizer = build_stylizer(config, sizes, weights=args.vgg_weights, pooling=args.pooling, device=resolve_device(args.device))
    warn_if_random_vgg(stylizer.extractor, "the results are not style transfer and")
    return stylizer
