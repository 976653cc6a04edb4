"""Did you mean: the known word closest to a misspelt one, for the end of a one-line refusal.

Only called while a refusal is being written, so a valid routes file never pays for `difflib` or for
reading the time zone database's list of names (a function's cold start reads a valid file).
A word is matched, in this order, to a known alias (`pause` → `deactivate`), to a choice that differs
only in case, then to `difflib.get_close_matches` (ratio 0.6 and up).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_CUTOFF = 0.6
_NO_ALIASES: Mapping[str, str] = {}


def close_to(word: Any, choices: Iterable[str], aliases: Mapping[str, str] = _NO_ALIASES) -> str | None:
    """The choice `word` most probably meant, or None (`word` is not a string, or nothing is close)."""
    if not isinstance(word, str) or not word.strip():
        return None
    key = word.strip().lower()
    if key in aliases:
        return aliases[key]
    by_lower = {choice.lower(): choice for choice in choices}
    if key in by_lower:
        return by_lower[key]
    import difflib

    close = difflib.get_close_matches(key, list(by_lower), n=1, cutoff=_CUTOFF)
    return by_lower[close[0]] if close else None


def did_you_mean(word: Any, choices: Iterable[str], aliases: Mapping[str, str] = _NO_ALIASES) -> str:
    """`; did you mean X?` for the end of a refusal, or ""."""
    meant = close_to(word, choices, aliases)
    return f"; did you mean {meant}?" if meant is not None and meant != word else ""
