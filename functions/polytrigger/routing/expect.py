"""Arrival deadlines: an S3 route's `expect:` block, and when its next deadlines fall.

```yaml
expect:
  key: "exports/orders/dt={day}/_SUCCESS"   # or partition: {date: "{day}"} (kept as written, for now)
  by: "06:00"                               # local time of day D in `timezone` (quote it)
  warn: "05:30"                             # optional, before `by`
  grace: 15m                                # optional: reported late only after by + grace
  timezone: Europe/Berlin                   # IANA, default UTC
  days: MON-FRI                             # or [MON, WED]; default every day
  skip: [2026-12-25, 2026-12-26]            # local dates with nothing due
```

`{day}` in `key` is day D (the deadline's local date) as `YYYY-MM-DD`; `{day:%Y/%m/%d}` formats it
otherwise (date directives only). This is the routes file's side (validated, and shown by
`polytrigger explain --route NAME --expect`); `deadlines` acts on it at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from polytrigger.routing.durations import duration_field, say
from polytrigger.routing.globs import Glob
from polytrigger.routing.suggest import close_to, zone_like

EXPECT_FIELDS = {"by", "warn", "grace", "timezone", "days", "skip", "partition", "key"}
_FIELD_ALIASES = {
    "tz": "timezone", "time_zone": "timezone", "zone": "timezone", "deadline": "by", "at": "by",
    "until": "by", "warning": "warn", "except": "skip", "holidays": "skip", "weekdays": "days", "on": "days",
}  # fmt: skip
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")  # Python's date.weekday() order
EVERY_DAY = frozenset(range(7))
MAX_GRACE = 86400
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_TIMEZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_DATE_DIRECTIVES = set("YymdjaAbBGVuUW%")  # strftime directives that depend on the date alone
SAMPLE_DAY = date(2026, 1, 31)  # fills a key template to check it against the route's glob


@dataclass(frozen=True, slots=True)
class Expect:
    """What a route expects each due day D: `key` (filled with D) or `partition` (raw), by `by` local time."""

    by: time
    timezone: str = "UTC"
    warn: time | None = None
    grace: int = 0  # seconds after `by` before it is late
    days: frozenset[int] = EVERY_DAY  # date.weekday() numbers, MON = 0
    skip: frozenset[date] = frozenset()
    key: str = ""  # a key template: {day}, {day:%Y/%m/%d}
    partition: tuple[tuple[str, str], ...] = ()  # `partition: {date: "{day}"}`: a gated route's partition due

    def key_for(self, day: date) -> str:
        """The key due on day D (`key` with its `{day}` placeholders filled); "" for a partition."""
        return _PLACEHOLDER.sub(lambda match: _fill(match.group(1), day), self.key)

    def partition_for(self, day: date) -> tuple[tuple[str, str], ...]:
        """The partition due on day D (`partition` with `{day}` filled in each value); () for a key."""
        return tuple(
            (name, _PLACEHOLDER.sub(lambda match: _fill(match.group(1), day), text)) for name, text in self.partition
        )

    def partition_problems(self, gated: bool, glob: Glob | None) -> list[str]:
        """`partition` is due complete, so only on a gated route, giving each of the key's placeholders a value."""
        if not self.partition:
            return []
        if not gated:
            return [
                "expect.partition: only on a route with a gate (the partition is due complete); else use expect.key"
            ]
        names = tuple(glob.names) if glob is not None else ()
        if sorted(name for name, _ in self.partition) != sorted(names):
            given = ", ".join(name for name, _ in self.partition)
            return [
                f"expect.partition: must give each placeholder of s3.key ({', '.join(names) or 'none'}) a value (got {given})"
            ]
        return []

    def days_text(self) -> str:
        """`MON-FRI`, `MON,WED`, or `every day`."""
        if self.days == EVERY_DAY:
            return "every day"
        ordered = sorted(self.days)
        if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
            return f"{WEEKDAYS[ordered[0]]}-{WEEKDAYS[ordered[-1]]}"
        return ",".join(WEEKDAYS[day] for day in ordered)


