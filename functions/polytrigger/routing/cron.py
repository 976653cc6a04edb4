"""EventBridge Scheduler's cron expressions, checked field by field as the Scheduler checks them.

Six fields, *minutes hours day-of-month month day-of-week year*, each `*`, a value, a range `a-b`,
a step `a/n`, `*/n` or `a-b/n`, or a list of those joined by `,`. Day-of-month also takes `L` (the
last day), `nW` (the weekday nearest day n) and `LW`; day-of-week takes `L` (the last day of the
week), `nL` (the month's last such day) and `n#k` (its k-th); exactly one of the two is `?`. Months
and days may be named (JAN-DEC, SUN-SAT; SUN is 1, not 0 as in a Unix crontab). A value the
Scheduler would refuse (`30 25 * * ? *`) is refused here with one line naming the field and the
value, so it fails `polytrigger validate` and the build, not the deploy after earlier schedules
were written.

`next_firings` says when a valid expression fires, in its time zone, daylight saving time included
(`polytrigger explain --schedule NAME --next N`, and `validate`'s look at pauses).
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_STEP = re.compile(r"^(?P<base>[^/]+)(?:/(?P<step>[^/]*))?$")
_NEAREST_WEEKDAY = re.compile(r"^(\d{1,2})W$")
_A_DAY = r"(\d+|" + "|".join(DAYS) + ")"
_LAST_OF_WEEK = re.compile(rf"^{_A_DAY}L$")
_NTH_OF_MONTH = re.compile(rf"^{_A_DAY}#(\d+)$")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[0] stands for `low`
    accepts: str = ""  # what else the field takes, for the message
    longest_step: int = 0  # 0: `high`

    def allowed(self) -> str:
        named = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.low}-{self.high}{named}{self.accepts}"


FIELDS = (
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("day-of-month", 1, 31, accepts=", ?, L, LW or nW"),
    _Field("month", 1, 12, MONTHS),
    _Field("day-of-week", 1, 7, DAYS, accepts=" (SUN is 1), ?, L, nL or n#k"),
    _Field("year", 1970, 2199, longest_step=229),
)
DAY_OF_MONTH, DAY_OF_WEEK = 2, 4


class _Bad(ValueError):
    """One field's value the Scheduler refuses: the value, and what it probably meant or why it is refused."""

    def __init__(self, value: str, meant: str = "", why: str = "") -> None:
        super().__init__(value)
        self.value = value
        self.meant = meant
        self.why = why


def cron_problem(fields: list[str], given: str = "") -> str:
    """The first thing the Scheduler would refuse in these six (upper-cased) fields, as one line; "" if none.

    `given` is the expression as the routes file wrote it, echoed in the line (default: the fields).
    """
    given = given or " ".join(fields)
    for index, (field, text) in enumerate(zip(FIELDS, fields, strict=True)):
        try:
            _check(index, field, text)
        except _Bad as bad:
            why = f": {bad.why}" if bad.why else ""
            meant = f"; did you mean {bad.meant}?" if bad.meant else ""
            return (
                f"schedule.cron: {field.name} must be {field.allowed()}, got {bad.value!r} (in {given!r}){why}{meant}"
            )
    if (fields[DAY_OF_MONTH] == "?") == (fields[DAY_OF_WEEK] == "?"):
        meant = ""
        if fields[DAY_OF_MONTH] != "?" and "*" in (fields[DAY_OF_MONTH], fields[DAY_OF_WEEK]):
            meant = f'; did you mean "{" ".join(_one_day_asked(fields))}"?'
        return f"schedule.cron: exactly one of day-of-month and day-of-week must be ? (got {given!r}){meant}"
    return ""


def six_fields(unix: list[str]) -> str:
    """The Scheduler's form of a five-field Unix crontab (its day-of-week counted from SUN = 0), or ""."""
    if len(unix) != 5:
        return ""
    days = unix[4] if unix[4] in ("*", "?") else _unix_days(unix[4])
    if not days:
        return ""  # steps, L or # in a Unix day-of-week: too unlike to guess
    suggestion = _one_day_asked([*unix[:4], days, "*"])
    return " ".join(suggestion) if not cron_problem(suggestion) else ""


def _unix_days(text: str) -> str:
    """A Unix crontab's numbered days (0 or 7 is SUN) by name, or "" when it is more than days, ranges and lists."""
    if not re.fullmatch(r"[0-7]([-,][0-7])*", text):
        return ""
    return re.sub(r"[0-7]", lambda digit: DAYS[int(digit.group()) % 7], text)


