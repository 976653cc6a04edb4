"""The routes file decides what fires: the transformed template plus the wiring function against moto.

Deploys nothing. The wiring function runs as CloudFormation calls it, against moto's Scheduler,
EventBridge and SQS; its answer goes to a loopback "pre-signed URL"; the S3 rule is the template's,
with the answer put where the template takes it (Fn::Split), and real S3-shaped events are sent
through it to see which buckets reach the function.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack
from local.stack.cfn_answers import Answers
from local.stack.lambda_context import LocalContext
from local.stack.lambda_versions import LambdaVersions
from polytrigger import bootstrap
from polytrigger.flows.on_wiring_request import WiringFlow
from polytrigger.handlers import route_wiring
from polytrigger.route_wiring.aws import SchedulerGroup
from polytrigger.route_wiring.cloudformation import ANSWER_SECONDS, ATTEMPTS
from tests.integration.support import captured_logs
from tests.integration.wiring_support import (
    FUNCTION,
    FUNCTION_ARN,
    ROLE_ARN,
    TARGET_ARN,
    Deployment,
    context,
    write_routes,
)

NIGHTLY = {"name": "nightly", "cron": "0 2 * * ? *", "timezone": "Europe/Berlin"}
HOURLY = {"name": "hourly", "rate": "1 hour"}
SPREAD = {"name": "spread", "cron": "30 6 ? * MON-FRI *", "flexible_window": "15m"}
LAUNCH = {"name": "launch", "at": "2027-01-15T09:00:00", "timezone": "America/New_York"}
WEEKLY = {"name": "weekly", "rate": "7 days", "flexible_window": 60}


@pytest.fixture
def answers() -> Iterator[Answers]:
    recorder = Answers()
    yield recorder
    recorder.close()


@pytest.fixture
def stack(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Deployment]:
    """A fresh schedule group and dead-letter queue in moto, and the deployment that names them."""
    group = f"polytrigger-{tmp_path.name[-20:].replace('_', '-')}"
    local_stack.client("scheduler").create_schedule_group(Name=group)
    sqs = local_stack.client("sqs")
    queue = sqs.create_queue(QueueName=f"dlq-{group}")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    monkeypatch.setenv("ROUTES_FILE", str(tmp_path / "routes.json"))
    bootstrap.reset()  # a new deployment: a new container, which reads its own ROUTES_FILE
    yield Deployment(group=group, dead_letter_arn=dead_letter_arn)
    bootstrap.reset()
    scheduler = local_stack.client("scheduler")
    for name in schedule_names(scheduler, group):
        scheduler.delete_schedule(GroupName=group, Name=name)


def deploy(kind: str, stack: Deployment, answers: Answers, version: int | None = None) -> dict[str, Any]:
    """CloudFormation's request reaching the version it names (as the unqualified front hands it over)."""
    route_wiring.handler(stack.request(kind, answers), context(stack.version if version is None else version))
    return answers.last()


def schedule_names(scheduler: Any, group: str) -> list[str]:
    pages = scheduler.get_paginator("list_schedules").paginate(GroupName=group)
    return [item["Name"] for page in pages for item in page["Schedules"]]


def schedules(local_stack: LocalStack, group: str) -> dict[str, dict[str, Any]]:
    scheduler = local_stack.client("scheduler")
    found = {name: scheduler.get_schedule(GroupName=group, Name=name) for name in schedule_names(scheduler, group)}
    for schedule in found.values():
        schedule.pop("ResponseMetadata", None)
    return found


