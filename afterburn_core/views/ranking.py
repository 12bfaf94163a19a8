"""Direction words and superlatives that follow their numbers, for every view that writes a reading.

A reading says "rose" only of a positive change and "most" only of the item
that ranks first; where several rank first as the reader sees them (equal at
the precision printed), it names them all as tied. ``direction`` picks the
word by the sign, ``leaders`` the items tied for first, ``listed`` joins
names in prose. Pure functions over plain values; no sentence about the data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")


def direction(change: float, rose: str, fell: str, held: str) -> str:
    """``rose`` for a positive change, ``fell`` for a negative one, ``held`` for none (or NaN)."""
    if change > 0:
        return rose
    if change < 0:
        return fell
    return held


def leaders(items: Sequence[Item], value: Callable[[Item], float], shown: Callable[[float], str]) -> list[Item]:
    """The items that rank first by ``value``, in their given order: every item printed as the top one is.

    ``shown`` formats a value as the reading prints it, so two values that read alike are a tie, never
    "the most" of one of them. Empty for no items.
    """
    if not items:
        return []
    top = shown(max(value(item) for item in items))
    return [item for item in items if shown(value(item)) == top]


def listed(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
