"""Did you mean: the known word closest to a misspelt one, for the end of a one-line refusal.

Only called while a refusal is being written, so a valid routes file never pays for `difflib` or for
reading the time zone database's list of names (a function's cold start reads a valid file).
A word is matched, in this order, to a known alias (`pause` → `deactivate`), to a choice that differs
only in case, then to `difflib.get_close_matches` (ratio 0.6 and up).
"""

from __future__ import annotations

import re
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


def unknown_fields(
    raw: Mapping[Any, Any],
    known: Iterable[str],
    where: str,
    problems: list[str],
    aliases: Mapping[str, str] = _NO_ALIASES,
) -> None:
    """One refusal per field of `raw` that is not `known` and that a known one is close to (`where.evnets:
    unknown field; did you mean events?`), and one line for the rest, with the fields there are."""
    fields = sorted(known)
    unknown: list[str] = []
    for field in sorted(set(map(str, raw)) - set(fields)):
        meant = close_to(field, fields, aliases)
        if meant is None:
            unknown.append(field)
        else:
            problems.append(f"{where}.{field}: unknown field; did you mean {meant}?")
    if unknown:
        problems.append(f"{where}: unknown field(s): {', '.join(unknown)} (fields: {', '.join(fields)})")


def zone_like(name: Any) -> str | None:
    """The IANA zone `name` most probably meant: the same name in another case (`Europe/berlin`), a city
    spelt a little wrong within its region (`Europe/Amsterdm`), a city named alone or in words (`Berlin`,
    `Berlin time`); None when no zone is close or no time zone database is at hand."""
    if not isinstance(name, str) or not name.strip():
        return None
    from zoneinfo import available_timezones

    zones = sorted(available_timezones())
    wanted = name.strip().replace(" ", "_").lower()
    by_lower = {zone.lower(): zone for zone in zones}
    if wanted in by_lower:
        return by_lower[wanted]
    region, _, city = wanted.rpartition("/")
    import difflib

    if region:  # the region must be right: `Europe/Nowhere` is no `Europe/Jersey`
        cities = {zone.lower().rpartition("/")[2]: zone for zone in zones if zone.lower().rpartition("/")[0] == region}
        close = difflib.get_close_matches(city, list(cities), n=1, cutoff=0.75)
        if close:
            return cities[close[0]]
    by_city: dict[str, list[str]] = {}
    for zone in zones:
        by_city.setdefault(zone.rpartition("/")[2].lower(), []).append(zone)
    for word in [wanted, *re.split(r"[\s/_]+", name.strip().lower())]:
        found = by_city.get(word, [])
        if len(found) == 1:
            return found[0]
    return None
