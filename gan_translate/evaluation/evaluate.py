"""Scoring translations: FID / KID / L1 / PSNR / SSIM of a checkpoint's translations, or of any two folders.

``gan-translate evaluate`` parses its flags into an :class:`EvaluationRequest` and calls :func:`evaluate`.

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

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_translate.core.directions import Direction, domains
from gan_translate.core.errors import DataError, UserError
from gan_translate.core.images import uint8_batch
from gan_translate.core.version import __version__
from gan_translate.data.io import list_images, load_image
from gan_translate.data.layouts import detect_paired_layout, ground_truth_folder, split_halves, unpaired_folders
from gan_translate.inference.translator import Translator, load_translator, resolve_device
from gan_translate.metrics import (
    ALL_METRICS,
    DISTRIBUTION_METRICS,
    IMAGE_POLICY,
    PAIRED_METRICS,
    PAIRED_POLICY,
    FidKid,
    paired_metrics,
    parse_metrics,
    resize_for_features,
    resize_to,
)

__all__ = ["EvaluationRequest", "Item", "evaluate", "folder_items", "format_table", "pair_by_name"]


@dataclass(frozen=True)
class EvaluationRequest:
    """What to score and how: a checkpoint with ``data`` (a dataset root) or ``input`` (a folder to translate), or
    existing images (``fake`` against ``real`` / ``ground_truth``). Every field is a ``gan-translate evaluate``
    flag of the same name."""

    checkpoint: str | None = None
    data: str | None = None
    split: str = "test"
    input: str | None = None
    real: str | None = None
    fake: str | None = None
    ground_truth: str | None = None
    direction: Direction = "AtoB"
    data_direction: Direction | None = None
    metrics: str = "auto"
    feature: str = "inception"
    image_size: int = 299
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    seed: int = 0
    batch_size: int = 16
    device: str = "auto"
    steps: int | None = None
    """A multi-step translator's generator passes (UNSB's ``steps`` inference setting); None: the model's default.
    A model without the setting refuses it in one line."""


# --- image sources ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One image: a file, or the left / right half of an A|B side-by-side file."""

    name: str  # relative path without extension: the key files are paired by
    path: Path
    half: str | None = None

    def load(self) -> np.ndarray:
        image = load_image(self.path)
        if self.half is None:
            return image
        left, right = split_halves(image, self.path)
        return left if self.half == "left" else right


def folder_items(folder: str | Path, what: str, half: str | None = None) -> list[Item]:
    """Every image under ``folder`` (recursive), named by relative path without extension."""
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
    if detect_paired_layout(split_dir) == "folders":
        a, b = folder_items(split_dir / "A", "A"), folder_items(split_dir / "B", "B")
        return (a, b) if domains(direction)[0] == "A" else (b, a)
    left, right = ("left", "right") if domains(direction)[0] == "A" else ("right", "left")
    return folder_items(split_dir, "paired", left), folder_items(split_dir, "paired", right)


def plan_from_data(root: Path, split: str, direction: str, data_direction: str) -> tuple[list[Item], list[Item], list[Item] | None, str]:
    """(inputs, reals, ground truth or None, layout name) for a dataset root."""
    source, _ = domains(direction)
    folders = unpaired_folders(root, split)
    if any(folder.is_dir() for folder in folders):
        for folder in folders:
            if not folder.is_dir():
                raise DataError(f"dataset folder not found: {folder} (the unpaired layout needs {split}A/ and {split}B/)")
        source_dir, target_dir = folders if source == "A" else folders[::-1]
        gt_dir = ground_truth_folder(root, split, source)
        truths = folder_items(gt_dir, "ground truth") if gt_dir is not None else None
        return folder_items(source_dir, "input"), folder_items(target_dir, "real"), truths, "unpaired"
    split_dir = root / split
    if split_dir.is_dir():
        inputs, targets = _side(split_dir, data_direction)
        return inputs, targets, targets, "paired"
    raise DataError(
        f"no {split} data in {root}: expected {split}A/ and {split}B/ (unpaired), or {split}/ holding A|B images "
        f"or A/ and B/ (paired)"
    )


