"""The LightningCLI behind ``gan-translate fit / validate / test / predict``.

Module-level classes (not defined inside a function): ``strategy: ddp_spawn`` pickles the trainer, and with it
the config-saving callback that refers back to this CLI.
"""

from __future__ import annotations

import copy
import importlib
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from gan_translate.artifacts import AtomicCheckpointIO, load_checkpoint, model_name, newest_checkpoint, resolve_checkpoint_path
from gan_translate.callbacks.eval_mode import LIGHTNING_EVAL_MODE_WARNING, EvalModeCheck
from gan_translate.callbacks.predictions import PredictionImageWriter
from gan_translate.callbacks.reliability import Reliability
from gan_translate.callbacks.run_folder import RunConfigSaver
from gan_translate.callbacks.summary import FitSummary
from gan_translate.core.errors import CheckpointError
from gan_translate.training.precision import AUTO_PRECISION, AutoPrecisionTrainer, PrecisionChoice, resolve_auto_precision

__all__ = ["GanTranslateCLI", "run_lightning_cli"]

# Values of --ckpt_path that Lightning resolves itself (no file to read here).
_CHECKPOINT_ALIASES = ("last", "best", "hpc", "registry")


def _import_class(class_path: str) -> type | None:
    """The class a config's ``class_path`` names, or None when it does not resolve."""
    module, _, name = class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return found if isinstance(found, type) else None


def _configured_model_class(config: Namespace) -> type | None:
    """The model class named by the config's ``model.class_path``, or None when it does not resolve."""
    class_path = str(getattr(config.get("model"), "class_path", "") or "") if config is not None else ""
    return _import_class(class_path)


def _run_roots(config: Namespace) -> list[Path]:
    """The folders a run writes its checkpoints under: the loggers' ``save_dir`` and ``trainer.default_root_dir``."""
    trainer = config.get("trainer") or {}
    logger = trainer.get("logger")
    roots = []
    for entry in logger if isinstance(logger, list) else [logger]:
        init_args = entry.get("init_args") if hasattr(entry, "get") else None
        save_dir = init_args.get("save_dir") if init_args is not None and hasattr(init_args, "get") else None
        if save_dir:
            roots.append(Path(str(save_dir)))
    if trainer.get("default_root_dir"):
        roots.append(Path(str(trainer.get("default_root_dir"))))
    return list(dict.fromkeys(roots))


def _resolve_ckpt_path(config: Namespace) -> None:
    """``--ckpt_path last`` -> the newest ``last*.ckpt`` under the run's folders, a folder -> its newest one.

    Lightning's own ``last`` looks only in this new run's checkpoint folder (a new W&B run id: always empty), so
    it trained from scratch with one warning; nothing there to resume is now a one-line error."""
    ckpt_path = config.get("ckpt_path") if config is not None else None
    if not ckpt_path:
        return
    if ckpt_path == "last":
        roots = _run_roots(config)
        resolved = newest_checkpoint(roots)
        if resolved is None:
            where = ", ".join(str(root) for root in roots) or "(no trainer.default_root_dir or logger save_dir set)"
            raise CheckpointError(f"--ckpt_path last: no last.ckpt under {where}; give the path of the checkpoint to resume")
    elif Path(str(ckpt_path)).expanduser().is_dir():
        resolved = resolve_checkpoint_path(ckpt_path)
    else:
        return
    config["ckpt_path"] = str(resolved)
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank == 0:
        print(f"--ckpt_path {ckpt_path}: using {resolved} (the newest last checkpoint there)", file=sys.stderr)


def _check_ckpt_path(config: Namespace) -> dict[str, Any] | None:
    """Read ``--ckpt_path`` safely before Lightning does: refuse (one line) a file that could run code, is not a
    gan-translate checkpoint, is truncated, or holds another model type than the one configured."""
    ckpt_path = config.get("ckpt_path") if config is not None else None
    if not ckpt_path or ckpt_path in _CHECKPOINT_ALIASES:
        return None
    checkpoint = load_checkpoint(ckpt_path, mmap=True)
    expected = getattr(_configured_model_class(config), "model_name", "")
    if expected and model_name(checkpoint) != expected:
        raise CheckpointError(
            f"{checkpoint['_path']} is a {model_name(checkpoint)} checkpoint; it cannot resume the {expected} "
            "model of this config"
        )
    return checkpoint


