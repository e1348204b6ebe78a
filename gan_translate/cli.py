"""The `gan-translate` command (and `python train.py`).

``fit`` / ``validate`` / ``test`` / ``predict`` go to LightningCLI, so every ``--model.*``, ``--data.*``
and ``--trainer.*`` option and ``--config`` file works as Lightning documents. The other commands
(``translate``, ...) live in :mod:`gan_translate.commands`. User mistakes print one line and exit 2;
``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Sequence

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from gan_translate.commands import COMMAND_MODULES, load_command  # noqa: E402
from gan_translate.errors import UserError  # noqa: E402

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")


def _run_dir(trainer) -> Path:  # noqa: ANN001 - a lightning Trainer
    """The folder Lightning's ModelCheckpoint will use, minus ``checkpoints/`` (its own resolution rule)."""
    if trainer.loggers:
        logger = trainer.loggers[0]
        save_dir = logger.save_dir or trainer.default_root_dir
        version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
        return Path(save_dir) / str(logger.name) / version
    return Path(trainer.default_root_dir)


def _check_ckpt_path(config):  # noqa: ANN001, ANN202 - a jsonargparse Namespace -> checkpoint dict or None
    """Read ``--ckpt_path`` safely before Lightning does: refuse (one line) a file that could run code, is not a
    gan-translate checkpoint, is truncated, or holds another model type than the one configured."""
    ckpt_path = config.get("ckpt_path") if config is not None else None
    if not ckpt_path or ckpt_path in ("last", "best", "hpc", "registry"):
        return None
    from gan_translate.checkpoint import load_checkpoint, model_name
    from gan_translate.errors import CheckpointError

    checkpoint = load_checkpoint(ckpt_path, mmap=True)
    class_path = str(getattr(config.get("model"), "class_path", "") or "")
    if class_path:
        import importlib

        module, _, name = class_path.rpartition(".")
        try:
            expected = getattr(getattr(importlib.import_module(module), name), "model_name", "")
        except (ImportError, AttributeError, ValueError):
            expected = ""
        if expected and model_name(checkpoint) != expected:
            raise CheckpointError(
                f"{checkpoint['_path']} is a {model_name(checkpoint)} checkpoint; it cannot resume the {expected} "
                "model of this config"
            )
    return checkpoint


def _continue_wandb_run(config, checkpoint=None) -> None:  # noqa: ANN001 - a jsonargparse Namespace
    """When resuming with ``--ckpt_path``, log into the checkpoint's W&B run (and its run folder)."""
    ckpt_path = config.get("ckpt_path") if config is not None else None
    logger = config.get("trainer", {}).get("logger") if config is not None else None
    if not ckpt_path or ckpt_path in ("last", "best", "hpc", "registry") or logger is None:
        return
    loggers = logger if isinstance(logger, list) else [logger]
    targets = [lg for lg in loggers if hasattr(lg, "get") and str(lg.get("class_path", "")).endswith("WandbLogger")]
    if not targets:
        return
    from gan_translate.checkpoint import load_checkpoint

    run_id = (checkpoint or load_checkpoint(ckpt_path)).get("gan_translate", {}).get("wandb_run_id")
    for target in targets:
        init_args = target.get("init_args")
        if run_id and init_args is not None and not init_args.get("id"):
            init_args["id"] = run_id


def _lightning_cli(args: Sequence[str]) -> None:
    from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

    class RunConfigSaver(SaveConfigCallback):
        """Saves the resolved config beside the run's checkpoints, never over an earlier run's config."""

        def save_config(self, trainer, pl_module, stage) -> None:  # noqa: ANN001
            run_dir = _run_dir(trainer)
            run_dir.mkdir(parents=True, exist_ok=True)
            path = run_dir / self.config_filename
            index = 1
            while path.exists():  # a resumed run keeps the first config and adds its own
                path = run_dir / f"config-{index}.yaml"
                index += 1
            self.parser.save(self.config, str(path), skip_none=False, multifile=self.multifile)

    class GanTranslateCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001
            from gan_translate.callbacks.reliability import Reliability

            # Always present (periodic/on-signal last.ckpt, NaN guard, exact resume); tuned by --reliability.*
            parser.add_lightning_class_args(Reliability, "reliability")

        def parse_arguments(self, parser, args) -> None:  # noqa: ANN001
            super().parse_arguments(parser, args)
            # Before LightningCLI itself reads --ckpt_path (for its hyperparameters) and long before Trainer.fit.
            subcommand = self.config.get("subcommand")
            self._checkpoint = _check_ckpt_path(self.config.get(subcommand) if subcommand else self.config)

        def before_instantiate_classes(self) -> None:
            config = self.config.get(self.subcommand) if self.subcommand else self.config
            _continue_wandb_run(config, getattr(self, "_checkpoint", None))
            self._checkpoint = None  # do not hold the weights in memory during training

        def instantiate_trainer(self, **kwargs):  # noqa: ANN003, ANN202
            from lightning.pytorch.plugins.io import TorchCheckpointIO

            from gan_translate.checkpoint_io import AtomicCheckpointIO

            trainer = super().instantiate_trainer(**kwargs)
            # Atomic saves and weights_only loads, unless a checkpoint plugin of another kind was configured.
            if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
                trainer.strategy.checkpoint_io = AtomicCheckpointIO()
            return trainer

    GanTranslateCLI(
        save_config_callback=RunConfigSaver,
        save_config_kwargs={"save_to_log_dir": False},
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        args=list(args),
        # Parse errors raise (and main() prints them as one line) instead of printing usage and exiting.
        parser_kwargs={"default_env": False, "exit_on_error": False},
    )