def make_plan(request: EvaluationRequest) -> Plan:
    """Check the argument combination and list the images (one-line errors for every mistake)."""
    if request.checkpoint and request.fake:
        raise UserError("use either --checkpoint (translate, then score) or --fake (score existing images), not both")
    if not request.checkpoint and not request.fake:
        raise UserError("nothing to score: give --checkpoint with --data (or --input), or --fake with --real")
    if request.checkpoint:
        if bool(request.data) == bool(request.input):
            raise UserError("--checkpoint needs exactly one of --data DIR (a dataset) or --input DIR (images to translate)")
        inputs: dict[str, Any] = {"checkpoint": request.checkpoint, "direction": request.direction}
        if request.data:
            data_direction = request.data_direction or request.direction
            fakes, reals, truths, layout = plan_from_data(Path(request.data), request.split, request.direction, data_direction)
            inputs.update(data=request.data, split=request.split, layout=layout)
            if layout == "paired":
                inputs["data_direction"] = data_direction
            # explicit folders override what the dataset provides
            if request.real:
                reals = folder_items(request.real, "real")
            if request.ground_truth:
                truths = folder_items(request.ground_truth, "ground truth")
        else:
            fakes = folder_items(request.input, "input")
            reals = folder_items(request.real, "real") if request.real else []
            truths = folder_items(request.ground_truth, "ground truth") if request.ground_truth else None
            inputs["input"] = request.input
        inputs.update(real=request.real, ground_truth=request.ground_truth)
        return Plan({k: v for k, v in inputs.items() if v is not None}, fakes, reals, truths, translate=True)
    for flag in ("data", "input"):
        if getattr(request, flag):
            raise UserError(f"--{flag} goes with --checkpoint; to score existing images use --real and --fake")
    fakes = folder_items(request.fake, "fake")
    reals = folder_items(request.real, "real") if request.real else []
    truth_dir = request.ground_truth or request.real
    truths = (folder_items(truth_dir, "ground truth") if request.ground_truth else reals) if truth_dir else None
    inputs = {"fake": request.fake, "real": request.real, "ground_truth": request.ground_truth}
    return Plan({k: v for k, v in inputs.items() if v is not None}, fakes, reals, truths, translate=False)


def choose_metrics(spec: str, plan: Plan) -> tuple[list[str], dict[str, Item], list[str]]:
    """(metrics, name -> ground-truth item, notes). ``auto`` takes what the inputs allow; explicit names must be possible."""
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
def _batched_features_update(fidkid: Any, images: Iterable[torch.Tensor], real: bool, batch_size: int) -> int:
    """Feed uint8 1xCxHxW images (any sizes) to FID/KID in batches (all the same size after the policy)."""
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


_SAMPLER_HINT = " (for a DCGAN: `gan-translate generate`, then `evaluate --real DIR --fake DIR`)"
_ORDER = ("fid", "kid", "kid_std", "l1", "psnr", "ssim")


