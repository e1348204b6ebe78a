"""Name -> builder registries (the timm ``register_model`` / ``create_model`` pattern).

Networks, losses and models are looked up by name from configs and checkpoints; an unknown name
raises a :class:`~gan_translate.core.errors.UserError` that lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from gan_translate.core.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of builders, e.g. ``GENERATORS.build("resnet_9blocks", ngf=64)``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@GENERATORS.register("resnet_9blocks")`` (defaults to the object's ``__name__``)."""

        def add(obj: T) -> T:
            key = name or obj.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return add

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a test's or a plugin's temporary entry); an unknown name is an error as in ``get``."""
        self.get(name)
        del self._entries[name]

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries)) or "(none registered)"
            raise UserError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def build(self, name: str, **kwargs: Any) -> Any:
        builder = self.get(name)
        return builder(**kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
