"""Speed and scale switches that work for every model: channels-last, ``torch.compile``, DDP and per-rank streams.

Training (a callback, so no model's ``__init__`` or hyperparameters change and checkpoints stay the same)::

    trainer:
      precision: bf16-mixed        # or 16-mixed on a GPU (Lightning's AMP; see docs/scaling.md)
      callbacks:
        - class_path: gan_translate.perf.PerformanceOptions
          init_args: {channels_last: true, compile: false}

or on the command line ``--trainer.callbacks+=gan_translate.perf.PerformanceOptions
--trainer.callbacks.channels_last=true``.

Inference: :func:`prepare_for_inference` (used by :func:`gan_translate.inference.load_translator`).

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

__all__ = [
    "PerformanceOptions",
    "autocast_dtype",
    "batch_to_channels_last",
    "compile_for_inference",
    "compile_networks",
    "enable_find_unused_parameters",
    "networks",
    "prepare_for_inference",
    "split_rank_random_streams",
]

INFERENCE_PRECISIONS = ("fp32", "bf16", "fp16")
# Channels-last for inference by device type, where the benchmark measured it faster (benchmarks/RESULTS.md).
# CPU (oneDNN, 2-core AMD EPYC with AVX512-BF16): slower for the ResNet / U-Net generators, in fp32 and in
# bf16 (instance norm and reflection padding reorder the memory back and forth). CUDA (H200, cuDNN 9.19): slower
# too, with bf16 included (CycleGAN translate batch 8: 1028 img/s bf16, 817 bf16 + channels-last).
DEFAULT_INFERENCE_CHANNELS_LAST: dict[str, bool] = {"cpu": False, "cuda": False}


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


class PerformanceOptions(Callback):
    """Training speed switches for any GAN module: channels-last memory order and ``torch.compile``.

    Args:
        channels_last: keep weights and 4-D batches in channels-last (NHWC) order; oneDNN (CPU) and
            cuDNN tensor-core kernels prefer it, especially with bf16 / fp16.
        compile: compile each generator and discriminator with ``torch.compile`` (first steps are slow:
            the benchmark reports the compile time separately).
        compile_mode: ``torch.compile`` mode (``default``, ``reduce-overhead``, ``max-autotune``; null: default).
        compile_backend: ``torch.compile`` backend (``inductor``; ``aot_eager`` to test the plumbing only).
    """

    def __init__(
        self,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        self.channels_last = channels_last
        self.compile = compile
        self.compile_mode = compile_mode
        self.compile_backend = compile_backend
        self._compiled: set[int] = set()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Convert / compile the model before the strategy (DDP) wraps it."""
        self._apply(pl_module)

    def _apply(self, pl_module: pl.LightningModule) -> None:
        if self.channels_last:
            # Only 4-D parameters and buffers change order: convolution weights. Runs before DDP wraps the
            # module (setup), so DDP's buckets see the final strides.
            pl_module.to(memory_format=torch.channels_last)
        if self.compile and id(pl_module) not in self._compiled:
            names = compile_networks(pl_module, mode=self.compile_mode, backend=self.compile_backend)
            self._compiled.add(id(pl_module))
            rank_zero_info(f"torch.compile ({self.compile_backend}, mode {self.compile_mode or 'default'}): {', '.join(names)}")

    def _batch(self, batch: Any) -> None:
        if self.channels_last:
            batch_to_channels_last(batch)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch(batch)

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


# --- inference ------------------------------------------------------------------------------------------
def autocast_dtype(precision: str) -> torch.dtype | None:
    """``fp32`` -> None (no autocast), ``bf16`` -> bfloat16, ``fp16`` -> float16."""
    if precision not in INFERENCE_PRECISIONS:
        from gan_translate.errors import UserError

        raise UserError(f"precision must be one of {', '.join(INFERENCE_PRECISIONS)}, got {precision!r}")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def prepare_for_inference(
    network: nn.Module, device: torch.device, channels_last: bool | None = None
) -> tuple[nn.Module, bool]:
    """Move ``network`` to ``device`` (in place), reorder its weights channels-last when asked; returns both.

    ``channels_last=None`` picks the measured default: see ``DEFAULT_INFERENCE_CHANNELS_LAST``.
    """
    network.to(device)
    if channels_last is None:
        channels_last = DEFAULT_INFERENCE_CHANNELS_LAST.get(device.type, False)
    if channels_last:
        network.to(memory_format=torch.channels_last)
    return network, channels_last


def compile_for_inference(network: nn.Module) -> nn.Module:
    """``torch.compile`` ``network`` in place for inference only, with weight freezing (constant folding and
    prepacked convolution weights); the first call compiles (about 15 s for a ResNet-9 on a 2-core CPU).
    Calls must then run under ``torch.inference_mode`` / ``no_grad``, as :class:`Translator` does."""
    network.compile(options={"freezing": True})
    return network


# --- distributed training --------------------------------------------------------------------------------
def enable_find_unused_parameters(trainer: pl.Trainer | None) -> bool:
    """Make a DDP strategy find unused parameters unless the user chose otherwise; returns whether it did.

    Every GAN step here leaves one network without gradients (the discriminator's step never reaches the
    generator; the generator's step freezes the discriminator), which plain DDP refuses ("Expected to have
    finished reduction in the prior iteration..."). So ``strategy: ddp`` and ``strategy: auto`` with several
    devices behave as ``ddp_find_unused_parameters_true``. An explicit ``find_unused_parameters=False``
    (``ddp_find_unused_parameters_false``) is left alone. Must run before the strategy wraps the model.
    """
    if trainer is None:
        return False
    from lightning.pytorch.strategies import DDPStrategy

    strategy = trainer.strategy
    kwargs = getattr(strategy, "_ddp_kwargs", None)
    if not isinstance(strategy, DDPStrategy) or not isinstance(kwargs, dict) or "find_unused_parameters" in kwargs:
        return False
    kwargs["find_unused_parameters"] = True
    rank_zero_info("GAN manual optimisation under DDP: find_unused_parameters=True")
    return True


def _derived_seed(state: Tensor, rank: int) -> int:
    """A seed from a generator state and a rank, without advancing the generator the state came from."""
    generator = torch.Generator()
    generator.set_state(state)
    return (int(torch.randint(0, 2**62, (), generator=generator)) + 1_000_003 * rank) % 2**63


def split_rank_random_streams(rank: int) -> int | None:
    """Give process ``rank`` > 0 its own global torch random stream (dropout masks, DCGAN latents, ...).

    ``seed_everything`` (and a resumed run's restored random state) is the same on every process, so without
    this each rank would draw the same latents and dropout masks: under DDP an effective batch of N x b
    fakes would hold each fake N times. Rank 0 keeps its stream, so a one-process run is unchanged; rank r
    reseeds from its current state and its rank, so runs stay reproducible. Returns the new seed (None on rank 0).
    """
    if rank <= 0:
        return None
    seed = _derived_seed(torch.get_rng_state(), rank)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


def reseed_generator_for_rank(generator: torch.Generator, rank: int) -> None:
    """Fold ``rank`` into a private generator (e.g. an image pool's) in place; rank 0 keeps its state."""
    if rank > 0:
        generator.manual_seed(_derived_seed(generator.get_state(), rank))
