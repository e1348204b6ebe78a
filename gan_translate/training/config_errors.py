"""Command-line and config-file mistakes of ``fit`` / ``validate`` / ``test`` / ``predict`` as one clear line.

jsonargparse reports a parse error over several lines (and a typo'd key with a dump of its whole section); these
helpers turn that into ``--model.lr: expected float, got 'abc'`` or ``--model: option 'lamda_a' is not accepted
(in my.yaml); did you mean 'lambda_a'?``, and check config files for YAML syntax first, naming the file.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from gan_translate.core.errors import UserError
from gan_translate.data.options import RENAMED_OPTIONS


def parse_error_line(message: str, command: str) -> str:
    """jsonargparse's multi-line parse error -> ``--model.lr: expected float, got 'abc'`` (one line)."""
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


def config_files(args: Sequence[str]) -> list[Path]:
    """The files given with ``--config FILE`` / ``--config=FILE``."""
    files = []
    for index, token in enumerate(args):
        if token == "--config" and index + 1 < len(args):
            files.append(Path(args[index + 1]))
        elif token.startswith("--config="):
            files.append(Path(token.split("=", 1)[1]))
    return files


def check_config_syntax(files: Sequence[Path]) -> None:
    """A config file that is not valid YAML: one line with its name and the line and column at fault
    (jsonargparse says only "Problems parsing config")."""

    for path in files:
        if not path.is_file():
            continue  # jsonargparse names a missing file itself
        try:
            yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise UserError(f"config {path} is not valid YAML: {problem}{where}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read config {path}: {error}") from None


def section_class_path(section: str, args: Sequence[str]) -> str | None:
    """The class a ``--model`` / ``--data`` section names, on the command line (last wins) or in a config file."""
    for index in range(len(args) - 1, -1, -1):
        token = args[index]
        if token in (f"--{section}", f"--{section}.class_path") and index + 1 < len(args):
            return args[index + 1]
        if token.startswith((f"--{section}=", f"--{section}.class_path=")):
            return token.split("=", 1)[1]
    for path in reversed(config_files(args)):
        try:
            entry = (yaml.safe_load(path.read_text()) or {}).get(section)
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        if isinstance(entry, dict) and entry.get("class_path"):
            return str(entry["class_path"])
    return None


def constructor_options(cls: type) -> list[str]:
    """The options a class takes, those its ``**kwargs`` pass on to its base classes included (as LightningCLI lists them)."""
    options: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters
        options += [name for name, p in parameters.items() if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            break
    return list(dict.fromkeys(options))


def _where_given(section: str, name: str, args: Sequence[str]) -> str:
    """`` (on the command line)`` or `` (in my.yaml)``: where an option the parser refused came from."""
    flags = (f"--{section}.{name}", f"--{section}.init_args.{name}")
    if any(token.split("=", 1)[0] in flags for token in args):
        return " (on the command line)"
    files = [path for path in config_files(args) if name in _section_keys(path, section)]
    return f" (in {files[-1]})" if files else ""


def _section_keys(path: Path, section: str) -> set[str]:
    """The option names a config file sets for ``section`` (under its ``init_args`` or directly)."""
    try:
        entry = (yaml.safe_load(path.read_text()) or {}).get(section)
    except (OSError, yaml.YAMLError, AttributeError):
        return set()
    if not isinstance(entry, dict):
        return set()
    init_args = entry.get("init_args")
    return set(entry) | (set(init_args) if isinstance(init_args, dict) else set())


def unknown_option_hint(line: str, args: Sequence[str], command: str) -> str:
    """``--model: Option 'lamda_a' is not accepted`` -> the same, naming the config file that holds it and the
    closest valid name, without jsonargparse's dump of the whole section."""

    match = re.match(r"--(\w+): Option '(\w+)' is not accepted", line)
    if match is None:
        return line
    section, name = match.groups()
    text = f"--{section}: option '{name}' is not accepted{_where_given(section, name, args)}"
    found = re.search(r"'class_path': '([\w.]+)'", line)
    class_path = found.group(1) if found else section_class_path(section, args)
    if section == "data" and name in RENAMED_OPTIONS:
        # A gan-translate 0.1 config: say where the option went, not what it resembles.
        new = RENAMED_OPTIONS[name]
        return f"{text}; it is '{new}' since gan-translate 0.2 (--data.{new}, or nested under {new.split('.')[0]}: in a config)"
    valid: list[str] = []
    if class_path:
        module, _, cls_name = class_path.rpartition(".")
        try:
            valid = constructor_options(getattr(importlib.import_module(module), cls_name))
        except (ImportError, AttributeError, ValueError, TypeError):
            valid = []
    close = difflib.get_close_matches(name, valid, n=1)
    if close:
        text += f"; did you mean '{close[0]}'?"
    return f"{text} (see `gan-translate {command} --help`)"
