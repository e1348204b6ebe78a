"""Training speed switches that work for every model: channels-last and ``torch.compile``.

A callback, so no model's ``__init__`` or hyperparameters change and checkpoints stay the same::

    trainer:
      precision: bf16-mixed        # or 16-mixed on a GPU (Lightning's AMP; see docs/scaling.md)
      callbacks:
        - class_path: gan_translate.callbacks.PerformanceOptions
          init_args: {channels_last: true, compile: false}

or on the command line ``--trainer.callbacks+=gan_translate.callbacks.PerformanceOptions
--trainer.callbacks.channels_last=true`` (``gan_translate.perf.PerformanceOptions``, the 0.1 path, still works).
The inference switches are in :mod:`gan_translate.inference.translator`.

Both switches are numerically checked against the default path in ``tests/test_precision.py``:
channels-last only reorders the memory of 4-D tensors, so outputs agree with the default path to float
rounding (about 1e-5 after a ResNet-9 generator); compiled networks run the same arithmetic fused
differently (about 1e-5 too). Neither changes parameter names, so checkpoints are interchangeable.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from gan_translate.core.errors import UserError

__all__ = ["PerformanceOptions", "batch_to_channels_last", "begin_captured_step", "compile_networks", "networks"]


# --- the networks of a model ----------------------------------------------------------------------
def networks(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The trainable sub-networks of a GAN module (generators, discriminators): children with parameters.

    Metric collections and other parameter-free children are left out; so is a frozen feature network.
    """
    for name, child in module.named_children():
        if any(p.requires_grad for p in child.parameters()):
            yield name, child


# --- channels-last ----------------------------------------------------------------------------------
def batch_to_channels_last(batch: Any) -> Any:
    """4-D tensors of a batch (dict / list / tensor) in channels-last memory order; dicts are updated in place."""
    if isinstance(batch, Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
    if isinstance(batch, MutableMapping):
        for key, value in batch.items():
            batch[key] = batch_to_channels_last(value)
        return batch
    if isinstance(batch, list):
        batch[:] = [batch_to_channels_last(value) for value in batch]
        return batch
    if isinstance(batch, tuple):
        return type(batch)(*(batch_to_channels_last(v) for v in batch)) if hasattr(batch, "_fields") else tuple(
            batch_to_channels_last(v) for v in batch
        )
    return batch


# --- torch.compile ------------------------------------------------------------------------------------
def compile_networks(module: nn.Module, mode: str | None = None, backend: str = "inductor", dynamic: bool | None = None) -> list[str]:
    """Compile every trainable sub-network of ``module`` in place (``nn.Module.compile``); returns their names.

    In place, not ``torch.compile(net)``: the compiled network keeps its parameter names, so checkpoints,
    ``translate`` and the optimisers see the same module as without compilation. Compilation itself happens
    lazily, at the first call of each network (and once more for the other ``requires_grad`` state of a
    discriminator, which GAN steps toggle), so the first training steps are slow.
    """
    names = []
    for name, net in networks(module):
        net.compile(mode=mode, backend=backend, dynamic=dynamic)
        names.append(name)
    return names


def begin_captured_step(device: torch.device) -> None:
    """Start a new generation of CUDA graph replays: the previous step's graph outputs may be overwritten from here
    on, and not before (pytorch #148439). The one part of the captured step a CPU cannot run; the GPU check covers it."""
    if device.type == "cuda":
        torch.compiler.cudagraph_mark_step_begin()


class PerformanceOptions(Callback):
    """Training speed switches for any GAN module: channels-last memory order and ``torch.compile``.

    Args:
        channels_last: keep weights and 4-D batches in channels-last (NHWC) order; oneDNN (CPU) and
            cuDNN tensor-core kernels prefer it, especially with bf16 / fp16.
        compile: compile each generator and discriminator with ``torch.compile`` (first steps are slow:
            the benchmark reports the compile time separately).
        compile_mode: ``torch.compile`` mode (``default``, ``reduce-overhead``, ``max-autotune``; null: default, or
            ``reduce-overhead`` on CUDA with ``capture``).
        compile_backend: ``torch.compile`` backend (``inductor``; ``aot_eager`` to test the plumbing only).
        capture: the captured step (issue 29): every network compiled (on CUDA with ``reduce-overhead``: CUDA graphs
            replayed each step, norm and activation kernels fused), a new graph generation marked at each batch, and
            the NaN guard read every ``nan_check_every_n_steps`` steps instead of every step (a host read cannot be
            in a graph; a bad update is skipped on the device: :mod:`gan_translate.models.deferred_guard`). Off by
            default: not yet measured faster on a GPU (benchmarks/gpu_suite.sh ``capture`` measures it).
        nan_check_every_n_steps: with ``capture``, how often the NaN guard's device flag is read.
    """

    def __init__(
        self,
        channels_last: bool = False,
        compile: bool = False,  # noqa: A002 - the config key users write (torch's word)
        compile_mode: str | None = None,
        compile_backend: str = "inductor",
        capture: bool = False,
        nan_check_every_n_steps: int = 50,
    ) -> None:
        super().__init__()
        if nan_check_every_n_steps < 1:
            raise UserError(f"PerformanceOptions nan_check_every_n_steps must be >= 1, got {nan_check_every_n_steps}")
        self.channels_last = channels_last
        self.compile = compile or capture
        self.compile_mode = compile_mode
        self.compile_backend = compile_backend
        self.capture = capture
        self.nan_check_every_n_steps = nan_check_every_n_steps
        self._compiled: set[int] = set()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Convert / compile the model before the strategy (DDP) wraps it."""
        self._apply(pl_module)

    def _apply(self, pl_module: pl.LightningModule) -> None:
        if self.channels_last:
            # Only 4-D parameters and buffers change order: convolution weights. Runs before DDP wraps the
            # module (setup), so DDP's buckets see the final strides.
            pl_module.to(memory_format=torch.channels_last)
        if self.capture:
            pl_module.nonfinite_check_every_n_steps = self.nan_check_every_n_steps
        if self.compile and id(pl_module) not in self._compiled:
            mode = self.compile_mode
            if mode is None and self.capture and pl_module.device.type == "cuda":
                mode = "reduce-overhead"  # inductor's CUDA graphs
            names = compile_networks(pl_module, mode=mode, backend=self.compile_backend)
            self._compiled.add(id(pl_module))
            rank_zero_info(f"torch.compile ({self.compile_backend}, mode {mode or 'default'}): {', '.join(names)}")

    def _batch(self, batch: Any) -> None:
        if self.channels_last:
            batch_to_channels_last(batch)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch(batch)
        if self.capture:
            begin_captured_step(pl_module.device)

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._batch(batch)

    def on_test_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._batch(batch)

    def on_predict_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._batch(batch)
