"""`gan-translate translate`: translate files, folders or globs with a CycleGAN / Pix2Pix checkpoint."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gan_translate.commands.inputs import checked_outputs, collect_inputs, report_failures
from gan_translate.commands.options import add_checkpoint, add_device, add_direction, add_overwrite
from gan_translate.errors import DataError

NAME = "translate"
HELP = "translate images with a trained translator checkpoint (CycleGAN, Pix2Pix, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_checkpoint(parser)
    parser.add_argument("--input", required=True, nargs="+", help="image files, folders (recursive) or glob patterns")
    parser.add_argument("--output", required=True,
                        help="folder for the translated images (same names and sizes as the inputs); "
                             "for a single input, also an image file name (out.png)")
    add_direction(parser)
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (images of equal size are batched)")
    add_device(parser)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                        help="fp32 (exact), or bf16 / fp16 autocast: ~2x faster on GPUs and on CPUs with AVX512-BF16, "
                             "outputs within a few levels of fp32 (benchmarks/RESULTS.md)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the generator: faster on long runs; each new image size compiles first")
    parser.add_argument("--suffix", default="", help="appended to each output file name before the extension")
    add_overwrite(parser)
    parser.add_argument("--allow-input-dir", action="store_true", help="allow --output to be a folder holding inputs (inputs are still never overwritten)")


def run(args: argparse.Namespace) -> int:
    from gan_translate.data.io import load_image, save_image
    from gan_translate.inference import load_translator

    inputs = collect_inputs(args.input, exclude=args.output)
    outputs, output_dir, named_file = checked_outputs(inputs, args)
    translator = load_translator(args.checkpoint, direction=args.direction, device=args.device,
                                 precision=args.precision, compile=args.compile)

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
        f"translated {written} of {len(inputs)} images ({translator.model_name}, {args.direction}, "
        f"{translator.checkpoint_path}) into {where} in {elapsed:.1f} s on {translator.device}"
    )
    return report_failures(failures)
