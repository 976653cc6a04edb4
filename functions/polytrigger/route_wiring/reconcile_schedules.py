"""The Scheduler's schedules for the routes' reconciliation: one per route with `s3.reconcile`, wired from
the routes file like every schedule.

Each fires `rate(every)` in the stack's schedule group and invokes the reconciliation function with
`{"reconcile": "<route>"}`. A firing lists the route's prefix from its cursor (`reconciliation`); one
that finds another still listing does nothing, so a firing delivered twice or a slow pass costs one
quiet invocation. The listing's buckets are answered to the template too (`plan.answer_data`,
`ReconciledBuckets`), which grants the function `s3:ListBucket` on them and on nothing else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from polytrigger.route_wiring.schedule_group import RETRY_POLICY, Target
from polytrigger.routing.model import Routes

PREFIX = "reconcile-"
MAX_NAME = 64  # the Scheduler's limit on a schedule's name
_DESCRIPTION_CHARS = 512
# A firing the function did not take within its period is superseded by the next one: parked, not retried long.
_RETRY = {**RETRY_POLICY, "MaximumEventAgeInSeconds": 300}


@dataclass(frozen=True, slots=True)
class ReconcileSchedule:
    name: str
    route: str
    expression: str


def schedule_name(route: str) -> str:
    """`reconcile-<route>`, or a digest of the route's name when that is too long for the Scheduler."""
    name = f"{PREFIX}{route}"
    return name if len(name) <= MAX_NAME else f"{PREFIX}{hashlib.sha256(route.encode()).hexdigest()[:40]}"


def reconcile_schedules(routes: Routes) -> list[ReconcileSchedule]:
    """Every reconciled route's schedule, by name."""
    found = [
        ReconcileSchedule(schedule_name(route.name), route.name, route.reconcile.rate)
        for route in routes.routes
        if route.reconcile is not None
    ]
    return sorted(found, key=lambda schedule: schedule.name)


def reconciled_buckets(routes: Routes) -> tuple[str, ...]:
    """The buckets some route reconciles: the function may list these, sorted."""
    return tuple(sorted({route.bucket for route in routes.routes if route.reconcile is not None}))


def wanted_reconcile(schedule: ReconcileSchedule, target: Target) -> dict[str, Any]:
    """The whole schedule as the Scheduler stores it (as `schedule_group.wanted`, targeting the reconciler)."""
    return {
        "Name": schedule.name,
        "Description": f"polytrigger: reconciliation of route {schedule.route}"[:_DESCRIPTION_CHARS],
        "ScheduleExpression": schedule.expression,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": target.state,
        "ActionAfterCompletion": "NONE",
        "Target": {
            "Arn": target.reconcile_arn,
            "RoleArn": target.role_arn,
            "Input": json.dumps({"reconcile": schedule.route}, separators=(",", ":")),
            "RetryPolicy": dict(_RETRY),
            "DeadLetterConfig": {"Arn": target.dead_letter_arn},
        },
    }


def reconcile_problems(routes: Routes, schedule_names: set[str]) -> list[str]:
    """A reconciliation schedule whose name a route's own schedule already has (the group holds one of each)."""
    return [
        f"route '{schedule.route}': schedule name {schedule.name!r} is taken by its reconciliation; rename the schedule"
        for schedule in reconcile_schedules(routes)
        if schedule.name in schedule_names
    ]
