"""`gan-translate evaluate`: FID / KID / L1 / PSNR / SSIM of a checkpoint's translations, or of any two folders.

Two ways in:

* ``--checkpoint CKPT --data DIR``: translate DIR's test split with a CycleGAN / Pix2Pix checkpoint and
  score the results. Unpaired layout (``testA/ testB/`` [``testA_gt/``]): AtoB translates testA, compares
  with the real testB images (FID, KID) and with ``testA_gt`` by name (L1, PSNR, SSIM); BtoA mirrors it.
  Paired layouts (pix2pix: ``test/`` of A|B side-by-side images, or ``test/A/`` + ``test/B/``): the target
  side is both the real set and the ground truth. ``--input DIR [--real DIR] [--ground-truth DIR]``
  replaces ``--data`` for plain folders.
* ``--real DIR --fake DIR``: score images made by anything (another tool, the classic code): FID/KID over
  all images, paired metrics between files of the same name (``--ground-truth DIR`` instead of ``--real``).

Writes a JSON file (``--output``) with the scores, the feature network's name, the counts, the image policy
and the inputs, with no timestamps: the same inputs give the same file. Also prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from gan_translate.errors import DataError, UserError

NAME = "evaluate"
HELP = "score translations (FID, KID, L1, PSNR, SSIM) from a checkpoint, or two folders of images"

_EPILOG = """examples:
  gan-translate evaluate --checkpoint runs/cyclegan_quickstart --data data/synthetic --feature random-conv --output eval.json
  gan-translate evaluate --real data/horse2zebra/testB --fake outputs/zebras --metrics fid,kid
  gan-translate evaluate --real photos/ --fake gatys_outputs/ --metrics psnr,ssim,l1"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = _EPILOG
    parser.formatter_class = _Formatter
    what = parser.add_argument_group("what to score: a checkpoint and its data, or existing images")
    what.add_argument("--checkpoint", help="CycleGAN / Pix2Pix .ckpt file or run folder: translate, then score")
    what.add_argument("--data", help="dataset root: testA/ testB/ [testA_gt/ testB_gt/], or pix2pix test/ (A|B) or test/A, test/B")
    what.add_argument("--split", default="test", help="split of --data to use (test, val)")
    what.add_argument("--input", help="with --checkpoint, instead of --data: a folder of images to translate")
    what.add_argument("--real", help="folder of real target-domain images (FID / KID reference)")
    what.add_argument("--fake", help="folder of generated images to score (without --checkpoint)")
    what.add_argument("--ground-truth", help="folder of ground-truth images, paired by file name (default for --fake: --real)")
    what.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="translation direction of the checkpoint")
    what.add_argument("--data-direction", choices=["AtoB", "BtoA"], help="paired --data only: which side is the input; --direction when not given (BtoA for a pix2pix trained with data.direction BtoA)")
    how = parser.add_argument_group("how to score")
    how.add_argument("--metrics", default="auto", help="comma-separated: fid,kid,l1,psnr,ssim; auto = all the inputs allow")
    how.add_argument("--feature", default="inception", help="FID/KID feature network: inception, random-conv (offline, not comparable with published FIDs) or package.module:Class")
    how.add_argument("--image-size", type=int, default=299, help="FID/KID inputs: shorter side resized to this (bicubic, antialias), centre-cropped square")
    how.add_argument("--kid-subsets", type=int, default=100, help="KID subsets")
    how.add_argument("--kid-subset-size", type=int, default=1000, help="KID subset size (clamped to the number of images)")
    how.add_argument("--seed", type=int, default=0, help="seed of KID's subsets (and of any randomness in the generator)")
    how.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    how.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    how.add_argument("--output", help="write the results to this JSON file")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


# --- image sources ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One image: a file, or the left / right half of an A|B side-by-side file."""

    name: str  # relative path without extension: the key files are paired by
    path: Path
    half: str | None = None

    def load(self) -> np.ndarray:
        from gan_translate.data.io import load_image

        image = load_image(self.path)
        if self.half is None:
            return image
        width = image.shape[1]
        if width % 2:
            raise DataError(f"cannot split {self.path} into A|B halves: its width {width} is odd")
        return image[:, : width // 2] if self.half == "left" else image[:, width // 2 :]


def folder_items(folder: str | Path, what: str, half: str | None = None) -> list[Item]:
    """Every image under ``folder`` (recursive), named by relative path without extension."""
    from gan_translate.data.io import list_images

    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{what} folder not found: {root}")
    items: dict[str, Item] = {}
    for path in list_images(root, recursive=True):
        name = path.relative_to(root).with_suffix("").as_posix()
        if name in items:
            raise DataError(f"{items[name].path} and {path} in {what} have the same name; names pair files, keep one")
        items[name] = Item(name, path, half)
    return list(items.values())


def pair_by_name(fakes: list[Item], truths: list[Item], fake_what: str, truth_what: str) -> dict[str, Item]:
    """``name -> truth`` for every fake; a DataError names the files without a partner on either side."""
    by_name = {item.name: item for item in truths}
    fake_names = {item.name for item in fakes}
    missing = [item.name for item in fakes if item.name not in by_name]
    extra = [item.name for item in truths if item.name not in fake_names]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"{len(missing)} {fake_what} image(s) have no same-named file in {truth_what} (e.g. {', '.join(missing[:3])})")
        if extra:
            problems.append(f"{len(extra)} {truth_what} image(s) have no same-named file in {fake_what} (e.g. {', '.join(extra[:3])})")
        raise DataError(f"paired metrics pair files by name: {'; '.join(problems)}")
    return {item.name: by_name[item.name] for item in fakes}


