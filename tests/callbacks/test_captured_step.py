"""The captured step (issue 29) on a CPU: ``PerformanceOptions(capture=True)`` compiles every network (here with
the cheap ``aot_eager`` backend; inductor's CUDA graphs only on a GPU, benchmarks/gpu_suite.sh) and reads the NaN
guard every N steps (models/deferred_guard.py): the same losses step by step as the eager per-step path, no device
read per step, and a non-finite step still never reaches the weights and stops the run in one line, naming it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from gan_translate.callbacks.performance import PerformanceOptions
from gan_translate.core.errors import NonFiniteLossError
from gan_translate.models.deferred_guard import DeferredNonFiniteGuard
from tests.callbacks.test_precision import TrainingRecord, _data, _fresh, _trainer
from tests.callbacks.test_reliability import PoisonAt

# fused (capture) against foreach (default) Adam: the same updates to float rounding
LOSS_TOL = {"rel": 1e-4, "abs": 1e-5}


class Weights(Callback):
    """The weights after each batch (CPU copies)."""

    def __init__(self) -> None:
        self.after: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.after.append({k: v.detach().clone() for k, v in pl_module.state_dict().items() if v.is_floating_point()})


def _fit(module: torch.nn.Module, tmp_path: Path, name: str, synthetic_root: Path, batches: int,
         callbacks: list[Callback]) -> dict[str, Any]:
    record = TrainingRecord(str(tmp_path / f"{name}.pt"))
    torch.manual_seed(0)
    _trainer(tmp_path / name, batches=batches, callbacks=[*callbacks, record], log_every_n_steps=1).fit(
        module, datamodule=_data(synthetic_root))
    return torch.load(tmp_path / f"{name}.pt", weights_only=False)


def test_the_captured_step_gives_the_eager_losses_step_by_step(synthetic_root: Path, tmp_path: Path) -> None:
    default = _fresh("cyclegan")
    eager = _fit(copy.deepcopy(default), tmp_path, "eager", synthetic_root, 4, [])
    captured_module = copy.deepcopy(default)
    captured = _fit(captured_module, tmp_path, "captured", synthetic_root, 4,
                    [PerformanceOptions(capture=True, compile_backend="aot_eager", nan_check_every_n_steps=3)])
    assert captured_module.nonfinite_check_every_n_steps == 3
    assert all(optimizer.defaults["fused"] for optimizer in captured_module.trainer.optimizers)  # found_inf skips
    assert len(eager["losses"]) == len(captured["losses"]) == 4
    for step, (a, b) in enumerate(zip(eager["losses"], captured["losses"])):
        assert a.keys() == b.keys() and a, step
        for key in a:
            assert b[key] == pytest.approx(a[key], **LOSS_TOL), (step, key)


def test_the_deferred_guard_reads_the_device_every_n_steps_only(synthetic_root: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    original = DeferredNonFiniteGuard.first_bad_step

    def counted(self: DeferredNonFiniteGuard, reduce: Any = None) -> Any:
        reads.append(self.calls)
        return original(self, reduce)

    monkeypatch.setattr(DeferredNonFiniteGuard, "first_bad_step", counted)
    module = _fresh("cyclegan")
    checked: list[int] = []
    monkeypatch.setattr(type(module), "check_finite", lambda *args, **kwargs: checked.append(1))
    _fit(module, tmp_path, "deferred", synthetic_root, 4, [PerformanceOptions(capture=True, compile_backend="aot_eager",
                                                                               nan_check_every_n_steps=3)])
    assert not checked  # the per-step guard (a host read before every update) never ran
    # 4 batches x 2 optimiser steps: the windows end at steps 3 and 6, then the epoch's end and the fit's end read
    assert reads == [3, 6, 8, 8]


def test_a_bad_step_never_reaches_the_weights_and_stops_naming_it(synthetic_root: Path, tmp_path: Path) -> None:
    """Poisoned from batch 2 on: the update of batch 2's generator step (and every later one) is skipped on the
    device, the run stops at the window's read naming batch 2's step, and the weights are those after batch 1."""
    module = _fresh("cyclegan")
    weights = Weights()
    with pytest.raises(NonFiniteLossError) as stopped:
        _fit(module, tmp_path, "poisoned", synthetic_root, 4,
             [PerformanceOptions(capture=True, compile_backend="aot_eager", nan_check_every_n_steps=8), PoisonAt(2),
              weights])
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith("train/idt_b is inf at step 2 (epoch 0, batch 2) (also non-finite: train/idt_a"), message
    assert "training stopped before the weights were updated" in message
    first, *later = weights.after
    # batches 2 and 3 ended, none of them changed a weight; batch 4's discriminator step (step 8) read the flag
    assert len(later) == 2
    for state in later:
        assert all(torch.equal(state[k], v) for k, v in first.items())
    assert all(torch.isfinite(v).all() for v in first.values())


def test_fp16_amp_and_unfused_optimisers_keep_the_per_step_guard() -> None:
    module = _fresh("cyclegan")
    module.nonfinite_check_every_n_steps = 10
    unfused = torch.optim.Adam(module.generator_ab.parameters(), lr=1e-3)
    assert module._deferred_guard_for(unfused) is None
    fused = module.adam(module.generator_ab.parameters())
    assert fused.defaults["fused"] and module._deferred_guard_for(fused) is not None
    module.nonfinite_check_every_n_steps = 1
    assert module._deferred_guard_for(fused) is None
    with pytest.raises(ValueError, match="at least|>= 1"):
        DeferredNonFiniteGuard(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graph replay needs a CUDA GPU (benchmarks/gpu_suite.sh capture)")
def test_cuda_graph_replay_gives_the_eager_losses_for_20_steps(synthetic_root: Path, tmp_path: Path) -> None:
    """The part a CPU cannot run: inductor's CUDA graphs (``reduce-overhead``) replayed for 20 steps, against the eager
    GPU run from the same weights and batches, to bf16 tolerance (the compiler fuses and reorders float sums)."""
    default = _fresh("cyclegan")
    runs = []
    for name, options in (("eager", []), ("captured", [PerformanceOptions(capture=True, nan_check_every_n_steps=5)])):
        record = TrainingRecord(str(tmp_path / f"{name}.pt"))
        torch.manual_seed(0)
        trainer = pl.Trainer(accelerator="cuda", devices=1, max_steps=40, max_epochs=-1, limit_val_batches=0,
                             logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=tmp_path / name, log_every_n_steps=1,
                             callbacks=[*options, record])
        trainer.fit(copy.deepcopy(default), datamodule=_data(synthetic_root))  # 20 batches: 40 optimiser steps
        runs.append(torch.load(tmp_path / f"{name}.pt", weights_only=False))
    eager, captured = runs
    assert len(eager["losses"]) == len(captured["losses"]) >= 20
    for step, (a, b) in enumerate(zip(eager["losses"], captured["losses"])):
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=2e-2, abs=2e-3), (step, key)
