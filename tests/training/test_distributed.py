"""Multi-process (DDP) training on CPU with gloo: every model, through the real CLI, launched with torchrun.

One ``torchrun --nproc_per_node 2`` launch (``python -m tests.training.test_distributed``, the ``__main__`` block below)
trains every model of MODELS (those with DDP settings in tests/tiny.py) in turn at toy size with ``--trainer.devices 2 --trainer.strategy ddp``:
plain ``ddp``, which only works because ``GANModule`` turns on ``find_unused_parameters`` (gan_translate/perf.py).
A subprocess, because Lightning's own launcher for plain ``ddp`` re-runs the current command (pytest) in rank 1.
A test-only callback writes each rank's final weights and a few random draws to ``rank{r}.pt``.

Checked: no unused-parameter error and no hang (the subprocess has a time limit), identical weights on both
ranks, per-rank data shards / image pools / global random streams, one checkpoint and one W&B run; and for
CycleGAN and Pix2Pix (instance norm, no dropout, no pool: every loss term is a per-sample mean) the 2 x batch-2
DDP result equals one process with batch 4. That cannot hold for DCGAN: its networks use batch norm, whose
statistics are per process under DDP (per 2 images instead of 4), and its latents are random per rank.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from gan_translate.artifacts import build_model, load_checkpoint
from gan_translate.core.lightning_compat import ddp_kwargs
from tests.helpers import REPO_ROOT, checkpoints, fit, load_raw
from tests.tiny import TINY

#: The models of the DDP run, and their settings there (flags, optimiser steps, batch norm): tests/tiny.py.
DDP = {name: tiny.ddp for name, tiny in TINY.items() if tiny.ddp is not None}
MODELS = tuple(DDP)
# Summation order differs (two per-process means averaged vs one mean of four), so the equivalence holds up
# to float rounding, which Adam's normalisation amplifies for parameters whose gradient is ~0 (a sign flip of
# the noise moves them by 2 x lr). Measured after 2 batches (lr 2e-4), against the one-process batch-4 run:
#                          DDP 2 x 2      one process, lr x 1.05      one process, batch 2 (wrong data)
#   max |param diff|        1.4e-5         4e-4 .. 6e-4                 8e-4
#   mean |param diff|       4e-8           1e-5 .. 2e-5                 1e-4 .. 2e-4
#   max |output diff|       5e-5           3e-3 .. 2e-2                 4e-2 .. 8e-2
PARAM_MAX_ATOL = 1e-4
PARAM_MEAN_ATOL = 1e-6
OUTPUT_ATOL = 5e-4


class RankStateDump(Callback):
    """Test-only: each rank saves its weights, pool states, data paths and a random draw at the end of fit."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.paths: list[str] = []

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        for key in ("A_path", "path"):
            if key in batch:
                self.paths += [str(p) for p in batch[key]]

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        pools = {name: getattr(pl_module, name).generator.get_state() for name in ("pool_a", "pool_b") if hasattr(pl_module, name)}
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "state": {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()},
            "paths": self.paths,
            "draw": torch.rand(4),  # the global stream after training: must differ between ranks
            "pools": pools,
            "find_unused_parameters": (ddp_kwargs(trainer.strategy) or {}).get("find_unused_parameters"),
        }
        torch.save(record, self.dirpath / f"rank{trainer.global_rank}.pt")


def model_args(model: str, data: Path, run_dir: Path, batch_size: int) -> list[str]:
    """Tiny, deterministic-in-expectation settings of ``model`` (see the module docstring) on the synthetic set ``data``."""
    args = [*TINY[model].synthetic_args(data, run_dir, epochs=1, batches=2), *DDP[model].flags]
    return [*args, "--data.batch_size", str(batch_size), "--model.sample_every_n_steps", "1",
            "--trainer.callbacks+=tests.training.test_distributed.RankStateDump", f"--trainer.callbacks.dirpath={run_dir / 'ranks'}"]


#: Every test here starts processes (torchrun ranks, ddp_spawn): one xdist worker runs them, one at a time (tests/conftest.py).
pytestmark = pytest.mark.ddp


@pytest.fixture(scope="module")
def ddp_runs(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every model of MODELS trained by one 2-process torchrun launch; returns the folder holding a run per model."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "NO_ALBUMENTATIONS_UPDATE": "1",
           "WANDB_DIR": str(out), "PYTHONPATH": str(REPO_ROOT)}
    # --standalone: torchrun's rendezvous binds a free port itself, so a second test process (pytest-xdist) cannot
    # take the port between a probe and the launch.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "tests.training.test_distributed", str(synthetic_root), str(out)]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return out