def _is_wandb_logger(class_path: str) -> bool:
    found = _import_class(class_path)
    return found is not None and issubclass(found, WandbLogger)


def _continue_wandb_run(config: Namespace, checkpoint: dict[str, Any] | None = None) -> None:
    """When resuming with ``--ckpt_path``, log into the checkpoint's W&B run (and its run folder)."""
    ckpt_path = config.get("ckpt_path") if config is not None else None
    logger = config.get("trainer", {}).get("logger") if config is not None else None
    if not ckpt_path or ckpt_path in _CHECKPOINT_ALIASES or logger is None:
        return
    loggers = logger if isinstance(logger, list) else [logger]
    targets = [lg for lg in loggers if hasattr(lg, "get") and _is_wandb_logger(str(lg.get("class_path", "")))]
    if not targets:
        return
    run_id = (checkpoint or load_checkpoint(ckpt_path)).get("gan_translate", {}).get("wandb_run_id")
    for target in targets:
        init_args = target.get("init_args")
        if run_id and init_args is not None and not init_args.get("id"):
            init_args["id"] = run_id


def _command_line_model_args(args: Sequence[str], config: Namespace) -> dict[str, Any]:
    """The model arguments given as ``--model.<name>`` flags on the command line, with their parsed values."""
    names = []
    for token in args:
        if token.startswith("--model."):
            name = token[len("--model."):].split("=", 1)[0].removeprefix("init_args.").split(".", 1)[0]
            if name and name not in ("class_path", "dict_kwargs") and name not in names:
                names.append(name)
    given = {}
    for name in names:
        value = config.get(f"model.init_args.{name}") if config is not None else None
        if value is not None:
            given[name] = copy.deepcopy(value)
    return given


def _apply_command_line_over_checkpoint(config: Namespace, given: dict[str, Any]) -> None:
    """LightningCLI replaced the model's arguments with a ``--ckpt_path`` checkpoint's hyperparameters. Put back the
    command-line values the model allows to change on a saved model (``GANModule.checkpoint_overridable_hparams``,
    e.g. pix2pix's ``inference_mode``) and say which others were ignored, instead of dropping them silently."""
    if not given or config is None:
        return
    overridable = getattr(_configured_model_class(config), "checkpoint_overridable_hparams", frozenset())
    for key, value in given.items():
        saved = config.get(f"model.init_args.{key}")
        if saved == value:
            continue
        if key in overridable:
            config[f"model.init_args.{key}"] = value
        else:
            warnings.warn(
                f"--model.{key} {value!r} is ignored: the model is rebuilt from {config.get('ckpt_path')} with its "
                f"{key}={saved!r}; train a new run (without --ckpt_path) to change it",
                UserWarning,
                stacklevel=2,
            )


def _resolve_auto_precision(config: Namespace) -> PrecisionChoice | None:
    """``trainer.precision: auto`` -> the precision this hardware trains fast in, written into ``config`` (so the
    saved config.yaml records it) and printed once; None when ``auto`` was not asked for."""
    trainer = config.get("trainer") if config is not None else None
    if trainer is None or trainer.get("precision") != AUTO_PRECISION:
        return None
    choice = resolve_auto_precision(trainer.get("accelerator") or "auto")
    trainer["precision"] = choice.precision
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank == 0:
        print(choice.line(), file=sys.stderr)
    return choice


