"""`gan-translate stylize`: Gatys neural style transfer of files, folders or globs with one style image.

Outputs keep the input names (and sub-folders) and the contents' original sizes; ``stylize.json`` beside
them records the settings, the VGG weights used and each image's final loss and time. The Gatys options
(:func:`add_gatys_arguments`) are shared with ``compare``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gan_translate.commands.inputs import check_output_folder, collect_inputs, plan_outputs
from gan_translate.errors import DataError, UserError

NAME = "stylize"
HELP = "Gatys neural style transfer (VGG19 Gram matrices, L-BFGS): the non-GAN baseline"

SUMMARY_NAME = "stylize.json"


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
    from gan_translate.style.gatys import INITS, LINE_SEARCHES, OPTIMIZERS
    from gan_translate.style.losses import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS

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
    group.add_argument("--pooling", default="avg", choices=("avg", "max"), help="VGG pooling (the paper suggests avg)")
    group.add_argument(
        "--vgg-weights", default="imagenet",
        help="imagenet (torchvision's VGG19, from the torch hub cache or downloaded), random (untrained: pipeline tests only), or a .pth path",
    )
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    group.add_argument("--seed", type=int, default=0, help="seed of the noise initialisation")
    logging = parser.add_argument_group("W&B")
    logging.add_argument("--wandb", action="store_true", help="log losses, images and tables to Weights & Biases")
    logging.add_argument("--wandb-mode", default="auto", choices=("auto", "online", "offline", "disabled"),
                         help="auto: offline unless logged in or WANDB_MODE says otherwise")
    logging.add_argument("--wandb-project", default="gan-translate", help="W&B project")
    logging.add_argument("--wandb-dir", default=None,
                         help="folder for the local W&B run files (default: OUTPUT/.wandb, hidden so it is never read as input images)")


def gatys_config_from_args(args: argparse.Namespace):  # noqa: ANN201 - GatysConfig, imported lazily
    """The :class:`GatysConfig` and the per-scale long sides the options ask for."""
    from gan_translate.style.gatys import GatysConfig, parse_sizes

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


def build_stylizer(args: argparse.Namespace):  # noqa: ANN201 - Stylizer
    """Config, VGG19 extractor (may raise the missing-weights UserError) and Stylizer from the options.

    With ``--vgg-weights random`` a warning line goes to stderr: the results are not style transfer.
    """
    from gan_translate.inference import resolve_device
    from gan_translate.nn.vgg import RANDOM_WEIGHTS_NOTE, VGG19Features
    from gan_translate.style.pipeline import Stylizer

    config, sizes = gatys_config_from_args(args)
    device = resolve_device(args.device)
    extractor = VGG19Features(config.layers, weights=args.vgg_weights, pooling=args.pooling).to(device)
    if not extractor.pretrained:
        print(f"warning: {RANDOM_WEIGHTS_NOTE}: the features are untrained, so the results only test the pipeline "
              "and are not style transfer", file=sys.stderr)
    return Stylizer(extractor=extractor, config=config, sizes=sizes)


def vgg_fields(extractor: Any) -> dict[str, Any]:
    """The VGG facts every table / JSON of a run carries."""
    return {
        "vgg_weights": "random (untrained)" if not extractor.pretrained else extractor.weights_source,
        "vgg_pretrained": bool(extractor.pretrained),
        "vgg": extractor.description,
    }


def resolve_style(spec: str, index: int = 0) -> Path:
    """``--style`` FILE, or DIR: its ``index``-th image in sorted order (deterministic)."""
    from gan_translate.data.io import list_images

    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        images = list_images(path)
        if not 0 <= index < len(images):
            raise UserError(f"--style-index {index} is out of range: {path} holds {len(images)} images")
        return images[index]
    raise UserError(f"style image not found: {spec}")


def start_wandb(args: argparse.Namespace, output_dir: Path, job_type: str, config: dict[str, Any]):  # noqa: ANN201
    """A W&B run (offline unless logged in, see gan_translate.loggers), or None without ``--wandb``."""
    if not getattr(args, "wandb", False):
        return None
    import wandb

    from gan_translate.loggers import resolve_wandb_mode

    directory = Path(args.wandb_dir) if args.wandb_dir else output_dir / ".wandb"
    directory.mkdir(parents=True, exist_ok=True)
    mode = resolve_wandb_mode(args.wandb_mode)
    settings = wandb.Settings(init_timeout=30.0) if mode == "online" else None
    return wandb.init(project=args.wandb_project, dir=str(directory), mode=mode, job_type=job_type,
                      config=config, settings=settings, reinit="finish_previous")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content", required=True, nargs="+", help="content images: files, folders (recursive) or glob patterns")
    parser.add_argument("--style", required=True, help="the style image (a folder: its first image in sorted order, see --style-index)")
    parser.add_argument("--style-index", type=int, default=0, help="which image of a --style folder (sorted)")
    parser.add_argument("--output", required=True, help="folder for the results (same names and sizes as the content images); "
                             "for a single content image, also an image file name (styled.png)")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="content images of equal size optimised together (faster on GPU; L-BFGS then shares one line search)")
    parser.add_argument("--suffix", default="", help="appended to each output file name before the extension")
    parser.add_argument("--log-every", type=int, default=50, help="with --wandb: log losses / the current image every N iterations")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files in the output folder")
    parser.add_argument("--allow-input-dir", action="store_true", help="allow --output to be a folder holding inputs (inputs are never overwritten)")
    add_gatys_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from gan_translate.data.io import load_image, save_image

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    inputs = collect_inputs(args.content, exclude=args.output)
    outputs, output_dir, named_file = plan_outputs(inputs, args.output, args.suffix)
    check_output_folder(inputs, outputs, output_dir, args.allow_input_dir or named_file, args.overwrite)
    # With --output naming the result file, its settings go beside it, not into a shared stylize.json.
    summary_path = outputs[0].with_name(f"{outputs[0].stem}.{SUMMARY_NAME}") if named_file else output_dir / SUMMARY_NAME
    if summary_path.exists() and not args.overwrite:
        raise UserError(f"{summary_path} already exists; pass --overwrite to replace earlier results")
    style_path = resolve_style(args.style, args.style_index)
    style = load_image(style_path)
    stylizer = build_stylizer(args)
    vgg = vgg_fields(stylizer.extractor)

    # Read every content image first: bad files are reported, and equal sizes are batched together.
    failures: list[tuple[Path, str]] = []
    groups: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
    for index, (file, _) in enumerate(inputs):
        try:
            image = load_image(file)
        except DataError as error:
            failures.append((file, str(error)))
            continue
        groups.setdefault(image.shape[:2], []).append((index, image))
    batches = [items[i : i + args.batch_size] for items in groups.values() for i in range(0, len(items), args.batch_size)]

    run_config = {"command": NAME, "style": str(style_path), "content": [str(f) for f, _ in inputs],
                  "description": stylizer.description, **vgg, **_config_dict(stylizer)}
    wandb_run = start_wandb(args, output_dir, NAME, run_config)
    total = sum(stylizer.iterations_for(*items[0][1].shape[:2]) for items in batches)
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        with tqdm(total=total, desc="stylize", unit="it", disable=None) as progress:
            done_before = 0
            for batch_index, items in enumerate(batches):
                names = [outputs[i].name for i, _ in items]
                log = _progress_logger(progress, wandb_run, args.log_every, names[0], batch_index, done_before)
                batch_started = time.perf_counter()
                results, result = stylizer.stylize_batch([image for _, image in items], style, callback=log)
                seconds = time.perf_counter() - batch_started
                done_before += result.iterations
                progress.update(done_before - progress.n)
                for (index, _), image, loss in zip(items, results, result.best_loss):
                    save_image(image, outputs[index])
                    records.append({
                        "input": str(inputs[index][0]), "output": str(outputs[index]),
                        "size": list(image.shape[:2]), "best_loss": loss, "iterations": result.iterations,
                        "seconds": seconds / len(items),
                    })
                    if wandb_run is not None:
                        import wandb

                        wandb_run.log({f"result/{outputs[index].name}": wandb.Image(image, caption=vgg["vgg"])})
    finally:
        if wandb_run is not None:
            wandb_run.summary.update(vgg)
            wandb_run.finish()
    elapsed = time.perf_counter() - started

    summary = {"style": str(style_path), "settings": stylizer.description, **vgg, **_config_dict(stylizer),
               "images": records, "seconds": elapsed,
               "failed": [{"input": str(file), "error": reason} for file, reason in failures]}
    _write_json(summary_path, summary)
    print(f"stylized {len(records)} of {len(inputs)} images with {style_path.name} into {outputs[0] if named_file else output_dir} "
          f"in {elapsed:.1f} s ({stylizer.description})")
    if failures:
        print(f"{len(failures)} input(s) could not be read and were skipped:", file=sys.stderr)
        for file, reason in failures:
            print(f"  {file}: {reason}", file=sys.stderr)
        return 1
    return 0


def _config_dict(stylizer: Any) -> dict[str, Any]:
    from dataclasses import asdict

    config = asdict(stylizer.config)
    config["sizes"] = list(stylizer.sizes)
    config["lr"] = stylizer.config.learning_rate
    config["pooling"] = getattr(stylizer.extractor, "pooling", None)
    return {"gatys": config}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic JSON write (temp file + rename), like save_image."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _progress_logger(progress: tqdm, wandb_run: Any, every: int, name: str, batch: int, done_before: int):  # noqa: ANN202
    """The stylize callback: advances the bar; with W&B, logs losses and the current image every ``every`` iterations."""
    from gan_translate.data.io import tensor_to_uint8

    def log(info) -> None:  # noqa: ANN001 - StylizeProgress
        progress.update(done_before + info.iteration - progress.n)
        progress.set_postfix(loss=f"{info.losses.get('total', float('nan')):.3g}", refresh=False)
        if wandb_run is None or every < 1 or (info.iteration % every and info.iteration != info.total_iterations):
            return
        import wandb

        wandb_run.log({
            **{f"loss/{key}": value for key, value in info.losses.items()},
            "iteration": info.iteration, "batch": batch, "scale": info.scale_index,
            f"intermediate/{name}": wandb.Image(tensor_to_uint8(info.image[0]), caption=f"{name} iteration {info.iteration}"),
        })

    return log
