"""FID / KID in training (the DistributionMetrics callback through the CLI) and `gan-translate evaluate`."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_translate.cli import main
from gan_translate.models import models_that
from tests.helpers import checkpoints, fit, load_raw, tiny_cyclegan_args

OFFLINE = ["--feature", "random-conv", "--image-size", "32", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CycleGAN fit through the CLI: the quickstart config (with DistributionMetrics), CSV logs,
    all 4 validation images, and a second ModelCheckpoint that keeps the best val/kid_ab."""
    run_dir = tmp_path_factory.mktemp("evaluate_run")
    fit([
        *tiny_cyclegan_args(synthetic_root, run_dir, epochs=1, batches=2),
        "--trainer.limit_val_batches", "4",
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir", str(run_dir),
        "--trainer.logger.name", "csv",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.monitor=val/kid_ab",
        "--trainer.callbacks.mode=min",
        "--trainer.callbacks.filename=kid-{epoch}",
        "--trainer.callbacks.save_top_k=1",
    ])
    return run_dir


# --- the callback -------------------------------------------------------------------------------------------
def test_callback_logs_fid_and_kid_during_fit(trained_run: Path) -> None:
    rows = list(csv.DictReader(open(next(trained_run.rglob("metrics.csv")))))
    logged = [row for row in rows if row.get("val/fid_ab")]
    assert [row["epoch"] for row in logged] == ["0"]  # once per epoch, none in the sanity check
    for row in logged:
        for key in ("val/fid_ab", "val/kid_ab", "val/kid_std_ab", "val/fid_ba", "val/kid_ba", "val/kid_std_ba"):
            assert math.isfinite(float(row[key])), key
        assert float(row["val/fid_ab"]) > 0
    # the feature network is recorded with the run, next to the scores
    hparams = next(trained_run.rglob("hparams.yaml")).read_text()
    assert "distribution_metrics/feature: random-conv-v1-352" in hparams


def test_model_checkpoint_can_monitor_kid(trained_run: Path) -> None:
    kept = checkpoints(trained_run, "kid-*.ckpt")
    assert len(kept) == 1
    state = load_raw(kept[0])["callbacks"]
    kid_states = [v for k, v in state.items() if "val/kid_ab" in k]
    assert kid_states and math.isfinite(float(kid_states[0]["best_model_score"]))


