"""Translation directions: the one definition of ``AtoB`` / ``BtoA`` and of what each maps from and to."""

from __future__ import annotations

from typing import Literal, get_args

from gan_translate.core.errors import UserError

__all__ = ["DIRECTIONS", "Direction", "check_direction", "domains", "key_suffix"]

Direction = Literal["AtoB", "BtoA"]
#: Every direction, in the order commands and tables list them.
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)


def check_direction(direction: str, what: str = "direction") -> Direction:
    """``direction`` itself when it is one of :data:`DIRECTIONS`, else a UserError naming ``what``."""
    if direction not in DIRECTIONS:
        raise UserError(f"{what} must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return direction  # type: ignore[return-value]


def domains(direction: str) -> tuple[str, str]:
    """``(source, target)`` domain letters: ``("A", "B")`` for AtoB, ``("B", "A")`` for BtoA (also batch keys)."""
    return ("A", "B") if check_direction(direction) == "AtoB" else ("B", "A")


def key_suffix(direction: str) -> str:
    """The suffix of a direction's logged values: ``_ab`` (``val/l1_ab``) or ``_ba``."""
    source, target = domains(direction)
    return f"_{source.lower()}{target.lower()}"
