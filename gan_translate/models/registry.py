"""The model registry: a model registers itself where it is defined, with what it can do.

``@register_model("cyclegan")`` on a :class:`~gan_translate.models.base.GANModule` subclass names it in
checkpoints (``checkpoint["gan_translate"]["model"]``) and makes it findable by that name. What a model can do
is declared on the class (``capabilities``, ``translators``), so commands ask the registry instead of keeping
lists of model names: ``models_that("translate")`` is every model ``translate`` accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from gan_translate.core.registry import Registry
from gan_translate.models.capabilities import Capability

if TYPE_CHECKING:
    from gan_translate.models.base import GANModule

__all__ = ["MODELS", "models_that", "register_model"]

M = TypeVar("M", bound="type[GANModule]")

MODELS: Registry[type[GANModule]] = Registry("model")

def register_model(name: str) -> Callable[[M], M]:
    """Class decorator: register a GANModule subclass under ``name`` (also its ``model_name``)."""

    def register(cls: M) -> M:
        cls.model_name = name
        return MODELS.register(name)(cls)

    return register


def models_that(capability: Capability) -> list[str]:
    """The registered model names with ``capability`` (``translate``, ``sample``, ``stylize``), sorted."""
    return [name for name in MODELS.names() if capability in MODELS.get(name).capabilities]