def _ranks(run_dir: Path) -> list[dict[str, Any]]:
    return [torch.load(run_dir / "ranks" / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], **tolerance: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], msg=lambda m, key=key: f"{key}: {m}", **tolerance)
        else:
            assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("model", MODELS)
def test_ddp_ranks_end_identical_and_write_once(ddp_runs: Path, model: str) -> None:
    run_dir = ddp_runs / model
    rank0, rank1 = _ranks(run_dir)
    assert (rank0["world_size"], rank1["world_size"]) == (2, 2)
    assert rank0["find_unused_parameters"] is True  # plain `ddp` was asked for; GANModule turned it on
    # DDP keeps the replicas in lockstep: bit-identical parameters (and buffers). Batch-norm running
    # statistics are the exception: DDP broadcasts rank 0's at the start of every forward, and each rank
    # then updates them with its own batch, so after the last step they differ by that one local update
    # (the checkpoint holds rank 0's; SyncBatchNorm, GPU only, would make them global: docs/scaling.md).
    running = ("running_mean", "running_var")
    exact = {k: v for k, v in rank0["state"].items() if not k.endswith(running)}
    _assert_same_state(exact, {k: rank1["state"][k] for k in exact}, atol=0.0, rtol=0.0)
    if DDP[model].batch_norm:
        assert len(exact) < len(rank0["state"])  # it has batch norm: the exception is real
    # ... while each rank saw its own data and drew its own random numbers.
    assert rank0["paths"] and not set(rank0["paths"]) & set(rank1["paths"])
    assert not torch.equal(rank0["draw"], rank1["draw"])
    for name in rank0["pools"]:
        assert not torch.equal(rank0["pools"][name], rank1["pools"][name]), name
    # Written once: one checkpoint, one W&B run, one set of sample grids.
    assert len(checkpoints(run_dir, "last*.ckpt")) == 1
    assert len(list(run_dir.rglob("offline-run-*"))) == 1
    assert load_raw(checkpoints(run_dir, "last*.ckpt")[0])["global_step"] == DDP[model].optimizer_steps  # 2 batches


@pytest.mark.parametrize("model", [name for name, ddp in DDP.items() if ddp.equals_global_batch])
def test_ddp_equals_one_process_with_the_global_batch(ddp_runs: Path, synthetic_root: Path, tmp_path: Path, model: str) -> None:
    fit([*model_args(model, synthetic_root, tmp_path, batch_size=4), "--trainer.devices", "1",
         "--trainer.limit_val_batches", "0"])
    single = torch.load(tmp_path / "ranks" / "rank0.pt", weights_only=False)
    rank0, rank1 = _ranks(ddp_runs / model)
    # The two shards together are the one-process batches (item seeds follow the global position, so
    # crops, flips and random B pairings are the same too) ...
    assert sorted(single["paths"]) == sorted(rank0["paths"] + rank1["paths"])
    # ... and averaging the two processes' gradients gives the gradient of the mean over all four images:
    # the same parameters, except the convolution biases in front of a non-affine instance norm. The norm
    # subtracts them again, so their true gradient is 0 and Adam turns the rounding noise of that 0 into
    # steps of +-lr in both runs, differently: they change no output, so compare the networks' outputs too.
    model = build_model(load_checkpoint(checkpoints(ddp_runs / model, "last*.ckpt")[0]))
    dead = _bias_before_instance_norm(model)
    assert dead  # the classic networks do have them
    live = [k for k in rank0["state"] if k not in dead and rank0["state"][k].is_floating_point()]
    _assert_same_state({k: rank0["state"][k] for k in live}, {k: single["state"][k] for k in live},
                       atol=PARAM_MAX_ATOL, rtol=0.0)
    diffs = torch.cat([(rank0["state"][k] - single["state"][k]).abs().flatten() for k in live])
    assert float(diffs.mean()) < PARAM_MEAN_ATOL
    torch.testing.assert_close(_outputs(model, rank0["state"]), _outputs(model, single["state"]),
                               atol=OUTPUT_ATOL, rtol=0.0)


def _bias_before_instance_norm(model: torch.nn.Module) -> set[str]:
    """State keys of convolution biases directly followed by an instance norm without affine parameters."""
    names = set()
    for prefix, module in model.named_modules():
        layers = list(module.children()) if isinstance(module, torch.nn.Sequential) else []
        for index, (layer, following) in enumerate(zip(layers, layers[1:])):
            if (isinstance(layer, torch.nn.modules.conv._ConvNd) and layer.bias is not None
                    and isinstance(following, torch.nn.InstanceNorm2d) and not following.affine):
                names.add(f"{prefix}.{index}.bias" if prefix else f"{index}.bias")
    return names


