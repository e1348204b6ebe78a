"""What every GAN LightningModule of the framework shares: schedules, sample grids, checkpoint tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Collection, Iterable, Mapping, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torchvision.utils import make_grid

from gan_translate import __version__
from gan_translate.data.io import save_image, tensor_to_uint8, unused_path

CHECKPOINT_KEY = "gan_translate"


def linear_decay_schedule(optimizer: torch.optim.Optimizer, n_epochs: int, n_epochs_decay: int) -> LambdaLR:
    """Constant learning rate for ``n_epochs``, then linear decay to zero over ``n_epochs_decay`` (classic)."""

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)

    return LambdaLR(optimizer, factor)


def image_grid(rows: Sequence[Tensor], max_images: int = 4) -> np.ndarray:
    """Stack image batches as columns (e.g. real A | fake B | rec A) into one uint8 HxWx3 picture."""
    count = min(max_images, rows[0].shape[0])
    columns = len(rows)
    # Interleave so each grid row shows one example across all columns.
    tiles = torch.stack([row[:count].detach().float().cpu() for row in rows], dim=1).flatten(0, 1)
    grid = make_grid(tiles, nrow=columns, padding=2, pad_value=1.0, normalize=False)
    return tensor_to_uint8(grid.clamp(-1, 1))


class TrainingLogWindow:
    """Training values (0-d tensors) summed on their device between two reads, weighted by batch size.

    ``add`` queues two small kernels and never waits for the device; ``take`` reads the window's means back
    in one transfer and starts a new window.
    """

    def __init__(self) -> None:
        self.names: tuple[str, ...] | None = None
        self.sums: Tensor | None = None
        self.weight = 0
        self.flushed_once = False

    def add(self, values: Mapping[str, Tensor], weight: int) -> None:
        stacked = torch.stack([value.detach().float().reshape(()) for value in values.values()]) * weight
        if self.sums is None:
            self.names, self.sums = tuple(values), stacked
        else:
            self.sums = self.sums + stacked
        self.weight += weight

    def take(self) -> tuple[dict[str, Tensor], int]:
        """The window's means as CPU tensors and its total weight; empties the window."""
        if self.sums is None or self.names is None or self.weight == 0:
            return {}, 0
        means = (self.sums / self.weight).cpu()
        taken = dict(zip(self.names, means.unbind())), self.weight
        self.names, self.sums, self.weight, self.flushed_once = None, None, 0, True
        return taken


