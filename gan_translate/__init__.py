"""gan-translate: image-to-image translation with GANs on PyTorch Lightning."""

from __future__ import annotations

import os

# albumentations asks the network for updates on import; training must never depend on the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from gan_translate.core import moved
from gan_translate.core.version import __version__

moved.install()  # the 0.1 / 0.2 module paths (gan_translate.perf, gan_translate.loggers, ...) keep importing

__all__ = ["__version__", "load_translator"]


def __getattr__(name: str):  # lazy: keep `import gan_translate` light for the CLI's --help
    if name == "load_translator":
        from gan_translate.inference.translator import load_translator

        return load_translator
    module = moved.moved_module(name)
    if module is None:
        raise AttributeError(name)
    return module
