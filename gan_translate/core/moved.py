"""Module paths of earlier releases, kept importable after the package was grouped into bands (0.3).

Configs (``class_path: gan_translate.loggers.WandbLogger``), scripts (``import gan_translate.images``) and pickled
references name the old top-level modules. A finder on ``sys.meta_path`` answers those names with the module that
now holds the code, so both names are the same module object (``isinstance`` and monkeypatching agree) and
nothing is imported until it is asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

# old path -> new path. A package that kept its name (inference, evaluation) re-exports its old names instead.
MOVED_MODULES: dict[str, str] = {
    "gan_translate.perf": "gan_translate.callbacks.performance",
    "gan_translate.loggers": "gan_translate.training.loggers",
    "gan_translate.comparison": "gan_translate.evaluation.comparison",
    "gan_translate.tiling": "gan_translate.inference.tiling",
    "gan_translate.style_inference": "gan_translate.inference.style",
    "gan_translate.generation": "gan_translate.inference.generation",
    "gan_translate.video": "gan_translate.inference.video",
    **{
        f"gan_translate.{name}": f"gan_translate.core.{name}"
        for name in ("images", "grids", "files", "directions", "registry", "errors", "random_streams",
                     "lightning_compat", "version")
    },
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path as the module at its new path (one object under both names)."""

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED_MODULES[spec.name])
        spec.loader_state = module.__spec__  # the import system is about to overwrite it with the alias's spec
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Give the shared module back its own spec, so it still reports (and reloads from) where it lives.
        module.__spec__ = module.__spec__.loader_state


_FINDER = _MovedModuleFinder()


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (``gan_translate/__init__`` calls it)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _FINDER)  # ahead of path finders: a stale old file must not win


def moved_module(name: str) -> ModuleType | None:
    """``from gan_translate import images`` in old code: the module a moved top-level name now lives in."""
    new_path = MOVED_MODULES.get(f"gan_translate.{name}")
    return importlib.import_module(new_path) if new_path else None