class GANModule(pl.LightningModule):
    """Base class: manual optimisation, classic LR schedule stepping, logging of image grids.

    Subclasses set ``model_name`` (their ``MODELS`` registry name) and implement ``translator``.
    """

    model_name: ClassVar[str] = ""
    # Hyperparameters a command line may change when it reuses a checkpoint (``--ckpt_path``): they shape no
    # weight and no optimiser state. The CLI keeps the checkpoint's value for every other one (and says so).
    checkpoint_overridable_hparams: ClassVar[frozenset[str]] = frozenset({"sample_every_n_steps", "num_samples"})

    def __init__(self) -> None:
        super().__init__()
        # GANs step two optimisers per batch in a fixed order: Lightning's automatic loop cannot.
        self.automatic_optimization = False
        self._log_window = TrainingLogWindow()  # not module state: checkpoints never hold it

    # --- inference ------------------------------------------------------------------------------
    def translator(self, direction: str = "AtoB") -> nn.Module:
        """The network that maps an input batch in [-1, 1] to outputs in [-1, 1] for ``direction``."""
        raise NotImplementedError(f"{type(self).__name__} is not an image-to-image translator")

    def inference_network(self, direction: str = "AtoB") -> nn.Module:
        """The translator for ``direction``, switched to inference behaviour (eval mode by default)."""
        return self.translator(direction).eval()

    # --- distributed training ------------------------------------------------------------------------
    def configure_model(self) -> None:
        # Runs before the strategy wraps the model: GAN steps always leave one network without gradients,
        # so `strategy: ddp` / `auto` on several devices must find unused parameters (gan_translate/perf.py).
        from gan_translate.perf import enable_find_unused_parameters

        enable_find_unused_parameters(self._trainer)

    def on_fit_start(self) -> None:
        self._rank_streams_split = False

    def on_train_epoch_start(self) -> None:
        # Once per fit, after a resume's random state was restored (callbacks' on_train_start): every DDP
        # process gets its own dropout masks / latents; rank 0 keeps the single-process stream.
        if not getattr(self, "_rank_streams_split", True) and self.trainer.world_size > 1:
            from gan_translate.perf import split_rank_random_streams

            split_rank_random_streams(self.global_rank)
        self._rank_streams_split = True

    # --- optimisation ------------------------------------------------------------------------------
    def adam(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Adam:
        """Adam with the model's ``lr``, ``beta1`` and ``beta2``.

        On a GPU it is torch's fused Adam (one kernel for every tensor, where the default foreach Adam launches
        several; same updates, tests/test_precision.py); elsewhere torch's default implementation.
        """
        hp = self.hparams
        params = list(parameters)
        on_gpu = bool(params) and all(p.device.type == "cuda" for p in params)
        return torch.optim.Adam(params, lr=hp.lr, betas=(hp.beta1, hp.beta2), fused=True if on_gpu else None)

    # --- schedule ---------------------------------------------------------------------------------
    def on_train_epoch_end(self) -> None:
        # Manual optimisation does not step schedulers: do it once per epoch, as the classic code does.
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()

    # --- safety ---------------------------------------------------------------------------------------
    def check_finite(self, losses: Mapping[str, Tensor], prefix: str = "train/") -> None:
        """Raise a one-line ``NonFiniteLossError`` naming every NaN/Inf term of ``losses``.

        Call it before ``manual_backward`` / ``optimizer.step()``: a bad batch then never reaches the weights,
        nor (the error stops training before ``ModelCheckpoint`` runs) a checkpoint. It costs one device sync.
        """
        if not losses:
            return
        values = torch.stack([value.detach().float().reshape(-1)[0] for value in losses.values()])
        finite = bool(torch.isfinite(values).all())
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            # Every rank must stop together, or the others would wait for this one forever.
            finite = trainer.strategy.reduce_boolean_decision(finite, all=True)
        if finite:
            return
        from gan_translate.callbacks.reliability import NonFiniteLossError, nonfinite_message

        bad = {f"{prefix}{name}": float(v) for name, v in zip(losses, values.tolist()) if not np.isfinite(v)}
        raise NonFiniteLossError(nonfinite_message(trainer, bad or {"a loss on another process": float("nan")}))

    # --- training logs --------------------------------------------------------------------------------
    def log_training_values(
        self,
        values: Mapping[str, Tensor],
        batch_size: int,
        prog_bar: Collection[str] = (),
        optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    ) -> None:
        """Log a training step's ``values`` (step values and epoch means), reading the device only when logs are due.

        The values are summed on their device (:class:`TrainingLogWindow`) and handed to ``self.log`` as CPU
        means over the window on the steps the loggers write (every ``trainer.log_every_n_steps`` batches), on
        the first batch of a fit (so the progress bar shows losses at once), on an epoch's last batch (so the
        epoch means are exact) and when training stops. Logging device values every step made Lightning read
        each back every step (the progress bar, the NaN check of callbacks): a stall of the GPU per value
        (benchmarks/RESULTS.md). ``optimizers`` (name -> optimizer) adds ``train/lr_<name>`` on those steps.
        """
        window = self._log_window
        if window.names is not None and tuple(values) != window.names:
            self._flush_training_log(prog_bar, optimizers)  # another set of terms: close the old window
        window.add(values, batch_size)
        if self._training_log_due():
            self._flush_training_log(prog_bar, optimizers)

    def _training_log_due(self) -> bool:
        trainer = self._trainer
        if trainer is None:
            return True
        every = trainer.log_every_n_steps
        batches_logged = trainer.fit_loop.epoch_loop._batches_that_stepped  # Lightning's own logging clock
        return (
            not self._log_window.flushed_once
            or (every > 0 and (batches_logged + 1) % every == 0)
            or trainer.is_last_batch
            or trainer.should_stop
            or (trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps)
        )

    def _flush_training_log(
        self, prog_bar: Collection[str], optimizers: Mapping[str, torch.optim.Optimizer] | None
    ) -> None:
        means, weight = self._log_window.take()
        for name, value in means.items():
            # batch_size = samples in the window: Lightning's weighted epoch mean stays the mean over samples.
            self.log(name, value, prog_bar=name in prog_bar, on_step=True, on_epoch=True, batch_size=weight)
        for name, optimizer in (optimizers or {}).items():
            lr = torch.tensor(float(optimizer.param_groups[0]["lr"]))  # a CPU tensor: no copy to the device
            self.log(f"train/lr_{name}", lr, on_step=True, on_epoch=False)

    # --- pictures -------------------------------------------------------------------------------
    @property
    def iteration(self) -> int:
        """Training batches seen (``global_step`` counts optimiser steps: several per batch for GANs)."""
        return self.trainer.fit_loop.total_batch_idx if self._trainer is not None else 0

    def log_image_grid(self, key: str, grid: np.ndarray, caption: str | None = None) -> None:
        """Send a uint8 picture to whichever logger is configured; also keep validation grids on disk."""
        if self._trainer is None or not self.trainer.is_global_zero:
            return
        step = self.global_step
        for logger in self.loggers:
            kind = type(logger).__name__
            if kind.endswith("WandbLogger"):
                # wandb casts float images to uint8 without rescaling: always hand it uint8.
                logger.log_image(key=key, images=[grid], step=step, caption=[caption] if caption else None)
            elif kind.endswith("TensorBoardLogger"):
                logger.experiment.add_image(key, grid, step, dataformats="HWC")
        if key.startswith(("val/", "test/")):
            # In the run's own folder, and never over an earlier file: a second run in the same root, or a
            # `validate` of this run's checkpoint, must not replace the grids of the training.
            fn = self.trainer.state.fn
            prefix = "" if fn is None or fn.value == "fit" else f"{fn.value}_"
            name = f"{prefix}{key.replace('/', '_')}_epoch{self.current_epoch:03d}_step{step:07d}"
            save_image(grid, unused_path(self.samples_dir / f"{name}.png"))

    def run_dir(self) -> Path:
        """The run folder: the one holding ``checkpoints/`` (else the trainer's root folder)."""
        callback = self.trainer.checkpoint_callback
        dirpath = getattr(callback, "dirpath", None)
        if dirpath:
            path = Path(dirpath)
            return path.parent if path.name == "checkpoints" else path
        return Path(self.trainer.log_dir or self.trainer.default_root_dir)

    @property
    def samples_dir(self) -> Path:
        """``<run folder>/samples``: validation grids (and DCGAN's fixed-noise frames)."""
        return self.run_dir() / "samples"

    # --- checkpoints -----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lets `translate` / `generate` rebuild the right model class from the file alone.
        checkpoint[CHECKPOINT_KEY] = {"model": self.model_name, "version": __version__}
        for logger in self.loggers:
            if type(logger).__name__.endswith("WandbLogger") and logger.version:
                # A resumed run continues this W&B run instead of starting a new one.
                checkpoint[CHECKPOINT_KEY]["wandb_run_id"] = str(logger.version)


class TranslationGAN(GANModule):
    """A GAN that translates images (CycleGAN, Pix2Pix): validation and test score translations against a ground
    truth with paired metrics and log a sample grid of the first batch.

    Subclasses implement ``_evaluate`` (update the metrics, keep ``_val_grid_batch`` from batch 0) and
    ``evaluation_metrics`` (the ``MetricCollection``s to compute and reset at the end of an epoch).
    """

    def __init__(self) -> None:
        super().__init__()
        self._val_grid_batch: dict[str, Tensor] | None = None

    def evaluation_metrics(self) -> Sequence[Any]:
        raise NotImplementedError

    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        raise NotImplementedError

    def log_samples(self, stage: str, images: dict[str, Tensor]) -> None:
        raise NotImplementedError

    def _evaluate_epoch_end(self, stage: str) -> None:
        for metrics in self.evaluation_metrics():
            if metrics is None:
                continue
            if any(metric.update_called for metric in metrics.values()):
                values = metrics.compute()  # torchmetrics syncs the states across DDP processes here
                self.log_dict({k.replace("val/", f"{stage}/", 1): v for k, v in values.items()}, sync_dist=False)
            metrics.reset()
        if self._val_grid_batch is not None:
            self.log_samples(stage, self._val_grid_batch)
            self._val_grid_batch = None

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def on_validation_epoch_end(self) -> None:
        self._evaluate_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def on_test_epoch_end(self) -> None:
        self._evaluate_epoch_end("test")
