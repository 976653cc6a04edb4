"""A route's own schedule: what EventBridge Scheduler is asked to run, written where the route is.

`schedule: nightly` names a schedule made elsewhere (polytrigger only listens for it);
`schedule: {name: nightly, cron: "0 2 * * ? *", timezone: Europe/Berlin}` also defines it, and the
stack creates it (flows/on_wiring_request.py). Expressions are checked here as far as the Scheduler's
grammar goes without calling AWS (a cron's fields and their ranges: `cron`), so a typo fails
`polytrigger validate` and `sam build`, not the deploy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from polytrigger.core.triggers import SCHEDULE_NAME
from polytrigger.routing.cron import Firing, compile_text, cron_problem, next_firings, six_fields
from polytrigger.routing.durations import UNIT_NAMES, UNIT_SECONDS, duration_field, plural
from polytrigger.routing.suggest import unknown_fields, zone_like

SCHEDULE_FIELDS = {"name", "cron", "rate", "at", "timezone", "flexible_window"}
_FIELD_ALIASES = {"tz": "timezone", "time_zone": "timezone", "zone": "timezone", "window": "flexible_window"}
MAX_FLEXIBLE_WINDOW = 1440  # minutes: the Scheduler's own limit
_CRON_FIELD = re.compile(r"^[A-Za-z0-9*?,/#LW-]+$")
_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_TIMEZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A schedule the stack creates: its name (what routes match), Scheduler expression, zone and window."""

    name: str
    expression: str  # cron(...), rate(...) or at(...), exactly as the Scheduler takes it
    timezone: str = "UTC"
    flexible_window: int = 0  # minutes; 0 = fire at the time, not within a window after it


def parse_schedule(raw: Any, problems: list[str], *, check_zone: bool = False) -> tuple[str, ScheduleSpec | None]:
    """A route's `schedule:` value → (schedule name, its spec or None for a bare name); problems appended.

    `check_zone` also asks the time zone database (the build and `validate` do; a cold start does not:
    a zone the build knew must never fail a function because its runtime's database differs).
    """
    if isinstance(raw, str):
        if not SCHEDULE_NAME.fullmatch(raw):
            problems.append("schedule: must be a schedule name (1-64 letters, digits, '.', '-' or '_')")
        return raw, None
    if not isinstance(raw, Mapping):
        problems.append("schedule: must be a schedule name, or {name, cron | rate | at, timezone, flexible_window}")
        return "", None
    before = len(problems)
    unknown_fields(raw, SCHEDULE_FIELDS, "schedule", problems, _FIELD_ALIASES)
    name = raw.get("name")
    if not isinstance(name, str) or not SCHEDULE_NAME.fullmatch(name):
        problems.append(f"schedule.name: required; 1-64 letters, digits, '.', '-' or '_' (got {name!r})")
        name = ""
    given = [field for field in ("cron", "rate", "at") if field in raw]
    expression = ""
    if len(given) != 1:
        problems.append(
            "schedule: needs exactly one of cron, rate or at" + (f" (got {', '.join(given)})" if given else "")
        )
    else:
        expression = _expression(given[0], raw[given[0]], problems)
    timezone = raw.get("timezone", "UTC")
    if not isinstance(timezone, str) or not _TIMEZONE.fullmatch(timezone):
        problems.append(
            f"schedule.timezone: must be an IANA time zone such as Europe/Berlin (got {timezone!r}){_zone_hint(timezone)}"
        )
    elif check_zone and not known_zone(timezone):
        problems.append(
            f"schedule.timezone: {timezone!r} is not a time zone the IANA database knows{_zone_hint(timezone)}"
        )
    window = _flexible_window(raw.get("flexible_window", 0), problems)
    if len(problems) > before:
        return name, None
    return name, ScheduleSpec(name=name, expression=expression, timezone=timezone, flexible_window=window)


def _expression(field: str, value: Any, problems: list[str]) -> str:
    if field == "cron":
        return _cron(value, problems)
    if field == "rate":
        return _rate(value, problems)
    return _at(value, problems)


def _cron(value: Any, problems: list[str]) -> str:
    """Six fields (minutes hours day-of-month month day-of-week year), each as the Scheduler takes it (`cron`)."""
    text = value.strip() if isinstance(value, str) else ""
    if text.startswith("cron(") and text.endswith(")"):
        text = text[5:-1].strip()
    fields = text.upper().split()
    if len(fields) != 6 or not all(_CRON_FIELD.fullmatch(field) for field in fields):
        unix = six_fields(fields) if all(_CRON_FIELD.fullmatch(field) for field in fields) else ""
        problems.append(
            "schedule.cron: must be six fields, minutes hours day-of-month month day-of-week year,"
            f' e.g. "0 2 * * ? *" (got {value!r})' + (f'; did you mean "{unix}"?' if unix else "")
        )
        return ""
    problem = cron_problem(fields, value.strip())
    if problem:
        problems.append(problem)
        return ""
    return f"cron({' '.join(fields)})"


