"""`polytrigger redrive`: dead-letter message -> original event, and the re-drive loop over an in-memory queue."""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from polytrigger.events.describe import describe_event
from polytrigger.tools import redrive
from polytrigger.tools.cli import main
from polytrigger.tools.redrive import (
    LAMBDA_RECORD,
    RULE_DEAD_LETTER,
    SCHEDULER_DEAD_LETTER,
    UnreadableMessage,
    function_name,
    parse_message,
    queue_region,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/polytrigger-DeadLetterQueue-Xy12Zw34"
S3_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:polytrigger-S3TriggerFunction-Ab12Cd34Ef56"
SCHEDULE_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:polytrigger-ScheduleTriggerFunction-Gh78Ij90Kl12"
ERROR = (
    "1 action(s) failed and will be retried: start 248df4b7-aa70-47b8-a036-33ac447e668d (orders-landing): "
    "Polytomic answered 503: service unavailable"
)


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def on_failure_record(event: Any, function_arn: str = f"{S3_FUNCTION}:$LATEST", **changes: Any) -> dict[str, Any]:
    """What Lambda sends to an SQS on-failure destination after the last retry of an asynchronous invocation."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": "2026-11-23T09:18:41.203Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-4a6b-8880-a18cdf61200e",
            "functionArn": function_arn,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": ERROR,
            "errorType": "ActionsFailed",
            "requestId": "e4b46cbf-b738-4a6b-8880-a18cdf61200e",
            "stackTrace": ['  File "/var/task/polytrigger/handlers/s3.py", line 31, in handler\n'],
        },
    }
    record.update(changes)
    return record


def attributes(**values: str) -> dict[str, dict[str, str]]:
    return {
        name: {"StringValue": value, "DataType": "Number" if value.isdigit() else "String"}
        for name, value in values.items()
    }


RULE_ATTRIBUTES = attributes(
    RULE_ARN="arn:aws:events:us-east-1:123456789012:rule/polytrigger-S3TriggerFunctionS3Object-1A2B3C4D5E6F",
    TARGET_ARN=S3_FUNCTION,
    ERROR_CODE="SDK_CLIENT_ERROR",
    ERROR_MESSAGE="Unable to invoke Lambda function: Rate Exceeded.",
    EXHAUSTED_RETRY_CONDITION="MaximumRetryAttempts",
    RETRY_ATTEMPTS="8",
)
SCHEDULER_ATTRIBUTES = attributes(
    SCHEDULE_ARN="arn:aws:scheduler:us-east-1:123456789012:schedule/default/polytrigger-NightlySchedule-Mn34Op56",
    TARGET_ARN=SCHEDULE_FUNCTION,
    ERROR_CODE="AWS.Scheduler.LambdaTooManyRequestsException",
    ERROR_MESSAGE="Rate exceeded",
    EXHAUSTED_RETRY_CONDITION="MaximumEventAgeInSeconds",
    RETRY_ATTEMPTS="5",
)

_ids = itertools.count(1)
NOW_MS = 1_000 + (27 * 60 + 5) * 60_000  # the re-drive runs 27h05m after the messages were parked


def message(body: Any, message_attributes: dict[str, Any] | None = None, sent_ms: int = 1_000) -> dict[str, Any]:
    """An SQS message as receive_message returns it."""
    number = next(_ids)
    found: dict[str, Any] = {
        "MessageId": f"00000000-0000-4000-8000-{number:012d}",
        "ReceiptHandle": f"receipt-{number}",
        "Body": body if isinstance(body, str) else json.dumps(body),
        "Attributes": {"SentTimestamp": str(sent_ms)},
    }
    if message_attributes:
        found["MessageAttributes"] = message_attributes
    return found


# -- message -> event -----------------------------------------------------------------------


def test_lambda_on_failure_record_gives_back_the_request_payload() -> None:
    event = load("eventbridge-object-created.json")

    parked = parse_message(message(on_failure_record(event)))

    assert parked.source == LAMBDA_RECORD
    assert parked.event == event
    assert parked.function == f"{S3_FUNCTION}:$LATEST"
    assert parked.error == f"RetriesExhausted after 3 attempt(s): ActionsFailed: {ERROR}"


def test_a_lambda_record_without_a_response_still_names_its_condition() -> None:
    record = on_failure_record(load("scheduler-input-nightly.json"), f"{SCHEDULE_FUNCTION}:$LATEST")
    record["requestContext"].update(condition="EventAgeExceeded", approximateInvokeCount=1)
    del record["responseContext"], record["responsePayload"]

    parked = parse_message(message(record))

    assert parked.error == "EventAgeExceeded after 1 attempt(s)"
    assert parked.event == {"schedule": "nightly", "time": "2026-11-23T02:00:00Z"}
    assert parked.function == f"{SCHEDULE_FUNCTION}:$LATEST"


def test_an_eventbridge_rule_dead_letter_is_the_event_itself() -> None:
    event = load("eventbridge-object-created.json")

    parked = parse_message(message(event, RULE_ATTRIBUTES))

    assert parked.source == RULE_DEAD_LETTER
    assert parked.event == event
    assert parked.function == S3_FUNCTION
    assert parked.error == (
        "SDK_CLIENT_ERROR: Unable to invoke Lambda function: Rate Exceeded. (after 8 retries, MaximumRetryAttempts)"
    )


def test_a_scheduler_dead_letter_is_the_schedule_input_itself() -> None:
    parked = parse_message(message(load("scheduler-input-nightly.json"), SCHEDULER_ATTRIBUTES))

    assert parked.source == SCHEDULER_DEAD_LETTER
    assert parked.event == {"schedule": "nightly", "time": "2026-11-23T02:00:00Z"}
    assert parked.function == SCHEDULE_FUNCTION
    assert parked.error.startswith("AWS.Scheduler.LambdaTooManyRequestsException: Rate exceeded (after 5 retries")


def test_a_dead_letter_with_only_an_error_code_names_no_function() -> None:
    parked = parse_message(message(load("scheduler-input-thaw.json"), attributes(ERROR_CODE="NO_PERMISSIONS")))

    assert (parked.source, parked.function, parked.error) == (RULE_DEAD_LETTER, None, "NO_PERMISSIONS: (no message)")


@pytest.mark.parametrize(
    ("body", "message_attributes", "reason"),
    [
        ("not json {", None, "the body is not JSON"),
        ("", None, "the body is not JSON"),
        ('{"schedule": "nightly", "time": "2026-11-23T02:00:00Z"}', None, "unknown shape"),
        ("[1, 2]", None, "unknown shape"),
        ('"a string"', RULE_ATTRIBUTES, "a dead letter whose body is not a JSON object"),
        (json.dumps({"version": "1.0", "requestContext": {"condition": "RetriesExhausted"}}), None, "requestPayload"),
        (json.dumps(on_failure_record("a string payload")), None, "requestPayload"),
    ],
    ids=["not-json", "empty", "bare-event", "json-array", "dead-letter-string", "record-no-payload", "record-str"],
)
def test_unreadable_messages_are_refused(body: str, message_attributes: dict[str, Any] | None, reason: str) -> None:
    with pytest.raises(UnreadableMessage, match=reason):
        parse_message(message(body, message_attributes))


@pytest.mark.parametrize(
    ("name", "description"),
    [
        ("eventbridge-object-created.json", "s3://acme-landing/orders/2026/11/23/orders-0001.csv (Object Created)"),
        ("eventbridge-object-deleted.json", "s3://acme-landing/snapshots/2026-11-22.parquet (Object Deleted)"),
        (
            "s3-notification-tricky-key.json",
            "s3://acme-landing/exports/customers/Q4 report+final 100% münchen.csv (ObjectCreated:CompleteMultipartUpload)",
        ),
        ("s3-notification-multi.json", "(+2 more)"),
        ("scheduler-input-nightly.json", "schedule nightly @ 2026-11-23T02:00:00Z"),
        ("scheduler-scheduled-event.json", "scheduled event nightly @ 2026-11-23T02:00:00Z (from aws.scheduler)"),
        ("eventbridge-scheduled-event.json", "scheduled event nightly @ 2026-11-23T02:00:00Z (from aws.events)"),
        ("sqs-s3-notifications.json", "aws:sqs batch of"),
        ("sns-s3-notification.json", "aws:sns batch of 1 record(s)"),
        ("unsupported-event.json", "aws:dynamodb batch of 1 record(s)"),
        ("s3-test-event.json", "event with keys Bucket, Event, HostId, RequestId, Service, Time"),
    ],
)
def test_events_are_described_in_one_short_line(name: str, description: str) -> None:
    described = describe_event(load(name))

    assert description in described
    assert "\n" not in described
    assert len(described) <= 200


@pytest.mark.parametrize(
    "value",
    [
        "polytrigger-S3TriggerFunction-Ab12Cd34Ef56",
        "polytrigger-S3TriggerFunction-Ab12Cd34Ef56:live",
        "123456789012:function:polytrigger-S3TriggerFunction-Ab12Cd34Ef56",
        S3_FUNCTION,
        f"{S3_FUNCTION}:$LATEST",
    ],
)
def test_function_names_compare_whatever_form_they_come_in(value: str) -> None:
    assert function_name(value) == "polytrigger-S3TriggerFunction-Ab12Cd34Ef56"


@pytest.mark.parametrize(
    ("url", "region"),
    [
        (QUEUE_URL, "us-east-1"),
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/dlq", "eu-west-1"),
        ("https://ap-southeast-2.queue.amazonaws.com/123456789012/dlq", "ap-southeast-2"),
        ("http://127.0.0.1:5000/123456789012/dlq", None),
    ],
)
def test_the_region_comes_from_the_queue_url(url: str, region: str | None) -> None:
    assert queue_region(url) == region


# -- the re-drive loop ----------------------------------------------------------------------


@dataclass
class FakeQueue:
    """An SQS queue in memory: receive hides messages until deleted or made visible again."""

    messages: list[dict[str, Any]]
    hidden: set[str] = field(default_factory=set)
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_delete: bool = False

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.received.append(kwargs)
        visible = [m for m in self.messages if m["ReceiptHandle"] not in self.hidden]
        batch = visible[: kwargs["MaxNumberOfMessages"]]
        self.hidden.update(m["ReceiptHandle"] for m in batch)
        return {"Messages": copy.deepcopy(batch)} if batch else {}

    def delete_message(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail_delete:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DeleteMessage")
        self.messages = [m for m in self.messages if m["ReceiptHandle"] != kwargs["ReceiptHandle"]]
        return {}

    def change_message_visibility(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["VisibilityTimeout"] == 0
        self.hidden.discard(kwargs["ReceiptHandle"])
        return {}

    def visible(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["ReceiptHandle"] not in self.hidden]


@dataclass
class FakeLambda:
    status: int = 202
    refuse: set[str] = field(default_factory=set)  # function names whose invoke raises
    calls: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if function_name(kwargs["FunctionName"]) in self.refuse:
            message = f"Function not found: {kwargs['FunctionName']}"
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": message}}, "Invoke")
        return {"StatusCode": self.status, "ResponseMetadata": {}}


def run(queue: FakeQueue, lam: FakeLambda, **options: Any) -> tuple[redrive.Summary, list[str]]:
    lines: list[str] = []
    summary = redrive.redrive(
        QUEUE_URL, sqs=queue, lambda_api=lam, echo=lines.append, wait_seconds=0, clock=lambda: NOW_MS / 1000, **options
    )
    return summary, lines


def test_each_event_is_invoked_asynchronously_then_its_message_deleted() -> None:
    s3_event, schedule_event = load("eventbridge-object-created.json"), load("scheduler-input-nightly.json")
    queue = FakeQueue(
        [message(on_failure_record(s3_event)), message(schedule_event, SCHEDULER_ATTRIBUTES)],
    )
    lam = FakeLambda()

    summary, lines = run(queue, lam)

    assert [(call["FunctionName"], call["InvocationType"]) for call in lam.calls] == [
        (f"{S3_FUNCTION}:$LATEST", "Event"),
        (SCHEDULE_FUNCTION, "Event"),
    ]
    assert [json.loads(call["Payload"]) for call in lam.calls] == [s3_event, schedule_event]
    assert queue.messages == []
    assert summary.clean
    assert summary.count("re-driven") == 2
    assert lines[0].startswith("re-driven      00000000-0000-4000-8000-")
    assert lines[0].endswith(
        "lambda on-failure: s3://acme-landing/orders/2026/11/23/orders-0001.csv (Object Created)"
        f" -> polytrigger-S3TriggerFunction-Ab12Cd34Ef56 (parked 27h05m ago)  [RetriesExhausted after 3 attempt(s): ActionsFailed: {ERROR}]"
    )
    assert "scheduler: schedule nightly @ 2026-11-23T02:00:00Z -> polytrigger-ScheduleTriggerFunction-" in lines[1]
    everything = "\n".join(lines)
    for payload_value in ("b1946ac92492d2347c6235b4d2611184", "0067419A3C5B7E2D10", "203.0.113.24", "stackTrace"):
        assert payload_value not in everything  # a description, never the payload
    assert queue.received[0]["MessageAttributeNames"] == ["All"]
    assert queue.received[0]["MessageSystemAttributeNames"] == ["SentTimestamp"]


def test_unreadable_and_refused_messages_stay_in_the_queue_visible_again() -> None:
    good = message(load("scheduler-input-thaw.json"), SCHEDULER_ATTRIBUTES)
    not_json = message("<html>oops</html>")
    gone = message(on_failure_record(load("eventbridge-object-created.json"), f"{S3_FUNCTION}-old:$LATEST"))
    queue = FakeQueue([not_json, gone, good])
    lam = FakeLambda(refuse={"polytrigger-S3TriggerFunction-Ab12Cd34Ef56-old"})

    summary, lines = run(queue, lam)

    assert [m["MessageId"] for m in queue.visible()] == [not_json["MessageId"], gone["MessageId"]]
    assert not summary.clean
    assert (summary.count("re-driven"), summary.count("left")) == (1, 2)
    assert lines[0] == f"left           {not_json['MessageId']}  unreadable: the body is not JSON"
    assert "invoke failed: ResourceNotFoundException: Function not found: " in lines[1]
    assert summary.render() == "3 message(s): re-driven 1, would re-drive 0, skipped 0, left 2"


def test_an_invoke_not_accepted_or_a_failed_delete_leaves_the_message() -> None:
    queue = FakeQueue([message(load("scheduler-input-thaw.json"), SCHEDULER_ATTRIBUTES)])

    summary, lines = run(queue, FakeLambda(status=200))

    assert summary.count("left") == 1
    assert "invoke answered 200, not 202" in lines[0]
    assert len(queue.visible()) == 1

    queue.fail_delete = True
    summary, lines = run(queue, FakeLambda())

    assert summary.count("left") == 1
    assert "invoked, but not deleted (AccessDenied: no)" in lines[0]
    assert len(queue.visible()) == 1


def test_function_restricts_the_run_and_covers_messages_that_name_none() -> None:
    for_s3 = message(on_failure_record(load("eventbridge-object-created.json")))
    for_schedule = message(load("scheduler-input-nightly.json"), SCHEDULER_ATTRIBUTES)
    unnamed = message(load("scheduler-input-thaw.json"), attributes(ERROR_CODE="NO_PERMISSIONS"))
    queue = FakeQueue([for_s3, for_schedule, unnamed])
    lam = FakeLambda()

    summary, lines = run(queue, lam, function="polytrigger-ScheduleTriggerFunction-Gh78Ij90Kl12")

    assert [call["FunctionName"] for call in lam.calls] == [
        SCHEDULE_FUNCTION,
        "polytrigger-ScheduleTriggerFunction-Gh78Ij90Kl12",
    ]
    assert [m["MessageId"] for m in queue.visible()] == [for_s3["MessageId"]]
    assert summary.clean  # skipping is a choice, not a failure
    assert lines[0].startswith("skipped")
    assert "-> polytrigger-S3TriggerFunction-Ab12Cd34Ef56, not polytrigger-ScheduleTriggerFunction-" in lines[0]


def test_a_message_naming_no_function_needs_function() -> None:
    queue = FakeQueue([message(load("scheduler-input-thaw.json"), attributes(ERROR_CODE="NO_PERMISSIONS"))])
    lam = FakeLambda()

    summary, lines = run(queue, lam)

    assert lam.calls == []
    assert summary.count("left") == 1
    assert "-> no function named: pass --function" in lines[0]


def test_dry_run_invokes_and_deletes_nothing() -> None:
    queue = FakeQueue(
        [message(on_failure_record(load("eventbridge-object-created.json"))), message("not json"), message("{}")]
    )
    lam = FakeLambda()

    summary, lines = run(queue, lam, dry_run=True)

    assert lam.calls == []
    assert len(queue.visible()) == 3
    assert (summary.count("would re-drive"), summary.count("left")) == (1, 2)
    assert lines[0].startswith("would re-drive ")


def test_max_bounds_the_messages_handled() -> None:
    queue = FakeQueue([message(load("scheduler-input-thaw.json"), SCHEDULER_ATTRIBUTES) for _ in range(25)])

    summary, _ = run(queue, FakeLambda(), max_messages=12)

    assert len(summary.results) == 12
    assert [call["MaxNumberOfMessages"] for call in queue.received] == [10, 2]
    assert len(queue.messages) == 13


def test_a_message_parked_after_the_run_started_waits_for_the_next_run() -> None:
    """A re-drive that fails again comes back as a new message: not re-driven in a loop."""
    queue = FakeQueue([message(load("scheduler-input-thaw.json"), SCHEDULER_ATTRIBUTES, sent_ms=NOW_MS + 1)])
    lam = FakeLambda()

    summary, lines = run(queue, lam)  # the run starts at NOW_MS

    assert lam.calls == []
    assert summary.count("skipped") == 1
    assert "parked after this run started" in lines[0]
    assert len(queue.visible()) == 1


# -- command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["redrive"],
        ["redrive", "--queue-url", QUEUE_URL, "--max", "0"],
        ["redrive", "--queue-url", QUEUE_URL, "--max", "ten"],
        ["redrive", "--queue-url", QUEUE_URL, "--force"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert "usage: polytrigger" in capsys.readouterr().err


def test_the_command_exits_1_while_messages_stay(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = FakeQueue([message(load("scheduler-input-thaw.json"), SCHEDULER_ATTRIBUTES), message("not json")])
    lam = FakeLambda()
    seen: list[str] = []

    def clients(url: str) -> tuple[FakeQueue, FakeLambda]:
        seen.append(url)
        return queue, lam

    monkeypatch.setattr(redrive, "default_clients", clients)

    assert main(["redrive", "--queue-url", QUEUE_URL, "--function", SCHEDULE_FUNCTION, "--max", "5"]) == 1

    out = capsys.readouterr().out.splitlines()
    assert seen == [QUEUE_URL]
    assert len(lam.calls) == 1
    assert out[-1] == "2 message(s): re-driven 1, would re-drive 0, skipped 0, left 1"

    queue.messages = [m for m in queue.messages if m["Body"] != "not json"]
    assert main(["redrive", "--queue-url", QUEUE_URL, "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("(dry run: nothing invoked, nothing deleted)")


def test_an_unreachable_queue_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Missing(FakeQueue):
        def receive_message(self, **kwargs: Any) -> dict[str, Any]:
            code, text = "AWS.SimpleQueueService.NonExistentQueue", "does not exist"
            raise ClientError({"Error": {"Code": code, "Message": text}}, "ReceiveMessage")

    monkeypatch.setattr(redrive, "default_clients", lambda url: (Missing([]), FakeLambda()))

    assert main(["redrive", "--queue-url", QUEUE_URL]) == 2

    captured = capsys.readouterr()
    assert captured.err == (
        "polytrigger: cannot read the queue: AWS.SimpleQueueService.NonExistentQueue: does not exist\n"
    )
