"""Commands beyond Lightning's fit / validate / test / predict, one module each.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code).
"""

from __future__ import annotations

import importlib
from types import ModuleType

# name -> module path; imported only when that command runs so `--help` stays fast.
COMMAND_MODULES: dict[str, str] = {
    "translate": "gan_translate.commands.translate",
    "export": "gan_translate.commands.export",
    "stylize": "gan_translate.commands.stylize",
    "compare": "gan_translate.commands.compare",
    "generate": "gan_translate.commands.generate",
    "dream": "gan_translate.commands.dream",
    "visualize": "gan_translate.commands.visualize",
    "evaluate": "gan_translate.commands.evaluate",
    "import-classic": "gan_translate.commands.import_classic",
    "serve": "gan_translate.commands.serve",
}


def load_command(name: str) -> ModuleType:
    return importlib.import_module(COMMAND_MODULES[name])
