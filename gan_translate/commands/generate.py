"""`gan-translate generate`: sample images from a trained DCGAN or StyleGAN2 checkpoint.

Writes ``000000.png, 000001.png, ...`` (N samples), optionally ``grid.png`` (all of them in one picture),
``interpolation_00.png, ...`` (K-step latent interpolations between random points, one strip per file),
``mixing_grid.png`` (StyleGAN2's style-mixing figure) and an animated latent walk (``--animate walk.gif|walk.mp4``).
The same ``--seed`` gives the same files whatever ``--batch-size`` or ``--device`` batching: the latents are drawn
up front on the CPU and the generator runs in eval mode (StyleGAN2: its EMA copy with constant noise), where each
image depends on its own latent only (byte-identical for DCGAN; StyleGAN2's grouped convolutions sum in an order
that depends on the batch, ~1e-6 apart, which can move a pixel by one level). ``--truncation psi`` (StyleGAN2) pulls every w towards the average.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from tqdm import tqdm

from gan_translate.commands.options import add_checkpoint, add_device, add_overwrite
from gan_translate.core.errors import UserError

if TYPE_CHECKING:
    from gan_translate.inference.generation import Decoder

NAME = "generate"
HELP = "generate images with a trained generator checkpoint (DCGAN, StyleGAN2)"

#: At most this many samples go into grid.png (a 10,000-image grid would be an unviewable ~6k px picture).
GRID_LIMIT = 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_checkpoint(parser, "DCGAN / StyleGAN2")
    parser.add_argument("--num", type=int, default=64, help="number of images to generate")
    parser.add_argument("--output", required=True, help="folder for the images (000000.png, 000001.png, ...)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the latent vectors; without it a random seed is used and printed, so a run can be repeated")
    parser.add_argument("--grid", action="store_true", help=f"also write grid.png with the samples (the first {GRID_LIMIT} at most)")
    parser.add_argument("--interpolate", type=int, default=None, metavar="K", help="also write K-step latent interpolation strips (interpolation_NN.png)")
    parser.add_argument("--interpolations", type=int, default=4, metavar="M", help="number of interpolation strips written with --interpolate")
    stylegan = parser.add_argument_group("StyleGAN2")
    stylegan.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                          help="truncation trick: w = w_avg + psi (w - w_avg); 1 is off, 0.5-0.7 trade variety for quality")
    stylegan.add_argument("--truncation-cutoff", type=int, default=None, help="truncate only the first N style layers (the coarse ones)")
    stylegan.add_argument("--mixing-grid", default=None, metavar="RxC",
                          help="also write mixing_grid.png: R row sources' coarse styles with C column sources' fine styles")
    stylegan.add_argument("--mixing-crossover", type=int, default=None, help="first style layer taken from the column source (default: the model's coarse layers, 4)")
    parser.add_argument("--animate", default=None, metavar="FILE",
                        help="also write a looping latent walk: walk.gif, or walk.mp4 (the video extra); a grid of up to 16 images")
    parser.add_argument("--animate-frames", type=int, default=96, help="frames of the --animate walk")
    parser.add_argument("--fps", type=float, default=24.0, help="frames per second of the --animate walk")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    add_device(parser)
    add_overwrite(parser)


def _check_args(args: argparse.Namespace) -> None:
    if args.num <= 0:
        raise UserError(f"--num must be a positive number of images, got {args.num}")
    if args.interpolate is not None and args.interpolate < 2:
        raise UserError(f"--interpolate K needs K >= 2 steps (the two end points at least), got {args.interpolate}")
    if args.interpolations < 1:
        raise UserError(f"--interpolations must be at least 1, got {args.interpolations}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.animate and args.animate_frames < 8:
        raise UserError(f"--animate-frames must be at least 8, got {args.animate_frames}")
    if args.fps <= 0:
        raise UserError(f"--fps must be positive, got {args.fps}")


def _mixing_shape(text: str | None) -> tuple[int, int] | None:
    """``"4x5"`` -> (4, 5)."""
    if text is None:
        return None
    rows, sep, columns = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError
        return int(rows), int(columns)
    except ValueError:
        raise UserError(f"--mixing-grid must look like 4x4 (rows x columns), got {text!r}") from None


def output_paths(args: argparse.Namespace, output_dir: Path) -> tuple[list[Path], Path | None, list[Path]]:
    """The sample files, grid.png (or None) and the interpolation strips this run will write."""
    width = max(6, len(str(args.num - 1)))
    samples = [output_dir / f"{i:0{width}d}.png" for i in range(args.num)]
    grid = output_dir / "grid.png" if args.grid else None
    strips = [output_dir / f"interpolation_{i:02d}.png" for i in range(args.interpolations)] if args.interpolate else []
    return samples, grid, strips


def _extra_paths(args: argparse.Namespace, output_dir: Path) -> tuple[Path | None, Path | None]:
    """mixing_grid.png and the --animate file (a bare name goes into the output folder), or None."""
    mixing = output_dir / "mixing_grid.png" if args.mixing_grid else None
    animation = None
    if args.animate:
        animation = Path(args.animate)
        animation = output_dir / animation if animation.parent == Path() else animation
    return mixing, animation


def _refuse_overwrite(paths: list[Path]) -> None:
    existing = [p for p in paths if p.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]} already exists{more}; pass --overwrite to replace earlier results")


def run(args: argparse.Namespace) -> int:
    from gan_translate.artifacts import load_model
    from gan_translate.inference.generation import check_mixing, decoder_for
    from gan_translate.inference.translator import resolve_device

    _check_args(args)
    mixing_shape = _mixing_shape(args.mixing_grid)
    output_dir = Path(args.output)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"--output {output_dir} is a file, not a folder")
    samples, grid_path, strips = output_paths(args, output_dir)
    mixing_path, animation_path = _extra_paths(args, output_dir)
    if not args.overwrite:
        _refuse_overwrite([*samples, *strips, *(p for p in (grid_path, mixing_path, animation_path) if p)])

    model = load_model(args.checkpoint, capability="sample", command="generate")
    device = resolve_device(args.device)
    model.to(device).eval()
    decode = decoder_for(model, args.batch_size, args.truncation, args.truncation_cutoff)
    if mixing_shape is not None:
        check_mixing(model, *mixing_shape, args.mixing_crossover)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = torch.Generator().manual_seed(seed)
    # All latents first, in a fixed order (samples, then interpolation end points, mixing sources, the walk): the
    # files for a seed never depend on the batch size, and adding an extra picture does not change the samples.
    latents = model.latents(args.num, rng)
    started = time.perf_counter()
    kept = _write_samples(decode, latents, samples, grid_path is not None, args.batch_size)
    written = _write_extras(args, model, decode, rng, kept, grid_path, strips, mixing_shape, mixing_path, animation_path)
    elapsed = time.perf_counter() - started
    extras = "".join(f" + {item}" for item in written)
    truncation = f", truncation {args.truncation:g}" if args.truncation != 1.0 else ""
    print(f"generated {args.num} images{extras} into {output_dir} in {elapsed:.1f} s on {device} (seed {seed}{truncation})")
    return 0


def _write_samples(decode: Decoder, latents: Tensor, samples: list[Path], keep: bool, batch_size: int) -> list[Tensor]:
    """Every sample file; returns the images the grid shows (the first GRID_LIMIT) when ``keep``."""
    from gan_translate.core.images import tensor_to_uint8
    from gan_translate.data.io import save_image

    kept: list[Tensor] = []
    with tqdm(total=len(samples), desc="generate", unit="img", disable=None) as progress:
        for start in range(0, len(samples), batch_size):
            images = decode(latents[start : start + batch_size])
            for offset, image in enumerate(images):
                save_image(tensor_to_uint8(image), samples[start + offset])
                if keep and start + offset < GRID_LIMIT:
                    kept.append(image)
            progress.update(images.shape[0])
    return kept


def _write_extras(
    args: argparse.Namespace, model: Any, decode: Decoder, rng: torch.Generator, kept: list[Tensor],
    grid_path: Path | None, strips: list[Path], mixing_shape: tuple[int, int] | None, mixing_path: Path | None,
    animation_path: Path | None,
) -> list[str]:
    """grid.png, the interpolation strips, mixing_grid.png and the walk, as asked; returns what was written."""
    from gan_translate.core.grids import make_grid
    from gan_translate.core.images import tensor_to_uint8
    from gan_translate.data.io import save_image
    from gan_translate.inference.generation import latent_walk, mixing_grid_picture, slerp

    written: list[str] = []
    if grid_path is not None:
        save_image(make_grid(tensor_to_uint8(torch.stack(kept)), square=True), grid_path)
        written.append("grid.png")
    if strips:
        ends_a, ends_b = model.latents(len(strips), rng), model.latents(len(strips), rng)
        path = slerp(ends_a, ends_b, torch.linspace(0.0, 1.0, args.interpolate))  # (M, K, D)
        for strip, z in zip(strips, path):
            save_image(make_grid(tensor_to_uint8(decode(z)), columns=args.interpolate), strip)
        written.append(f"{len(strips)} interpolation strip{'s' if len(strips) > 1 else ''}")
    if mixing_shape is not None and mixing_path is not None:
        save_image(mixing_grid_picture(model, *mixing_shape, rng, args.mixing_crossover, args.truncation, args.batch_size),
                   mixing_path)
        written.append("mixing_grid.png")
    if animation_path is not None:
        from gan_translate.inference.video import write_animation

        legs, steps = 4, args.animate_frames // 4
        frames = latent_walk(decode, model.latents, min(args.num, 16), legs, steps, rng)
        with tqdm(total=legs * steps, desc="animate", unit="frame", disable=None) as progress:
            write_animation(frames, animation_path, args.fps, on_frame=lambda: progress.update(1))
        written.append(animation_path.name)
    return written