@dataclass(frozen=True, slots=True)
class Deadline:
    """One due day D: its warn, deadline and deadline+grace instants (UTC), and whether `by` was moved."""

    day: date
    warn: datetime | None
    by: datetime
    late: datetime  # by + grace (elapsed time)
    moved: bool = False  # `by` does not exist on D (clocks spring forward): moved to the next valid instant


def parse_expect(raw: Any, problems: list[str], *, check_zone: bool = False, glob: Glob | None = None) -> Expect | None:
    """A route's `expect:` value → `Expect`, or None with one problem per bad field appended (`expect.<field>: ...`).

    `glob`: the route's compiled key glob, if any: a `key` template filled with a sample day must match it.
    `check_zone` also asks the time zone database (the build and `validate`, as for schedules).
    """
    if not isinstance(raw, Mapping):
        problems.append(f"expect: must be a mapping with by, and key or partition (got {raw!r})")
        return None
    before = len(problems)
    _fields(raw, problems)
    by = _time_field(raw.get("by"), "by", problems, required=True)
    warn = _time_field(raw.get("warn"), "warn", problems, required=False)
    if by is not None and warn is not None and warn >= by:
        problems.append(f"expect.warn: must be before by ({by:%H:%M}) on the same day (got {warn:%H:%M})")
    grace = 0
    if raw.get("grace") is not None:
        duration = duration_field(raw["grace"], "expect.grace", problems, low=0, high=MAX_GRACE)
        grace = duration.seconds if duration is not None else 0
    timezone = _zone(raw.get("timezone", "UTC"), problems, check_zone)
    days = _days(raw.get("days"), problems)
    skip = _skip(raw.get("skip"), problems)
    key, partition = _due(raw, problems, glob)
    if len(problems) > before or by is None:
        return None
    return Expect(by=by, timezone=timezone, warn=warn, grace=grace, days=days, skip=skip, key=key, partition=partition)


def _fields(raw: Mapping[Any, Any], problems: list[str]) -> None:
    unknown: list[str] = []
    for field in sorted(set(map(str, raw)) - EXPECT_FIELDS):
        meant = close_to(field, sorted(EXPECT_FIELDS), _FIELD_ALIASES)
        if meant is None:
            unknown.append(field)
        else:
            problems.append(f"expect.{field}: unknown field; did you mean {meant}?")
    if unknown:
        known = ", ".join(sorted(EXPECT_FIELDS))
        problems.append(f"expect: unknown field(s): {', '.join(unknown)} (fields: {known})")


def _time_field(value: Any, field: str, problems: list[str], *, required: bool) -> time | None:
    """A local time of day, `"06:00"`. YAML 1.1 reads an unquoted 06:00 as 360 (base 60): say to quote it."""
    if value is None:
        if required:
            problems.append(f'expect.{field}: required; a local time of day such as "06:00"')
        return None
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        hint = ""
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1440:
            hint = f'; quote it: "{value // 60:02d}:{value % 60:02d}" (YAML reads an unquoted 06:00 as a number)'
        problems.append(f'expect.{field}: must be a local time of day HH:MM such as "06:00" (got {value!r}){hint}')
        return None
    return time(int(match.group(1)), int(match.group(2)))


def _zone(value: Any, problems: list[str], check_zone: bool) -> str:
    meant = ""
    if not isinstance(value, str) or not _TIMEZONE.fullmatch(value):
        meant = _zone_hint(value)
        problems.append(f"expect.timezone: must be an IANA time zone such as Europe/Berlin (got {value!r}){meant}")
        return "UTC"
    if check_zone and (problem := zone_problem(value)) is not None:
        problems.append(problem)
    return value


def zone_problem(name: str) -> str | None:
    """`expect.timezone: ... not a time zone the IANA database knows; did you mean ...?`, or None when it is one."""
    from polytrigger.routing.schedules import known_zone

    if known_zone(name):
        return None
    return f"expect.timezone: {name!r} is not a time zone the IANA database knows{_zone_hint(name)}"


