"""Make a stack-owned schedule group hold exactly the schedules the routes define; nothing else, nothing twice.

Reconciling, not creating: every deploy computes the whole wanted state from the routes and changes
only what differs, so running it again changes nothing, a schedule a route no longer defines is
deleted, and one edited by hand is put back. The group belongs to the stack alone, so whatever else
is in it is ours to delete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from polytrigger.routing.schedules import ScheduleSpec

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"  # the Scheduler substitutes the firing's scheduled time
RETRY_POLICY = {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}
_DESCRIPTION_CHARS = 512


@dataclass(frozen=True, slots=True)
class Target:
    """Where every schedule of the group delivers: the schedule function, as the Scheduler's role, else parked."""

    function_arn: str
    role_arn: str
    dead_letter_arn: str
    state: str = "ENABLED"  # or DISABLED: every schedule of the stack at once (a staging stack, a freeze)
    deadline_arn: str = ""  # the poller: where the routes' arrival deadlines' schedules deliver
    reconcile_arn: str = ""  # the reconciliation function: where the routes' reconciliation schedules deliver


class ScheduleGroup(Protocol):
    """The Scheduler's schedules of one group (adapters.scheduler)."""

    name: str

    def current(self) -> dict[str, dict[str, Any]]:
        """Each schedule in the group by name, every settable field, in the form `wanted` writes them."""
        ...

    def put(self, schedule: dict[str, Any], *, exists: bool) -> None: ...

    def delete(self, name: str) -> None: ...

    def exists(self) -> bool:
        """False once the group is gone (the stack is being deleted)."""
        ...


@dataclass(slots=True)
class Changes:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{len(names)} {verb}" for verb, names in self._verbs() if names]
        return ", ".join(parts) if parts else "no schedules"

    def _verbs(self) -> list[tuple[str, list[str]]]:
        return [
            ("created", self.created),
            ("updated", self.updated),
            ("deleted", self.deleted),
            ("unchanged", self.unchanged),
        ]


def wanted(spec: ScheduleSpec, target: Target, routes: list[str]) -> dict[str, Any]:
    """The whole schedule as the Scheduler stores it: what a reconcile compares and writes.

    Every field the wiring does not use is either its default here (ActionAfterCompletion) or absent
    (StartDate, EndDate, KmsKeyArn, the Target's parameters for other kinds of target), so a hand
    edit to any of them is a difference, and the update that writes this whole schedule puts it back.
    """
    window: dict[str, Any] = {"Mode": "OFF"}
    if spec.flexible_window:
        window = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": spec.flexible_window}
    return {
        "Name": spec.name,
        "Description": f"polytrigger: routes {', '.join(routes)}"[:_DESCRIPTION_CHARS],
        "ScheduleExpression": spec.expression,
        "ScheduleExpressionTimezone": spec.timezone,
        "FlexibleTimeWindow": window,
        "State": target.state,
        "ActionAfterCompletion": "NONE",  # a one-time `at` schedule stays after it fired: the routes name it
        "Target": {
            "Arn": target.function_arn,
            "RoleArn": target.role_arn,
            # What routes match: the name; the scheduled time makes a redelivered firing the same trigger.
            "Input": json.dumps({"schedule": spec.name, "time": SCHEDULED_TIME}, separators=(",", ":")),
            "RetryPolicy": dict(RETRY_POLICY),
            "DeadLetterConfig": {"Arn": target.dead_letter_arn},
        },
    }


def reconcile(group: ScheduleGroup, schedules: dict[str, dict[str, Any]]) -> Changes:
    """Create, update and delete until `group` holds exactly `schedules` (by name, as `wanted` makes them)."""
    current = group.current()
    changes = Changes()
    for name in sorted(schedules):
        schedule = schedules[name]
        if name not in current:
            group.put(schedule, exists=False)
            changes.created.append(name)
        elif current[name] != schedule:
            group.put(schedule, exists=True)
            changes.updated.append(name)
        else:
            changes.unchanged.append(name)
    for name in sorted(set(current) - set(schedules)):
        group.delete(name)
        changes.deleted.append(name)
    return changes
