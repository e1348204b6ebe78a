"""`gan-translate serve`: a web page and an HTTP API for one or more checkpoints (docs/serving.md)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gan_translate.commands.options import add_device, add_tile_options
from gan_translate.core.errors import UserError

if TYPE_CHECKING:  # the serve extra is imported only when the command runs, so `--help` works without it
    from gan_translate.serving.app import ServeSettings
    from gan_translate.serving.catalog import TranslatorOptions
    from gan_translate.style.pipeline import Stylizer

NAME = "serve"
HELP = "serve checkpoints over HTTP: a web page at / and a JSON API under /v1 (translate, stylize, generate)"

_MISSING_EXTRA = 'serve needs FastAPI and uvicorn: pip install "gan-translate[serve]" (or pip install fastapi uvicorn python-multipart)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", action="append", required=True, metavar="[NAME=]PATH",
                        help="a .ckpt / .safetensors file or run folder to serve (repeat for several); NAME=PATH names "
                             "it in the API, else the file's name does")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface, reachable from other machines)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    add_device(parser)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="translators' precision, as translate: auto (default) is bf16 where the device runs it fast, else fp32")
    batching = parser.add_argument_group("batching")
    batching.add_argument("--max-batch", type=int, default=8, help="most requests in one pass (1: no batching)")
    batching.add_argument("--max-wait-ms", type=float, default=10.0, help="how long a request may wait for others to share its pass")
    batching.add_argument("--max-batch-pixels", type=int, default=8 * 512 * 512, help="most pixels in one pass (large images run alone)")
    batching.add_argument("--max-queue", type=int, default=64, help="most requests waiting or running; more are answered 503 with Retry-After")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-upload-mb", type=float, default=32.0, help="largest request body (MiB)")
    limits.add_argument("--max-pixels", type=float, default=16.8e6, help="largest image (width x height), checked from its header before decoding")
    limits.add_argument("--min-side", type=int, default=8, help="smallest image side (px)")
    limits.add_argument("--read-timeout", type=float, default=30.0, help="seconds a request body may take to arrive (slow clients get 408)")
    limits.add_argument("--request-timeout", type=float, default=120.0, help="seconds a request may wait and run (504 after)")
    limits.add_argument("--max-generate", type=int, default=64, help="most images one /v1/generate request may ask for")
    gatys = parser.add_argument_group("Gatys style transfer (/v1/stylize without an AdaIN model)")
    gatys.add_argument("--gatys", default="on", choices=["on", "off"], help="offer Gatys style transfer")
    gatys.add_argument("--gatys-vgg-weights", default="imagenet", help="imagenet (torchvision's VGG19), random (tests only) or a .pth path")
    gatys.add_argument("--gatys-max-steps", type=int, default=100, help="most optimiser iterations a request may ask for (and the default)")
    gatys.add_argument("--gatys-max-size", type=int, default=384, help="largest long side (px) Gatys runs at (and the default)")
    add_tile_options(parser)
    parser.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds to finish accepted requests on shutdown")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="server log level")


def _check(args: argparse.Namespace) -> None:
    for flag, value, low in (("--port", args.port, 0), ("--max-batch", args.max_batch, 1), ("--max-queue", args.max_queue, 1),
                             ("--min-side", args.min_side, 1), ("--max-generate", args.max_generate, 1),
                             ("--gatys-max-steps", args.gatys_max_steps, 1), ("--gatys-max-size", args.gatys_max_size, 16)):
        if value < low:
            raise UserError(f"{flag} must be at least {low}, got {value}")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be 0-65535, got {args.port}")
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-pixels", args.max_pixels),
                        ("--read-timeout", args.read_timeout), ("--request-timeout", args.request_timeout)):
        if value <= 0:
            raise UserError(f"{flag} must be positive, got {value}")


def run(args: argparse.Namespace) -> int:
    _check(args)
    try:
        import fastapi  # noqa: F401 - only to name the missing extra in one line
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError(_MISSING_EXTRA) from None
    from gan_translate.serving.app import create_app
    from gan_translate.serving.catalog import load_catalog
    from gan_translate.serving.server import run_server

    models = load_catalog(args.checkpoint, args.device, translator_options_from_args(args))
    app = create_app(models, settings_from_args(args))
    where = "loopback only" if args.host in ("127.0.0.1", "localhost", "::1") else "reachable from other machines"
    print(f"serving {', '.join(f'{name} ({m.kind})' for name, m in models.items())} on http://{args.host}:{args.port} "
          f"({where}); API docs at /docs; Ctrl+C stops after answering accepted requests")
    translators = [t for m in models.values() for t in m.translators.values()]
    if translators:
        print(f"translators run on {translators[0].device} in {translators[0].precision_note()}")
    run_server(app, args.host, args.port, args.graceful_timeout, args.log_level)
    return 0


def translator_options_from_args(args: argparse.Namespace) -> TranslatorOptions:
    from gan_translate.serving.catalog import TranslatorOptions

    return TranslatorOptions(precision=args.precision, tile=args.tile, tile_overlap=args.tile_overlap,
                             tile_stats_size=args.tile_stats_size, tile_stats=args.tile_stats)


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """The :class:`~gan_translate.serving.app.ServeSettings` the flags describe (Gatys built here when on)."""
    from gan_translate.serving.app import ServeSettings
    from gan_translate.serving.uploads import UploadLimits

    settings = ServeSettings(
        limits=UploadLimits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=int(args.max_pixels),
                            min_side=args.min_side, read_timeout_s=args.read_timeout),
        max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
        max_batch_pixels=args.max_batch_pixels, request_timeout_s=args.request_timeout, max_generate=args.max_generate,
        gatys_max_steps=args.gatys_max_steps, gatys_max_size=args.gatys_max_size,
    )
    if args.gatys == "on":
        settings.gatys, settings.gatys_unavailable = _gatys(args)
    return settings


def _gatys(args: argparse.Namespace) -> tuple[Stylizer | None, str]:
    """(Stylizer, "") or (None, why not): missing ImageNet weights offline leave the rest of the server working."""
    import sys

    from gan_translate.inference.translator import resolve_device
    from gan_translate.style.gatys import GatysConfig
    from gan_translate.style.pipeline import build_stylizer

    try:
        stylizer = build_stylizer(GatysConfig(steps=args.gatys_max_steps), (args.gatys_max_size,),
                                  weights=args.gatys_vgg_weights, device=resolve_device(args.device))
    except UserError as error:
        reason = str(error).replace("--vgg-weights", "--gatys-vgg-weights")  # the shared VGG loader's flag name
        print(f"warning: Gatys style transfer is off: {reason}", file=sys.stderr)
        return None, reason
    return stylizer, ""