@pytest.mark.parametrize("name", ["dcgan", "stylegan2"])
def test_callback_scores_generator_samples_against_training_images(tmp_path: Path, name: str) -> None:
    """DCGAN and StyleGAN2 have no validation loop: real = training images of the epoch, fake = seeded samples
    (StyleGAN2's from its EMA generator)."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from gan_translate.callbacks import DistributionMetrics
    from gan_translate.models import DCGAN, StyleGAN2

    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    loader = DataLoader([{"image": image} for image in images], batch_size=4)
    if name == "dcgan":
        model = DCGAN(latent_dim=16, resolution=32, ngf=8, ndf=8, num_fixed_samples=4, make_gif=False)
    else:
        model = StyleGAN2(resolution=32, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16,
                          num_fixed_samples=4, make_gif=False)
    callback = DistributionMetrics(feature="random-conv", image_size=32, max_images=6)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
                         default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=loader)
    assert set(callback.last_scores) == {"val/fid", "val/kid", "val/kid_std"}
    assert float(trainer.callback_metrics["val/fid"]) == pytest.approx(callback.last_scores["val/fid"], rel=1e-6)
    assert callback.feature_name == "random-conv-v1-352"


# --- evaluate: checkpoint mode ------------------------------------------------------------------------------
def _evaluate(*args: str) -> int:
    return main(["evaluate", *args])


def test_checkpoint_mode_writes_the_promised_json_reproducibly(
    trained_run: Path, synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["--checkpoint", str(trained_run), "--data", str(synthetic_root), *OFFLINE]
    assert _evaluate(*args, "--output", str(tmp_path / "one.json")) == 0
    table = capsys.readouterr().out
    assert _evaluate(*args, "--output", str(tmp_path / "two.json")) == 0
    assert (tmp_path / "one.json").read_bytes() == (tmp_path / "two.json").read_bytes()

    result = json.loads((tmp_path / "one.json").read_text())
    assert result["mode"] == "checkpoint" and result["model"] == "cyclegan"
    assert result["inputs"] == {"checkpoint": str(trained_run), "direction": "AtoB", "data": str(synthetic_root),
                                "split": "test", "layout": "unpaired"}
    assert list(result["metrics"]) == ["fid", "kid", "kid_std", "l1", "psnr", "ssim"]
    assert all(isinstance(v, float) for v in result["metrics"].values())
    assert result["feature"] == "random-conv-v1-352"
    assert result["counts"] == {"real": 4, "fake": 4, "pairs": 4}
    assert result["kid"] == {"subsets": 100, "subset_size": 4, "subset_size_requested": 1000, "clamped": True}
    assert "32 px" in result["image_policy"]["fid_kid"] and result["image_policy"]["resized_to_ground_truth"] == 0
    assert any("clamped" in note for note in result["notes"])
    assert "random-conv-v1-352, 4 real vs 4 generated" in table and "psnr" in table


def test_translate_then_score_folders_gives_the_checkpoint_mode_numbers(
    trained_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    """Scoring saved outputs (any tool's) the folder way gives exactly what checkpoint mode gives."""
    out = tmp_path / "translated"
    # evaluate translates in fp32 on every machine; translate's default (auto) may be bf16 (docs/evaluation.md)
    assert main(["translate", "--checkpoint", str(trained_run), "--input", str(synthetic_root / "testB"),
                 "--output", str(out), "--direction", "BtoA", "--device", "cpu", "--precision", "fp32"]) == 0
    assert _evaluate("--checkpoint", str(trained_run), "--data", str(synthetic_root), "--direction", "BtoA",
                     *OFFLINE, "--output", str(tmp_path / "ckpt.json")) == 0
    assert _evaluate("--real", str(synthetic_root / "testA"), "--fake", str(out),
                     "--ground-truth", str(synthetic_root / "testB_gt"), *OFFLINE, "--output", str(tmp_path / "dirs.json")) == 0
    by_checkpoint = json.loads((tmp_path / "ckpt.json").read_text())
    by_folders = json.loads((tmp_path / "dirs.json").read_text())
    assert by_folders["metrics"] == by_checkpoint["metrics"]
    assert by_folders["mode"] == "folders" and by_folders["counts"] == by_checkpoint["counts"]


def test_dcgan_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "dcgan.ckpt"
    torch.save({"gan_translate": {"model": "dcgan", "version": "0"}, "state_dict": {}, "hyper_parameters": {}}, path)
    assert _evaluate("--checkpoint", str(path), "--data", str(tmp_path), *OFFLINE) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    translators = ", ".join(models_that("translate"))
    assert f"{path} is a dcgan checkpoint; `evaluate --checkpoint` needs a model that translates images: {translators}" in err[0]


# --- evaluate: two folders ----------------------------------------------------------------------------------
def _copy_images(source: Path, target: Path, rename: bool = False) -> Path:
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        shutil.copy(path, target / (f"x_{path.name}" if rename else path.name))
    return target


def test_a_folder_against_itself_scores_perfectly(synthetic_root: Path, tmp_path: Path) -> None:
    fake = _copy_images(synthetic_root / "testB", tmp_path / "fake")
    assert _evaluate("--real", str(synthetic_root / "testB"), "--fake", str(fake), *OFFLINE,
                     "--output", str(tmp_path / "r.json")) == 0
    metrics = json.loads((tmp_path / "r.json").read_text())["metrics"]
    assert metrics["l1"] == 0.0 and metrics["psnr"] == "inf" and metrics["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert abs(metrics["fid"]) < 1e-4 and metrics["kid"] <= 1e-12  # KID of a set against itself is <= 0


def test_paired_metrics_pair_by_name(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fake = _copy_images(synthetic_root / "testA_gt", tmp_path / "fake", rename=True)
    # auto: the names do not match, so only FID/KID, with a note saying why
    assert _evaluate("--real", str(synthetic_root / "testB"), "--fake", str(fake), *OFFLINE,
                     "--output", str(tmp_path / "r.json")) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert list(result["metrics"]) == ["fid", "kid", "kid_std"] and result["counts"]["pairs"] == 0
    assert any(note.startswith("paired metrics skipped") for note in result["notes"])
    capsys.readouterr()
    # asked for explicitly: a one-line error naming the unmatched files
    assert _evaluate("--real", str(synthetic_root / "testB"), "--fake", str(fake), "--metrics", "psnr", *OFFLINE) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pair files by name" in err[0] and "x_000001" in err[0]


def test_resized_predictions_are_counted(synthetic_root: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    for path in sorted((synthetic_root / "testA_gt").iterdir()):
        Image.open(path).resize((40, 40), Image.BICUBIC).save(fake / path.name)
    assert _evaluate("--ground-truth", str(synthetic_root / "testA_gt"), "--fake", str(fake),
                     "--metrics", "l1,psnr,ssim", *OFFLINE, "--output", str(tmp_path / "r.json")) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["image_policy"]["resized_to_ground_truth"] == 4 and "feature" not in result
    assert 0 < result["metrics"]["l1"] < 0.1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--real", "{tmp}/nope", "--fake", "{real}"], "error: real folder not found: {tmp}/nope"),
        (["--real", "{empty}", "--fake", "{real}"], "error: no images in {empty}"),
        (["--real", "{real}", "--fake", "{real}", "--metrics", "fid,lpips"],
         "error: unknown metric 'lpips'; valid metrics: fid, kid, l1, psnr, ssim"),
        (["--fake", "{real}", "--ground-truth", "{real}", "--metrics", "fid"], "error: fid need real images: give --real DIR"),
        (["--metrics", "fid"], "error: nothing to score: give --checkpoint with --data (or --input), or --fake with --real"),
        (["--checkpoint", "{tmp}/x.ckpt", "--fake", "{real}"], "error: use either --checkpoint"),
        (["--real", "{real}", "--fake", "{real}", "--feature", "torchvision.models:nope"],
         "error: --feature 'torchvision.models:nope': torchvision.models has no attribute 'nope'"),
    ],
)
def test_mistakes_are_one_line(
    args: list[str], message: str, synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "empty").mkdir()
    names = {"tmp": str(tmp_path), "empty": str(tmp_path / "empty"), "real": str(synthetic_root / "testB")}
    assert _evaluate(*[a.format(**names) for a in args], "--image-size", "32", "--device", "cpu") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message.format(**names)), err


def test_default_inception_offline_is_one_line(synthetic_root: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    """The default feature network is Inception; without torch-fidelity / its weights: one clear line."""
    import gan_translate.metrics as metrics

    monkeypatch.setattr(metrics, "_torch_fidelity_available", lambda: False)
    assert _evaluate("--real", str(synthetic_root / "testB"), "--fake", str(synthetic_root / "testA")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--feature inception needs the torch-fidelity package" in err[0]


def test_paired_layout_of_pix2pix_data(synthetic_root: Path, tmp_path: Path) -> None:
    """--data on an A|B side-by-side split: the target halves are both the real set and the ground truth."""
    from gan_translate.evaluation.evaluate import plan_from_data

    inputs, reals, truths, layout = plan_from_data(synthetic_root / "paired", "test", "AtoB", "AtoB")
    assert layout == "paired" and truths == reals and [i.name for i in inputs] == [r.name for r in reals]
    left, right = inputs[0].load(), reals[0].load()
    whole = np.asarray(Image.open(inputs[0].path).convert("RGB"))
    np.testing.assert_array_equal(np.concatenate([left, right], axis=1), whole)
    swapped, _, _, _ = plan_from_data(synthetic_root / "paired", "test", "AtoB", "BtoA")
    np.testing.assert_array_equal(swapped[0].load(), right)