def _one_line(error: BaseException) -> str:
    """The message of ``error`` as one line, also when a DataLoader worker wrapped it with its traceback."""
    text = str(error).strip()
    if "Original Traceback" in text:  # torch's ExceptionWrapper.reraise: the last line is "pkg.Error: message"
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith(type(error).__name__) else last
    return text.splitlines()[0] if text else type(error).__name__


def _user_error_in_chain(error: BaseException) -> UserError | None:
    """jsonargparse wraps errors raised while building the model/data (``ValueError`` from ``UserError``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        seen.add(id(current))
        current = current.__cause__  # explicit `raise ... from error` only: never mask a bug in a handler
    return None


def _parse_error_line(message: str, command: str) -> str:
    """jsonargparse's multi-line parse error -> ``--model.lr: expected float, got 'abc'`` (one line)."""
    import re

    keys = re.findall(r'Parser key "([^"]+)"', message)
    lines = [line.strip().lstrip("- ").strip() for line in message.splitlines()]
    skip = ("Does not validate", "Subtypes:", "Errors:", "Given value", "Problem with given class_path", "Parser key")
    details = [line for line in lines if line and not line.startswith(skip) and line != "Expected a <class 'NoneType'>"]
    inline = re.search(r'Parser key "[^"]+":\s*(\S.*)$', message.splitlines()[0]) if message else None
    detail = inline.group(1) if inline else (details[0] if details else message.strip().splitlines()[0])
    detail = re.sub(r"<class '([\w.]+)'>", r"\1", detail)
    given = re.search(r"Given value: (.*)", message)
    if given and "Got value" not in detail and "NestedArg" not in given.group(1) and "Namespace" not in given.group(1):
        detail += f", got {given.group(1).strip()!r}"
    option = "--" + ".".join(k for k in keys if k != "init_args") + ": " if keys else ""
    return f"{option}{detail} (see `gan-translate {command} --help`)"


def _extra_command(name: str, args: Sequence[str]) -> int:
    module = load_command(name)
    parser = argparse.ArgumentParser(
        prog=f"gan-translate {name}", description=module.HELP, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    module.add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return int(module.run(parser.parse_args(list(args))))


def _print_overview() -> None:
    extra = "\n".join(f"  {name:<10} see `gan-translate {name} --help`" for name in COMMAND_MODULES)
    print(
        "usage: gan-translate COMMAND [options]\n\n"
        "training (LightningCLI; try `gan-translate fit --help`):\n"
        "  fit        train a model: gan-translate fit --config configs/cyclegan/quickstart.yaml\n"
        "  validate   run validation on a checkpoint (--ckpt_path)\n"
        "  test       run the test split on a checkpoint (--ckpt_path)\n"
        "  predict    run prediction on a checkpoint (--ckpt_path)\n\n"
        f"other commands:\n{extra}\n\n"
        "add --debug to any command to see full tracebacks"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gan-translate` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if not args or args[0] in ("-h", "--help"):
        _print_overview()
        return 0
    command, rest = args[0], args[1:]
    try:
        if command in LIGHTNING_SUBCOMMANDS:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
                _lightning_cli([command, *rest])
            return 0
        if command in COMMAND_MODULES:
            return _extra_command(command, rest)
        valid = ", ".join([*LIGHTNING_SUBCOMMANDS, *COMMAND_MODULES])
        raise UserError(f"unknown command {command!r}; valid commands: {valid}")
    except UserError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return error.exit_code
    except SystemExit as stop:
        message = getattr(stop, "message", None)  # callbacks.reliability.TrainingInterrupted: saved, then stopped
        if message is None:
            raise
        print(f"stopped: {message}", file=sys.stderr)
        return int(stop.code)
    except argparse.ArgumentError as error:  # LightningCLI parse errors (exit_on_error=False)
        if debug:
            traceback.print_exc()
        print(f"error: {_parse_error_line(str(error), command)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - unwrap user errors that a library wrapped, re-raise the rest
        user_error = _user_error_in_chain(error)
        mismatch = isinstance(error, RuntimeError) and "Error(s) in loading state_dict" in str(error)
        if user_error is None and not mismatch:
            raise
        if debug:
            traceback.print_exc()
        if mismatch:
            detail = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), "")
            print(f"error: the checkpoint does not match the configured model architecture: {detail}", file=sys.stderr)
            return 2
        print(f"error: {_one_line(user_error)}", file=sys.stderr)
        return user_error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def train_main(argv: Sequence[str] | None = None) -> int:
    """`python train.py fit --config ...`: the LightningCLI half of `gan-translate`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        return main(["fit", "--help"] if args else [])
    return main(args)


if __name__ == "__main__":
    sys.exit(main())
