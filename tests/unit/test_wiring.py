"""The route wiring's pure parts: reconciling a group, reading CloudFormation's request, answering within 4 kB."""

from __future__ import annotations

import json
from typing import Any

import pytest

from polytrigger.route_wiring.cloudformation import (
    BadRequest,
    UnanswerableRequest,
    parse_request,
    response,
    same_function,
)
from polytrigger.route_wiring.plan import MAX_ANSWER_BYTES
from polytrigger.route_wiring.schedule_group import Target, reconcile, wanted
from polytrigger.routing.schedules import ScheduleSpec

FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:polytrigger-RouteWiringFunction-Ab12"
TARGET = Target("arn:aws:lambda:eu-west-1:123456789012:function:f", "arn:aws:iam::123456789012:role/r", "arn:aws:sqs:q")


class MemoryGroup:
    """A schedule group in memory; `fail_on` makes the n-th write raise (a crash between two writes)."""

    name = "group"

    def __init__(self, fail_on: int = 0) -> None:
        self.schedules: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.fail_on = fail_on

    def current(self) -> dict[str, dict[str, Any]]:
        return {name: json.loads(json.dumps(schedule)) for name, schedule in self.schedules.items()}

    def _write(self) -> None:
        self.writes += 1
        if self.writes == self.fail_on:
            raise ConnectionError("the Lambda was stopped here")

    def put(self, schedule: dict[str, Any], *, exists: bool) -> None:
        self._write()
        assert (schedule["Name"] in self.schedules) == exists
        self.schedules[schedule["Name"]] = schedule

    def delete(self, name: str) -> None:
        self._write()
        del self.schedules[name]

    def exists(self) -> bool:
        return True


def wanted_of(*specs: ScheduleSpec) -> dict[str, dict[str, Any]]:
    return {spec.name: wanted(spec, TARGET, [f"on-{spec.name}"]) for spec in specs}


NIGHTLY = ScheduleSpec("nightly", "cron(0 2 * * ? *)", "Europe/Berlin")
HOURLY = ScheduleSpec("hourly", "rate(1 hour)", "UTC", 5)


def test_the_wanted_schedule_delivers_its_name_and_scheduled_time_and_parks_what_it_cannot() -> None:
    schedule = wanted(HOURLY, TARGET, ["a", "b"])
    assert schedule["Description"] == "polytrigger: routes a, b"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 5}
    assert json.loads(schedule["Target"]["Input"]) == {"schedule": "hourly", "time": "<aws.scheduler.scheduled-time>"}
    assert schedule["Target"]["DeadLetterConfig"] == {"Arn": "arn:aws:sqs:q"}
    assert wanted(NIGHTLY, TARGET, ["r"])["FlexibleTimeWindow"] == {"Mode": "OFF"}


def test_a_crash_between_two_writes_converges_on_the_next_run() -> None:
    group = MemoryGroup(fail_on=2)
    group.schedules = wanted_of(ScheduleSpec("old", "rate(1 day)"))

    with pytest.raises(ConnectionError):
        reconcile(group, wanted_of(NIGHTLY, HOURLY))  # created hourly, then stopped
    changes = reconcile(group, wanted_of(NIGHTLY, HOURLY))  # Lambda's retry, or the next deploy

    assert changes.describe() == "1 created, 1 deleted, 1 unchanged"
    assert group.schedules == wanted_of(NIGHTLY, HOURLY)
    assert reconcile(group, wanted_of(NIGHTLY, HOURLY)).describe() == "2 unchanged"


def test_an_empty_want_empties_the_group() -> None:
    group = MemoryGroup()
    group.schedules = wanted_of(NIGHTLY, HOURLY)
    assert reconcile(group, {}).describe() == "2 deleted"
    assert group.schedules == {}
    assert reconcile(group, {}).describe() == "no schedules"


