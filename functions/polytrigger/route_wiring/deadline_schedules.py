"""The Scheduler's schedules for the routes' arrival deadlines: wired from the routes file, like schedules.

Each route with `expect` gets a schedule at its late time of day (`by` + `grace`) and, with `warn`,
one at its warn time, in the route's zone on its days, in the stack's schedule group, targeting the
poller with `{"deadline": route, "time": …}`. A firing looks at every deadline of the route passed
since its last look (`deadlines.watch`), so skip dates cost one quiet invocation and a firing the
Scheduler does not make (a time the clocks skip at spring forward) is made up by the poller, which
looks at the route's `deadline#` item at the instant the clocks jump. Nothing runs between firings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from polytrigger.route_wiring.schedule_group import RETRY_POLICY, SCHEDULED_TIME, Target
from polytrigger.routing.expect import EVERY_DAY, WEEKDAYS
from polytrigger.routing.model import Route, Routes

PREFIX = "deadline-"
MAX_NAME = 64  # the Scheduler's limit on a schedule's name
_DESCRIPTION_CHARS = 512


@dataclass(frozen=True, slots=True)
class DeadlineSchedule:
    name: str
    route: str
    which: str  # "late" or "warn"
    expression: str
    timezone: str


def schedule_name(route: str, which: str) -> str:
    """`deadline-<route>-late`, or a digest of the route's name when that is too long for the Scheduler."""
    name = f"{PREFIX}{route}-{which}"
    if len(name) <= MAX_NAME:
        return name
    return f"{PREFIX}{hashlib.sha256(route.encode()).hexdigest()[:40]}-{which}"


def deadline_schedules(routes: Routes) -> list[DeadlineSchedule]:
    """Every route's deadline schedules, by name."""
    found: list[DeadlineSchedule] = []
    for route in routes.routes:
        found.extend(_of(route))
    return sorted(found, key=lambda schedule: schedule.name)


def _of(route: Route) -> list[DeadlineSchedule]:
    expect = route.expect
    if expect is None:
        return []
    late = datetime.combine(datetime(2000, 1, 3).date(), expect.by) + timedelta(seconds=expect.grace)
    shift = (late.date() - datetime(2000, 1, 3).date()).days  # a grace past midnight: the next day's
    found = [_schedule(route, "late", late.time(), shift)]
    if expect.warn is not None:
        found.append(_schedule(route, "warn", expect.warn, 0))
    return found


def _schedule(route: Route, which: str, clock: time, shift: int) -> DeadlineSchedule:
    expect = route.expect
    assert expect is not None
    days = "*" if expect.days == EVERY_DAY else ",".join(WEEKDAYS[(day + shift) % 7] for day in sorted(expect.days))
    expression = f"cron({clock.minute} {clock.hour} ? * {days} *)"
    return DeadlineSchedule(schedule_name(route.name, which), route.name, which, expression, expect.timezone)


def wanted_deadline(schedule: DeadlineSchedule, target: Target) -> dict[str, Any]:
    """The whole schedule as the Scheduler stores it (as `schedule_group.wanted`, targeting the poller)."""
    return {
        "Name": schedule.name,
        "Description": f"polytrigger: arrival deadline of route {schedule.route} ({schedule.which})"[
            :_DESCRIPTION_CHARS
        ],
        "ScheduleExpression": schedule.expression,
        "ScheduleExpressionTimezone": schedule.timezone,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": target.state,
        "ActionAfterCompletion": "NONE",
        "Target": {
            "Arn": target.deadline_arn,
            "RoleArn": target.role_arn,
            "Input": json.dumps({"deadline": schedule.route, "time": SCHEDULED_TIME}, separators=(",", ":")),
            "RetryPolicy": dict(RETRY_POLICY),
            "DeadLetterConfig": {"Arn": target.dead_letter_arn},
        },
    }


def deadline_problems(routes: Routes, schedule_names: set[str]) -> list[str]:
    """A deadline schedule whose name a route's own schedule already has (the group holds one of each)."""
    return [
        f"route '{schedule.route}': schedule name {schedule.name!r} is taken by its arrival deadline; rename the schedule"
        for schedule in deadline_schedules(routes)
        if schedule.name in schedule_names
    ]