@dataclass
class Plan:
    """What to translate or read, and what to compare it with."""

    inputs: dict[str, Any]
    fakes: list[Item]  # images to translate (checkpoint mode) or to score (folder mode)
    reals: list[Item]
    truths: list[Item] | None
    translate: bool


def _side(split_dir: Path, direction: str) -> tuple[list[Item], list[Item]]:
    """Paired layouts: (input items, target items) of ``split_dir``."""
    if (split_dir / "A").is_dir() and (split_dir / "B").is_dir():
        a, b = folder_items(split_dir / "A", "A"), folder_items(split_dir / "B", "B")
        return (a, b) if direction == "AtoB" else (b, a)
    left, right = ("left", "right") if direction == "AtoB" else ("right", "left")
    return folder_items(split_dir, "paired", left), folder_items(split_dir, "paired", right)


def plan_from_data(root: Path, split: str, direction: str, data_direction: str) -> tuple[list[Item], list[Item], list[Item] | None, str]:
    """(inputs, reals, ground truth or None, layout name) for a dataset root."""
    source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
    if (root / f"{split}A").is_dir() or (root / f"{split}B").is_dir():
        for folder in (root / f"{split}{source}", root / f"{split}{target}"):
            if not folder.is_dir():
                raise DataError(f"dataset folder not found: {folder} (the unpaired layout needs {split}A/ and {split}B/)")
        gt_dir = root / f"{split}{source}_gt"
        truths = folder_items(gt_dir, "ground truth") if gt_dir.is_dir() else None
        return folder_items(root / f"{split}{source}", "input"), folder_items(root / f"{split}{target}", "real"), truths, "unpaired"
    split_dir = root / split
    if split_dir.is_dir():
        inputs, targets = _side(split_dir, data_direction)
        return inputs, targets, targets, "paired"
    raise DataError(
        f"no {split} data in {root}: expected {split}A/ and {split}B/ (unpaired), or {split}/ holding A|B images "
        f"or A/ and B/ (paired)"
    )


def make_plan(args: argparse.Namespace) -> Plan:
    """Check the argument combination and list the images (one-line errors for every mistake)."""
    if args.checkpoint and args.fake:
        raise UserError("use either --checkpoint (translate, then score) or --fake (score existing images), not both")
    if not args.checkpoint and not args.fake:
        raise UserError("nothing to score: give --checkpoint with --data (or --input), or --fake with --real")
    if args.checkpoint:
        if bool(args.data) == bool(args.input):
            raise UserError("--checkpoint needs exactly one of --data DIR (a dataset) or --input DIR (images to translate)")
        inputs: dict[str, Any] = {"checkpoint": args.checkpoint, "direction": args.direction}
        if args.data:
            data_direction = args.data_direction or args.direction
            fakes, reals, truths, layout = plan_from_data(Path(args.data), args.split, args.direction, data_direction)
            inputs.update(data=args.data, split=args.split, layout=layout)
            if layout == "paired":
                inputs["data_direction"] = data_direction
            # explicit folders override what the dataset provides
            if args.real:
                reals = folder_items(args.real, "real")
            if args.ground_truth:
                truths = folder_items(args.ground_truth, "ground truth")
        else:
            fakes = folder_items(args.input, "input")
            reals = folder_items(args.real, "real") if args.real else []
            truths = folder_items(args.ground_truth, "ground truth") if args.ground_truth else None
            inputs["input"] = args.input
        inputs.update(real=args.real, ground_truth=args.ground_truth)
        return Plan({k: v for k, v in inputs.items() if v is not None}, fakes, reals, truths, translate=True)
    for flag in ("data", "input"):
        if getattr(args, flag):
            raise UserError(f"--{flag} goes with --checkpoint; to score existing images use --real and --fake")
    fakes = folder_items(args.fake, "fake")
    reals = folder_items(args.real, "real") if args.real else []
    truth_dir = args.ground_truth or args.real
    truths = (folder_items(truth_dir, "ground truth") if args.ground_truth else reals) if truth_dir else None
    inputs = {"fake": args.fake, "real": args.real, "ground_truth": args.ground_truth}
    return Plan({k: v for k, v in inputs.items() if v is not None}, fakes, reals, truths, translate=False)