class GanTranslateCLI(LightningCLI):
    """LightningCLI plus the Reliability callback, a safe ``--ckpt_path`` check, W&B run continuation,
    ``precision: auto`` and atomic checkpoint writes."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Always present (periodic/on-signal last.ckpt, NaN guard, exact resume); tuned by --reliability.*
        parser.add_class_arguments(Reliability, "reliability")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        # Before LightningCLI itself reads --ckpt_path (for its hyperparameters) and long before Trainer.fit.
        subcommand = self.config.get("subcommand")
        section = self.config.get(subcommand) if subcommand else self.config
        _resolve_ckpt_path(section)
        self._checkpoint = _check_ckpt_path(section)
        self._command_line_model_args = _command_line_model_args(args, section)

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        _apply_command_line_over_checkpoint(config, getattr(self, "_command_line_model_args", {}))
        _continue_wandb_run(config, getattr(self, "_checkpoint", None))
        self._checkpoint = None  # do not hold the weights in memory during training
        self._precision_choice = _resolve_auto_precision(config)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self.config_init.get(self.subcommand) if self.subcommand else self.config_init
        configured = (config.get("trainer") or {}).get("callbacks") or []
        reliability = config.get("reliability")
        if isinstance(reliability, Reliability):
            # After the configured callbacks (Lightning moves checkpoint callbacks last in any case).
            kwargs["callbacks"] = [*(configured if isinstance(configured, list) else [configured]), *reliability.callbacks()]
        trainer = super().instantiate_trainer(**kwargs)
        for callback in trainer.callbacks:
            if isinstance(callback, RunConfigSaver):  # W&B's config records what `auto` chose, and why
                callback.precision_choice = getattr(self, "_precision_choice", None)
        if self.subcommand == "fit":
            # The run folder first, the result last (FitSummary); eval-mode warnings only for accidental ones.
            trainer.callbacks.extend([FitSummary(), EvalModeCheck()])
        if self.subcommand == "predict":
            if not any(isinstance(callback, BasePredictionWriter) for callback in trainer.callbacks):
                trainer.callbacks.append(PredictionImageWriter())  # otherwise predict computes and keeps nothing
        # Atomic saves and weights_only loads, unless a checkpoint plugin of another kind was configured.
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer


class _DropLightningTips(logging.Filter):
    """Lightning's "💡 Tip: ... try installing [litlogger] / [litmodels]" lines: advertising, not about this run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


#: The loggers Lightning's ``rank_zero_info`` writes through (fabric's and pytorch's utilities).
_LIGHTNING_INFO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


@contextmanager
def _without_third_party_noise() -> Iterator[None]:
    """While the CLI runs: no Lightning tips, and none of the two warnings about things a user cannot change.

    Each is matched by its exact message (and emitting module), so every other warning still shows:
    - Lightning's ``Found N module(s) in eval mode``: every StyleGAN2 / AdaIN run freezes a network on purpose;
      :class:`~gan_translate.callbacks.eval_mode.EvalModeCheck` warns about the accidental ones instead;
    - torch's deprecation of ``LeafSpec``, raised inside Lightning's own ``_pytree`` module (Lightning's to fix);
    - Lightning's model summary on bf16 / 16-bit runs (``precision: auto``, the configs' default): it only says its
      size estimate in MB counts 32 bits a parameter.
    """
    tips = _DropLightningTips()
    loggers = [logging.getLogger(name) for name in _LIGHTNING_INFO_LOGGERS]
    for logger in loggers:
        logger.addFilter(tips)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=LIGHTNING_EVAL_MODE_WARNING, category=PossibleUserWarning)
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                    category=FutureWarning, module=r"lightning\.pytorch\.utilities\._pytree")
            warnings.filterwarnings("ignore", message=r"Precision \S+ is not supported by the model summary",
                                    category=UserWarning)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(tips)


def run_lightning_cli(args: Sequence[str]) -> None:
    """Run ``fit`` / ``validate`` / ``test`` / ``predict`` with ``args`` (the subcommand first)."""
    with _without_third_party_noise():
        _run_cli(args)


def _run_cli(args: Sequence[str]) -> None:
    GanTranslateCLI(
        # Lightning's Trainer with `precision: auto` accepted (resolved in before_instantiate_classes).
        trainer_class=AutoPrecisionTrainer,
        save_config_callback=RunConfigSaver,
        save_config_kwargs={"save_to_log_dir": False},
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        args=list(args),
        # Parse errors raise (and main() prints them as one line) instead of printing usage and exiting.
        parser_kwargs={"default_env": False, "exit_on_error": False},
    )
