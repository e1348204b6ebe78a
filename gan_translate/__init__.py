"""gan-translate: image-to-image translation with GANs on PyTorch Lightning."""

from __future__ import annotations

import os

# albumentations asks the network for updates on import; training must never depend on the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from gan_translate.version import __version__

__all__ = ["__version__", "load_translator"]


def __getattr__(name: str):  # lazy: keep `import gan_translate` light for the CLI's --help
    if name == "load_translator":
        from gan_translate.inference import load_translator

        return load_translator
    raise AttributeError(name)
