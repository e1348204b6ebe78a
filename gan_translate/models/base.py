"""What every model of the framework shares: its contract (capabilities, translators), schedules, logging,
the NaN guard and checkpoint tags. ``models/template.py`` shows a whole model in one file."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from gan_translate.callbacks.nonfinite import nonfinite_message
from gan_translate.callbacks.sample_images import SampleImageWriter, log_image
from gan_translate.core.directions import Direction, check_direction
from gan_translate.core.errors import CapabilityError, NonFiniteLossError
from gan_translate.core.lightning_compat import batches_that_stepped
from gan_translate.core.random_streams import split_rank_random_streams
from gan_translate.core.version import __version__
from gan_translate.models.capabilities import Capability, SamplerSpec, TranslatorProgram, capability_use
from gan_translate.models.deferred_guard import DeferredNonFiniteGuard, takes_found_inf
from gan_translate.models.distributed import enable_find_unused_parameters

__all__ = ["CHECKPOINT_KEY", "Capability", "GANModule", "TrainingLogWindow", "frozen", "linear_decay_schedule"]

#: The checkpoint entry naming the model (``{"model": "cyclegan", "version": ...}``): how a file rebuilds its model.
CHECKPOINT_KEY = "gan_translate"


def linear_decay_schedule(optimizer: torch.optim.Optimizer, n_epochs: int, n_epochs_decay: int) -> LambdaLR:
    """Constant learning rate for ``n_epochs``, then linear decay to zero over ``n_epochs_decay`` (classic)."""

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)

    return LambdaLR(optimizer, factor)


@contextmanager
def frozen(*networks: nn.Module) -> Iterator[None]:
    """``requires_grad`` off for the parameters of ``networks`` inside the block, back as it was after (the classic
    ``set_requires_grad(netD, False)`` of the generator step: no gradients are computed for them).

    What Lightning's ``toggled_optimizer`` achieves for a GAN step, without its walk over every optimiser's
    parameters twice per step (~0.3 ms of Python per toggle, benchmarks/RESULTS.md issue 20)."""
    params = [p for net in networks for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


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
        stacked = torch.stack([value.detach().reshape(()) for value in values.values()])
        if stacked.dtype != torch.float32:  # one cast for the row, not one per value (bf16 terms under autocast)
            stacked = stacked.float()
        if self.sums is None:
            self.names, self.sums = tuple(values), stacked * weight
        else:
            self.sums.add_(stacked, alpha=weight)  # in place: one kernel, no new tensor per step
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

    The contract a model declares (``tests/test_model_contract.py`` runs it on every registered model):

    * ``@register_model("name")`` on the class (sets ``model_name``, the name checkpoints carry);
    * ``capabilities``: ``translate``, ``sample`` and / or ``stylize``;
    * ``translators``: ``{direction: attribute}`` of the generator of each direction it translates (the export
      keeps those); ``translator(direction)`` returns it, any other direction is a :class:`CapabilityError`;
    * ``sample(n, generator)`` for a model that samples;
    * constructor arguments passed on to this class (``**kwargs``), which saves them all: the checkpoint alone
      rebuilds the model.
    """

    model_name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    translators: ClassVar[Mapping[Direction, str]] = {}
    #: Added to the error for a direction the model does not translate (e.g. how to train the other way).
    direction_hint: ClassVar[str] = ""
    #: ``{direction: attribute}`` of the plain (image-only) discriminator that judges each direction's outputs: what a
    #: distillation of that direction starts its own discriminator from. None where a model has none (UNSB's judges
    #: the time step too).
    discriminators: ClassVar[Mapping[Direction, str]] = {}
    #: Trained on aligned pairs (pix2pix): a distillation adds the ground truth and judges (input, output) pairs.
    trains_on_pairs: ClassVar[bool] = False
    #: Keyword settings ``inference_network`` takes (``translate --steps / --seed`` for UNSB's bridge); none here.
    inference_settings: ClassVar[frozenset[str]] = frozenset()
    #: Read the NaN guard's flag back every this many optimiser steps. 1 (the default): before every update, one device
    #: read per step. Above 1 (``PerformanceOptions(capture=True)`` sets it): checks stay on the device, a bad update is
    #: skipped there by torch's fused Adam, and training stops at the next read (:mod:`~gan_translate.models.deferred_guard`).
    nonfinite_check_every_n_steps: int = 1
    # Hyperparameters a command line may change when it reuses a checkpoint (``--ckpt_path``): they shape no
    # weight and no optimiser state. The CLI keeps the checkpoint's value for every other one (and says so).
    checkpoint_overridable_hparams: ClassVar[frozenset[str]] = frozenset({"sample_every_n_steps", "num_samples"})

    def __init__(self, lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999) -> None:
        """
        Args:
            lr: Adam learning rate of every network.
            beta1: Adam beta1.
            beta2: Adam beta2.
        """
        super().__init__()
        # The constructor arguments of the whole class chain (subclasses pass theirs on with **kwargs): a checkpoint
        # rebuilds the model from these alone, and they are the run's config in W&B.
        self.save_hyperparameters()
        # GANs step two optimisers per batch in a fixed order: Lightning's automatic loop cannot.
        self.automatic_optimization = False
        self._log_window = TrainingLogWindow()  # not module state: checkpoints never hold it

    # --- inference ------------------------------------------------------------------------------
    def translator(self, direction: str = "AtoB") -> nn.Module:
        """The network that maps an input batch in [-1, 1] to outputs in [-1, 1] for ``direction``."""
        check_direction(direction)
        if direction not in self.translators:
            if not self.translators:
                use = capability_use(self.capabilities)
                raise CapabilityError(f"{self.model_name or type(self).__name__} is not an image-to-image translator"
                                      f"{f'; it {use}' if use else ''}")
            raise CapabilityError(
                f"{self.model_name} translates {', '.join(self.translators)} only{self.direction_hint}"
            )
        return getattr(self, self.translators[direction])

    def inference_network(self, direction: str = "AtoB", **settings: Any) -> nn.Module:
        """The translator for ``direction``, switched to inference behaviour (eval mode by default).

        ``settings``: the inference settings the model declares in ``inference_settings`` (UNSB's ``steps`` and
        ``seed``); any other is a one-line :class:`CapabilityError`."""
        unknown = sorted(set(settings) - self.inference_settings)
        if unknown:
            takes = f"; it takes {', '.join(sorted(self.inference_settings))}" if self.inference_settings else ""
            raise CapabilityError(f"{self.model_name or type(self).__name__} has no inference setting "
                                  f"{', '.join(unknown)}{takes}")
        return self.translator(direction).eval()

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` new images in [-1, 1] (models with the ``sample`` capability)."""
        raise CapabilityError(f"{self.model_name or type(self).__name__} does not generate images from noise")

    @property
    def sampler_spec(self) -> SamplerSpec:
        """What the model is as a sampler (latent size, network, truncation, style mixing): models with the ``sample``
        capability declare it (:class:`~gan_translate.models.sampling.SamplingGAN`)."""
        raise CapabilityError(f"{self.model_name or type(self).__name__} does not generate images from noise")

    def image_channels(self, domain: str) -> int:
        """Channels of domain ``domain``'s (``A`` / ``B``) images: what a translator of the model takes or gives
        (translators declare it: :class:`~gan_translate.models.translation.TranslationGAN`)."""
        raise CapabilityError(f"{self.model_name or type(self).__name__} is not an image-to-image translator")

    def translator_export_program(self, direction: str = "AtoB") -> TranslatorProgram:
        """What an ONNX / TorchScript export of ``direction`` runs: here the eval-mode generator alone (``image ->
        translation``); a model whose inference is more (UNSB's bridge) returns its program and the program's inputs."""
        return TranslatorProgram(self.translator(direction).eval())

    def export_notes(self) -> tuple[str, ...]:
        """What a standalone export of the model's generators leaves out of its ``translate`` behaviour (exports run
        the plain eval-mode generator; nothing is left out here)."""
        return ()

    # --- callbacks ---------------------------------------------------------------------------------
    def configure_callbacks(self) -> Sequence[Callback]:
        # Saving the validation / test grids to the run folder is a file chore: a callback does it.
        return [SampleImageWriter()]

    # --- distributed training ------------------------------------------------------------------------
    def configure_model(self) -> None:
        # Runs before the strategy wraps the model: GAN steps always leave one network without gradients,
        # so `strategy: ddp` / `auto` on several devices must find unused parameters.
        enable_find_unused_parameters(self._trainer)

    def on_fit_start(self) -> None:
        self._rank_streams_split = False

    def on_train_epoch_start(self) -> None:
        # Once per fit, after a resume's random state was restored (callbacks' on_train_start): every DDP
        # process gets its own dropout masks / latents; rank 0 keeps the single-process stream.
        if not getattr(self, "_rank_streams_split", True) and self.trainer.world_size > 1:
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
        # The deferred NaN guard skips a bad update on the device through the fused step's found_inf: fused on a CPU too.
        fused = on_gpu or self.nonfinite_check_every_n_steps > 1
        return torch.optim.Adam(params, lr=hp.lr, betas=(hp.beta1, hp.beta2), fused=True if fused else None)

    # --- schedule ---------------------------------------------------------------------------------
    def on_train_epoch_end(self) -> None:
        self.stop_if_nonfinite()  # the deferred guard's window ends with the epoch
        # Manual optimisation does not step schedulers: do it once per epoch, as the classic code does.
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()

    # --- safety ---------------------------------------------------------------------------------------
    def backward_step(
        self, optimizer: Any, loss: Tensor, terms: Mapping[str, Tensor] | str, loss_is_total: bool = False
    ) -> None:
        """One optimiser step on ``loss``: the NaN check, ``zero_grad``, ``manual_backward``, ``step``, in that order.

        ``terms``: the loss terms :meth:`check_finite` names when one is NaN / Inf (a name: ``loss`` is the only term).
        ``loss_is_total``: ``loss`` is finite only if every term is (their sum, or a term holding the others), so
        only it is read back (one value) unless it is not finite; otherwise every term is read. The check comes
        first: a bad batch stops training before it reaches the weights or a checkpoint. One helper for every model,
        so the order (and with it exact resume) cannot drift between them.
        """
        checked = {terms: loss} if isinstance(terms, str) else terms
        torch_optimizer = getattr(optimizer, "optimizer", optimizer)  # under Lightning's LightningOptimizer
        guard = self._deferred_guard_for(torch_optimizer)
        if guard is None:
            self.check_finite(checked, total=loss if loss_is_total else None)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
            return
        # The deferred guard: the check on the device after backward (the gradients too), the update skipped there
        # from the first bad step on, the flag read every nonfinite_check_every_n_steps steps.
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        guard.flag_step(torch_optimizer, loss, checked, self._training_position())
        try:
            optimizer.step()
        finally:
            guard.after_step(torch_optimizer)
        if guard.due():
            self.stop_if_nonfinite()

    def _deferred_guard_for(self, optimizer: torch.optim.Optimizer) -> DeferredNonFiniteGuard | None:
        """The deferred NaN guard when it is on and can skip this optimiser's update on the device; else None (the
        per-step guard). Not under fp16 AMP: its GradScaler sets found_inf itself."""
        every = int(self.nonfinite_check_every_n_steps)
        trainer = self._trainer
        if every <= 1 or not takes_found_inf(optimizer):
            return None
        if trainer is not None and str(trainer.precision).startswith("16"):
            return None
        guard = getattr(self, "_deferred_guard", None)
        if guard is None or guard.every != every:
            guard = self._deferred_guard = DeferredNonFiniteGuard(every)
        return guard

    def _training_position(self) -> tuple[int, int, int]:
        """(global step, epoch, 1-based batch of the epoch) of this step, from host counters."""
        trainer = self._trainer
        if trainer is None:
            return (0, 0, 0)
        return (trainer.global_step, trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_idx + 1)

    def stop_if_nonfinite(self, collective: bool = True) -> None:
        """Read the deferred guard's flag (one device read) and stop with the one-line message naming the first bad
        step; a no-op with the per-step guard. ``collective``: all DDP processes decide together (every process must
        call it then); without, each reads its own flag (the same one: a bad gradient is all-reduced to every process)."""
        guard = getattr(self, "_deferred_guard", None)
        if guard is None:
            return
        trainer = self._trainer
        distributed = collective and trainer is not None and trainer.world_size > 1
        reduce = (lambda finite: trainer.strategy.reduce_boolean_decision(finite, all=True)) if distributed else None
        first = guard.first_bad_step(reduce)
        if first is None:
            return
        raise NonFiniteLossError(nonfinite_message(
            trainer, {f"train/{name}": value for name, value in first.values.items()},
            step=first.global_step if first.global_step >= 0 else None,
            epoch=first.epoch if first.epoch >= 0 else None, batch=first.batch if first.batch >= 0 else None,
        ))

    def check_finite(self, losses: Mapping[str, Tensor], prefix: str = "train/", total: Tensor | None = None) -> None:
        """Raise a one-line ``NonFiniteLossError`` naming every NaN/Inf term of ``losses``.

        Call it before ``manual_backward`` / ``optimizer.step()``: a bad batch then never reaches the weights,
        nor (the error stops training before ``ModelCheckpoint`` runs) a checkpoint. It costs one device sync.
        ``total``: the sum of the terms when the caller has it: only it is checked, and the terms are looked at
        only when it is not finite (to name them).
        """
        if not losses:
            return
        trainer = self._trainer
        distributed = trainer is not None and trainer.world_size > 1
        if total is not None and not distributed and bool(torch.isfinite(total.detach())):
            # A sum is finite only if every term is: one value read instead of stacking every term.
            return
        values = torch.stack([value.detach().float().reshape(-1)[0] for value in losses.values()])
        finite = bool(torch.isfinite(values).all())
        if distributed:
            # Every rank must stop together, or the others would wait for this one forever.
            finite = trainer.strategy.reduce_boolean_decision(finite, all=True)
        if finite:
            return
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
        batches_logged = batches_that_stepped(trainer)  # Lightning's own logging clock
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
        """Send a uint8 picture to the configured loggers; the run's SampleImageWriter keeps val / test ones on disk."""
        if self._trainer is None or not self.trainer.is_global_zero:
            return
        log_image(self.loggers, key, grid, self.global_step, caption)
        for callback in self.trainer.callbacks:  # type: ignore[attr-defined]
            if isinstance(callback, SampleImageWriter):
                callback.write(self.trainer, key, grid)

    # --- checkpoints -----------------------------------------------------------------------------
    def on_train_end(self) -> None:
        self.stop_if_nonfinite()  # a run that ends mid-window is checked too

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.stop_if_nonfinite(collective=False)  # never write a checkpoint from a window with a bad step
        # Lets `translate` / `generate` rebuild the right model class from the file alone.
        checkpoint[CHECKPOINT_KEY] = {"model": self.model_name, "version": __version__}
        for logger in self.loggers:
            if isinstance(logger, WandbLogger) and logger.version:
                # A resumed run continues this W&B run instead of starting a new one.
                checkpoint[CHECKPOINT_KEY]["wandb_run_id"] = str(logger.version)
