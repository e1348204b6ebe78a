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
from collections.abc import Sequence

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from gan_translate.commands import COMMAND_MODULES, load_command
from gan_translate.commands.options import DefaultsHelpFormatter
from gan_translate.core.errors import UserError
from gan_translate.training.config_errors import (
    check_config_syntax,
    config_files,
    parse_error_line,
    unknown_option_hint,
)

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")


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


def _extra_command(name: str, args: Sequence[str]) -> int:
    module = load_command(name)
    parser = argparse.ArgumentParser(prog=f"gan-translate {name}", description=module.HELP, formatter_class=DefaultsHelpFormatter)
    module.add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return int(module.run(parser.parse_args(list(args))))


def _print_overview() -> None:
    extra = "\n".join(f"  {name:<14} see `gan-translate {name} --help`" for name in COMMAND_MODULES)
    print(
        "usage: gan-translate COMMAND [options]\n\n"
        "training (LightningCLI; try `gan-translate fit --help`):\n"
        "  fit            train a model: gan-translate fit --config configs/cyclegan/quickstart.yaml\n"
        "  validate       run validation on a checkpoint (--ckpt_path)\n"
        "  test           run the test split on a checkpoint (--ckpt_path)\n"
        "  predict        run prediction on a checkpoint (--ckpt_path)\n\n"
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
                from gan_translate.training.lightning_cli import run_lightning_cli

                check_config_syntax(config_files(rest))
                run_lightning_cli([command, *rest])
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
        message = getattr(stop, "message", None)  # callbacks.scheduled_checkpoints.TrainingInterrupted: saved, then stopped
        if message is None:
            raise
        print(f"stopped: {message}", file=sys.stderr)
        return int(stop.code)
    except argparse.ArgumentError as error:  # LightningCLI parse errors (exit_on_error=False)
        if debug:
            traceback.print_exc()
        print(f"error: {unknown_option_hint(parse_error_line(str(error), command), rest, command)}", file=sys.stderr)
        return 2
    except Exception as error:
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        if isinstance(error, MisconfigurationException):  # Lightning's word for a setting that cannot work
            if debug:
                traceback.print_exc()
            print(f"error: {_one_line(error)}", file=sys.stderr)
            return 2
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
