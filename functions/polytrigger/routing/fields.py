"""The checks the routes file's levels share: `events`, which both an S3 trigger and a chain carry."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


def events_field(
    raw: Mapping[Any, Any], where: str, default: str, allowed: Collection[str], problems: list[str]
) -> frozenset[str]:
    """`<where>.events`: a non-empty list of distinct allowed values (one value alone may be given bare)."""
    value = raw.get("events", [default])
    chosen = [value] if isinstance(value, str) else value
    if (
        not isinstance(chosen, list)
        or not chosen
        or any(item not in allowed for item in chosen)
        or len(set(chosen)) != len(chosen)
    ):
        described = " and/or ".join(allowed) if len(allowed) == 2 else ", ".join(allowed)
        problems.append(f"{where}.events: must be a list of {described} (got {chosen!r})")
        return frozenset()
    return frozenset(chosen)
