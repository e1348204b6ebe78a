"""`gan-translate generate`: sample images from a trained DCGAN checkpoint.

Writes ``000000.png, 000001.png, ...`` (N samples), optionally ``grid.png`` (all of them in one picture)
and ``interpolation_00.png, ...`` (K-step latent interpolations between random points, one strip per
file). The same ``--seed`` gives byte-identical files whatever ``--batch-size`` or ``--device``
batching: the latents are drawn up front on the CPU and the generator runs in eval mode, where each
image depends on its own latent only.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from gan_translate.commands.options import add_checkpoint, add_device, add_overwrite
from gan_translate.errors import UserError

NAME = "generate"
HELP = "generate images with a trained generator checkpoint (DCGAN, ...)"

#: At most this many samples go into grid.png (a 10,000-image grid would be an unviewable ~6k px picture).
GRID_LIMIT = 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_checkpoint(parser, "DCGAN")
    parser.add_argument("--num", type=int, default=64, help="number of images to generate")
    parser.add_argument("--output", required=True, help="folder for the images (000000.png, 000001.png, ...)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the latent vectors; without it a random seed is used and printed, so a run can be repeated")
    parser.add_argument("--grid", action="store_true", help=f"also write grid.png with the samples (the first {GRID_LIMIT} at most)")
    parser.add_argument("--interpolate", type=int, default=None, metavar="K", help="also write K-step latent interpolation strips (interpolation_NN.png)")
    parser.add_argument("--interpolations", type=int, default=4, metavar="M", help="number of interpolation strips written with --interpolate")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    add_device(parser)
    add_overwrite(parser)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between latent batches ``a`` and ``b`` (N, D) at fractions ``t`` (T,) -> (N, T, D).

    Why not a straight line: a D-dimensional standard normal vector has norm ~sqrt(D) with very little
    spread, so the generator was only ever trained on that thin shell. The midpoint of two independent
    latents has norm ~sqrt(D/2) (about 0.7x): linear paths dip inside the shell, where images turn grey
    and washed out. Slerp follows the great circle, keeping the norm near sqrt(D) all the way (White 2016,
    "Sampling Generative Networks").
    """
    a_unit = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b_unit = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    omega = torch.acos((a_unit * b_unit).sum(1).clamp(-1.0, 1.0))[:, None, None]  # (N, 1, 1)
    t = t[None, :, None]  # (1, T, 1)
    sin_omega = torch.sin(omega)
    linear = (1 - t) * a[:, None] + t * b[:, None]
    spherical = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / sin_omega.clamp_min(1e-12)
    # Nearly parallel endpoints: slerp's formula is 0/0 there, and the line is the same path anyway.
    return torch.where(sin_omega.abs() < 1e-6, linear, spherical)


def _check_args(args: argparse.Namespace) -> None:
    if args.num <= 0:
        raise UserError(f"--num must be a positive number of images, got {args.num}")
    if args.interpolate is not None and args.interpolate < 2:
        raise UserError(f"--interpolate K needs K >= 2 steps (the two end points at least), got {args.interpolate}")
    if args.interpolations < 1:
        raise UserError(f"--interpolations must be at least 1, got {args.interpolations}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")


def output_paths(args: argparse.Namespace, output_dir: Path) -> tuple[list[Path], Path | None, list[Path]]:
    """The sample files, grid.png (or None) and the interpolation strips this run will write."""
    width = max(6, len(str(args.num - 1)))
    samples = [output_dir / f"{i:0{width}d}.png" for i in range(args.num)]
    grid = output_dir / "grid.png" if args.grid else None
    strips = [output_dir / f"interpolation_{i:02d}.png" for i in range(args.interpolations)] if args.interpolate else []
    return samples, grid, strips


def _refuse_overwrite(paths: list[Path]) -> None:
    existing = [p for p in paths if p.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]} already exists{more}; pass --overwrite to replace earlier results")


def run(args: argparse.Namespace) -> int:
    from torchvision.utils import make_grid

    from gan_translate.artifacts import load_model
    from gan_translate.data.io import save_image
    from gan_translate.images import tensor_to_uint8
    from gan_translate.inference import resolve_device

    _check_args(args)
    output_dir = Path(args.output)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"--output {output_dir} is a file, not a folder")
    samples, grid_path, strips = output_paths(args, output_dir)
    if not args.overwrite:
        _refuse_overwrite([*samples, *([grid_path] if grid_path else []), *strips])

    model = load_model(args.checkpoint, capability="sample", command="generate")
    device = resolve_device(args.device)
    model.to(device).eval()

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = torch.Generator().manual_seed(seed)
    # All latents first, in a fixed order (samples, then interpolation end points): the files for a
    # seed never depend on the batch size, and adding --interpolate does not change the samples.
    latents = model.latents(args.num, rng)
    started = time.perf_counter()
    kept: list[Tensor] = []
    with tqdm(total=args.num, desc="generate", unit="img", disable=None) as progress:
        for start in range(0, args.num, args.batch_size):
            images = model.decode(latents[start : start + args.batch_size], batch_size=args.batch_size).float().cpu()
            for offset, image in enumerate(images):
                save_image(tensor_to_uint8(image), samples[start + offset])
                if grid_path is not None and start + offset < GRID_LIMIT:
                    kept.append(image)
            progress.update(images.shape[0])

    if grid_path is not None:
        batch = torch.stack(kept)
        nrow = math.isqrt(batch.shape[0] - 1) + 1  # ceil(sqrt(n)): a square-ish grid
        save_image(tensor_to_uint8(make_grid(batch, nrow=nrow, padding=2, pad_value=1.0)), grid_path)

    if strips:
        ends_a, ends_b = model.latents(len(strips), rng), model.latents(len(strips), rng)
        path = slerp(ends_a, ends_b, torch.linspace(0.0, 1.0, args.interpolate))  # (M, K, D)
        for strip, z in zip(strips, path):
            images = model.decode(z, batch_size=args.batch_size).float().cpu()
            save_image(tensor_to_uint8(make_grid(images, nrow=args.interpolate, padding=2, pad_value=1.0)), strip)

    elapsed = time.perf_counter() - started
    extras = (" + grid.png" if grid_path else "") + (f" + {len(strips)} interpolation strip{'s' if len(strips) > 1 else ''}" if strips else "")
    print(f"generated {args.num} images{extras} into {output_dir} in {elapsed:.1f} s on {device} (seed {seed})")
    return 0
