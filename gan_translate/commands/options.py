"""Flags several commands share, defined once so they read and behave the same everywhere."""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gan_translate.core.directions import DIRECTIONS
from gan_translate.core.errors import UserError
from gan_translate.training.loggers import WANDB_MODES, start_wandb_run

__all__ = [
    "add_checkpoint",
    "add_device",
    "add_direction",
    "add_inference_settings",
    "add_overwrite",
    "add_tile_options",
    "add_vgg_options",
    "add_wandb_options",
    "inference_settings",
    "start_wandb_for",
    "vgg_extractor_from_args",
    "warn_if_random_vgg",
]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` unless the help already explains the default or there is nothing to show (None)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if action.default is None or "default" in help_text:
            return help_text
        return super()._get_help_string(action)


def add_checkpoint(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "", required: bool = True) -> None:
    """``--checkpoint``: a ``.ckpt`` / ``.safetensors`` file or a run folder."""
    kind = f"a {what} " if what else "a "
    parser.add_argument(
        "--checkpoint", required=required,
        help=f"{kind}.ckpt file (or an exported .safetensors), or a run folder (its newest last.ckpt is used)",
    )


def add_device(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--device``: where the networks run."""
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N or mps")


def add_direction(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, choices: Sequence[str] = DIRECTIONS,
    help: str = "translation direction",  # noqa: A002 - argparse's word for it
) -> None:
    """``--direction``: AtoB (default) or BtoA, or the given choices."""
    parser.add_argument("--direction", default="AtoB", choices=list(choices), help=help)


def add_overwrite(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "existing files in the output folder") -> None:
    """``--overwrite``: without it, nothing a command wrote earlier is replaced."""
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what}")


def add_tile_options(parser: argparse.ArgumentParser) -> None:
    """``--tile`` and its settings: large images translated tile by tile (:mod:`gan_translate.inference.tiling`)."""
    tiles = parser.add_argument_group("full resolution (docs/full_resolution.md)")
    tiles.add_argument("--tile", default=None,
                       help="translate images larger than N px a side in N px tiles (bounded memory, no seams); "
                            "auto: the largest tile half the free device memory holds")
    tiles.add_argument("--tile-overlap", default="auto",
                       help="overlap of neighbouring tiles (px), blended smoothly; auto (default): twice the "
                            "network's measured receptive radius plus 16 px, so tile borders match the whole image")
    tiles.add_argument("--tile-stats", default="downscaled", choices=["downscaled", "exact"],
                       help="instance norm statistics of the whole image: from a copy scaled to --tile-stats-size "
                            "(one small pass), or exact at full resolution (one tile pass per norm layer: slow)")
    tiles.add_argument("--tile-stats-size", type=int, default=1024,
                       help="long side of the copy the statistics come from (images up to it: exact statistics)")


def add_inference_settings(parser: argparse.ArgumentParser) -> None:
    """``--steps`` and ``--seed``: the settings of a stochastic, multi-step translator (UNSB's bridge). Models declare
    the ones they take (``inference_settings``); a model that takes neither refuses them in one line."""
    bridge = parser.add_argument_group("multi-step translators (UNSB, docs/unsb.md)")
    bridge.add_argument("--steps", type=int, default=None,
                        help="generator passes along the bridge (NFE), 1 to the model's num_timesteps: fewer are "
                             "faster, all (the default) give the best images")
    bridge.add_argument("--seed", type=int, default=None,
                        help="seed of the bridge noise and latents (default 0: the same input gives the same image "
                             "every run); -1 draws a fresh seed and prints it, so that result can be reproduced too")


def inference_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--steps`` / ``--seed`` the user gave (none given: empty, so any model takes the defaults); ``--seed -1``
    becomes a freshly drawn seed."""
    settings: dict[str, Any] = {}
    if getattr(args, "steps", None) is not None:
        settings["steps"] = args.steps
    seed = getattr(args, "seed", None)
    if seed is not None:
        if seed < -1:
            raise UserError(f"--seed must be a seed >= 0, or -1 for a fresh one, got {seed}")
        # A drawn seed rather than unseeded noise: every tile and frame of the run shares it, and it can be printed.
        settings["seed"] = secrets.randbelow(2**31) if seed == -1 else seed
    return settings


def add_vgg_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, pooling: str = "avg") -> None:
    """``--vgg-weights`` and ``--pooling``: the VGG19 that style transfer, DeepDream and feature visualisation use."""
    parser.add_argument(
        "--vgg-weights", default="imagenet",
        help="imagenet (torchvision's VGG19, from the torch hub cache or downloaded), random (untrained: pipeline tests only), or a .pth path",
    )
    parser.add_argument("--pooling", default=pooling, choices=("avg", "max"), help="VGG pooling")


def warn_if_random_vgg(extractor: Any, what: str) -> None:
    """One stderr line when the VGG is untrained: ``what`` (the results) only tests the pipeline."""
    if not extractor.pretrained:
        import sys

        from gan_translate.nn.vgg import RANDOM_WEIGHTS_NOTE

        print(f"warning: {RANDOM_WEIGHTS_NOTE}: the features are untrained, so {what} only test the pipeline", file=sys.stderr)


def vgg_extractor_from_args(args: argparse.Namespace, layers: Sequence[str], what: str) -> Any:
    """The frozen VGG19 returning ``layers`` that ``--vgg-weights`` / ``--pooling`` / ``--device`` describe."""
    from gan_translate.inference.translator import resolve_device
    from gan_translate.nn.vgg import VGG19Features

    extractor = VGG19Features(layers, weights=args.vgg_weights, pooling=args.pooling).to(resolve_device(args.device))
    warn_if_random_vgg(extractor, what)
    return extractor


def add_wandb_options(parser: argparse.ArgumentParser) -> None:
    """``--wandb`` and its settings, for commands that log outside training."""
    group = parser.add_argument_group("W&B")
    group.add_argument("--wandb", action="store_true", help="log losses, images and tables to Weights & Biases")
    group.add_argument("--wandb-mode", default="auto", choices=WANDB_MODES,
                       help="auto: offline unless logged in or WANDB_MODE says otherwise")
    group.add_argument("--wandb-project", default="gan-translate", help="W&B project")
    group.add_argument("--wandb-dir", default=None,
                       help="folder for the local W&B run files (default: OUTPUT/.wandb, hidden so it is never read as input images)")


def start_wandb_for(args: argparse.Namespace, output_dir: Path, job_type: str, config: dict[str, Any]) -> Any:
    """The W&B run the ``--wandb*`` flags ask for (files in ``--wandb-dir``, else ``output_dir/.wandb``), or None."""
    if not getattr(args, "wandb", False):
        return None
    directory = Path(args.wandb_dir) if args.wandb_dir else output_dir / ".wandb"
    return start_wandb_run(args.wandb_project, directory, args.wandb_mode, job_type, config)