def _outputs(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Every generator's and discriminator's output on fixed inputs, with ``state`` loaded."""
    model.load_state_dict(state)
    model.eval()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    outputs = []
    with torch.no_grad():
        for name, net in model.named_children():
            if name.startswith("generator"):
                outputs.append(net(images))
            elif name.startswith("discriminator"):
                channels = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
                outputs.append(net(images.repeat(1, channels // 3, 1, 1)))
    return outputs


def test_validation_metrics_are_synced(ddp_runs: Path) -> None:
    # Torchmetrics reduce their states over the processes in compute(): the best checkpoint's monitored
    # value is the one over all ranks' validation images, the same on both ranks (else they'd disagree
    # on which checkpoint is best and the run would hang or save twice).
    best = checkpoints(ddp_runs / "cyclegan", "best-*.ckpt")
    assert len(best) == 1
    callback = next(v for k, v in load_raw(best[0])["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert torch.isfinite(torch.as_tensor(callback["best_model_score"]))


@pytest.mark.parametrize("model", MODELS)
def test_models_survive_the_pickling_of_spawned_processes(model: str, synthetic_root: Path) -> None:
    # `strategy: ddp_spawn` sends the module to its processes with torch.multiprocessing's pickler: the loss
    # functions it holds must be importable and the image pools' random generators must travel with their state.
    import io
    import pickle
    from multiprocessing.reduction import ForkingPickler

    module = TINY[model].build(model)
    pools = [getattr(module, name) for name in ("pool_a", "pool_b") if hasattr(module, name)]
    for pool in pools:
        torch.rand(3, generator=pool.generator)  # a state that is not the seed's
    buffer = io.BytesIO()
    ForkingPickler(buffer, pickle.HIGHEST_PROTOCOL).dump(module)
    copy = pickle.loads(buffer.getvalue())
    _assert_same_state(module.state_dict(), copy.state_dict(), atol=0.0, rtol=0.0)
    if hasattr(module, "gan_loss"):
        assert copy.gan_loss.generator(torch.ones(2)) == module.gan_loss.generator(torch.ones(2))
    for name, pool in zip(("pool_a", "pool_b"), pools):
        assert torch.equal(getattr(copy, name).generator.get_state(), pool.generator.get_state())
        assert torch.equal(torch.rand(3, generator=getattr(copy, name).generator), torch.rand(3, generator=pool.generator))


def test_ddp_spawn_trains_through_the_cli(synthetic_root: Path, tmp_path: Path) -> None:
    """``--trainer.strategy ddp_spawn`` (notebooks, Windows): the CLI's trainer, callbacks and model all pickle.

    In a subprocess, as a user runs it: the W&B run the parent opens must not outlive pytest's session.
    """
    args = [*model_args("cyclegan", synthetic_root, tmp_path, batch_size=2), "--trainer.devices", "2",
            "--trainer.strategy", "ddp_spawn", "--trainer.accelerator", "cpu", "--model.pool_size", "4"]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "NO_ALBUMENTATIONS_UPDATE": "1",
           "WANDB_DIR": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-c", "import sys; from gan_translate.cli import main; sys.exit(main(sys.argv[1:]))",
               "fit", *args]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    rank0, rank1 = _ranks(tmp_path)
    assert (rank0["world_size"], rank1["world_size"]) == (2, 2)
    _assert_same_state(rank0["state"], rank1["state"], atol=0.0, rtol=0.0)
    assert not torch.equal(rank0["pools"]["pool_a"], rank1["pools"]["pool_a"])  # a stream per process
    assert len(checkpoints(tmp_path, "last*.ckpt")) == 1
    assert len({run.name.rsplit("-", 1)[1] for run in tmp_path.rglob("offline-run-*")}) == 1  # one W&B run
    assert load_raw(checkpoints(tmp_path, "last*.ckpt")[0])["global_step"] == 2 * 2


def _ddp_main(data: Path, out: Path) -> None:
    """Entry of each torchrun process: the models, one after the other, in one process group."""
    from gan_translate.cli import main

    for model in MODELS:
        code = main(["fit", *model_args(model, data, out / model, batch_size=2), "--trainer.devices", "2",
                     "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu"])
        if code != 0:
            raise SystemExit(f"{model}: fit exited with {code}")


if __name__ == "__main__":
    _ddp_main(Path(sys.argv[1]), Path(sys.argv[2]))
