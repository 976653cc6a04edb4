"""What happens when CloudFormation sends the route wiring request (on every deploy that changes the code,
and when the stack is deleted).

1. The request is read strictly (`route_wiring.cloudformation`). One with no answer URL gets only a
   log line; one that names where to answer but not what to do is answered FAILED (a Delete of what
   such a request never made: SUCCESS, so the stack never sticks in DELETE_FAILED).
2. Whose routes: those of the function version the request names (`CodeVersion`, published by this
   deploy). CloudFormation always calls the unqualified function, which holds the newest code; during
   a rollback the request names the previous version, so it is handed to that version, whose routes
   put the previous schedules back, and that version answers.
3. Create / Update: the stack's schedule group is reconciled to exactly the routes' schedules
   (`route_wiring.schedule_group`) and their arrival deadlines' (`route_wiring.deadline_schedules`,
   targeting the poller) and reconciliation (`route_wiring.reconcile_schedules`, targeting the
   reconciliation function), and the routes' buckets are returned for the template's S3 rule.
   Delete needs no routes: the group is emptied, so a stack whose routes file is broken can still go.
   Once wired, the routes are recorded in the stack's table as deployed (`routing.deployed`), for
   `status` and `explain`; a record that cannot be written is an ERROR line, not a failed deploy.
4. Every request that names an answer URL is answered, SUCCESS or FAILED with one line naming the
   route or the Scheduler's refusal, so a bad deploy fails in minutes instead of waiting an hour:
   also when the Scheduler's client cannot be made, when something unforeseen fails, and when a
   version it was handed to crashed, returned without answering, or is still running when this
   invocation must answer (it waits for the version only as long as it can still answer after).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polytrigger.core.keys import digest
from polytrigger.observability import error_line, logger
from polytrigger.route_wiring.cloudformation import (
    ANSWER_SECONDS,
    AnswerFailed,
    BadRequest,
    UnanswerableRequest,
    WiringRequest,
    answer_url,
    parse_request,
    response,
    same_function,
    send,
)
from polytrigger.route_wiring.deadline_schedules import deadline_schedules, wanted_deadline
from polytrigger.route_wiring.plan import answer_data, plan, plan_problems
from polytrigger.route_wiring.reconcile_schedules import reconcile_schedules, wanted_reconcile
from polytrigger.route_wiring.schedule_group import ScheduleGroup, reconcile, wanted
from polytrigger.routing import Routes, RoutesError, load_routes
from polytrigger.routing.deployed import DeployedRoutes, RoutesNotRecorded, deployed_routes
from polytrigger.settings import ConfigError

LAMBDA_LONGEST_MS = 900_000  # when the caller gives no clock: the longest a Lambda invocation runs


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
    problems = plan_problems(routes)
    if problems:
        raise WiringRefused("; ".join(problems))
    found = plan(routes)
    schedules = {
        spec.name: wanted(spec, request.target, [route.name for route in routes.routes if route.schedule == spec.name])
        for spec in found.schedules
    }
    deadlines = deadline_schedules(routes)
    if deadlines and not request.target.deadline_arn:
        raise WiringRefused("routes have arrival deadlines (expect) but the request names no DeadlineTargetArn")
    schedules.update({schedule.name: wanted_deadline(schedule, request.target) for schedule in deadlines})
    reconciled = reconcile_schedules(routes)
    if reconciled and not request.target.reconcile_arn:
        raise WiringRefused("routes reconcile (s3.reconcile) but the request names no ReconcileTargetArn")
    schedules.update({schedule.name: wanted_reconcile(schedule, request.target) for schedule in reconciled})
    changes = reconcile(group, schedules)
    partition = request.target.function_arn.split(":")[1] if request.target.function_arn.count(":") > 1 else "aws"
    data = answer_data(found, digest([schedules[name] for name in sorted(schedules)]), changes.describe(), partition)
    return Applied(request.group, data, changes.describe())


@dataclass(slots=True)
class WiringFlow:
    routes_file: Path
    schedule_group: Callable[[str], ScheduleGroup]  # the Scheduler's group of that name (ConfigError: no client)
    # run a version of this function with the request, waiting up to so many seconds: "" when it answered, else why
    hand_to_version: Callable[[str, Any, float], str]
    record_routes: Callable[[DeployedRoutes], None]  # write the routes as deployed (RoutesNotRecorded: why not)

    def request(self, event: Any, invoked_arn: str, remaining_ms: Callable[[], int] | None = None) -> dict[str, Any]:
        """Answer CloudFormation's request (or hand it to the version that will); `remaining_ms` is the
        invocation's own time left, which bounds how long a version is waited for."""
        try:
            url, raw = answer_url(event)
        except UnanswerableRequest as error:
            logger.error(f"route wiring: {error}")
            return {"answered": False}
        try:
            return self._request(url, raw, invoked_arn, remaining_ms or (lambda: LAMBDA_LONGEST_MS))
        except Exception as error:  # a bug: still answered, or CloudFormation would wait an hour for nothing
            logger.exception("route wiring failed")
            reason = f"route wiring failed: internal error: {type(error).__name__}"
            return _answer(url, raw, ok=False, reason=reason, physical_id="")

    def _request(self, url: str, raw: Any, invoked_arn: str, remaining_ms: Callable[[], int]) -> dict[str, Any]:
        try:
            request = parse_request(raw)
        except BadRequest as error:
            deleting = raw.get("RequestType") == "Delete"
            return _answer(url, raw, ok=deleting, reason=f"route wiring request refused: {error}", physical_id="")
        if request.kind != "Delete" and invoked_arn != request.code_version:
            return self._forward(url, raw, request, invoked_arn, remaining_ms() / 1000 - ANSWER_SECONDS)
        return self._wire(url, raw, request)

    def _wire(self, url: str, raw: Any, request: WiringRequest) -> dict[str, Any]:
        try:
            group = self.schedule_group(request.group)
            routes = Routes(()) if request.kind == "Delete" else load_routes(self.routes_file)
            applied = apply(request, routes, group)
        except (RoutesError, WiringRefused) as error:
            return _answer(url, raw, ok=False, reason=f"routes cannot be wired: {error}", physical_id=request.group)
        except ConfigError as error:
            return _answer(url, raw, ok=False, reason=f"route wiring cannot run: {error}", physical_id=request.group)
        except Exception as error:  # CloudFormation would wait an hour for an answer that never comes
            logger.exception("route wiring failed")
            reason = error_line(error) if hasattr(error, "response") else f"internal error: {type(error).__name__}"
            return _answer(url, raw, ok=False, reason=f"route wiring failed: {reason}", physical_id=request.group)
        summary = applied.summary if request.kind == "Delete" else applied.summary + self._record(request)
        logger.info(
            f"route wiring {request.kind}: {summary}", extra={"schedule_group": request.group, "wiring": applied.data}
        )
        return _answer(url, raw, ok=True, reason=summary, physical_id=applied.physical_id, data=applied.data)

    def _record(self, request: WiringRequest) -> str:
        """Record the routes just wired as the deployed ones; "" when done, else "; why not" for the answer.

        A failure is one ERROR line, and the deploy goes on (SUCCESS): the schedules and buckets are
        wired, and they are what fires. Failing the deploy over the record would roll back a correct
        wiring, and the rollback's own Update would meet the same refusal (a missing permission, a
        throttled table) and leave the stack in UPDATE_ROLLBACK_FAILED; retrying here would hold the
        deploy for a record that only tells `status` and `explain` which routes to read (without it,
        they read the routes file they are given, and say so).
        """
        version = request.code_version.rsplit(":", 1)[-1]
        try:
            self.record_routes(deployed_routes(self.routes_file, datetime.now(UTC), version))
        except (RoutesNotRecorded, OSError) as error:
            problem = (
                f"the deployed routes were not recorded in the table ({error});"
                " status and explain will read the routes file they are given instead"
            )
            logger.error(f"route wiring: {problem}")
            return f"; {problem}"
        return ""

    def _forward(self, url: str, raw: Any, request: WiringRequest, invoked: str, wait: float) -> dict[str, Any]:
        """Hand the request to the version it names, which answers it; answer FAILED when it did not, in time
        to answer (`wait` seconds at most)."""
        if not same_function(request.code_version, invoked):
            reason = "route wiring request refused: CodeVersion names a version of another function"
            return _answer(url, raw, ok=False, reason=reason, physical_id=request.group)
        problem = self.hand_to_version(request.code_version, raw, wait)
        if problem:
            return _answer(url, raw, ok=False, reason=f"route wiring: {problem}", physical_id=request.group)
        logger.info(f"route wiring {request.kind} handed to version {request.code_version.rsplit(':', 1)[-1]}")
        return {"answered": True, "forwarded": request.code_version}


def _answer(
    url: str, raw: Any, *, ok: bool, reason: str, physical_id: str, data: dict[str, str] | None = None
) -> dict[str, Any]:
    if not ok:
        logger.error(reason)
    body = response(raw, ok=ok, reason=reason, physical_id=physical_id, data=data)
    try:
        send(url, body)
    except AnswerFailed as error:
        logger.error(str(error))
        return {"answered": False, "status": "SUCCESS" if ok else "FAILED"}
    return {"answered": True, "status": "SUCCESS" if ok else "FAILED"}