def choose_metrics(spec: str, plan: Plan) -> tuple[list[str], dict[str, Item], list[str]]:
    """(metrics, name -> ground-truth item, notes). ``auto`` takes what the inputs allow; explicit names must be possible."""
    from gan_translate.metrics import ALL_METRICS, DISTRIBUTION_METRICS, PAIRED_METRICS, parse_metrics

    notes: list[str] = []
    truth_what = "--ground-truth" if plan.inputs.get("ground_truth") else ("the ground truth" if plan.translate else "--real")
    fake_what = "input" if plan.translate else "--fake"
    if spec.strip().lower() != "auto":
        metrics = parse_metrics(spec)
        wanted_paired = [m for m in metrics if m in PAIRED_METRICS]
        if any(m in DISTRIBUTION_METRICS for m in metrics) and not plan.reals:
            raise UserError(f"{', '.join(m for m in metrics if m in DISTRIBUTION_METRICS)} need real images: give --real DIR")
        if wanted_paired and plan.truths is None:
            raise UserError(f"{', '.join(wanted_paired)} need ground truth: give --ground-truth DIR (files named like the inputs)")
        pairs = pair_by_name(plan.fakes, plan.truths, fake_what, truth_what) if wanted_paired else {}
        return metrics, pairs, notes
    metrics = list(DISTRIBUTION_METRICS) if plan.reals else []
    pairs: dict[str, Item] = {}
    if plan.truths is not None:
        if plan.translate:
            pairs = pair_by_name(plan.fakes, plan.truths, fake_what, truth_what)  # a ground-truth folder must match
            metrics += list(PAIRED_METRICS)
        else:
            try:
                pairs = pair_by_name(plan.fakes, plan.truths, fake_what, truth_what)
                metrics += list(PAIRED_METRICS)
            except DataError as error:
                notes.append(f"paired metrics skipped: {error}")
    if not metrics:
        raise UserError(f"no metric can be computed: give --real DIR (for FID/KID) or --ground-truth DIR (for {', '.join(PAIRED_METRICS)})")
    return [m for m in ALL_METRICS if m in metrics], pairs, notes