def request(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "RequestType": "Create",
        "ResponseURL": "https://cloudformation-custom-resource-response.s3.amazonaws.com/x?sig=1",
        "StackId": "stack",
        "RequestId": "r1",
        "LogicalResourceId": "RouteWiring",
        "ResourceProperties": {
            "ScheduleGroup": "polytrigger-ScheduleGroup-ABC",
            "TargetArn": TARGET.function_arn,
            "RoleArn": TARGET.role_arn,
            "DeadLetterArn": TARGET.dead_letter_arn,
            "State": "ENABLED",
            "CodeVersion": f"{FUNCTION}:7",
        },
    }
    properties = changes.pop("ResourceProperties", {})
    base["ResourceProperties"].update(properties)
    base.update(changes)
    return base


def test_a_request_is_read_into_what_the_wiring_needs() -> None:
    parsed = parse_request(request())
    assert parsed.kind == "Create"
    assert parsed.group == "polytrigger-ScheduleGroup-ABC"
    assert parsed.target == TARGET
    assert parsed.code_version == f"{FUNCTION}:7"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (["not", "a", "mapping"], "not a JSON object"),
        ({"RequestType": "Create"}, "no ResponseURL"),
        (request(ResponseURL="http://169.254.169.254/latest"), "ResponseURL must be https"),
        (request(ResponseURL="file:///etc/passwd"), "no ResponseURL"),
        # urlsplit reads 127.0.0.1 here; urllib3, which sends the answer, reads 192.0.2.2
        (request(ResponseURL="http://192.0.2.2:8080\\@127.0.0.1/answer"), "read two ways"),
        (request(ResponseURL="https://x.s3.amazonaws.com\\@127.0.0.1/answer"), "read two ways"),
        (request(ResponseURL="http://user@127.0.0.1/answer"), "must not carry a user name"),
    ],
)
def test_a_request_with_nowhere_safe_to_answer_is_not_answered(event: Any, expected: str) -> None:
    with pytest.raises(UnanswerableRequest, match=expected):
        parse_request(event)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"RequestType": "Replace"}, "RequestType must be Create, Update or Delete"),
        ({"ResourceProperties": {"ScheduleGroup": "a/b"}}, "ScheduleGroup is not a schedule group name"),
        ({"ResourceProperties": {"State": "PAUSED"}}, "State must be ENABLED or DISABLED"),
        ({"ResourceProperties": {"CodeVersion": FUNCTION}}, "CodeVersion must be the ARN of a published version"),
        ({"ResourceProperties": {"CodeVersion": f"{FUNCTION}:$LATEST"}}, "CodeVersion must be the ARN"),
    ],
)
def test_a_request_that_does_not_say_what_to_do_is_refused_naming_the_field(
    changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(BadRequest, match=expected):
        parse_request(request(**changes))


def test_a_version_is_of_this_function_only() -> None:
    assert same_function(f"{FUNCTION}:7", FUNCTION)
    assert same_function(f"{FUNCTION}:7", f"{FUNCTION}:6")
    assert not same_function(f"{FUNCTION}:7", FUNCTION.replace("Ab12", "Zz99"))
    assert not same_function(f"{FUNCTION}:7", FUNCTION.replace("123456789012", "210987654321"))


def test_the_answer_fits_cloudformations_4_kb_by_cutting_the_reason() -> None:
    body = response(request(), ok=False, reason="x" * 10_000, physical_id="g", data={"Buckets": "a,b"})

    assert len(body) <= MAX_ANSWER_BYTES
    answer = json.loads(body)
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].endswith("...")
    assert answer["Data"] == {"Buckets": "a,b"}
    assert answer["PhysicalResourceId"] == "g"
    assert (answer["StackId"], answer["RequestId"], answer["LogicalResourceId"]) == ("stack", "r1", "RouteWiring")


def test_data_too_long_for_cloudformation_is_answered_failed_instead_of_refused_at_deploy() -> None:
    body = response(request(), ok=True, reason="1 created", physical_id="g", data={"Buckets": "b" * 5000})

    assert len(body) <= MAX_ANSWER_BYTES
    answer = json.loads(body)
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("route wiring: its answer would be ")
    assert answer["Data"] == {}
