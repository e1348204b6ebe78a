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


def _continue_wandb_run(config) -> None:  # noqa: ANN001 - a jsonargparse Namespace
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

    run_id = load_checkpoint(ckpt_path).get("gan_translate", {}).get("wandb_run_id")
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
        def before_instantiate_classes(self) -> None:
            _continue_wandb_run(self.config.get(self.subcommand) if self.subcommand else self.config)

    GanTranslateCLI(
        save_config_callback=RunConfigSaver,
        save_config_kwargs={"save_to_log_dir": False},
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        args=list(args),
        parser_kwargs={"default_env": False},
    )


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
            _lightning_cli([command, *rest])
            return 0
        if command in COMMAND_MODULES:
            return _extra_command(command, rest)
        valid = ", ".join([*LIGHTNING_SUBCOMMANDS, *COMMAND_MODULES])
        raise UserError(f"unknown command {command!r}; valid commands: {valid}")
    except UserError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
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
