"""One LightningModule per method, each registered by name where it is defined (``@register_model``).

Every module of this package is imported here (:func:`import_model_modules`), so a model registers by its file
alone: no list of models to extend. Each registered model is also exported under its class name, the class path
configs use (``class_path: gan_translate.models.CycleGAN``); checkpoints name it by its registry name.
``template.py`` is the one module left out: it stays unregistered until a contributor copies it.
To add a model, copy ``models/template.py`` (CONTRIBUTING.md, "Adding a model", lists the three files).
"""

from __future__ import annotations

import importlib
import pkgutil

from gan_translate.models.base import Capability, GANModule
from gan_translate.models.registry import MODELS, models_that, register_model
from gan_translate.models.translation import AdversarialTranslationGAN, TranslationGAN

#: Modules of this package that are never imported here: the template registers a model named "template" when
#: imported, which is not one to offer users. (Helper modules such as ``base`` or ``pool`` need no entry: every model
#: imports them anyway, and they register nothing.)
NOT_IMPORTED = frozenset({"template"})


def import_model_modules() -> list[str]:
    """Import every module of this package but :data:`NOT_IMPORTED` (each model registers itself on import) and
    export each registered model of this package under its class name; the modules' names, sorted.

    Runs once when the package is imported. Importing a module twice is a no-op, so it may run again, e.g. after
    a folder was added to this package's ``__path__``.
    """
    names = sorted(info.name for info in pkgutil.iter_modules(__path__)
                   if not info.ispkg and not info.name.startswith("_") and info.name not in NOT_IMPORTED)
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
    for model in MODELS.names():
        cls = MODELS.get(model)
        if not cls.__module__.startswith(f"{__name__}."):
            continue  # registered from elsewhere (a plugin, a test): its own module is its class path
        globals()[cls.__name__] = cls
        if cls.__name__ not in __all__:
            __all__.append(cls.__name__)
    return names


# The helpers' names; import_model_modules() adds the models' (AdaIN, CUT, CycleGAN, DCGAN, FastCUT, Pix2Pix, ...).
__all__ = [
    "MODELS",
    "AdversarialTranslationGAN",
    "Capability",
    "GANModule",
    "TranslationGAN",
    "import_model_modules",
    "models_that",
    "register_model",
]

import_model_modules()
