"""The module paths of 0.1 / 0.2 (before the package was grouped into bands) still import, as the same objects:
configs name ``gan_translate.loggers.WandbLogger`` and ``gan_translate.perf.PerformanceOptions``, scripts import
``gan_translate.images`` or ``load_translator`` from ``gan_translate.inference``."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from gan_translate.core.moved import MOVED_MODULES
from tests.helpers import REPO_ROOT


@pytest.mark.parametrize(("old", "new"), sorted(MOVED_MODULES.items()))
def test_an_old_path_is_the_module_at_its_new_path(old: str, new: str) -> None:
    module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__name__ == new and module.__spec__.name == new  # it still says where it lives
    assert getattr(importlib.import_module("gan_translate"), old.rsplit(".", 1)[1]) is module  # from gan_translate import x


def test_old_class_paths_and_names_resolve() -> None:
    from gan_translate.callbacks.performance import PerformanceOptions
    from gan_translate.evaluation import evaluate
    from gan_translate.evaluation.evaluate import evaluate as evaluate_now
    from gan_translate.inference import load_translator
    from gan_translate.inference.translator import load_translator as load_translator_now
    from gan_translate.loggers import WandbLogger  # type: ignore[import-not-found]
    from gan_translate.perf import PerformanceOptions as OldPerformanceOptions  # type: ignore[import-not-found]
    from gan_translate.training.loggers import WandbLogger as WandbLoggerNow

    assert OldPerformanceOptions is PerformanceOptions and WandbLogger is WandbLoggerNow
    assert load_translator is load_translator_now and evaluate is evaluate_now
    import gan_translate

    assert gan_translate.load_translator is load_translator_now


def test_old_paths_import_in_a_fresh_process_without_importing_the_rest() -> None:
    """Nothing is imported until asked for: a fresh ``import gan_translate.images`` loads the core module alone."""
    code = ("import sys, gan_translate.images as images; assert images.__name__ == 'gan_translate.core.images'; "
            "assert 'gan_translate.models' not in sys.modules and 'lightning' not in sys.modules, sorted(sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    import gan_translate

    with pytest.raises(AttributeError):
        gan_translate.no_such_module  # noqa: B018 - the attribute access is the test