def _rate(value: Any, problems: list[str]) -> str:
    """`1h`, `90m`, `2 days`, `15 minutes`: whole minutes, in the unit given (seconds as minutes), the unit
    singular for 1 and plural above, as the Scheduler wants (`rate(1 hour)`, `rate(90 minutes)`)."""
    duration = duration_field(value, "schedule.rate", problems, low=60, high=None, bare=None, whole_minutes=True)
    if duration is None:
        return ""
    count, unit = (duration.seconds // 60, "m") if duration.unit == "s" else (duration.count, duration.unit)
    return f"rate({plural(count, UNIT_NAMES[unit])})"


def _at(value: Any, problems: list[str]) -> str:
    """A one-time schedule at a local time of its time zone (YAML may already have made it a datetime)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            problems.append("schedule.at: give the time without an offset and set timezone instead")
            return ""
        value = value.strftime("%Y-%m-%dT%H:%M:%S")
    if not isinstance(value, str) or not _AT.fullmatch(value.strip()):
        problems.append(f"schedule.at: must be a local time YYYY-MM-DDThh:mm:ss (got {value!r})")
        return ""
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"schedule.at: not a real date and time (got {value!r})")
        return ""
    return f"at({value.strip()})"


def _flexible_window(value: Any, problems: list[str]) -> int:
    """Minutes the Scheduler may spread a firing over: 0 / off, a duration (`15m`, `1h`) or a number of minutes."""
    if value in (0, "off", False):
        return 0
    duration = duration_field(
        value,
        "schedule.flexible_window",
        problems,
        low=60,
        high=MAX_FLEXIBLE_WINDOW * 60,
        bare=60,
        whole_minutes=True,
        otherwise="off, or ",
    )
    return duration.seconds // 60 if duration is not None else 0


def _zone_hint(timezone: Any) -> str:
    meant = zone_like(timezone)
    return f"; did you mean {meant}?" if meant is not None and meant != timezone else ""


def definitions(routes: Mapping[str, tuple[str, ScheduleSpec | None]]) -> tuple[dict[str, ScheduleSpec], list[str]]:
    """The schedules a file defines, by name, and a problem for each name defined two different ways.

    `routes` maps a route's name to its (schedule name, spec); a schedule may be defined by several
    routes, identically, and named bare by others.
    """
    found: dict[str, tuple[str, ScheduleSpec]] = {}
    problems: list[str] = []
    for route, (_, spec) in routes.items():
        if spec is None:
            continue
        first = found.setdefault(spec.name, (route, spec))
        if first[1] != spec:
            problems.append(
                f"route '{route}': schedule.{spec.name}: defined differently by route '{first[0]}';"
                " define it once and name it bare (schedule: NAME) elsewhere"
            )
    return {name: spec for name, (_, spec) in found.items()}, problems


def firings(spec: ScheduleSpec, after: datetime, count: int) -> list[Firing]:
    """The next `count` firings of a schedule the stack creates, after `after` (aware), in its own zone.

    A cron, as `cron.next_firings` reads it (daylight saving time included). A rate counts elapsed time
    from when the Scheduler created the schedule (the stack sets no start date), whatever the zone:
    shown as if that were `after`. An `at` fires once, at its local time (none when that has passed).
    """
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(spec.timezone)
    kind, _, body = spec.expression.partition("(")
    body = body.removesuffix(")")
    if kind == "cron":
        return next_firings(compile_text(body), zone, after, count)
    if kind == "rate":
        number, unit = body.split()
        every = timedelta(seconds=int(number) * UNIT_SECONDS[unit[0]])
        start = after.astimezone(UTC)  # elapsed time: aware arithmetic in a zone would count wall-clock time
        return [_firing((start + every * n).astimezone(zone)) for n in range(1, count + 1)]
    once = datetime.fromisoformat(body)
    instant = once.replace(tzinfo=zone)
    return [_firing(instant)] if count > 0 and instant > after else []


def _firing(instant: datetime) -> Firing:
    return Firing(wall=instant.replace(tzinfo=None), at=instant)


def known_zone(name: str) -> bool:
    """True when the zone exists, or when no time zone database is at hand to say (the Scheduler checks too)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except ZoneInfoNotFoundError:
        try:
            ZoneInfo("UTC")
        except ZoneInfoNotFoundError:
            return True
        return False
    except ValueError:
        return False
    return True
