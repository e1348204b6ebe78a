"""Training values are summed on the device and read back only on the steps the loggers write."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from gan_translate.data.datamodules import ImageFolderDataModule
from gan_translate.models import DCGAN
from gan_translate.models.base import GANModule, TrainingLogWindow


def test_window_takes_batch_weighted_means_and_starts_again() -> None:
    window = TrainingLogWindow()
    window.add({"a": torch.tensor(1.0), "b": torch.tensor(10.0)}, weight=1)
    window.add({"a": torch.tensor(4.0), "b": torch.tensor(40.0, dtype=torch.bfloat16)}, weight=3)
    means, weight = window.take()
    assert weight == 4 and window.flushed_once
    assert means["a"].item() == pytest.approx((1 + 12) / 4) and means["b"].item() == pytest.approx((10 + 120) / 4)
    assert all(value.device.type == "cpu" and value.dim() == 0 for value in means.values())
    assert window.take() == ({}, 0)  # empty after a take
    window.add({"a": torch.tensor(float("nan"))}, weight=2)
    assert torch.isnan(window.take()[0]["a"])  # a NaN in the window reaches the log (and the NaN check)


def _read_csv(run: Path) -> list[dict[str, str]]:
    (metrics,) = run.rglob("metrics.csv")
    with metrics.open() as handle:
        return list(csv.DictReader(handle))


def test_values_are_logged_as_window_means_on_log_steps_with_exact_epoch_means(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added: list[tuple[dict[str, float], int]] = []
    flushes: list[int] = []
    original_add, original_flush = TrainingLogWindow.add, GANModule._flush_training_log

    def recording_add(self: TrainingLogWindow, values: Mapping[str, torch.Tensor], weight: int) -> None:
        added.append(({k: float(v.detach()) for k, v in values.items()}, weight))
        original_add(self, values, weight)

    def recording_flush(self: GANModule, *args: Any) -> None:
        flushes.append(len(added) - 1)  # index of the batch whose step flushed
        original_flush(self, *args)

    monkeypatch.setattr(TrainingLogWindow, "add", recording_add)
    monkeypatch.setattr(GANModule, "_flush_training_log", recording_flush)
    model = DCGAN(resolution=32, channels=3, latent_dim=16, ngf=8, ndf=8, num_fixed_samples=4, sample_every_n_steps=0)
    data = ImageFolderDataModule(root=str(synthetic_root / "trainB"), image_size=32, batch_size=1, num_workers=0)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=7, log_every_n_steps=3, logger=CSVLogger(tmp_path), enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu",
    )
    trainer.fit(model, datamodule=data)

    assert len(added) == 7 and {weight for _, weight in added} == {1}
    # The first batch (losses on the progress bar at once), Lightning's log steps 3 and 6, the epoch's last batch.
    assert flushes == [0, 2, 5, 6]

    def mean(name: str, batches: range) -> float:
        return sum(added[i][0][name] for i in batches) / len(batches)

    rows = _read_csv(tmp_path)
    step_rows = {int(row["step"]): row for row in rows if row.get("train/d_loss_step")}
    assert sorted(step_rows) == [2, 5]  # the CSV logger writes on log steps only
    for name in ("d_loss", "g_loss", "d_real_mean", "d_acc_fake"):
        assert float(step_rows[2][f"train/{name}_step"]) == pytest.approx(mean(f"train/{name}", range(1, 3)), rel=1e-5)
        assert float(step_rows[5][f"train/{name}_step"]) == pytest.approx(mean(f"train/{name}", range(3, 6)), rel=1e-5)
    (epoch_row,) = [row for row in rows if row.get("train/d_loss_epoch")]
    for name in ("d_loss", "g_loss", "d_fake_mean"):
        assert float(epoch_row[f"train/{name}_epoch"]) == pytest.approx(mean(f"train/{name}", range(7)), rel=1e-5)
    # What callbacks (the NaN check, checkpoint monitors) read is on the CPU: reading it never waits for a GPU.
    assert all(value.device.type == "cpu" for key, value in trainer.callback_metrics.items() if key.startswith("train/"))


def test_max_steps_flushes_the_last_window(synthetic_root: Path, tmp_path: Path) -> None:
    model = DCGAN(resolution=32, channels=3, latent_dim=16, ngf=8, ndf=8, num_fixed_samples=4, sample_every_n_steps=0)
    data = ImageFolderDataModule(root=str(synthetic_root / "trainB"), image_size=32, batch_size=1, num_workers=0)
    trainer = pl.Trainer(
        max_steps=8, log_every_n_steps=50, logger=CSVLogger(tmp_path), enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu",
    )
    trainer.fit(model, datamodule=data)  # 4 batches (a D and a G step each) of an 8-batch epoch
    assert trainer.global_step == 8 and not trainer.is_last_batch
    assert model._log_window.weight == 0  # nothing left unlogged
    (epoch_row,) = [row for row in _read_csv(tmp_path) if row.get("train/d_loss_epoch")]
    assert float(epoch_row["train/d_loss_epoch"]) > 0
