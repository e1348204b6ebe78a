"""`gan-translate translate`: translate files, folders or globs with a CycleGAN / Pix2Pix checkpoint."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from gan_translate.commands.inputs import checked_outputs, collect_inputs, report_failures
from gan_translate.commands.options import (
    add_checkpoint,
    add_device,
    add_direction,
    add_inference_settings,
    add_overwrite,
    add_tile_options,
    inference_settings,
)
from gan_translate.core.errors import DataError, UserError

if TYPE_CHECKING:
    from gan_translate.inference.translator import Translator
from gan_translate.inference.translator import Translator

NAME = "translate"
HELP = "translate images (or a video) with a trained translator checkpoint (CycleGAN, Pix2Pix, UNSB, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_checkpoint(parser)
    parser.add_argument("--input", required=True, nargs="+",
                        help="image files, folders (recursive) or glob patterns; or one video file (.mp4, .mov, .mkv, "
                             ".webm, .avi: every frame, with its rate and audio)")
    parser.add_argument("--output", required=True,
                        help="folder for the translated images (same names and sizes as the inputs); "
                             "for a single input, also an image file name (out.png)")
    add_direction(parser)
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (images of equal size are batched)")
    add_device(parser)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="auto (default): bf16 where the device runs it fast (GPUs of compute capability >= 8.0, "
                             "CPUs with AVX512-BF16 / AMX: ~2x faster, outputs within a few levels of fp32), else fp32; "
                             "fp32 (exact), or bf16 / fp16 autocast (benchmarks/RESULTS.md)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the generator: faster on long runs; each new image size compiles first")
    add_tile_options(parser)
    add_inference_settings(parser)
    parser.add_argument("--suffix", default="", help="appended to each output file name before the extension")
    add_overwrite(parser)
    parser.add_argument("--allow-input-dir", action="store_true", help="allow --output to be a folder holding inputs (inputs are still never overwritten)")


def _translator(args: argparse.Namespace) -> Translator:
    from gan_translate.inference.translator import load_translator

    return load_translator(args.checkpoint, direction=args.direction, device=args.device, precision=args.precision,
                           compile=args.compile, tile=args.tile, tile_overlap=args.tile_overlap,
                           tile_stats_size=args.tile_stats_size, tile_stats=args.tile_stats,
                           settings=inference_settings(args))


def _settings_note(translator: Translator) -> str:
    """``, seed 7, steps 3`` for the summary line (the seed ``--seed -1`` drew is how to reproduce the result)."""
    return "".join(f", {name} {value}" for name, value in sorted(translator.settings.items()))


def _video_output(source: Path, output: Path, overwrite: bool) -> Path:
    """``--output`` for a video: a video file name, or a folder (the result keeps the input's name)."""
    from gan_translate.inference.video import VIDEO_SUFFIXES, is_video

    target = output if is_video(output) else output / source.name
    if output.suffix and not is_video(output) and not output.is_dir():
        raise UserError(f"--output {output}: a translated video needs a video file name ({', '.join(VIDEO_SUFFIXES)}) "
                        "or a folder")
    if target.resolve() == source.resolve():
        raise UserError(f"refusing to overwrite the input video {source}; choose another --output")
    if target.exists() and not overwrite:
        raise UserError(f"{target} already exists; pass --overwrite to replace it")
    return target


def _run_video(args: argparse.Namespace, source: Path) -> int:
    from gan_translate.inference.video import require_pyav, translate_video

    require_pyav()  # before the checkpoint is read: the missing extra is the first thing to hear about
    if not source.is_file():
        raise UserError(f"input not found: {source}")
    target = _video_output(source, Path(args.output), args.overwrite)
    translator = _translator(args)
    started = time.perf_counter()
    with tqdm(desc=f"translate {source.name}", unit="frame", disable=None) as progress:
        summary = translate_video(translator, source, target, batch_size=args.batch_size, on_frame=lambda: progress.update(1))
    print(f"translated {summary.frames} frames ({summary.width}x{summary.height}, {float(summary.frame_rate):.3g} fps, "
          f"audio {summary.audio}; {translator.model_name}, {args.direction}{_settings_note(translator)}, "
          f"{translator.checkpoint_path}) into {target} "
          f"in {time.perf_counter() - started:.1f} s on {translator.device} in {translator.precision_note()}")
    return 0


def run(args: argparse.Namespace) -> int:
    from gan_translate.data.io import load_image, save_image
    from gan_translate.inference.video import is_video

    if len(args.input) == 1 and is_video(args.input[0]):
        return _run_video(args, Path(args.input[0]))
    inputs = collect_inputs(args.input, exclude=args.output)
    outputs, output_dir, named_file = checked_outputs(inputs, args)
    translator = _translator(args)

    failures: list[tuple[Path, str]] = []
    started = time.perf_counter()
    written = 0
    with tqdm(total=len(inputs), desc=f"translate {args.direction}", unit="img", disable=None) as progress:

        def readable() -> Iterator[tuple[int, np.ndarray]]:
            for index, (file, _) in enumerate(inputs):
                try:
                    yield index, load_image(file)
                except DataError as error:
                    failures.append((file, str(error)))
                    progress.update(1)

        for index, result in translator.translate_many(readable(), batch_size=args.batch_size):
            save_image(result, outputs[index])
            written += 1
            progress.update(1)
    elapsed = time.perf_counter() - started
    where = outputs[0] if named_file else output_dir
    print(
        f"translated {written} of {len(inputs)} images ({translator.model_name}, {args.direction}"
        f"{_settings_note(translator)}, {translator.checkpoint_path}) into {where} in {elapsed:.1f} s on {translator.device}"
        f" in {translator.precision_note()}"
        + (f"; images over {translator.tile.size} px in tiles" if translator.tile else "")
    )
    return report_failures(failures)
