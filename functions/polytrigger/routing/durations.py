"""Durations in the routes file: one syntax for every field that holds one, read by one function.

`30s`, `90m`, `1h`, `7d`, or spelt out, `30 seconds`, `90 minutes`, `1 hour`, `2 days` (`sec`, `min`,
`hr` and plurals too, any case). A bare number is what the field always took: seconds (`debounce`,
`max_wait`, `freshness`, `hold`), minutes (`schedule.flexible_window`, the Scheduler's unit) or nothing
(`schedule.rate`, where it was never accepted). A field may also ask for whole minutes (`rate` and
`flexible_window`: the Scheduler counts no seconds). Every refusal is one line naming the field, what it
takes, and the value given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_DURATION = re.compile(r"^\s*(\d{1,9})\s*([A-Za-z]+)\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day"}
_SPELLINGS = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
}
_UNITS = {spelling: unit for unit, spellings in _SPELLINGS.items() for spelling in spellings}
FORMS = ("30s", "90m", "1h", "7d", "90 minutes", "2 days")
MINUTE_FORMS = ("15m", "1h", "90 minutes", "1 hour")


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration as written: its count and unit (`s`, `m`, `h` or `d`)."""

    count: int
    unit: str

    @property
    def seconds(self) -> int:
        return self.count * UNIT_SECONDS[self.unit]


def read_duration(value: Any, *, bare: int | None = 1) -> Duration | None:
    """`value` as a duration, or None when it is none. `bare`: the seconds a bare number counts (None: refused)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if bare is None or value < 0:
            return None
        return Duration(value, "m") if bare == 60 else Duration(value * bare, "s")
    if not isinstance(value, str) or (match := _DURATION.fullmatch(value)) is None:
        return None
    unit = _UNITS.get(match.group(2).lower())
    return Duration(int(match.group(1)), unit) if unit is not None else None


def duration_field(
    value: Any,
    field: str,
    problems: list[str],
    *,
    low: int,
    high: int | None,
    bare: int | None = 1,
    whole_minutes: bool = False,
    otherwise: str = "",
) -> Duration | None:
    """`value` of `field` as a duration from `low` to `high` seconds (None: no limit above), or None with one
    problem appended: what the field takes (`otherwise`, what else it takes, comes first) and what was given."""
    duration = read_duration(value, bare=bare)
    if duration is not None and _within(duration.seconds, low, high) and not (whole_minutes and duration.seconds % 60):
        return duration
    span = f"from {say(low)} to {say(high)}" if high is not None else f"of at least {say(low)}"
    forms = [*(MINUTE_FORMS if whole_minutes else FORMS), *({1: ["seconds"], 60: ["minutes"]}.get(bare or 0, []))]
    if bare:
        forms[-1] = f"a number of {forms[-1]}"
    such = ", ".join(forms[:-1]) + f" or {forms[-1]}"
    minutes = " in whole minutes" if whole_minutes else ""
    problems.append(
        f"{field}: must be {otherwise}a duration {span}{minutes}, such as {such} (got {value!r}){_meant(value)}"
    )
    return None


def _within(seconds: int, low: int, high: int | None) -> bool:
    return low <= seconds and (high is None or seconds <= high)


def say(seconds: int) -> str:
    """`86400` → `1 day`, `5400` → `90 minutes`: the largest unit that divides it exactly."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % UNIT_SECONDS[unit] == 0:
            return plural(seconds // UNIT_SECONDS[unit], UNIT_NAMES[unit])
    return plural(seconds, "second")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _meant(value: Any) -> str:
    """`; did you mean 2 hours?` for a unit spelt a little wrong (`2 hourz`), else ""."""
    if not isinstance(value, str) or (match := _DURATION.fullmatch(value)) is None:
        return ""
    count, word = int(match.group(1)), match.group(2).lower()
    if word in _UNITS:
        return ""  # the unit is right: the number is out of range
    if word in ("w", "wk", "wks", "week", "weeks"):
        return f"; did you mean {plural(7 * count, 'day')}?"
    from polytrigger.routing.suggest import close_to

    meant = close_to(word, [spelling for spelling in _UNITS if len(spelling) > 3])
    return f"; did you mean {plural(count, UNIT_NAMES[_UNITS[meant]])}?" if meant is not None else ""
