"""Turning the user's FILE | DIR | GLOB arguments into image files, naming the results, and guarding the output."""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from gan_translate.core.errors import UserError
from gan_translate.data.io import IMG_EXTENSIONS, list_images, writable_image_format

#: What a result whose input has an extension no image writer knows (``photo``, ``scan.heic``) is saved as.
FALLBACK_EXTENSION = ".png"


def _glob_root(path: Path) -> Path:
    """The folder a glob pattern's matches are named relative to: its leading parts without wildcards."""
    fixed = []
    for part in path.parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or path.is_relative_to(folder))


def collect_inputs(
    specs: Sequence[str], recursive: bool = True, exclude: str | os.PathLike[str] | None = None
) -> list[tuple[Path, Path]]:
    """Each image found, with the root its output name is taken relative to.

    A file is taken as is; a folder contributes its images (recursively, keeping sub-folders in the
    output names); anything else is a glob pattern (``**`` allowed), whose matches keep their sub-folders
    below the pattern's fixed leading folders. Duplicates are dropped. Folders and patterns skip what lies
    in ``exclude`` (the output folder, when it sits inside an input folder: earlier results are not inputs),
    unless the folder or pattern itself lies in it.
    """
    excluded = Path(exclude).expanduser().resolve() if exclude is not None else None
    found: dict[Path, tuple[Path, Path]] = {}
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_file():
            matches = [(path, path.parent)]
        else:
            if path.is_dir():
                root = path
                matches = [(file, root) for file in list_images(root, recursive=recursive)]
            elif glob.has_magic(spec):
                root = _glob_root(path)
                files = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
                matches = [(file, root) for file in files if file.is_file() and file.suffix.lower() in IMG_EXTENSIONS]
                if not matches:
                    raise UserError(f"no images match {spec!r}")
            else:
                raise UserError(f"input not found: {spec}")
            if not _inside(root.resolve(), excluded):
                matches = [(file, root) for file, root in matches if not _inside(file.resolve(), excluded)]
        for file, root in matches:
            found.setdefault(file.resolve(), (file, root))
    if not found:
        raise UserError(f"no images found in {', '.join(specs)}")
    return list(found.values())


def result_name(relative: Path, suffix: str = "") -> Path:
    """The name a result of the input ``relative`` is saved under: the same name with ``suffix`` before the
    extension, or the whole name plus ``.png`` when no image writer knows the input's extension."""
    if writable_image_format(relative) is None:
        return relative.with_name(f"{relative.name}{suffix}{FALLBACK_EXTENSION}")
    return relative.with_name(f"{relative.stem}{suffix}{relative.suffix}")


def relative_names(inputs: Sequence[tuple[Path, Path]]) -> list[Path]:
    """Each input's name relative to its root (the folder or pattern it was found by)."""
    return [file.relative_to(root) if root != file else Path(file.name) for file, root in inputs]


class OutputPlan(NamedTuple):
    files: list[Path]
    """One result file per input."""
    folder: Path
    """The folder the results go to."""
    named_file: bool
    """``--output`` named the one result file itself (not a folder)."""


def plan_outputs(inputs: Sequence[tuple[Path, Path]], output: str | os.PathLike[str], suffix: str = "") -> OutputPlan:
    """Where each input's result goes. ``output`` is a folder (results keep the inputs' relative names), or,
    for a single input, an image file name (``--output zebra.jpg``) when it has an image extension and is no
    existing folder."""
    if any(sep in suffix for sep in (os.sep, os.altsep, "/") if sep):
        raise UserError(f"--suffix {suffix!r} must not contain a path separator")
    output = Path(output).expanduser()
    if not output.is_dir() and writable_image_format(output) is not None:
        if len(inputs) != 1:
            raise UserError(
                f"--output {output} names one image file, but {len(inputs)} input images were given; "
                "give a folder for their results"
            )
        return OutputPlan([output], output.parent, True)
    return OutputPlan([output / result_name(name, suffix) for name in relative_names(inputs)], output, False)


def check_output_folder(
    inputs: Sequence[tuple[Path, Path]], outputs: Sequence[Path], output_dir: Path, allow_input_dir: bool, overwrite: bool
) -> None:
    """Refuse anything that could destroy the user's images or earlier results."""
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"--output {output_dir} is a file, not a folder; give a folder for the results")
    for parent in output_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"--output {output_dir} cannot be made: {parent} is a file, not a folder")
    input_files = {file.resolve() for file, _ in inputs}
    input_dirs = {file.resolve().parent for file, _ in inputs}
    if output_dir.resolve() in input_dirs and not allow_input_dir:
        raise UserError(
            f"output folder {output_dir} holds input images; choose another --output "
            "(or pass --allow-input-dir together with --suffix)"
        )
    seen: dict[Path, Path] = {}
    root = output_dir.resolve()
    for (file, _), output in zip(inputs, outputs):
        resolved = output.resolve()
        if not resolved.is_relative_to(root):
            # e.g. a symlinked sub-folder (or output file) in --output pointing elsewhere, or a ".." in a name
            raise UserError(f"{output} would be written outside the output folder {output_dir} (it resolves to {resolved})")
        if resolved in input_files:
            raise UserError(f"refusing to overwrite input image {file}; use another --output or a --suffix")
        if resolved in seen:
            raise UserError(f"{seen[resolved]} and {file} would both be written to {output}; translate them separately")
        seen[resolved] = file
        if output.is_dir():
            raise UserError(f"{output} is a folder; the result of {file} cannot be written there")
        if output.exists() and not overwrite:
            raise UserError(f"{output} already exists; pass --overwrite to replace earlier results")


def checked_outputs(inputs: Sequence[tuple[Path, Path]], args: argparse.Namespace) -> OutputPlan:
    """:func:`plan_outputs` of ``--output`` / ``--suffix``, refused by :func:`check_output_folder` where it would
    destroy inputs or (without ``--overwrite``) earlier results."""
    plan = plan_outputs(inputs, args.output, args.suffix)
    check_output_folder(inputs, plan.files, plan.folder, args.allow_input_dir or plan.named_file, args.overwrite)
    return plan


def summary_file(plan: OutputPlan, name: str, overwrite: bool) -> Path:
    """Where a run's settings file (``stylize.json``, ...) goes: in the output folder, or beside a result file that
    ``--output`` named (``styled.stylize.json``: not into a shared one); an earlier one is kept without ``overwrite``."""
    path = plan.files[0].with_name(f"{plan.files[0].stem}.{name}") if plan.named_file else plan.folder / name
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; pass --overwrite to replace earlier results")
    return path


def resolve_style(spec: str, index: int = 0) -> Path:
    """``--style`` FILE, or DIR: its ``index``-th image in sorted order (deterministic)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        images = list_images(path)
        if not 0 <= index < len(images):
            raise UserError(f"--style-index {index} is out of range: {path} holds {len(images)} images")
        return images[index]
    raise UserError(f"style image not found: {spec}")


def report_failures(failures: Sequence[tuple[Path, str]]) -> int:
    """List the inputs that could not be read on stderr; returns the command's exit code (1 if any, else 0)."""
    if not failures:
        return 0
    print(f"{len(failures)} input(s) could not be read and were skipped:", file=sys.stderr)
    for file, reason in failures:
        print(f"  {file}: {reason}", file=sys.stderr)
    return 1