def _fakes(request: EvaluationRequest, plan: Plan, translator: Translator | None) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, uint8 image)`` of every image to score: translated now, or read from ``--fake``."""
    if translator is None:
        return ((item.name, item.load()) for item in plan.fakes)
    torch.manual_seed(request.seed)  # a generator with test-time dropout (pix2pix) then gives the same images
    return translator.translate_many(((item.name, item.load()) for item in plan.fakes), batch_size=request.batch_size)


@dataclass
class _Scores:
    """The metric states of one evaluation, fed image by image."""

    fidkid: FidKid | None
    paired: Any
    pairs: dict[str, Item]
    device: torch.device
    n_real: int = 0
    n_fake: int = 0
    resized: int = 0

    def score_fakes(self, fakes: Iterable[tuple[str, np.ndarray]]) -> Iterator[torch.Tensor]:
        """Update the paired metrics with each fake (resized to its ground truth), passing the fakes on."""
        for name, fake in fakes:
            tensor = uint8_batch(fake)
            self.n_fake += 1
            if self.paired is not None and name in self.pairs:
                truth = uint8_batch(self.pairs[name].load())
                if tuple(tensor.shape[-2:]) != tuple(truth.shape[-2:]):
                    self.resized += 1
                prediction = resize_to(tensor, tuple(truth.shape[-2:]))
                if prediction.shape[1] != truth.shape[1]:
                    prediction = prediction.expand(-1, truth.shape[1], -1, -1)  # a gray prediction vs RGB truth
                self.paired.update(prediction.to(self.device).double() / 255.0, truth.to(self.device).double() / 255.0)
            yield tensor

    def run(self, plan: Plan, fakes: Iterable[tuple[str, np.ndarray]], batch_size: int) -> None:
        if self.fidkid is None:
            for _ in self.score_fakes(fakes):
                pass
            return
        self.n_real = _batched_features_update(self.fidkid, (uint8_batch(item.load()) for item in plan.reals), True, batch_size)
        _batched_features_update(self.fidkid, self.score_fakes(fakes), False, batch_size)


def evaluate(request: EvaluationRequest) -> dict[str, Any]:
    """Run the evaluation ``request`` describes; returns the JSON-ready result (see the module docstring)."""
    if request.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {request.batch_size}")
    # The checkpoint first: a DCGAN checkpoint is a more basic mistake than a missing data folder.
    translator = (
        load_translator(request.checkpoint, direction=request.direction, device=request.device,
                        command="evaluate --checkpoint", hint=_SAMPLER_HINT,
                        settings={} if request.steps is None else {"steps": request.steps})
        if request.checkpoint and not request.fake else None
    )
    plan = make_plan(request)
    metrics, pairs, notes = choose_metrics(request.metrics, plan)
    device = resolve_device(request.device)
    distribution = [m for m in metrics if m in DISTRIBUTION_METRICS]
    # Built before any translation, so a missing Inception is reported at once. Paired metrics in float64: float32
    # SSIM loses ~1e-4 to cancellation on flat regions (identical images would not score 1).
    fidkid = FidKid(request.feature, request.image_size, distribution, request.kid_subsets, request.kid_subset_size,
                    request.seed).to(device) if distribution else None
    paired = paired_metrics().set_dtype(torch.float64).to(device) if pairs else None
    scores = _Scores(fidkid, paired, pairs, device)
    scores.run(plan, _fakes(request, plan, translator), request.batch_size)
    return _result(request, plan, scores, metrics, notes, translator)


def _result(
    request: EvaluationRequest, plan: Plan, scores: _Scores, metrics: list[str], notes: list[str], translator: Translator | None
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    kid_info = None
    if scores.fidkid is not None:
        values.update(scores.fidkid.compute())
        kid_info = scores.fidkid.kid_info() if "kid" in scores.fidkid.metrics else None
        note = scores.fidkid.kid_clamp_note() if kid_info else None
        if note:
            notes.append(note)
    if scores.paired is not None:
        values.update({name: float(value) for name, value in scores.paired.compute().items() if name in metrics})
    result: dict[str, Any] = {
        "gan_translate": __version__,
        "mode": "checkpoint" if plan.translate else "folders",
        "inputs": plan.inputs,
        "model": translator.model_name if translator is not None else None,
        "metrics": {name: _finite(float(values[name])) for name in _ORDER if name in values},
        "feature": scores.fidkid.feature_name if scores.fidkid is not None else None,
        "counts": {"real": scores.n_real, "fake": scores.n_fake, "pairs": len(scores.pairs) if scores.paired is not None else 0},
        "image_policy": {
            "fid_kid": IMAGE_POLICY.format(size=request.image_size) if scores.fidkid is not None else None,
            "paired": PAIRED_POLICY if scores.paired is not None else None,
            "resized_to_ground_truth": scores.resized,
        },
        "kid": kid_info,
        "device": scores.device.type,
        "notes": notes,
    }
    return {k: v for k, v in result.items() if v is not None}


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