def _one_day_asked(fields: list[str]) -> list[str]:
    """`?` for the day field left at `*` (day-of-week, when both are)."""
    fields = list(fields)
    if fields[DAY_OF_WEEK] in ("*", "?"):
        fields[DAY_OF_WEEK] = "?"
    elif fields[DAY_OF_MONTH] == "*":
        fields[DAY_OF_MONTH] = "?"
    return fields


def _check(index: int, field: _Field, text: str) -> None:
    if text == "?" and index in (DAY_OF_MONTH, DAY_OF_WEEK):
        return
    if index == DAY_OF_MONTH and (text in ("L", "LW") or _nearest_weekday(text, field)):
        return
    if index == DAY_OF_WEEK and _day_of_week_special(text, field):
        return
    for item in text.split(","):
        if item != text and _special(index, item):
            raise _Bad(item, why="?, L, W and # stand alone, never in a list")
        match = _STEP.fullmatch(item)
        if match is None:
            raise _Bad(item)
        base, step = match.group("base"), match.group("step")
        if step is not None and not (step.isdigit() and 1 <= int(step) <= (field.longest_step or field.high)):
            raise _Bad(item)
        if base == "*":
            continue
        for value in base.split("-", 1):
            _value(field, value, whole=text)


def _special(index: int, item: str) -> bool:
    if index == DAY_OF_MONTH:
        return item in ("?", "L", "LW") or _NEAREST_WEEKDAY.fullmatch(item) is not None
    if index == DAY_OF_WEEK:
        return item in ("?", "L") or any(form.fullmatch(item) for form in (_LAST_OF_WEEK, _NTH_OF_MONTH))
    return False


def _value(field: _Field, text: str, whole: str = "") -> int:
    if text.isdigit() and field.low <= int(text) <= field.high:
        return int(text)
    if text in field.names:
        return field.low + field.names.index(text)
    if field.names == DAYS and text == "0":  # a Unix crontab's Sunday
        unix = _unix_days(whole or text)
        raise _Bad(text, why="a Unix crontab's 0 is SUN, the Scheduler's SUN is 1", meant=unix)
    raise _Bad(text, _meant(field, text))


def _nearest_weekday(text: str, field: _Field) -> bool:
    match = _NEAREST_WEEKDAY.fullmatch(text)
    if match is None:
        return False
    _value(field, match.group(1))
    return True


def _day_of_week_special(text: str, field: _Field) -> bool:
    if text == "L":
        return True
    if (match := _LAST_OF_WEEK.fullmatch(text)) is not None:
        _value(field, match.group(1))
        return True
    if (match := _NTH_OF_MONTH.fullmatch(text)) is not None:
        _value(field, match.group(1))
        if not 1 <= int(match.group(2)) <= 5:
            raise _Bad(text)
        return True
    return False


def _meant(field: _Field, text: str) -> str:
    """A name one letter off, or spelt out (MONDAY): what it probably meant."""
    if not field.names or not text.isalpha():
        return ""
    if text[:3] in field.names and len(text) > 3:
        return text[:3]
    if len(text) != 3:
        return ""
    close = [name for name in field.names if sum(a != b for a, b in zip(name, text, strict=True)) == 1]
    return " or ".join(close)


# -- when a valid expression fires ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Firing:
    """One time a cron expression names: its wall-clock time in the schedule's zone and the instant it fires.

    `at` is None when that wall-clock time does not exist (the hour clocks skip when they spring forward):
    the Scheduler skips such a firing.
    """

    wall: datetime  # naive: the local time the expression names
    at: datetime | None  # aware, in the zone


@dataclass(frozen=True, slots=True)
class Cron:
    """A valid expression's fields, expanded: the values each names (day fields kept as written)."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int]
    day_of_month: str
    day_of_week: str


@functools.lru_cache(maxsize=64)
def compile_text(expression: str) -> Cron:
    """`compile_cron` of an expression's text (`0 2 ? * TUE-FRI *`), remembered: a schedule is asked often."""
    return compile_cron(expression.split())


def compile_cron(fields: list[str]) -> Cron:
    """Six upper-cased fields that `cron_problem` accepts (a ValueError for any it would refuse)."""
    if len(fields) != 6 or cron_problem(fields):
        raise ValueError(cron_problem(fields) if len(fields) == 6 else "six fields are needed")
    return Cron(
        minutes=tuple(sorted(_expand(0, fields[0]))),
        hours=tuple(sorted(_expand(1, fields[1]))),
        months=frozenset(_expand(3, fields[3])),
        years=frozenset(_expand(5, fields[5])),
        day_of_month=fields[DAY_OF_MONTH],
        day_of_week=fields[DAY_OF_WEEK],
    )


