"""What one wiring request does: the routes' schedules into the group, and their buckets out to the S3 rule.

The buckets are not written here: they are returned (`Data.Buckets`) and the template's S3 rule takes
them with `Fn::Split`, so CloudFormation itself owns that rule, rolls it back and deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from polytrigger.routing.model import Routes
from polytrigger.routing.wiring import bucket_list, wiring, wiring_problems
from polytrigger.wiring.reconcile import ScheduleGroup, reconcile, wanted
from polytrigger.wiring.request import WiringRequest


class WiringRefused(ValueError):
    """The routes cannot be wired as they are (the build checks this too); the message names the route."""


@dataclass(frozen=True, slots=True)
class Applied:
    physical_id: str
    data: dict[str, str]
    summary: str


def apply(request: WiringRequest, routes: Routes, group: ScheduleGroup) -> Applied:
    """Create / Update: reconcile the group to the routes. Delete: empty the group (if it still exists)."""
    if request.kind == "Delete":
        changes = reconcile(group, {}) if group.exists() else None
        return Applied(request.group, {}, changes.describe() if changes else "schedule group already gone")
    problems = wiring_problems(routes)
    if problems:
        raise WiringRefused("; ".join(problems))
    found = wiring(routes)
    schedules = {
        spec.name: wanted(spec, request.target, [route.name for route in routes.routes if route.schedule == spec.name])
        for spec in found.schedules
    }
    changes = reconcile(group, schedules)
    data = {
        "Buckets": bucket_list(found),
        "Schedules": ",".join(spec.name for spec in found.schedules),
        "SchedulesMadeElsewhere": ",".join(found.elsewhere),
        "Changes": changes.describe(),
    }
    return Applied(request.group, data, changes.describe())
