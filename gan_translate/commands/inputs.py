"""Turning the user's FILE | DIR | GLOB arguments into image files, and guarding the output folder."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Sequence

from gan_translate.data.io import IMG_EXTENSIONS, list_images
from gan_translate.errors import UserError


def collect_inputs(specs: Sequence[str], recursive: bool = True) -> list[tuple[Path, Path]]:
    """Each image found, with the root its output name is taken relative to.

    A file is taken as is; a folder contributes its images (recursively, keeping sub-folders in the
    output names); anything else is a glob pattern (``**`` allowed). Duplicates are dropped.
    """
    found: dict[Path, tuple[Path, Path]] = {}
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_file():
            matches = [(path, path.parent)]
        elif path.is_dir():
            matches = [(file, path) for file in list_images(path, recursive=recursive)]
        elif glob.has_magic(spec):
            files = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            matches = [(file, file.parent) for file in files if file.is_file() and file.suffix.lower() in IMG_EXTENSIONS]
            if not matches:
                raise UserError(f"no images match {spec!r}")
        else:
            raise UserError(f"input not found: {spec}")
        for file, root in matches:
            found.setdefault(file.resolve(), (file, root))
    if not found:
        raise UserError(f"no images found in {', '.join(specs)}")
    return list(found.values())


def check_output_folder(
    inputs: Sequence[tuple[Path, Path]], outputs: Sequence[Path], output_dir: Path, allow_input_dir: bool, overwrite: bool
) -> None:
    """Refuse anything that could destroy the user's images or earlier results."""
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
        if output.exists() and not overwrite:
            raise UserError(f"{output} already exists; pass --overwrite to replace earlier results")
