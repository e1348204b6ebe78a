"""`gan-translate import-classic`: a classic CycleGAN / pix2pix ``.pth`` generator -> a gan-translate export.

``gan-translate import-classic horse2zebra.pth --arch resnet_9blocks --output h2z.safetensors``, or with
``--download horse2zebra`` the published file is fetched first and its architecture flags taken from the zoo
table (``--list`` prints it). The result is read by ``translate --checkpoint h2z.safetensors`` like any export.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gan_translate.artifacts.classic import ClassicImport, ImportedModel, import_classic
from gan_translate.artifacts.classic_zoo import download_classic_model, zoo_model, zoo_table
from gan_translate.commands.options import add_direction, add_overwrite
from gan_translate.core.errors import UserError
from gan_translate.models.pix2pix import INFERENCE_MODES
from gan_translate.nn.classic_keys import CLASSIC_ARCHS, CLASSIC_NORMS

NAME = "import-classic"
HELP = "import a classic CycleGAN / pix2pix generator (.pth state_dict, e.g. the pretrained zoo) as a .safetensors export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="the classic generator file (latest_net_G_A.pth, horse2zebra.pth, ...)")
    parser.add_argument("--download", metavar="NAME", default=None,
                        help="fetch this classic pretrained model first (e.g. horse2zebra, pix2pix/edges2shoes; "
                             "see --list); its --arch / --norm / --dropout come from the zoo table")
    parser.add_argument("--download-dir", default=None,
                        help="where --download keeps the .pth (default: the --output folder); a file already there is used")
    parser.add_argument("--list", action="store_true", help="list the classic pretrained models and their import flags")
    parser.add_argument("--arch", choices=CLASSIC_ARCHS, default=None, help="the classic --netG the file was trained with")
    parser.add_argument("--norm", choices=CLASSIC_NORMS, default=None,
                        help="the classic --norm (default: instance for a cyclegan --model, batch for pix2pix)")
    parser.add_argument("--dropout", action=argparse.BooleanOptionalAction, default=None,
                        help="the classic use_dropout (default: off for a cyclegan --model, on for pix2pix)")
    add_direction(parser, help="the CycleGAN direction this generator translates (G_A: AtoB, G_B: BtoA)")
    parser.add_argument("--model", choices=("cyclegan", "pix2pix"), default=None,
                        help="the gan-translate model to put it in (default: cyclegan for resnet, pix2pix for unet)")
    parser.add_argument("--inference-mode", choices=INFERENCE_MODES, default=None,
                        help="pix2pix only: classic (default: dropout on and batch statistics, as the classic test "
                             "script runs), eval (deterministic) or train_dropout")
    parser.add_argument("--output", default=None, help="the .safetensors file to write")
    add_overwrite(parser, "an existing output file")


def _source_and_settings(args: argparse.Namespace) -> tuple[Path, ClassicImport]:
    """The file to read and how: from ``--download`` (zoo table, flags given override it) or FILE + ``--arch``."""
    if args.download is not None:
        if args.file is not None:
            raise UserError(f"give either FILE ({args.file}) or --download {args.download}, not both")
        entry = zoo_model(args.download)
        folder = Path(args.download_dir) if args.download_dir else Path(args.output).parent
        path = download_classic_model(args.download, folder)
        settings = ClassicImport(args.arch or entry.arch, args.norm or entry.norm,
                                 entry.dropout if args.dropout is None else args.dropout, args.direction,
                                 args.model or entry.zoo, args.inference_mode)
        return path, settings
    if args.file is None:
        raise UserError("give the classic generator FILE, or --download NAME (--list shows the names)")
    if args.arch is None:
        raise UserError(f"--arch is needed to read {args.file}: one of {', '.join(CLASSIC_ARCHS)} "
                        "(the classic --netG; CycleGAN's default is resnet_9blocks, pix2pix's unet_256)")
    return Path(args.file), ClassicImport(args.arch, args.norm, args.dropout, args.direction, args.model,
                                          args.inference_mode)


def _report(imported: ImportedModel, source: Path) -> None:
    s, net = imported.settings, imported.network_args
    size_mb = imported.output.stat().st_size / 2**20
    legacy = f", {imported.stripped_keys} legacy instance-norm keys dropped" if imported.stripped_keys else ""
    mode = f", inference_mode {s.inference_mode}" if s.inference_mode else ""
    print(f"imported {source} ({s.arch}, {s.norm} norm, dropout {'on' if s.dropout else 'off'}, ngf {net['ngf']}, "
          f"{net['in_channels']} -> {net['out_channels']} channels{legacy}) as the {imported.direction} generator of a "
          f"{imported.model} model{mode}: {imported.output} ({size_mb:.1f} MiB)")
    direction = "" if imported.direction == "AtoB" else " --direction BtoA"
    print(f"translate with: gan-translate translate --checkpoint {imported.output}{direction} --input IMAGES --output OUT")


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(zoo_table())
        return 0
    if args.output is None:
        raise UserError("--output is needed: the .safetensors file to write")
    output = Path(args.output)
    if output.suffix != ".safetensors":
        raise UserError(f"--output must end in .safetensors, got {output}")
    if output.exists() and not args.overwrite:
        raise UserError(f"{output} already exists; pass --overwrite to replace it")
    source, settings = _source_and_settings(args)
    imported = import_classic(source, output, settings, overwrite=args.overwrite)
    _report(imported, source)
    return 0
