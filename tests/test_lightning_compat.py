"""Every private Lightning access of gan_translate.core.lightning_compat, checked against the installed Lightning.

When a Lightning upgrade renames one of them, the test of that function fails here, naming it; without this the
symptom would be a wrong resume or a crash deep in a training run."""

from __future__ import annotations

import inspect
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.strategies import DDPStrategy

from gan_translate.core import lightning_compat as compat


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val/loss", self.layer(batch[0]).pow(2).mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=2)


class _Probe(Callback):
    def __init__(self) -> None:
        self.stepped: list[int] = []
        self.validated: list[bool] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self.stepped.append(compat.batches_that_stepped(trainer))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validated.append(compat.validation_has_run(trainer))


def _fit(tmp_path: Any, *callbacks: Callback) -> pl.Trainer:
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=list(callbacks), default_root_dir=str(tmp_path),
                         num_sanity_val_steps=0)
    trainer.fit(_Tiny(), _loader(), _loader())
    return trainer


def test_loop_counters(tmp_path: Any) -> None:
    probe = _Probe()
    _fit(tmp_path, probe)
    assert probe.stepped == [0, 1, 2, 3]
    assert probe.validated == [True]


def test_epoch_batches_can_be_set(tmp_path: Any) -> None:
    trainer = _fit(tmp_path)
    loop = trainer.fit_loop.epoch_loop
    assert isinstance(loop.restarted_on_train_batch_end, bool)
    compat.set_epoch_batches_done(loop, 3)
    current = loop.batch_progress.current
    expected_completed = 3 - int(loop.restarted_on_train_batch_end)
    assert (current.ready, current.started, current.processed, current.completed) == (3, 3, 3, expected_completed)


def test_ddp_kwargs_are_the_strategys_own() -> None:
    strategy = DDPStrategy()
    kwargs = compat.ddp_kwargs(strategy)
    assert kwargs is not None
    kwargs["find_unused_parameters"] = True
    assert compat.ddp_kwargs(strategy) == {"find_unused_parameters": True}
    assert compat.ddp_kwargs(object()) is None


def test_model_checkpoint_internals(tmp_path: Any) -> None:
    callback = LightningModelCheckpoint(dirpath=str(tmp_path))
    assert compat.version_counter_enabled(callback) is True
    assert compat.version_counter_enabled(LightningModelCheckpoint(enable_version_counter=False)) is False
    parameters = list(inspect.signature(LightningModelCheckpoint._save_topk_checkpoint).parameters)
    assert parameters == ["self", "trainer", "monitor_candidates"]


def test_missing_monitor_hook_replaces_lightnings_error(tmp_path: Any) -> None:
    seen: list[str] = []

    class Tolerant(compat.ModelCheckpointWithMissingMonitorHook):
        def on_missing_monitor(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
            seen.append(self.monitor)

    _fit(tmp_path, Tolerant(dirpath=str(tmp_path / "ckpt"), monitor="val/never_logged", save_last=True))
    assert seen == ["val/never_logged"] and (tmp_path / "ckpt" / "last.ckpt").is_file()
    with pytest.raises(Exception, match="val/never_logged"):  # Lightning's own behaviour, which the hook replaces
        _fit(tmp_path / "plain", compat.ModelCheckpointWithMissingMonitorHook(monitor="val/never_logged"))


def test_wandb_logger_internals(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    logger = WandbLogger(save_dir=str(tmp_path), mode="offline", project="compat")
    init = compat.wandb_init_kwargs(logger)
    assert init["mode"] == "offline" and init["project"] == "compat"
    assert compat.started_wandb_run(logger) is None
    compat.discard_wandb_experiment(logger, run_id="abc123")
    assert logger.version == "abc123" and compat.wandb_init_kwargs(logger)["id"] == "abc123"


def test_local_paths() -> None:
    assert compat.is_local_path("/tmp/x.ckpt") and compat.is_local_path("relative/x.ckpt")
    assert not compat.is_local_path("s3://bucket/x.ckpt")
