"""The AWS calls of the route wiring: one schedule group's schedules (EventBridge Scheduler, behind
`schedule_group.ScheduleGroup`), handing a request to a published version of this very function
(how a rollback runs its own code), and recording the routes as deployed in the stack's table."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from polytrigger.observability import error_line
from polytrigger.routing.deployed import DeployedRoutes, RoutesNotRecorded

# The Scheduler's defaults for a field left out (what GetSchedule may leave out in turn).
_DEFAULTS = {
    "Description": "",
    "State": "ENABLED",
    "ScheduleExpressionTimezone": "UTC",
    "ActionAfterCompletion": "NONE",
}
_NOT_SCHEDULE = {"GroupName", "ClientToken"}  # UpdateSchedule's addressing and retry token, not the schedule


class SchedulerGroup:
    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        # Every field a schedule may be given, from the Scheduler's own API model, so none can drift unseen
        # (a hand-set EndDate stops a schedule) and one AWS adds is compared from the botocore that knows it.
        model = client.meta.service_model
        self.fields = frozenset(model.operation_model("UpdateSchedule").input_shape.members) - _NOT_SCHEDULE
        self.target_fields = frozenset(model.shape_for("Target").members)

    def current(self) -> dict[str, dict[str, Any]]:
        names: list[str] = []
        for page in self.client.get_paginator("list_schedules").paginate(GroupName=self.name):
            names.extend(item["Name"] for item in page.get("Schedules", []) if item.get("GroupName") == self.name)
        found: dict[str, dict[str, Any]] = {}
        for name in names:
            try:
                stored = self.client.get_schedule(GroupName=self.name, Name=name)
            except self.client.exceptions.ResourceNotFoundException:
                continue  # deleted since it was listed
            found[name] = self._comparable(stored)
        return found

    def put(self, schedule: dict[str, Any], *, exists: bool) -> None:
        """Write the whole schedule: UpdateSchedule sets every field it is not given to its default."""
        request = {**schedule, "GroupName": self.name}
        if exists:
            self.client.update_schedule(**request)
            return
        try:
            self.client.create_schedule(**request)
        except self.client.exceptions.ConflictException:
            self.client.update_schedule(**request)  # made since it was listed (a concurrent deploy's retry)

    def delete(self, name: str) -> None:
        with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):  # gone already: as wanted
            self.client.delete_schedule(GroupName=self.name, Name=name)

    def exists(self) -> bool:
        """False when the group is gone (a stack being deleted): nothing of ours is left in it."""
        try:
            self.client.get_schedule_group(Name=self.name)
        except self.client.exceptions.ResourceNotFoundException:
            return False
        return True

    def _comparable(self, stored: dict[str, Any]) -> dict[str, Any]:
        """Every settable field as stored (a field left out reads as the Scheduler's default), so a schedule
        equals `wanted` only when nothing of it differs, including fields the routes never set."""
        schedule = {**_DEFAULTS, **{name: stored[name] for name in self.fields if name in stored}}
        target = stored.get("Target") or {}
        schedule["Target"] = {name: target[name] for name in self.target_fields if name in target}
        return schedule


class DeployedRoutesTable:
    """Writes the one `routes#deployed` item (the wiring's role may write no other: template.yaml)."""

    def __init__(self, client: Callable[[], Any], table: str) -> None:
        self.client = client  # made on first use: a client that cannot be made is one more reason not to record
        self.table = table

    def put(self, record: DeployedRoutes) -> None:
        """RoutesNotRecorded (one line) when the table is not named or refuses the write."""
        from botocore.exceptions import BotoCoreError, ClientError

        if not self.table:
            raise RoutesNotRecorded("IDEMPOTENCY_TABLE is not set")
        try:
            self.client().put_item(TableName=self.table, Item=record.item())
        except (BotoCoreError, ClientError, ValueError) as error:  # ValueError: an endpoint botocore cannot use
            raise RoutesNotRecorded(error_line(error)) from None


def hand_to_version(version_arn: str, event: Any, wait_seconds: float) -> str:
    """Invoke `version_arn` with `event`, waiting up to `wait_seconds`; "" when it answered CloudFormation,
    else why it did not (one line), so the caller answers instead."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

    version, waited = version_arn.rsplit(":", 1)[-1], max(1.0, wait_seconds)
    # Never sent twice by a retry: the version would wire twice and answer twice.
    config = Config(connect_timeout=5, read_timeout=waited, retries={"mode": "standard", "total_max_attempts": 1})
    try:
        result = boto3.client("lambda", config=config).invoke(
            FunctionName=version_arn, Payload=json.dumps(event).encode()
        )
        payload = result["Payload"].read()
    except ReadTimeoutError:
        return f"its version {version} did not finish within {waited:.0f} s"
    except (BotoCoreError, ClientError, ValueError) as error:  # ValueError: an endpoint botocore cannot use
        return f"could not run its version: {error_line(error)}"
    if result.get("FunctionError"):
        return f"its version {version} failed ({result['FunctionError']}{_error_type(payload)})"
    try:
        answered = json.loads(payload).get("answered") is True
    except (ValueError, AttributeError):
        answered = False
    return "" if answered else f"its version {version} did not answer CloudFormation"


def _error_type(payload: bytes) -> str:
    """`: RuntimeError` from Lambda's error document (never its message: it may quote the request)."""
    with contextlib.suppress(ValueError, AttributeError):
        kind = json.loads(payload).get("errorType")
        if isinstance(kind, str) and kind.replace(".", "").isidentifier():  # Sandbox.Timedout too
            return f": {kind}"
    return ""