def delivered_buckets(local_stack: LocalStack, pattern: dict[str, Any], buckets: list[str]) -> list[str]:
    """Which of these buckets' object events the S3 rule, with this pattern, lets through to its target."""
    events, sqs = local_stack.client("events"), local_stack.client("sqs")
    name = f"s3-rule-{abs(hash(json.dumps(pattern))) % 10**8}"
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "s3-trigger", "Arn": arn}])
    try:
        entries = [
            {
                "Source": "aws.s3",
                "DetailType": kind,
                "Detail": json.dumps({"bucket": {"name": b}, "object": {"key": "k"}}),
            }
            for b in buckets
            for kind in ("Object Created", "Object Deleted")
        ]
        assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
        got: list[str] = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
            got += [json.loads(m["Body"])["detail"]["bucket"]["name"] for m in batch]
            sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return sorted(got)
    finally:
        events.remove_targets(Rule=name, Ids=["s3-trigger"])
        events.delete_rule(Name=name)
        sqs.delete_queue(QueueUrl=queue)


def test_the_routes_wire_exactly_their_buckets_and_schedules_then_their_edit_idempotently(
    local_stack: LocalStack, stack: Deployment, answers: Answers, tmp_path: Path
) -> None:
    routes = tmp_path / "routes.json"
    everyone = ["acme-landing", "acme-exports", "acme-archive", "acme-new", "someone-elses"]

    # Create: 3 buckets, 4 schedules (cron in a time zone, rate, a flexible window, one-time at).
    write_routes(
        routes, ["acme-landing", "acme-exports", "acme-archive"], [NIGHTLY, HOURLY, SPREAD, LAUNCH], ("by-hand",)
    )
    answer = deploy("Create", stack, answers)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == stack.group
    assert answer["Data"]["Changes"] == "4 created"
    assert answer["Data"]["ScheduleCount"] == "4"
    assert answer["Data"]["SchedulesMadeElsewhereCount"] == "1"
    assert answers.headers[-1]["Content-Type"] == ""  # the URL is signed without one
    pattern = stack.s3_pattern(answer)
    assert delivered_buckets(local_stack, pattern, everyone) == sorted(
        ["acme-archive", "acme-exports", "acme-landing"] * 2  # created and deleted events, each
    )
    made = schedules(local_stack, stack.group)
    assert set(made) == {"nightly", "hourly", "spread", "launch"}
    assert made["nightly"]["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert made["nightly"]["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert made["hourly"]["ScheduleExpression"] == "rate(1 hour)"
    assert made["spread"]["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert made["launch"]["ScheduleExpression"] == "at(2027-01-15T09:00:00)"
    assert made["launch"]["ScheduleExpressionTimezone"] == "America/New_York"
    for name, schedule in made.items():
        target = schedule["Target"]
        assert target["Arn"] == TARGET_ARN
        assert target["RoleArn"] == ROLE_ARN
        assert json.loads(target["Input"]) == {"schedule": name, "time": "<aws.scheduler.scheduled-time>"}
        assert target["DeadLetterConfig"] == {"Arn": stack.dead_letter_arn}
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}
        assert schedule["State"] == "ENABLED"
    assert "by-hand" not in made  # named bare: made elsewhere, never by polytrigger

    # Update: one bucket and one schedule removed, one of each added; the rest untouched.
    write_routes(routes, ["acme-landing", "acme-exports", "acme-new"], [NIGHTLY, HOURLY, LAUNCH, WEEKLY])
    stack.version = 2
    answer = deploy("Update", stack, answers)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["Changes"] == "1 created, 1 deleted, 3 unchanged"
    assert delivered_buckets(local_stack, stack.s3_pattern(answer), everyone) == sorted(
        ["acme-exports", "acme-landing", "acme-new"] * 2
    )
    after = schedules(local_stack, stack.group)
    assert set(after) == {"nightly", "hourly", "launch", "weekly"}
    assert after["weekly"]["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 60}
    for name in ("nightly", "hourly", "launch"):
        assert after[name]["LastModificationDate"] == made[name]["LastModificationDate"], f"{name} was rewritten"

    # The same deploy again (a retried request, a deploy with no routes change): nothing changes.
    answer = deploy("Update", stack, answers)
    assert answer["Data"]["Changes"] == "4 unchanged"
    assert schedules(local_stack, stack.group) == after

    # Delete: the group is emptied (CloudFormation then deletes the group and the rule).
    answer = deploy("Delete", stack, answers)
    assert answer["Status"] == "SUCCESS"
    assert schedules(local_stack, stack.group) == {}


def test_a_routes_arrival_deadline_is_wired_as_schedules_that_invoke_the_poller_and_unwired_with_it(
    local_stack: LocalStack, stack: Deployment, answers: Answers, tmp_path: Path
) -> None:
    from tests.integration.wiring_support import POLLER_ARN

    routes = tmp_path / "routes.json"
    write_routes(routes, ["acme-landing"], [NIGHTLY])
    document = json.loads(routes.read_text(encoding="utf-8"))
    document["routes"][0]["expect"] = {
        "key": "orders/dt={day}/_SUCCESS",
        "by": "06:00",
        "warn": "05:30",
        "timezone": "Europe/Berlin",
        "days": "MON-FRI",
    }
    routes.write_text(json.dumps(document), encoding="utf-8")
    answer = deploy("Create", stack, answers)
    made = schedules(local_stack, stack.group)
    write_routes(routes, ["acme-landing"], [NIGHTLY])  # the expect removed
    stack.version = 2
    removed = deploy("Update", stack, answers)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert set(made) == {"nightly", "deadline-land-acme-landing-late", "deadline-land-acme-landing-warn"}
    late = made["deadline-land-acme-landing-late"]
    assert late["ScheduleExpression"] == "cron(0 6 ? * MON,TUE,WED,THU,FRI *)"
    assert late["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert late["Target"]["Arn"] == POLLER_ARN
    assert json.loads(late["Target"]["Input"]) == {
        "deadline": "land-acme-landing",
        "time": "<aws.scheduler.scheduled-time>",
    }
    assert made["deadline-land-acme-landing-warn"]["ScheduleExpression"] == "cron(30 5 ? * MON,TUE,WED,THU,FRI *)"
    assert removed["Data"]["Changes"] == "2 deleted, 1 unchanged"
    assert set(schedules(local_stack, stack.group)) == {"nightly"}


def test_a_schedule_edited_by_hand_is_put_back_and_one_added_by_hand_is_removed(
    local_stack: LocalStack, stack: Deployment, answers: Answers, tmp_path: Path
) -> None:
    write_routes(tmp_path / "routes.json", ["acme-landing"], [NIGHTLY])
    deploy("Create", stack, answers)
    scheduler = local_stack.client("scheduler")
    nightly = scheduler.get_schedule(GroupName=stack.group, Name="nightly")
    scheduler.update_schedule(
        GroupName=stack.group, Name="nightly", ScheduleExpression="cron(0 3 * * ? *)",
        FlexibleTimeWindow={"Mode": "OFF"}, Target=nightly["Target"],
    )  # fmt: skip
    scheduler.create_schedule(
        GroupName=stack.group, Name="stray", ScheduleExpression="rate(5 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"}, Target=nightly["Target"],
    )  # fmt: skip

    answer = deploy("Update", stack, answers)

    assert answer["Data"]["Changes"] == "1 updated, 1 deleted"
    assert set(schedules(local_stack, stack.group)) == {"nightly"}
    restored = scheduler.get_schedule(GroupName=stack.group, Name="nightly")
    assert restored["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert restored["ScheduleExpressionTimezone"] == "Europe/Berlin"


def test_a_hand_edit_to_a_field_the_routes_do_not_set_is_put_back_too(
    local_stack: LocalStack, stack: Deployment, answers: Answers, tmp_path: Path
) -> None:
    """A hand-set EndDate would silently stop the schedule: every settable field is the wiring's, not only
    those the routes fill in, so each is compared and written (absent, or its default, when unused)."""
    write_routes(tmp_path / "routes.json", [], [NIGHTLY])
    deploy("Create", stack, answers)
    scheduler = local_stack.client("scheduler")
    made = schedules(local_stack, stack.group)["nightly"]
    wired = {k: v for k, v in made.items() if k not in ("Arn", "CreationDate", "LastModificationDate")}
    hand_edits: list[dict[str, Any]] = [
        {"EndDate": datetime(2027, 1, 1, tzinfo=UTC)},
        {"StartDate": datetime(2030, 1, 1, tzinfo=UTC)},
        {"KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
        {"ActionAfterCompletion": "DELETE"},
        {"Target": {**made["Target"], "SqsParameters": {"MessageGroupId": "by-hand"}}},
    ]
    for edit in hand_edits:
        scheduler.update_schedule(**{**wired, **edit})

        answer = deploy("Update", stack, answers)

        assert answer["Data"]["Changes"] == "1 updated", edit
        restored = schedules(local_stack, stack.group)["nightly"]
        assert {k: v for k, v in restored.items() if k != "LastModificationDate"} == {
            k: v for k, v in made.items() if k != "LastModificationDate"
        }, edit
    assert deploy("Update", stack, answers)["Data"]["Changes"] == "1 unchanged"


def test_schedules_state_disables_every_schedule_of_the_stack(
    local_stack: LocalStack, stack: Deployment, answers: Answers, tmp_path: Path
) -> None:
    write_routes(tmp_path / "routes.json", [], [NIGHTLY, HOURLY])
    stack.state = "DISABLED"

    answer = deploy("Create", stack, answers)

    assert answer["Data"]["Buckets"] == ""  # no bucket has an empty name: the rule matches nothing
    assert delivered_buckets(local_stack, stack.s3_pattern(answer), ["acme-landing"]) == []
    assert {s["State"] for s in schedules(local_stack, stack.group).values()} == {"DISABLED"}


def test_routes_that_cannot_be_wired_fail_the_deploy_naming_the_route_and_change_nothing(
    local_stack: LocalStack, stack: Deployment, answers: Answers, tmp_path: Path
) -> None:
    write_routes(tmp_path / "routes.json", [], [{"name": "nightly", "rate": "1 hour", "timezone": "Mars/Olympus"}])

    answer = deploy("Create", stack, answers)

    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == (
        "routes cannot be wired: route 'on-nightly': schedule.timezone: 'Mars/Olympus' is not a time zone"
        " the IANA database knows"
    )
    assert schedules(local_stack, stack.group) == {}


def test_a_scheduler_refusal_fails_the_deploy_with_its_reason_instead_of_leaving_it_waiting(
    local_stack: LocalStack, stack: Deployment, answers: Answers, tmp_path: Path
) -> None:
    write_routes(tmp_path / "routes.json", [], [NIGHTLY])
    stack.group = "no-such-group"

    with captured_logs() as logs:
        answer = deploy("Create", stack, answers)

    assert answer["Status"] == "FAILED"
    # AWS answers ResourceNotFoundException; moto, a 500: either way the reason is the Scheduler's, on one line.
    assert answer["Reason"].startswith("route wiring failed: ")
    assert "\n" not in answer["Reason"]
    assert "route wiring failed" in logs.getvalue()


def test_a_delete_of_a_group_already_gone_succeeds(stack: Deployment, answers: Answers) -> None:
    stack.group = "already-deleted-group"
    answer = deploy("Delete", stack, answers)
    assert answer["Status"] == "SUCCESS"
    assert answer["Reason"] == "schedule group already gone"


def test_a_request_whose_version_cannot_run_is_answered_failed_not_left_waiting(
    stack: Deployment, answers: Answers, tmp_path: Path
) -> None:
    """CloudFormation calls the unqualified function, which hands the request to the version it names;
    here that version does not exist (moto has no such function): the front answers, with the reason."""
    write_routes(tmp_path / "routes.json", [], [NIGHTLY])
    route_wiring.handler(stack.request("Update", answers), context(None))

    answer = answers.last()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("route wiring: could not run its version: ResourceNotFoundException")


def test_a_request_naming_another_functions_version_is_refused(stack: Deployment, answers: Answers) -> None:
    request = stack.request("Update", answers)
    request["ResourceProperties"]["CodeVersion"] = "arn:aws:lambda:us-east-1:123456789012:function:someone-else:3"

    route_wiring.handler(request, context(None))

    assert answers.last()["Status"] == "FAILED"
    assert answers.last()["Reason"].endswith("CodeVersion names a version of another function")


@pytest.mark.parametrize("kind", ["Create", "Delete"])
def test_a_malformed_request_is_answered_and_a_delete_of_it_does_not_strand_the_stack(
    stack: Deployment, answers: Answers, kind: str
) -> None:
    request = stack.request(kind, answers)
    del request["ResourceProperties"]["ScheduleGroup"]

    route_wiring.handler(request, context(stack.version))

    answer = answers.last()
    assert answer["Status"] == ("SUCCESS" if kind == "Delete" else "FAILED")
    assert "ResourceProperties.ScheduleGroup is not a schedule group name" in answer["Reason"]


def test_an_answer_url_off_this_machine_over_http_is_never_called(stack: Deployment, answers: Answers) -> None:
    request = stack.request("Create", answers)
    request["ResponseURL"] = "http://example.invalid/answer"

    with captured_logs() as logs:
        result = route_wiring.handler(request, context(stack.version))

    assert result == {"answered": False}
    assert answers.received == []
    assert "ResponseURL must be https" in logs.getvalue()


def test_a_flaky_answer_url_is_retried(
    local_stack: LocalStack, stack: Deployment, answers: Answers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("polytrigger.route_wiring.cloudformation.time.sleep", lambda _seconds: None)
    write_routes(tmp_path / "routes.json", ["acme-landing"], [])
    answers.fail_first = 2

    result = route_wiring.handler(stack.request("Create", answers), context(stack.version))

    assert result == {"answered": True, "status": "SUCCESS"}
    assert len(answers.received) == 1


@pytest.mark.parametrize("kind", ["Update", "Delete"])
def test_a_malformed_update_or_delete_keeps_the_resources_own_id_so_it_is_never_a_replacement(
    stack: Deployment, answers: Answers, kind: str
) -> None:
    """A new PhysicalResourceId in an Update's answer makes CloudFormation replace the resource, and the
    replaced one's Delete would empty the schedule group; whatever the answer, the id stays the request's."""
    request = stack.request(kind, answers)
    request["ResourceProperties"]["State"] = "PAUSED"

    route_wiring.handler(request, context(stack.version))

    answer = answers.last()
    assert answer["Status"] == ("SUCCESS" if kind == "Delete" else "FAILED")
    assert "State must be ENABLED or DISABLED" in answer["Reason"]
    assert answer["PhysicalResourceId"] == stack.group


def test_ninety_schedules_are_answered_within_cloudformations_4_kb(
    local_stack: LocalStack, stack: Deployment, answers: Answers, tmp_path: Path
) -> None:
    """The answer says how many schedules and their digest, never their names: 90 named ones once made 5 kB."""
    many = [{"name": f"warehouse-refresh-for-the-finance-team-{i:03d}", "rate": "1 day"} for i in range(90)]
    write_routes(tmp_path / "routes.json", ["acme-landing"], many, ("made-by-hand",))

    answer = deploy("Create", stack, answers)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert len(schedules(local_stack, stack.group)) == 90
    assert answer["Data"]["ScheduleCount"] == "90"
    assert answer["Data"]["SchedulesMadeElsewhereCount"] == "1"
    digest = answer["Data"]["SchedulesDigest"]
    assert len(digest) == 64
    assert deploy("Update", stack, answers)["Data"]["SchedulesDigest"] == digest  # the same schedules: the same digest


@pytest.fixture
def versions(monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaVersions]:
    """Lambda's Invoke API for the wiring function's versions: the front hands a request to one through it."""
    with LambdaVersions() as lambdas:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambdas.url)
        yield lambdas


def version_of(number: int) -> Any:
    """A published version of the wiring function: this very code, invoked as that version."""
    return lambda event: route_wiring.handler(event, context(number))


def test_a_request_is_handed_to_the_version_it_names_which_answers_it_once(
    local_stack: LocalStack, stack: Deployment, answers: Answers, versions: LambdaVersions, tmp_path: Path
) -> None:
    write_routes(tmp_path / "routes.json", [], [NIGHTLY])
    stack.version = 2
    versions.versions["2"] = version_of(2)

    result = route_wiring.handler(stack.request("Update", answers), context(None))

    assert result == {"answered": True, "forwarded": stack.version_arn}
    assert [version for version, _ in versions.invoked] == ["2"]
    assert len(answers.received) == 1  # the version's answer; the front adds none
    assert answers.last()["Status"] == "SUCCESS"
    assert set(schedules(local_stack, stack.group)) == {"nightly"}


def test_a_version_that_crashes_is_answered_failed_by_the_front(
    stack: Deployment, answers: Answers, versions: LambdaVersions
) -> None:
    def broken(event: Any) -> Any:
        raise RuntimeError("the version's code is broken")

    versions.versions[str(stack.version)] = broken

    route_wiring.handler(stack.request("Update", answers), context(None))

    answer = answers.last()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "route wiring: its version 1 failed (Unhandled: RuntimeError)"
    assert answer["PhysicalResourceId"] == stack.group


def test_a_version_that_ran_but_did_not_answer_is_answered_failed_by_the_front(
    stack: Deployment, answers: Answers, versions: LambdaVersions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version's own answers were lost (the answer URL refused each); it returned, unanswered."""
    monkeypatch.setattr("polytrigger.route_wiring.cloudformation.time.sleep", lambda _seconds: None)
    write_routes(tmp_path / "routes.json", [], [NIGHTLY])
    versions.versions[str(stack.version)] = version_of(stack.version)
    answers.fail_first = ATTEMPTS  # every attempt of the version's; the front's lands

    result = route_wiring.handler(stack.request("Update", answers), context(None))

    assert result == {"answered": True, "status": "FAILED"}
    assert answers.last()["Reason"] == "route wiring: its version 1 did not answer CloudFormation"


def test_a_version_still_running_when_the_front_must_answer_is_answered_failed_in_time(
    stack: Deployment, answers: Answers, versions: LambdaVersions
) -> None:
    """The front waits only as long as its own invocation can, less the time an answer takes."""
    released = threading.Event()
    versions.versions[str(stack.version)] = lambda event: released.wait(30) and {"answered": True}
    front: Any = LocalContext(function_name=FUNCTION, timeout_seconds=ANSWER_SECONDS + 1)

    try:
        route_wiring.handler(stack.request("Update", answers), front)
    finally:
        released.set()

    answer = answers.last()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("route wiring: its version 1 did not finish within ")


def test_a_scheduler_client_that_cannot_be_made_is_answered_failed(
    stack: Deployment, answers: Answers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_routes(tmp_path / "routes.json", [], [NIGHTLY])
    monkeypatch.setenv("AWS_ENDPOINT_URL_SCHEDULER", "not a url")
    bootstrap.reset()

    result = route_wiring.handler(stack.request("Create", answers), context(stack.version))

    assert result == {"answered": True, "status": "FAILED"}
    assert answers.last()["Reason"] == (
        "route wiring cannot run: the Scheduler's client cannot be made: Invalid endpoint: not a url"
    )


def test_an_unforeseen_failure_is_still_answered(stack: Deployment, answers: Answers, tmp_path: Path) -> None:
    def broken(version_arn: str, event: Any, wait_seconds: float) -> str:
        raise RuntimeError("a bug")

    flow = WiringFlow(tmp_path / "routes.json", lambda name: SchedulerGroup(None, name), broken, lambda record: None)

    result = flow.request(stack.request("Update", answers), FUNCTION_ARN)

    assert result == {"answered": True, "status": "FAILED"}
    assert answers.last()["Reason"] == "route wiring failed: internal error: RuntimeError"
    assert answers.last()["PhysicalResourceId"] == stack.group
