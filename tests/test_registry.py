"""Name -> builder registries, the model registry, and directions."""

from __future__ import annotations

import pytest

from gan_translate.core.directions import DIRECTIONS, check_direction, domains, key_suffix
from gan_translate.core.errors import UserError
from gan_translate.core.registry import Registry


def test_registry_lookup_and_errors() -> None:
    registry: Registry[type] = Registry("widget")
    registry.register("a")(int)
    registry.register()(float)
    assert registry.names() == ["a", "float"] and "a" in registry and list(registry) == ["a", "float"]
    assert registry.build("float") == 0.0
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(str)
    with pytest.raises(UserError, match="unknown widget 'b'; valid names: a, float"):
        registry.get("b")
    registry.unregister("a")
    assert registry.names() == ["float"]
    with pytest.raises(UserError, match="unknown widget 'a'"):
        registry.unregister("a")


def test_directions() -> None:
    assert DIRECTIONS == ("AtoB", "BtoA")
    assert domains("AtoB") == ("A", "B") and domains("BtoA") == ("B", "A")
    assert key_suffix("AtoB") == "_ab" and key_suffix("BtoA") == "_ba"
    with pytest.raises(UserError, match="--direction must be one of AtoB, BtoA, got 'up'"):
        check_direction("up", "--direction")