def _zone_hint(value: Any) -> str:
    meant = zone_like(value)
    return f"; did you mean {meant}?" if meant is not None and meant != value else ""


def _days(value: Any, problems: list[str]) -> frozenset[int]:
    """`MON-FRI`, `SAT,SUN`, `[MON, WED]`, `FRI-MON` (wrapping); default every day."""
    if value is None:
        return EVERY_DAY
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        problems.append(f"expect.days: must be days such as MON-FRI or [MON, WED] (got {value!r})")
        return EVERY_DAY
    chosen: set[int] = set()
    for item in items:
        text = item.strip().upper() if isinstance(item, str) else ""
        first, dash, last = text.partition("-")
        ends = [first.strip(), last.strip()] if dash else [first]
        wrong = [end for end in ends if end not in WEEKDAYS]
        if not text or wrong:
            meant = close_to(wrong[0], WEEKDAYS) if wrong else None
            hint = f"; did you mean {meant}?" if meant is not None and meant != wrong[0] else ""
            problems.append(f"expect.days: {item!r} is not a day or range of days, MON-SUN such as MON-FRI{hint}")
            return EVERY_DAY
        start, end = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        chosen.update((start + step) % 7 for step in range((end - start) % 7 + 1))
    return frozenset(chosen)


def _skip(value: Any, problems: list[str]) -> frozenset[date]:
    """Local dates with nothing due: ISO dates (YAML may already have made them dates)."""
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        problems.append(f"expect.skip: must be a list of dates such as [2026-12-25] (got {value!r})")
        return frozenset()
    found: set[date] = set()
    for index, item in enumerate(value):
        day = _date(item)
        if day is None:
            problems.append(f"expect.skip[{index}]: must be a date YYYY-MM-DD (got {item!r})")
        else:
            found.add(day)
    return frozenset(found)