def next_firings(cron: Cron, zone: tzinfo, after: datetime, count: int) -> list[Firing]:
    """The first `count` firings after `after` (aware) of `cron`, read as wall-clock times in `zone`, with
    the times clocks skip among them listed too (`at` None) but not counted.

    Daylight saving time, as EventBridge Scheduler documents it ("Daylight savings time on EventBridge
    Scheduler"): when clocks spring forward, a wall-clock time that does not exist that day is skipped
    (listed here with `at` None, so a person sees why a night has no firing); when clocks fall back, a
    wall-clock time that occurs twice fires once, at its first occurrence (the earlier offset). Searches
    up to ten years ahead, or to the expression's last year.
    """
    start = after.astimezone(zone)
    start_wall = start.replace(tzinfo=None)
    found: list[Firing] = []
    fired = 0
    for wall in _wall_times(cron, start_wall.date(), last_year=min(max(cron.years), start.year + 10)):
        if fired >= count:
            break
        instant = _instant(wall, zone)
        if (instant is None and wall <= start_wall) or (instant is not None and instant <= after):
            continue
        found.append(Firing(wall, instant))
        fired += instant is not None
    return found


def _instant(wall: datetime, zone: tzinfo) -> datetime | None:
    """The instant a wall-clock time names in `zone`: its first occurrence, or None when clocks skip it."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return first


def _wall_times(cron: Cron, day: date, last_year: int) -> Iterator[datetime]:
    while day.year <= last_year:
        if day.year not in cron.years:
            day = date(day.year + 1, 1, 1)
            continue
        if day.month not in cron.months:
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
            continue
        if _day_matches(cron, day):
            for hour in cron.hours:
                for minute in cron.minutes:
                    yield datetime(day.year, day.month, day.day, hour, minute)
        day += timedelta(days=1)


def _day_matches(cron: Cron, day: date) -> bool:
    if cron.day_of_month != "?":
        return _day_of_month_matches(cron.day_of_month, day)
    return _day_of_week_matches(cron.day_of_week, day)


def _day_of_month_matches(text: str, day: date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    if text == "L":
        return day.day == last
    if text == "LW":
        return day == _weekday_nearest(date(day.year, day.month, last))
    if (match := _NEAREST_WEEKDAY.fullmatch(text)) is not None:
        wanted = int(match.group(1))
        return wanted <= last and day == _weekday_nearest(date(day.year, day.month, wanted))
    return day.day in _expand(DAY_OF_MONTH, text)


def _weekday_nearest(day: date) -> date:
    """The weekday (Monday to Friday) nearest `day`, never in another month."""
    if day.weekday() == 5:  # Saturday: the Friday before, or the Monday after the 1st
        return day - timedelta(days=1) if day.day > 1 else day + timedelta(days=2)
    if day.weekday() == 6:  # Sunday: the Monday after, or the Friday before the month's last day
        last = calendar.monthrange(day.year, day.month)[1]
        return day + timedelta(days=1) if day.day < last else day - timedelta(days=2)
    return day


def _day_of_week_matches(text: str, day: date) -> bool:
    weekday = (day.weekday() + 1) % 7 + 1  # the Scheduler's: SUN 1 ... SAT 7
    field = FIELDS[DAY_OF_WEEK]
    if text == "L":
        return weekday == 7  # the last day of the week: SAT
    if (match := _LAST_OF_WEEK.fullmatch(text)) is not None:
        last = calendar.monthrange(day.year, day.month)[1]
        return weekday == _value(field, match.group(1)) and day.day + 7 > last
    if (match := _NTH_OF_MONTH.fullmatch(text)) is not None:
        return weekday == _value(field, match.group(1)) and (day.day - 1) // 7 + 1 == int(match.group(2))
    return weekday in _expand(DAY_OF_WEEK, text)


@functools.lru_cache(maxsize=256)
def _expand(index: int, text: str) -> frozenset[int]:
    """The values a plain field names: `*`, `a`, `a-b` (wrapping past the top: FRI-MON), `a/n`, `*/n`, lists."""
    field = FIELDS[index]
    values: set[int] = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        every = int(step) if step else 1
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(field, first), _value(field, last)
        else:
            low = _value(field, base)
            high = field.high if step else low
        span = range(low, high + 1) if low <= high else [*range(low, field.high + 1), *range(field.low, high + 1)]
        values.update(list(span)[::every])
    return frozenset(values)
