"""Distilled students against their teachers (issue 28): quality on the synthetic task, and the cost of each.

    python benchmarks/distill_quality.py --quick                              # smoke test, ~30 s on 2 cores
    python benchmarks/distill_quality.py --parts 64,curve --teacher64 T64.ckpt --data64 DATA64 \\
        --work /tmp/distill_bench --json benchmarks/results-cpu-distill-quality.json
    python benchmarks/distill_quality.py --parts 128 --teacher128 T128.ckpt --data128 DATA128 ...
    python benchmarks/distill_quality.py --parts unsb --unsb-teacher UNSB.ckpt --data64 DATA64 ...

A teacher that is not given is trained first (the CycleGAN or UNSB quickstart, ``--teacher-seed``); the data sets
that are not given are generated (``make_synthetic``, 200 training and 20 test images a domain, seed 0). Every
training process runs ``--threads`` threads (default 1: ``OMP_NUM_THREADS=1``), data loading in the process
(``num_workers 0``), validation off, ``--parallel`` at a time (default 2); the checkpoint scored is the run's
``last.ckpt`` (no selection on the test set). Parts:

* ``64``: the student of ``configs/distill/quickstart.yaml`` (ResNet, 3 blocks, ngf 8, 8 epochs) distilled from the
  64 px CycleGAN quickstart teacher (its AtoB generator), ``--seeds`` (``--seed_everything``).
* ``128``: the same student at crop 128 / load 144 on a 128 px synthetic set, from a 128 px CycleGAN teacher.
* ``unsb``: the same student distilled from the 64 px UNSB quickstart teacher (the teacher runs all its bridge
  steps, bridge noise seed 0, as ``translate`` does), scored against the teacher with all its steps and with
  ``steps=1``.
* ``curve``: seed ``--seeds``'s first only, at 64 px: students of width ``--curve-ngf`` (4, 8, 16) and the plain
  CycleGAN quickstart at ngf 8 trained without a teacher for the same 8 epochs (what distillation buys), with the
  generator's MACs (``gan_translate.nn.cost.count_macs``, batch 1) at 64 and 256 px. ``--plain-seeds 0,1,2``: the
  CycleGAN without a teacher at each of those seeds (against the ``64`` part's students of the same seeds).
* ``unsb-diag``: seed ``--seeds``'s first (``--diag-seeds``), students of the UNSB teacher each changing one
  setting of the config (``UNSB_VARIANTS``: the quickstart configs' discriminator instead of the default 70x70 PatchGAN a student of a
  teacher without a plain discriminator gets; no adversarial loss; the teacher run at 1 step; ``--diag-variants``
  picks some).

Scores (``gan_translate.evaluation.evaluate``, as ``gan-translate evaluate --checkpoint``) of the test A images
translated by each checkpoint: L1 / PSNR / SSIM against ``testA_gt`` and FID / KID against ``testB`` with the
offline ``random-conv`` features at the data's size (comparable with each other only; 20 against 20 images, KID
subsets of 10), and L1 / PSNR / SSIM against the teacher's own translations (``*_to_teacher``). The untranslated
test A images are scored as the bar. Mean and sd over the seeds; the target of issue 28 is a student L1 (against the
ground truth) within 10% of its teacher's: ``l1_vs_teacher`` = student L1 / teacher L1, at most 1.10.

Each figure is written to ``--json`` as soon as it exists, so a run cut short keeps what it measured; runs already
trained under ``--work`` (a ``done.json`` beside them) are scored again, not retrained, unless ``--fresh``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _path in (str(REPO), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from unsb_vs_cut import Report, _env  # noqa: E402

PARTS = ("64", "128", "unsb", "curve", "unsb-diag")
CONFIGS = {"distill": "configs/distill/quickstart.yaml", "cyclegan": "configs/cyclegan/quickstart.yaml",
           "unsb": "configs/unsb/quickstart.yaml"}
QUICK_ARGS = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "5", "--model.init_args.n_epochs", "1",
              "--model.init_args.n_epochs_decay", "0"]


@dataclass
class Run:
    """One training process: ``gan-translate fit`` of ``config`` into ``folder``."""

    name: str
    config: str
    seed: int
    data: Path
    size: int
    folder: Path
    extra: list[str] = field(default_factory=list)

    def command(self, quick: bool) -> list[str]:
        return [sys.executable, "-m", "gan_translate", "fit", "--config", str(REPO / self.config),
                "--seed_everything", str(self.seed), "--data.root", str(self.data), "--data.synthetic", "false",
                "--data.num_workers", "0", "--data.transform.load_size", str(self.size * 9 // 8),
                "--data.transform.crop_size", str(self.size), "--trainer.accelerator", "cpu",
                "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
                "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
                "--trainer.default_root_dir", str(self.folder), "--model.init_args.sample_every_n_steps", "0",
                *self.extra, *(QUICK_ARGS if quick else [])]

    @property
    def done(self) -> Path:
        return self.folder / "done.json"

    def checkpoint(self) -> Path:
        found = sorted(self.folder.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise RuntimeError(f"{self.name}: no last.ckpt under {self.folder}")
        return found[-1]


def train(runs: list[Run], parallel: int, threads: int, quick: bool, fresh: bool) -> dict[str, dict[str, Any]]:
    """Train ``runs`` (``parallel`` at a time; those with a ``done.json`` are skipped unless ``fresh``); returns
    ``name -> {checkpoint, wall_s, cpu_s}`` (CPU: the process's user + system time, from ``wait4``)."""
    results: dict[str, dict[str, Any]] = {}
    queue = []
    for run in runs:
        if run.done.exists() and not fresh:
            results[run.name] = {**json.loads(run.done.read_text()), "reused": True}
            print(f"train: {run.name}: trained before ({run.done})", flush=True)
        else:
            queue.append(run)
    running: dict[int, tuple[Run, float, Any]] = {}
    while queue or running:
        while queue and len(running) < parallel:
            run = queue.pop(0)
            run.folder.mkdir(parents=True, exist_ok=True)
            log = open(run.folder / "fit.log", "w")
            command = run.command(quick)
            (run.folder / "command.json").write_text(json.dumps(command))
            process = subprocess.Popen(command, cwd=REPO, env=_env(threads), stdout=log, stderr=subprocess.STDOUT)
            running[process.pid] = (run, time.perf_counter(), log)
            print(f"train: started {run.name}", flush=True)
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        run, began, log = running.pop(pid)
        log.close()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise RuntimeError(f"fit of {run.name} failed ({code}):\n{(run.folder / 'fit.log').read_text()[-4000:]}")
        info = {"checkpoint": str(run.checkpoint()), "wall_s": time.perf_counter() - began,
                "cpu_s": usage.ru_utime + usage.ru_stime, "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        run.done.write_text(json.dumps(info, indent=2))
        results[run.name] = info
        print(f"train: {run.name} done in {info['wall_s']:.0f} s ({info['cpu_s']:.0f} CPU s)", flush=True)
    return results


# --- scoring --------------------------------------------------------------------------------------------------------
def _settings(steps: int | None) -> dict[str, Any]:
    return {} if steps is None else {"steps": steps}


def score(checkpoint: str, data: Path, size: int, steps: int | None = None,
          teacher_images: Path | None = None) -> dict[str, Any]:
    """Scores of ``checkpoint``'s translations of test A (``evaluate``), and against ``teacher_images`` by name."""
    from gan_translate.evaluation.evaluate import EvaluationRequest, evaluate

    common = {"checkpoint": checkpoint, "data": str(data), "feature": "random-conv", "image_size": size,
              "device": "cpu", "steps": steps, "seed": 0}
    n_test = len(list((data / "testA").iterdir()))
    metrics = dict(evaluate(EvaluationRequest(kid_subset_size=max(2, n_test // 2), **common))["metrics"])
    if teacher_images is not None:
        fidelity = evaluate(EvaluationRequest(ground_truth=str(teacher_images), metrics="l1,psnr,ssim", **common))
        metrics.update({f"{k}_to_teacher": v for k, v in fidelity["metrics"].items()})
    return metrics


def translate_folder(checkpoint: str, data: Path, out: Path, steps: int | None = None) -> Path:
    """Test A translated by ``checkpoint`` into ``out`` (PNG, the names of the inputs), as ``evaluate`` does."""
    import torch

    from gan_translate.data.io import list_images, load_image, save_image
    from gan_translate.inference.translator import load_translator

    translator = load_translator(checkpoint, device="cpu", command="evaluate --checkpoint", settings=_settings(steps))
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    items = ((path.stem, load_image(path)) for path in list_images(data / "testA"))
    for name, image in translator.translate_many(items, batch_size=16):
        save_image(image, out / f"{name}.png")
    return out


def cost(checkpoint: str, sizes: tuple[int, ...], steps: int | None = None) -> dict[str, Any]:
    """The translating network's parameters and MACs for one image of each of ``sizes`` (UNSB: its bridge, all the
    steps run)."""
    from gan_translate.inference.translator import load_translator
    from gan_translate.nn.cost import count_macs, count_params

    network = load_translator(checkpoint, device="cpu", settings=_settings(steps)).network
    out: dict[str, Any] = {"params": count_params(network)}
    for size in sizes:
        try:
            out[f"macs_{size}"] = count_macs(network, (1, 3, size, size))
        except Exception:  # noqa: BLE001 - an operation meta tensors lack: count on real zeros instead
            out[f"macs_{size}"] = count_macs(network, (1, 3, size, size), meta=False)
    return out


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def summarise(rows: list[dict[str, Any]], teacher_l1: float) -> dict[str, Any]:
    """Mean, sd, min and max over the seeds of every numeric score, and the 10% target on the mean L1."""
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and k != "seed"]
    out: dict[str, Any] = {"seeds": [r["seed"] for r in rows]}
    out.update({k: _stats([float(r[k]) for r in rows if isinstance(r.get(k), (int, float))]) for k in keys})
    ratio = out["l1"]["mean"] / teacher_l1
    out["l1_vs_teacher"] = ratio
    out["target_l1_within_10pct"] = ratio <= 1.10
    return out


def _line(label: str, metrics: dict[str, Any]) -> str:
    text = (f"{label}: L1 {metrics['l1']:.4f} PSNR {metrics['psnr']:.2f} SSIM {metrics['ssim']:.3f} "
            f"FID {metrics['fid']:.3f} KID {metrics['kid']:.4f}")
    if "psnr_to_teacher" in metrics:
        text += f" | to teacher: L1 {metrics['l1_to_teacher']:.4f} PSNR {metrics['psnr_to_teacher']:.2f}"
    return text


# --- the parts ------------------------------------------------------------------------------------------------------
def student(name: str, teacher: str, seed: int, data: Path, size: int, work: Path, ngf: int | None = None) -> Run:
    extra = ["--model.init_args.teacher", teacher] + (["--model.init_args.ngf", str(ngf)] if ngf else [])
    return Run(name, CONFIGS["distill"], seed, data, size, work / name, extra)


def bar(report: Report, key: str, data: Path, size: int) -> dict[str, Any]:
    from gan_translate.evaluation.evaluate import EvaluationRequest, evaluate

    n_test = len(list((data / "testA").iterdir()))
    metrics = evaluate(EvaluationRequest(fake=str(data / "testA"), real=str(data / "testB"),
                                         ground_truth=str(data / "testA_gt"), feature="random-conv", image_size=size,
                                         kid_subset_size=max(2, n_test // 2), device="cpu"))["metrics"]
    print(_line(f"{key}: untranslated input", metrics), flush=True)
    return metrics


def distillation_runs(tag: str, teacher: str, data: Path, size: int, seeds: list[int], work: Path) -> list[Run]:
    return [student(f"{tag}-student-ngf8-seed{seed}", teacher, seed, data, size, work) for seed in seeds]


def curve_runs(teacher: str, data: Path, seed: int, work: Path, args: argparse.Namespace) -> tuple[list[Run], list[Run]]:
    """The students of each width (seed ``seed``) and the plain CycleGANs at ngf 8 (each of ``--plain-seeds``)."""
    runs = [student(f"64-student-ngf{ngf}-seed{seed}", teacher, seed, data, 64, work, ngf) for ngf in args.curve_ngf]
    plain = [Run(f"64-cyclegan-ngf8-seed{s}", CONFIGS["cyclegan"], s, data, 64, work / f"64-cyclegan-ngf8-seed{s}",
                 ["--model.init_args.ngf", "8"]) for s in ([] if args.no_plain else args.plain_seeds or [seed])]
    return runs, plain


def distillation_part(report: Report, key: str, tag: str, teacher: str, data: Path, size: int, seeds: list[int],
                      work: Path, args: argparse.Namespace, teacher_steps: list[int | None]) -> None:
    """Students of ``teacher`` for every seed, scored with the teacher (at each of ``teacher_steps``: None = its
    default) and the untranslated input."""
    result: dict[str, Any] = {"teacher_checkpoint": teacher, "data": str(data), "size": size,
                              "input (untranslated)": bar(report, key, data, size), "teacher": {}, "students": []}
    report.put(key, result)
    reference = translate_folder(teacher, data, work / f"{tag}-teacher-images")  # what the students learn to do
    for steps in teacher_steps:
        label = "teacher" if steps is None else f"teacher steps={steps}"
        metrics = score(teacher, data, size, steps, reference if steps is not None else None)
        result["teacher"][label] = {**metrics, **cost(teacher, (size, 256), steps)}
        print(_line(f"{key}: {label}", metrics), flush=True)
    report.put(key, result)
    runs = distillation_runs(tag, teacher, data, size, seeds, work)
    trained = train(runs, args.parallel, args.threads, args.quick, args.fresh)  # trained before: main trains all
    teacher_l1 = result["teacher"]["teacher"]["l1"]
    for run in runs:
        info = trained[run.name]
        metrics = score(info["checkpoint"], data, size, teacher_images=reference)
        row = {"seed": run.seed, **metrics, "l1_vs_teacher": metrics["l1"] / teacher_l1,
               "fit_wall_s": info["wall_s"], "fit_cpu_s": info["cpu_s"], "checkpoint": info["checkpoint"]}
        result["students"].append(row)
        print(_line(f"{key}: student seed {run.seed}", metrics) + f" | L1 / teacher's {row['l1_vs_teacher']:.3f}",
              flush=True)
        report.put(key, result)
    result["student_cost"] = cost(trained[runs[0].name]["checkpoint"], (size, 256))
    result["summary"] = summarise(result["students"], teacher_l1)
    report.put(key, result)
    s = result["summary"]
    print(f"{key}: student L1 {s['l1']['mean']:.4f} +- {s['l1']['sd']:.4f} = {s['l1_vs_teacher']:.3f} x the "
          f"teacher's {teacher_l1:.4f}: target (<= 1.10) {'met' if s['target_l1_within_10pct'] else 'MISSED'}",
          flush=True)


def curve_part(report: Report, teacher: str, data: Path, seed: int, work: Path, args: argparse.Namespace) -> None:
    """Students of each width, and the plain CycleGAN quickstart at ngf 8 without a teacher (same epochs)."""
    key = "curve 64"
    result: dict[str, Any] = {"teacher_checkpoint": teacher, "data": str(data), "seed": seed, "rows": []}
    reference = translate_folder(teacher, data, work / "64-teacher-images")
    teacher_metrics = score(teacher, data, 64)
    result["teacher"] = {**teacher_metrics, **cost(teacher, (64, 256))}
    report.put(key, result)
    runs, plain = curve_runs(teacher, data, seed, work, args)
    trained = train(runs + plain, args.parallel, args.threads, args.quick, args.fresh)
    labelled = [(f"student ngf {ngf}", run) for ngf, run in zip(args.curve_ngf, runs)]
    labelled += [(f"CycleGAN ngf 8, no teacher, seed {run.seed}", run) for run in plain]
    for label, run in labelled:
        info = trained[run.name]
        metrics = score(info["checkpoint"], data, 64, teacher_images=reference)
        row = {"network": label, **metrics, "l1_vs_teacher": metrics["l1"] / teacher_metrics["l1"],
               **cost(info["checkpoint"], (64, 256)), "fit_wall_s": info["wall_s"], "fit_cpu_s": info["cpu_s"],
               "checkpoint": info["checkpoint"]}
        result["rows"].append(row)
        print(_line(f"{key}: {label}", metrics) + f" | {row['macs_256'] / 1e9:.3f} G MACs at 256 px", flush=True)
        report.put(key, result)
    if len(plain) > 1:
        rows = [{**row, "seed": run.seed} for row, run in zip(result["rows"][len(runs):], plain)]
        result["plain_summary"] = summarise(rows, teacher_metrics["l1"])
        report.put(key, result)


#: unsb-diag: seed-0 students of the UNSB teacher, each changing one setting of configs/distill/quickstart.yaml.
UNSB_VARIANTS: dict[str, list[str]] = {
    "discriminator of the quickstart configs (ndf 32, 2 layers)":
        ["--model.init_args.ndf", "32", "--model.init_args.discriminator_args", '{"n_layers": 2}'],
    "no adversarial loss (lambda_gan 0)": ["--model.init_args.lambda_gan", "0"],
    "teacher run at 1 step (teacher_settings steps 1)": ["--model.init_args.teacher_settings", '{"steps": 1}'],
}


def unsb_variant_runs(teacher: str, data: Path, work: Path, args: argparse.Namespace) -> list[tuple[str, Run]]:
    """``(variant label, run)`` for each of ``--diag-variants`` (indices into ``UNSB_VARIANTS``) and ``--diag-seeds``."""
    variants = list(UNSB_VARIANTS.items())
    return [(variants[i][0], Run(f"unsb64-variant{i}-seed{seed}", CONFIGS["distill"], seed, data, 64,
                                 work / f"unsb64-variant{i}-seed{seed}", ["--model.init_args.teacher", teacher, *variants[i][1]]))
            for i in args.diag_variants for seed in args.diag_seeds]


def unsb_diag_part(report: Report, teacher: str, data: Path, work: Path, args: argparse.Namespace) -> None:
    """Why a student of the UNSB teacher is further from it than one of the CycleGAN teacher: one change at a time."""
    key = "unsb diagnosis 64"
    if args.diag_variants != list(range(len(UNSB_VARIANTS))) or len(args.diag_seeds) > 1:
        key += f" (variants {','.join(map(str, args.diag_variants))}, seeds {','.join(map(str, args.diag_seeds))})"
    reference = translate_folder(teacher, data, work / "unsb64-teacher-images")
    teacher_l1 = score(teacher, data, 64)["l1"]
    labelled = unsb_variant_runs(teacher, data, work, args)
    trained = train([run for _, run in labelled], args.parallel, args.threads, args.quick, args.fresh)
    result: dict[str, Any] = {"teacher_checkpoint": teacher, "teacher_l1": teacher_l1, "rows": [], "summary": {}}
    for label, run in labelled:
        info = trained[run.name]
        metrics = score(info["checkpoint"], data, 64, teacher_images=reference)
        result["rows"].append({"variant": label, "seed": run.seed, "arguments": run.extra[2:], **metrics,
                               "l1_vs_teacher": metrics["l1"] / teacher_l1, "fit_wall_s": info["wall_s"],
                               "fit_cpu_s": info["cpu_s"], "checkpoint": info["checkpoint"]})
        print(_line(f"{key}: {label}, seed {run.seed}", metrics) + f" | L1 / teacher's {metrics['l1'] / teacher_l1:.3f}",
              flush=True)
        report.put(key, result)
    for label in dict.fromkeys(label for label, _ in labelled):
        rows = [{k: v for k, v in row.items() if k != "arguments"} for row in result["rows"] if row["variant"] == label]
        result["summary"][label] = summarise(rows, teacher_l1)
    report.put(key, result)


# --- markdown tables of a results file (benchmarks/RESULTS.md) -------------------------------------------------------
def _cell(values: Any, digits: int) -> str:
    if isinstance(values, dict):
        return f"{values['mean']:.{digits}f} ± {values['sd']:.{digits}f}"
    return f"{values:.{digits}f}"


_COLUMNS = (("l1", 4), ("psnr", 2), ("ssim", 3), ("fid", 3), ("kid", 4), ("l1_to_teacher", 4), ("psnr_to_teacher", 2))
_HEADER = "| L1 | PSNR | SSIM | FID (random-conv) | KID | L1 to teacher | PSNR to teacher |"


def _row(label: str, metrics: dict[str, Any], *extra: str) -> str:
    cells = [_cell(metrics[k], d) if k in metrics else "" for k, d in _COLUMNS]
    return f"| {label} | {' | '.join([*extra, *cells])} |"


def tables(path: Path) -> str:
    """The tables of ``benchmarks/RESULTS.md``'s section, from a results file."""
    data = json.loads(path.read_text())
    out: list[str] = []
    for key in ("distill 64", "distill 128", "distill unsb 64"):
        if key not in data or "summary" not in data[key]:
            continue
        part = data[key]
        out += [f"{key}:", "", f"| | L1 / teacher's {_HEADER}", "|---|" + "---:|" * 8]
        out.append(_row("input, untranslated", part["input (untranslated)"], ""))
        teacher_l1 = part["teacher"]["teacher"]["l1"]
        for label, metrics in part["teacher"].items():
            out.append(_row(label, metrics, f"{metrics['l1'] / teacher_l1:.3f}"))
        for row in part["students"]:
            out.append(_row(f"student seed {row['seed']}", row, f"{row['l1_vs_teacher']:.3f}"))
        summary = part["summary"]
        out.append(_row(f"**student, mean ± sd ({len(summary['seeds'])} seeds)**", summary,
                        f"**{summary['l1_vs_teacher']:.3f}**"))
        out.append("")
    if "curve 64" in data:
        part = data["curve 64"]
        out += ["curve 64:", "", "| network | params | G MACs 64 px | G MACs 256 px | L1 / teacher's " + _HEADER,
                "|---|" + "---:|" * 11]
        teacher = part["teacher"]
        rows = [("teacher (CycleGAN quickstart, ngf 16)", teacher)] + [(r["network"], r) for r in part["rows"]]
        for label, r in rows:
            out.append(_row(label, r, f"{r['params']:,}", f"{r['macs_64'] / 1e9:.4f}", f"{r['macs_256'] / 1e9:.3f}",
                            f"{r['l1'] / teacher['l1']:.3f}"))
        if "plain_summary" in part:
            s = part["plain_summary"]
            out.append(_row(f"CycleGAN ngf 8, no teacher, mean ± sd ({len(s['seeds'])} seeds)", s, "", "", "",
                            f"{s['l1_vs_teacher']:.3f}"))
        out.append("")
    for key in [k for k in data if k.startswith("unsb diagnosis 64")]:
        part = data[key]
        out += [f"{key}:", "", f"| variant | seed | L1 / teacher's {_HEADER}", "|---|---:|" + "---:|" * 8]
        for row in part["rows"]:
            out.append(_row(row["variant"], row, str(row["seed"]), f"{row['l1_vs_teacher']:.3f}"))
        for label, s in part.get("summary", {}).items():
            if len(s["seeds"]) > 1:
                out.append(_row(f"**{label}, mean ± sd**", s, "", f"**{s['l1_vs_teacher']:.3f}**"))
        out.append("")
    return "\n".join(out)


# --- teachers and data ----------------------------------------------------------------------------------------------
def data_set(given: Path | None, work: Path, size: int) -> Path:
    if given is not None:
        return given
    from gan_translate.data.synthetic import make_synthetic

    root = work / f"data{size}" / "synthetic"
    if (root / "synthetic.json").exists():
        return root
    return make_synthetic(root, size=size, n_train=200, n_test=20, seed=0)


def teachers(args: argparse.Namespace, parts: list[str], work: Path, data: dict[int, Path]) -> dict[str, str]:
    """The teachers the parts need: given, or trained now (the quickstart configs, ``--teacher-seed``)."""
    given = {"cyclegan64": args.teacher64, "cyclegan128": args.teacher128, "unsb64": args.unsb_teacher}
    needed = {"cyclegan64": bool({"64", "curve"} & set(parts)), "cyclegan128": "128" in parts,
              "unsb64": bool({"unsb", "unsb-diag"} & set(parts))}
    runs = []
    for name, size, config in (("cyclegan64", 64, "cyclegan"), ("cyclegan128", 128, "cyclegan"), ("unsb64", 64, "unsb")):
        if needed[name] and given[name] is None:
            runs.append(Run(f"teacher-{name}", CONFIGS[config], args.teacher_seed, data[size], size,
                            work / f"teacher-{name}"))
    trained = train(runs, args.parallel, args.threads, args.quick, args.fresh)
    out = {name: str(path) for name, path in given.items() if path is not None}
    out.update({run.name.removeprefix("teacher-"): trained[run.name]["checkpoint"] for run in runs})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help="which of 64, 128, unsb, curve")
    parser.add_argument("--seeds", default="0,1,2", help="seed_everything of the students (curve: the first)")
    parser.add_argument("--teacher64", type=Path, default=None, help="64 px CycleGAN teacher (default: trained now)")
    parser.add_argument("--teacher128", type=Path, default=None, help="128 px CycleGAN teacher (default: trained now)")
    parser.add_argument("--unsb-teacher", type=Path, default=None, help="64 px UNSB teacher (default: trained now)")
    parser.add_argument("--teacher-seed", type=int, default=0, help="seed_everything of the teachers trained here")
    parser.add_argument("--data64", type=Path, default=None, help="64 px synthetic set (default: generated)")
    parser.add_argument("--data128", type=Path, default=None, help="128 px synthetic set (default: generated)")
    parser.add_argument("--curve-ngf", default="4,8,16", help="curve: the students' widths")
    parser.add_argument("--no-plain", action="store_true", help="curve: skip the CycleGAN trained without a teacher")
    parser.add_argument("--plain-seeds", default="",
                        help="curve: seeds of the CycleGAN trained without a teacher (default: the first of --seeds)")
    parser.add_argument("--diag-seeds", default="", help="unsb-diag: seeds (default: the first of --seeds)")
    parser.add_argument("--diag-variants", default="", help="unsb-diag: indices into UNSB_VARIANTS (default: all)")
    parser.add_argument("--parallel", type=int, default=2, help="training runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="threads of every process (OMP_NUM_THREADS)")
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temp folder)")
    parser.add_argument("--fresh", action="store_true", help="retrain runs already trained under --work")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: part 64, one seed, every fit 5 batches (the figures mean nothing)")
    parser.add_argument("--json", type=Path, default=None, help="results, rewritten after every figure")
    parser.add_argument("--tables", type=Path, default=None, help="print the markdown tables of a results file, no run")
    args = parser.parse_args(argv)
    if args.tables is not None:
        print(tables(args.tables))
        return 0
    if args.quick:
        args.parts, args.seeds = "64", args.seeds.split(",")[0]
    parts = args.parts.split(",")
    if any(p not in PARTS for p in parts):
        raise SystemExit(f"--parts: some of {', '.join(PARTS)}, got {args.parts!r}")
    seeds = [int(s) for s in args.seeds.split(",")]
    args.curve_ngf = [int(n) for n in args.curve_ngf.split(",")]
    args.plain_seeds = [int(n) for n in args.plain_seeds.split(",") if n]
    args.diag_seeds = [int(n) for n in args.diag_seeds.split(",") if n] or seeds[:1]
    args.diag_variants = [int(n) for n in args.diag_variants.split(",") if n] or list(range(len(UNSB_VARIANTS)))
    os.environ.setdefault("WANDB_MODE", "disabled")
    import torch

    torch.set_num_threads(args.threads)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    report = Report(args.json, {**settings, "kinds": "distill " + args.parts + (" quick" if args.quick else "")})
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        work = args.work or Path(folder)
        work.mkdir(parents=True, exist_ok=True)
        needed = {64: bool(set(parts) - {"128"}), 128: "128" in parts}
        data = {size: data_set(given, work, size) for size, given in ((64, args.data64), (128, args.data128))
                if needed[size]}
        found = teachers(args, parts, work, data)
        report.put("teachers" + (" quick" if args.quick else ""), found)
        # Every part's training runs first, so that ``--parallel`` slots stay busy across the parts; each part then
        # finds its runs trained (done.json) and scores them.
        runs: list[Run] = []
        if "64" in parts:
            runs += distillation_runs("64", found["cyclegan64"], data[64], 64, seeds, work)
        if "128" in parts:
            runs += distillation_runs("128", found["cyclegan128"], data[128], 128, seeds, work)
        if "unsb" in parts:
            runs += distillation_runs("unsb64", found["unsb64"], data[64], 64, seeds, work)
        if "curve" in parts:
            students, plain = curve_runs(found["cyclegan64"], data[64], seeds[0], work, args)
            runs += students + plain
        if "unsb-diag" in parts:
            runs += [run for _, run in unsb_variant_runs(found["unsb64"], data[64], work, args)]
        unique = list({run.name: run for run in runs}.values())  # the ngf 8 seed 0 student is in 64 and curve
        train(unique, args.parallel, args.threads, args.quick, args.fresh)
        args.fresh = False  # trained now: the parts below reuse these runs
        if "64" in parts:
            distillation_part(report, "distill 64" + (" quick" if args.quick else ""), "64", found["cyclegan64"],
                              data[64], 64, seeds, work, args, [None])
        if "128" in parts:
            distillation_part(report, "distill 128", "128", found["cyclegan128"], data[128], 128, seeds, work, args,
                              [None])
        if "unsb" in parts:
            distillation_part(report, "distill unsb 64", "unsb64", found["unsb64"], data[64], 64, seeds, work, args,
                              [None, 1])
        if "curve" in parts:
            curve_part(report, found["cyclegan64"], data[64], seeds[0], work, args)
        if "unsb-diag" in parts:
            unsb_diag_part(report, found["unsb64"], data[64], work, args)
    report.put(f"wall_s distill {args.parts}" + (" quick" if args.quick else ""), time.perf_counter() - began)
    print(f"done in {time.perf_counter() - began:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