def _date(item: Any) -> date | None:
    if isinstance(item, date) and not isinstance(item, datetime):
        return item
    if not isinstance(item, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", item.strip()):
        return None
    try:
        return date.fromisoformat(item.strip())
    except ValueError:
        return None


def _due(raw: Mapping[Any, Any], problems: list[str], glob: Glob | None) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Which object is due: `key` (a template, checked) or `partition` (kept as written)."""
    given = [field for field in ("key", "partition") if raw.get(field) is not None]
    if len(given) != 1:
        problems.append(
            "expect: needs exactly one of key (the object due, e.g. exports/orders/dt={day}/_SUCCESS) or partition"
            + (" (got both)" if given else "")
        )
        return "", ()
    if given[0] == "partition":
        value = raw["partition"]
        if (
            not isinstance(value, Mapping)
            or not value
            or not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in value.items())
        ):
            problems.append(
                f'expect.partition: must map placeholder names to text, e.g. {{date: "{{day}}"}} (got {value!r})'
            )
            return "", ()
        return "", tuple((str(name), str(text)) for name, text in value.items())
    return _key(raw["key"], problems, glob), ()


def _key(value: Any, problems: list[str], glob: Glob | None) -> str:
    if not isinstance(value, str) or not value or value.startswith("/"):
        problems.append(f"expect.key: must be an object key, with {{day}} for day D (got {value!r})")
        return ""
    for match in _PLACEHOLDER.finditer(value):
        name, colon, layout = match.group(1).partition(":")
        if name != "day":
            problems.append(
                f"expect.key: {{{match.group(1)}}} is no placeholder; use {{day}} or {{day:%Y/%m/%d}} (got {value!r})"
            )
            return ""
        if colon and not _date_layout(layout):
            problems.append(
                f"expect.key: {{{match.group(1)}}} must format the date only, such as {{day:%Y/%m/%d}} (got {value!r})"
            )
            return ""
    if _PLACEHOLDER.sub("", value).count("{") or _PLACEHOLDER.sub("", value).count("}"):
        problems.append(f"expect.key: an unmatched {{ or }} (got {value!r})")
        return ""
    if glob is not None:
        sample = _PLACEHOLDER.sub(lambda match: _fill(match.group(1), SAMPLE_DAY), value)
        if glob.fullmatch(sample) is None:
            problems.append(
                f"expect.key: {sample!r} (day {SAMPLE_DAY}) would not match this route's s3.key, so it never arrives"
            )
            return ""
    return value


def _date_layout(layout: str) -> bool:
    """A strftime layout with at least one directive, each of the date alone (`%Y/%m/%d`, not `%H`)."""
    directives = re.findall(r"%(.?)", layout)
    return any(d != "%" for d in directives) and all(d in _DATE_DIRECTIVES for d in directives)


def _fill(placeholder: str, day: date) -> str:
    _, colon, layout = placeholder.partition(":")
    return day.strftime(layout) if colon else day.isoformat()


def next_deadlines(expect: Expect, after: datetime, count: int, zone: tzinfo | None = None) -> Iterator[Deadline]:
    """The first `count` deadlines whose `by` instant is after `after` (aware), due days only, in time order.

    Each due day D (a weekday in `days`, not in `skip`, D being a local date in `timezone`) gives the
    instants, in UTC, of `warn` and `by` on D, and `by` + `grace` (elapsed time). A local time is read
    in the zone with one rule for daylight saving time:

    - a time that does not exist that day (clocks spring forward) **moves to the next valid instant**,
      the moment the clocks jump: 02:30 on 2026-03-29 in Europe/Berlin is 03:00 CEST (`moved` is set);
    - a time that occurs twice (clocks fall back) **takes the first** occurrence (fold=0, the earlier
      offset): 02:30 on 2026-10-25 in Europe/Berlin is 02:30 CEST.

    This differs from EventBridge Scheduler's cron, which skips a time that does not exist (see
    `cron.next_firings`): a deadline must never silently vanish for a night, so deadlines are computed
    here, by polytrigger, not left to a Scheduler cron. Searches at most ten years ahead.
    """
    if zone is None:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(expect.timezone)
    day = after.astimezone(zone).date() - timedelta(days=1)
    last = day + timedelta(days=3660)
    found = 0
    while found < count and day <= last:
        if day.weekday() in expect.days and day not in expect.skip:
            by, moved = local_instant(day, expect.by, zone)
            if by > after:
                warn = local_instant(day, expect.warn, zone)[0] if expect.warn is not None else None
                yield Deadline(day, warn, by, by + timedelta(seconds=expect.grace), moved)
                found += 1
        day += timedelta(days=1)


def local_instant(day: date, clock: time, zone: tzinfo) -> tuple[datetime, bool]:
    """The UTC instant of local `clock` on `day` in `zone`, and whether it was moved (it does not exist).

    Repeated: the first occurrence (fold=0). Missing: the instant the clocks jump over it (the first
    valid instant after it), found by bisection between its two readings, so any gap length works.
    """
    wall = datetime.combine(day, clock)
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first.astimezone(UTC), False
    # In a gap (zoneinfo, PEP 495): fold=1 reads it with the offset after the jump, an instant before the
    # jump; fold=0 with the offset before it, an instant after the jump.
    jumped = wall.replace(tzinfo=zone, fold=1)
    low, high, after_offset = jumped.astimezone(UTC), first.astimezone(UTC), jumped.utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0), True


def describe(expect: Expect) -> str:
    """One line: `exports/orders/dt={day}/_SUCCESS by 06:00 Europe/Berlin, warn 05:30, grace 15 minutes, MON-FRI`."""
    due = expect.key or "partition " + ", ".join(f"{name}={text}" for name, text in expect.partition)
    parts = [f"{due} by {expect.by:%H:%M} {expect.timezone}"]
    if expect.warn is not None:
        parts.append(f"warn {expect.warn:%H:%M}")
    if expect.grace:
        parts.append(f"grace {say(expect.grace)}")
    parts.append(expect.days_text())
    if expect.skip:
        parts.append("skip " + ", ".join(sorted(day.isoformat() for day in expect.skip)))
    return ", ".join(parts)
