"""Field checks the routes file's levels share."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def subset(value: Any, allowed: Collection[str]) -> list[str] | None:
    """A non-empty list of distinct allowed values (one value alone may be given bare); None if not."""
    chosen = [value] if isinstance(value, str) else value
    if (
        not isinstance(chosen, list)
        or not chosen
        or any(item not in allowed for item in chosen)
        or len(set(chosen)) != len(chosen)
    ):
        return None
    return chosen