# --- scoring ----------------------------------------------------------------------------------------------
def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC -> uint8 1xCxHxW."""
    if image.ndim == 2:
        image = image[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0).contiguous()


def _batched_features_update(fidkid: Any, images: Iterable[torch.Tensor], real: bool, batch_size: int) -> int:
    """Feed uint8 1xCxHxW images (any sizes) to FID/KID in batches (all the same size after the policy)."""
    from gan_translate.metrics import resize_for_features

    buffer: list[torch.Tensor] = []
    count = 0
    for image in images:
        buffer.append(resize_for_features(image, fidkid.image_size))
        count += 1
        if len(buffer) >= batch_size:
            fidkid.update(torch.cat(buffer), real=real)
            buffer = []
    if buffer:
        fidkid.update(torch.cat(buffer), real=real)
    return count


def _finite(value: float) -> float | str:
    """JSON has no inf / nan: PSNR of identical images is infinite."""
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf" if value < 0 else "nan")


_ORDER = ("fid", "kid", "kid_std", "l1", "psnr", "ssim")


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the evaluation described by the parsed arguments; returns the JSON-ready result."""
    from gan_translate import __version__
    from gan_translate.inference import resolve_device
    from gan_translate.metrics import DISTRIBUTION_METRICS, IMAGE_POLICY, PAIRED_POLICY, FidKid, paired_metrics, resize_to

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    # The checkpoint first: a DCGAN checkpoint is a more basic mistake than a missing data folder.
    translator = _load_translator(args.checkpoint, args.direction, args.device) if args.checkpoint and not args.fake else None
    plan = make_plan(args)
    metrics, pairs, notes = choose_metrics(args.metrics, plan)
    device = resolve_device(args.device)

    distribution = [m for m in metrics if m in DISTRIBUTION_METRICS]
    # Built before any translation, so a missing Inception is reported at once.
    fidkid = (
        FidKid(args.feature, args.image_size, distribution, args.kid_subsets, args.kid_subset_size, args.seed).to(device)
        if distribution else None
    )
    # float64: float32 SSIM loses ~1e-4 to cancellation on flat regions (identical images would not score 1).
    paired = paired_metrics().set_dtype(torch.float64).to(device) if pairs else None

    fakes: Iterator[tuple[str, np.ndarray]]
    model = None
    if translator is not None:
        model = translator.model_name
        torch.manual_seed(args.seed)  # a generator with test-time dropout (pix2pix) then gives the same images
        fakes = translator.translate_many(((item.name, item.load()) for item in plan.fakes), batch_size=args.batch_size)
    else:
        fakes = ((item.name, item.load()) for item in plan.fakes)

    n_real = 0
    if fidkid is not None:
        n_real = _batched_features_update(fidkid, (_to_tensor(item.load()) for item in plan.reals), True, args.batch_size)

    resized = 0
    n_fakes = 0

    def scored_fakes() -> Iterator[torch.Tensor]:
        nonlocal resized, n_fakes
        for name, fake in fakes:
            tensor = _to_tensor(fake)
            n_fakes += 1
            if paired is not None and name in pairs:
                truth = _to_tensor(pairs[name].load())
                if tuple(tensor.shape[-2:]) != tuple(truth.shape[-2:]):
                    resized += 1
                prediction = resize_to(tensor, tuple(truth.shape[-2:]))
                if prediction.shape[1] != truth.shape[1]:
                    prediction = prediction.expand(-1, truth.shape[1], -1, -1)  # a gray prediction vs RGB truth
                paired.update(prediction.to(device).double() / 255.0, truth.to(device).double() / 255.0)
            yield tensor

    if fidkid is not None:
        _batched_features_update(fidkid, scored_fakes(), False, args.batch_size)
    else:
        for _ in scored_fakes():
            pass

    scores: dict[str, Any] = {}
    kid_info = None
    if fidkid is not None:
        scores.update(fidkid.compute())
        kid_info = fidkid.kid_info() if "kid" in distribution else None
        note = fidkid.kid_clamp_note() if kid_info else None
        if note:
            notes.append(note)
    if paired is not None:
        for name, value in paired.compute().items():
            if name in metrics:
                scores[name] = float(value)

    result: dict[str, Any] = {
        "gan_translate": __version__,
        "mode": "checkpoint" if plan.translate else "folders",
        "inputs": plan.inputs,
        "model": model,
        "metrics": {name: _finite(float(scores[name])) for name in _ORDER if name in scores},
        "feature": fidkid.feature_name if fidkid is not None else None,
        "counts": {"real": n_real, "fake": n_fakes, "pairs": len(pairs) if paired is not None else 0},
        "image_policy": {
            "fid_kid": IMAGE_POLICY.format(size=args.image_size) if fidkid is not None else None,
            "paired": PAIRED_POLICY if paired is not None else None,
            "resized_to_ground_truth": resized,
        },
        "kid": kid_info,
        "device": device.type,
        "notes": notes,
    }
    return {k: v for k, v in result.items() if v is not None}


def _load_translator(checkpoint: str, direction: str, device: str) -> Any:
    """load_translator, with the model-type check worded for this command."""
    from gan_translate.checkpoint import load_checkpoint, model_name
    from gan_translate.errors import CheckpointError
    from gan_translate.inference import TRANSLATOR_MODELS, load_translator

    state = load_checkpoint(checkpoint)
    name = model_name(state)
    if name not in TRANSLATOR_MODELS:
        raise CheckpointError(
            f"{state.get('_path', checkpoint)} is a {name} checkpoint; `evaluate --checkpoint` needs one of: "
            f"{', '.join(TRANSLATOR_MODELS)} (for a DCGAN: `gan-translate generate`, then `evaluate --real DIR --fake DIR`)"
        )
    del state
    return load_translator(checkpoint, direction=direction, device=device)


def format_table(result: dict[str, Any]) -> str:
    """The scores as a small aligned table, with what each one was computed from."""
    counts = result["counts"]
    rows = []
    for name, value in result["metrics"].items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        if name in ("fid", "kid", "kid_std"):
            note = f"{result['feature']}, {counts['real']} real vs {counts['fake']} generated"
            if name == "kid" and result.get("kid"):
                kid = result["kid"]
                note += f", {kid['subsets']} subsets of {kid['subset_size']}"
        else:
            note = f"{counts['pairs']} pairs"
        rows.append((name, shown, note))
    width = max(len(r[1]) for r in rows)
    lines = [f"{'metric':<8} {'value':>{width}}  computed on", *(f"{n:<8} {v:>{width}}  {note}" for n, v, note in rows)]
    lines += [f"note: {note}" for note in result.get("notes", [])]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    result = evaluate(args)
    print(format_table(result))
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
        print(f"wrote {output}")
    return 0
