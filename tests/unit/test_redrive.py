"""`polytrigger redrive`: dead-letter message -> original event, and the re-drive loop over an in-memory queue.

Only the stack's functions are invoked, a dispatch message goes back to the dispatch queue, and an
event older than the dedup TTL stays unless --force.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferrals import window_id
from polytrigger.dispatch.messages import DeferredStart, decode_body, deferred_start, encode, window_flush
from polytrigger.events.describe import describe_event
from polytrigger.tools import redrive, redrive_cli
from polytrigger.tools.cli import main
from polytrigger.tools.redrive import Policy
from polytrigger.tools.redrive_cli import queue_region
from polytrigger.tools.redrive_sources import (
    LAMBDA_RECORD,
    REDRIVEN_BECAUSE,
    RULE_DEAD_LETTER,
    SCHEDULER_DEAD_LETTER,
    StackError,
    UnreadableMessage,
    event_time,
    function_name,
    parse_message,
    read_stack,
    same_function,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
ACCOUNT = "123456789012"
SYNC_ID = "248df4b7-aa70-47b8-a036-33ac447e668d"
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


RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/polytrigger-S3TriggerFunctionS3Object-1A2B3C4D5E6F"
RULE_ATTRIBUTES = attributes(
    RULE_ARN=RULE_ARN,
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
NOW_MS = int(datetime(2026, 11, 23, 11, 25, 42, tzinfo=UTC).timestamp() * 1000)  # the re-drive's clock
PARKED_MS = NOW_MS - (2 * 60 + 5) * 60_000  # the messages were parked 2h05m before it


def message(body: Any, message_attributes: dict[str, Any] | None = None, sent_ms: int = PARKED_MS) -> dict[str, Any]:
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


def now_ms() -> int:
    """Now, for the command line's runs (they read the real clock)."""
    return int(time.time() * 1000)


def happened(event: dict[str, Any], hours_ago: float) -> dict[str, Any]:
    """The event as if it had happened ``hours_ago`` hours before now (its ``time`` field)."""
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    return {**event, "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


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


NO_TARGET = attributes(RULE_ARN=RULE_ARN, ERROR_CODE="NO_PERMISSIONS")  # a dead letter without TARGET_ARN


def test_a_dead_letter_without_a_target_names_no_function() -> None:
    parked = parse_message(message(load("scheduler-input-thaw.json"), NO_TARGET))

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
        ('{"kind": "deferred"}', attributes(ERROR_MESSAGE="not a dispatch message"), "where it came from"),
        ('{"schedule": "nightly"}', attributes(TARGET_ARN=S3_FUNCTION, ERROR_CODE="X"), "where it came from"),
    ],
    ids=[
        "not-json",
        "empty",
        "bare-event",
        "json-array",
        "dead-letter-string",
        "record-no-payload",
        "record-str",
        "parked-by-the-dispatcher-unread",
        "no-rule-or-schedule",
    ],
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
    sent: list[dict[str, Any]] = field(default_factory=list)  # send_message requests (to another queue)
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

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.sent.append(kwargs)
        return {"MessageId": "sent"}

    def visible(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["ReceiptHandle"] not in self.hidden]


@dataclass
class FakeSqs:
    """Several FakeQueues behind one client, by QueueUrl; what is sent lands in the queue it names."""

    queues: dict[str, FakeQueue]

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        return self.queues[kwargs["QueueUrl"]].receive_message(**kwargs)

    def delete_message(self, **kwargs: Any) -> dict[str, Any]:
        return self.queues[kwargs["QueueUrl"]].delete_message(**kwargs)

    def change_message_visibility(self, **kwargs: Any) -> dict[str, Any]:
        return self.queues[kwargs["QueueUrl"]].change_message_visibility(**kwargs)

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        return self.queues[kwargs["QueueUrl"]].send_message(**kwargs)


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


STACK_POLICY = Policy(functions=(S3_FUNCTION, SCHEDULE_FUNCTION), stack="polytrigger")  # as --stack reads it


def run(
    queue: FakeQueue, lam: FakeLambda, policy: Policy = STACK_POLICY, **options: Any
) -> tuple[redrive.Summary, list[str]]:
    lines: list[str] = []
    summary = redrive.redrive(
        QUEUE_URL,
        sqs=queue,
        lambda_api=lam,
        policy=policy,
        echo=lines.append,
        wait_seconds=0,
        clock=lambda: NOW_MS / 1000,
        **options,
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
        (S3_FUNCTION, "Event"),  # the stack's function, never the ARN the message says
        (SCHEDULE_FUNCTION, "Event"),
    ]
    assert [json.loads(call["Payload"]) for call in lam.calls] == [s3_event, schedule_event]
    assert queue.messages == []
    assert summary.clean
    assert summary.count("re-driven") == 2
    assert lines[0].startswith("re-driven      00000000-0000-4000-8000-")
    assert lines[0].endswith(
        "lambda on-failure: s3://acme-landing/orders/2026/11/23/orders-0001.csv (Object Created)"
        f" -> polytrigger-S3TriggerFunction-Ab12Cd34Ef56 (event 2h10m old, parked 2h05m ago)  [RetriesExhausted after 3 attempt(s): ActionsFailed: {ERROR}]"
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
    gone = message(on_failure_record(load("eventbridge-object-created.json")))
    queue = FakeQueue([not_json, gone, good])
    lam = FakeLambda(refuse={"polytrigger-S3TriggerFunction-Ab12Cd34Ef56"})

    summary, lines = run(queue, lam)

    assert [m["MessageId"] for m in queue.visible()] == [not_json["MessageId"], gone["MessageId"]]
    assert not summary.clean
    assert (summary.count("re-driven"), summary.count("left")) == (1, 2)
    assert lines[0] == f"left           {not_json['MessageId']}  unreadable: the body is not JSON"
    assert "invoke failed: ResourceNotFoundException: Function not found: " in lines[1]
    assert summary.render() == "3 message(s): re-driven 1, would re-drive 0, skipped 0, left 2 (unreadable 1, failed 1)"


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
    unnamed = message(load("scheduler-input-thaw.json"), NO_TARGET)
    queue = FakeQueue([for_s3, for_schedule, unnamed])
    lam = FakeLambda()

    only = ("polytrigger-ScheduleTriggerFunction-Gh78Ij90Kl12",)
    summary, lines = run(queue, lam, Policy(STACK_POLICY.functions, only, stack="polytrigger"))

    assert [call["FunctionName"] for call in lam.calls] == [SCHEDULE_FUNCTION, SCHEDULE_FUNCTION]
    assert [m["MessageId"] for m in queue.visible()] == [for_s3["MessageId"]]
    assert summary.clean  # skipping is a choice, not a failure
    assert lines[0].startswith("skipped")
    assert "-> polytrigger-S3TriggerFunction-Ab12Cd34Ef56, not polytrigger-ScheduleTriggerFunction-" in lines[0]


def test_a_message_naming_no_function_needs_function() -> None:
    queue = FakeQueue([message(load("scheduler-input-thaw.json"), NO_TARGET)])
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
        ["redrive", "--queue-url", QUEUE_URL, "--function", S3_FUNCTION, "--dedup-ttl", "0"],
        ["redrive", "--queue-url", QUEUE_URL, "--force"],  # which functions may it invoke?
        ["redrive", "--function", S3_FUNCTION],  # which queue?
    ],
    ids=["nothing", "max-0", "max-ten", "dedup-ttl-0", "no-function", "no-queue"],
)
def test_bad_arguments_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert "usage: polytrigger" in capsys.readouterr().err


def test_the_command_exits_1_while_messages_stay(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    thaw = happened(load("scheduler-input-thaw.json"), hours_ago=1)
    queue = FakeQueue([message(thaw, SCHEDULER_ATTRIBUTES, sent_ms=now_ms()), message("not json")])
    lam = FakeLambda()
    seen: list[str] = []

    def clients(url: str) -> tuple[FakeQueue, FakeLambda]:
        seen.append(url)
        return queue, lam

    monkeypatch.setattr(redrive_cli, "default_clients", clients)

    assert main(["redrive", "--queue-url", QUEUE_URL, "--function", SCHEDULE_FUNCTION, "--max", "5"]) == 1

    out = capsys.readouterr().out.splitlines()
    assert seen == [QUEUE_URL]
    assert len(lam.calls) == 1
    assert out[-1] == "2 message(s): re-driven 1, would re-drive 0, skipped 0, left 1 (unreadable 1)"

    queue.messages = [m for m in queue.messages if m["Body"] != "not json"]
    assert main(["redrive", "--queue-url", QUEUE_URL, "--function", SCHEDULE_FUNCTION, "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("(dry run: nothing invoked, sent or deleted)")


def test_an_unreachable_queue_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Missing(FakeQueue):
        def receive_message(self, **kwargs: Any) -> dict[str, Any]:
            code, text = "AWS.SimpleQueueService.NonExistentQueue", "does not exist"
            raise ClientError({"Error": {"Code": code, "Message": text}}, "ReceiveMessage")

    monkeypatch.setattr(redrive_cli, "default_clients", lambda url: (Missing([]), FakeLambda()))

    assert main(["redrive", "--queue-url", QUEUE_URL, "--function", S3_FUNCTION]) == 2

    captured = capsys.readouterr()
    assert captured.err == (
        "polytrigger: cannot read the queue: AWS.SimpleQueueService.NonExistentQueue: does not exist\n"
    )


# -- only the stack's functions, dispatch messages, the dedup TTL ----------------------------


def dispatch_action(trigger_at: float) -> Action:
    trigger = Trigger.s3(
        bucket="acme-landing",
        key="orders/a.csv",
        event="created",
        sequencer="01",
        time=datetime.fromtimestamp(trigger_at, UTC),
    )
    return Action(route="orders-landing", kind="start", sync=SyncTarget(id=SYNC_ID), trigger=trigger, debounce=60)


def parked_dispatch_message(sent_ms: int) -> dict[str, Any]:
    """A deferred start the dispatcher parked in the dispatch dead-letter queue (adapters.queue.SqsQueue.park)."""
    trigger = Trigger.s3(
        bucket="acme-landing", key="orders/a.csv", event="created", sequencer="01", time=datetime.now(UTC)
    )
    action = Action(route="orders-landing", kind="start", sync=SyncTarget(id=SYNC_ID), trigger=trigger)
    start = deferred_start(action, since=time.time(), attempt=7, first_at=time.time() - 3600)
    reason = "still running after 21600 s of deferral"
    return message({**encode(start), "parked_because": reason}, attributes(ERROR_MESSAGE=reason), sent_ms=sent_ms)


def test_a_parked_dispatch_message_is_never_sent_to_a_trigger_function(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It carries an ERROR_MESSAGE attribute, as an EventBridge dead letter does: it was taken for one."""
    queue, lam = FakeQueue([parked_dispatch_message(now_ms())]), FakeLambda()
    monkeypatch.setattr(redrive_cli, "default_clients", lambda url: (queue, lam))

    code = main(["redrive", "--queue-url", QUEUE_URL, "--function", S3_FUNCTION])

    lines = capsys.readouterr().out.splitlines()
    assert lam.calls == []
    assert len(queue.visible()) == 1
    assert code == 1
    assert "dispatch queue" in lines[0]


def test_without_stack_or_function_the_command_refuses_to_invoke_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:someone-elses-function:$LATEST"
    queue = FakeQueue([message(on_failure_record(happened(load("eventbridge-object-created.json"), 1), foreign))])
    lam = FakeLambda()
    monkeypatch.setattr(redrive_cli, "default_clients", lambda url: (queue, lam))

    with pytest.raises(SystemExit) as exited:
        main(["redrive", "--queue-url", QUEUE_URL])

    assert exited.value.code == 2
    assert lam.calls == []
    assert "--stack" in capsys.readouterr().err
    assert len(queue.visible()) == 1


def test_an_event_older_than_the_dedup_ttl_is_left_unless_forced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its dedup records have expired: a re-drive would start again what had started the first time."""
    event = happened(load("scheduler-input-nightly.json"), hours_ago=72)
    sent = now_ms() - 71 * 3_600_000  # the scheduler parked it an hour after the event
    queue, lam = FakeQueue([message(event, SCHEDULER_ATTRIBUTES, sent_ms=sent)]), FakeLambda()
    monkeypatch.setattr(redrive_cli, "default_clients", lambda url: (queue, lam))

    code = main(["redrive", "--queue-url", QUEUE_URL, "--function", SCHEDULE_FUNCTION])

    lines = capsys.readouterr().out.splitlines()
    assert (code, lam.calls, len(queue.visible())) == (1, [], 1)
    assert "too old" in lines[0]
    assert "--force" in lines[0]

    assert main(["redrive", "--queue-url", QUEUE_URL, "--function", SCHEDULE_FUNCTION, "--force"]) == 0

    assert [json.loads(call["Payload"]) for call in lam.calls] == [event]
    assert queue.messages == []


# -- only the stack's functions ------------------------------------------------------------------


def test_a_message_naming_a_function_outside_the_stack_is_left() -> None:
    event = load("eventbridge-object-created.json")
    foreign = message(on_failure_record(event, f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:exfiltrate:$LATEST"))
    other_account = message(on_failure_record(event, S3_FUNCTION.replace(ACCOUNT, "210987654321")))
    queue, lam = FakeQueue([foreign, other_account]), FakeLambda()

    summary, lines = run(queue, lam)

    assert lam.calls == []
    assert len(queue.visible()) == 2
    assert "-> names function exfiltrate, which is not one of stack polytrigger's functions: left" in lines[0]
    assert "names function polytrigger-S3TriggerFunction-Ab12Cd34Ef56, which is not one of" in lines[1]
    assert summary.render().endswith("left 2 (not allowed 2)")


def test_without_a_policy_nothing_is_invoked() -> None:
    queue, lam = FakeQueue([message(load("scheduler-input-nightly.json"), SCHEDULER_ATTRIBUTES)]), FakeLambda()

    summary, lines = run(queue, lam, Policy())

    assert lam.calls == []
    assert summary.left("not allowed") == 1
    assert "which is not one of the functions given with --function" in lines[0]


def test_polytrigger_s_own_parking_record_is_re_driven_to_its_function() -> None:
    """adapters.queue.EventParking writes Lambda's on-failure shape for a permanent failure."""
    event = load("scheduler-input-nightly.json")
    record = {
        "version": "1.0",
        "timestamp": "2026-11-23T02:00:03.512Z",
        "requestContext": {
            "requestId": "6f1c2a4e-0d4b-4a57-9a44-2b2f61b0f3c1",
            "functionArn": SCHEDULE_FUNCTION,
            "condition": "PermanentFailure",
            "approximateInvokeCount": 1,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Parked"},
        "responsePayload": {"errorType": "Parked", "errorMessage": "sync 248df4b7 is inactive (Polytomic 422)"},
    }
    queue, lam = FakeQueue([message(record, attributes(ERROR_MESSAGE="sync 248df4b7 is inactive"))]), FakeLambda()

    summary, lines = run(queue, lam)

    assert [(call["FunctionName"], json.loads(call["Payload"])) for call in lam.calls] == [(SCHEDULE_FUNCTION, event)]
    assert queue.messages == []
    assert summary.count("re-driven") == 1
    assert "[PermanentFailure after 1 attempt(s): Parked: sync 248df4b7 is inactive (Polytomic 422)]" in lines[0]


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        (S3_FUNCTION, f"{S3_FUNCTION}:$LATEST", True),
        (S3_FUNCTION, "polytrigger-S3TriggerFunction-Ab12Cd34Ef56", True),
        (S3_FUNCTION, f"{ACCOUNT}:function:polytrigger-S3TriggerFunction-Ab12Cd34Ef56", True),
        (S3_FUNCTION, "210987654321:function:polytrigger-S3TriggerFunction-Ab12Cd34Ef56", False),
        (S3_FUNCTION, S3_FUNCTION.replace("us-east-1", "eu-west-1"), False),
        (S3_FUNCTION, SCHEDULE_FUNCTION, False),
    ],
)
def test_functions_are_the_same_by_name_account_and_region(one: str, other: str, same: bool) -> None:
    assert same_function(one, other) is same
    assert same_function(other, one) is same


# -- dispatch messages go back to the dispatch queue ----------------------------------------------

DISPATCH_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/polytrigger-DispatchQueue-Qr56St78"
WITH_DISPATCH = Policy(STACK_POLICY.functions, dispatch_queue_url=DISPATCH_QUEUE_URL, stack="polytrigger")


def test_a_dispatch_message_goes_back_to_the_dispatch_queue_marked_as_parked() -> None:
    """Moved by SQS after 5 receives, a deferred start has no parked_because: it gets one (a fresh wait)."""
    start = deferred_start(dispatch_action(NOW_MS / 1000 - 3600), since=0, attempt=3, first_at=NOW_MS / 1000 - 3000)
    already = DeferredStart(start.id, start.action, 0, 4, 0, parked_because="still running after 21600 s")
    window = window_flush(dispatch_action(NOW_MS / 1000 - 60), window_id(dispatch_action(0)), NOW_MS / 1000 - 60, 2)
    bodies = [json.dumps(encode(start)), json.dumps(encode(already)), json.dumps(encode(window))]
    queue, lam = FakeQueue([message(body) for body in bodies]), FakeLambda()

    summary, lines = run(queue, lam, WITH_DISPATCH)

    assert lam.calls == []
    assert [sent["QueueUrl"] for sent in queue.sent] == [DISPATCH_QUEUE_URL] * 3
    resent = [decode_body(sent["MessageBody"]) for sent in queue.sent]
    assert resent[0] == DeferredStart(
        start.id, start.action, start.since, start.attempt, start.first_at, parked_because=REDRIVEN_BECAUSE
    )
    assert [sent["MessageBody"] for sent in queue.sent][1:] == bodies[1:]  # as they came
    assert queue.messages == []
    assert summary.count("re-driven") == 3
    assert (
        "dispatch deferred start (attempt 3): s3://acme-landing/orders/a.csv (created), route orders-landing"
        in (lines[0])
    )
    assert "-> dispatch queue (event 1h00m old, parked 2h05m ago)" in lines[0]
    assert "[still running after 21600 s]" in lines[1]
    assert "dispatch debounce window: " in lines[2]


def test_a_dispatch_message_without_a_dispatch_queue_stays_and_dry_run_sends_nothing() -> None:
    start = deferred_start(dispatch_action(NOW_MS / 1000 - 3600), since=0, attempt=1, first_at=0)
    queue, lam = FakeQueue([message(encode(start), attributes(ERROR_MESSAGE="5 receives"))]), FakeLambda()

    summary, lines = run(queue, lam)

    assert (lam.calls, queue.sent, len(queue.visible())) == ([], [], 1)
    assert "goes back to the dispatch queue, which is unknown: pass --stack or --dispatch-queue-url" in lines[0]
    assert summary.render().endswith("left 1 (no dispatch queue 1)")

    summary, lines = run(queue, lam, WITH_DISPATCH, dry_run=True)

    assert (lam.calls, queue.sent, len(queue.visible())) == ([], [], 1)
    assert lines[0].startswith("would re-drive ")
    assert "-> dispatch queue" in lines[0]


def test_a_failed_send_leaves_the_dispatch_message() -> None:
    class Refusing(FakeQueue):
        def send_message(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage")

    start = deferred_start(dispatch_action(NOW_MS / 1000 - 3600), since=0, attempt=1, first_at=0)
    queue = Refusing([message(encode(start))])

    summary, lines = run(queue, FakeLambda(), WITH_DISPATCH)

    assert len(queue.visible()) == 1
    assert summary.left("failed") == 1
    assert "send failed: AccessDenied: no" in lines[0]


# -- the dedup TTL -------------------------------------------------------------------------------


def at(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("eventbridge-object-created.json", "2026-11-23T09:15:42Z"),
        ("s3-notification-created.json", "2026-11-23T09:15:42.318Z"),
        ("s3-notification-multi.json", "2026-11-23T11:00:01.117Z"),  # the oldest record
        ("sqs-s3-notifications.json", None),
        ("sns-s3-notification.json", None),
        ("scheduler-input-nightly.json", "2026-11-23T02:00:00Z"),
        ("scheduler-scheduled-event.json", "2026-11-23T02:00:00Z"),
        ("eventbridge-scheduled-event.json", "2026-11-23T02:00:00Z"),
    ],
)
def test_the_event_s_own_time(name: str, expected: str | None) -> None:
    event = load(name)
    found = event_time(event)

    assert found is not None
    if expected is not None:
        assert found == at(expected)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"schedule": "nightly", "time": "<aws.scheduler.scheduled-time>"}, None),  # parked for it: no time
        ({"schedule": "Bad Name!", "time": "2026-11-23T02:00:00Z"}, "2026-11-23T02:00:00Z"),  # the raw field
        ({"Records": [{"eventTime": "2026-11-23T09:00:00Z", "eventName": "x"}]}, "2026-11-23T09:00:00Z"),
        ({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-23T08:59:58Z"}, None),
        ({"time": 12}, None),
    ],
)
def test_an_odd_event_s_time_is_read_from_its_raw_fields_or_none(event: dict[str, Any], expected: str | None) -> None:
    assert event_time(event) == (at(expected) if expected else None)


def test_a_dispatch_message_s_time_is_its_trigger_s() -> None:
    start = deferred_start(dispatch_action(at("2026-11-23T09:00:00Z")), since=0, attempt=1, first_at=0)

    assert event_time(start) == at("2026-11-23T09:00:00Z")


def test_the_age_is_the_event_s_or_else_the_message_s() -> None:
    old_event = happened(load("eventbridge-object-created.json"), 0)  # replaced below: 25 hours before NOW
    old_event["time"] = datetime.fromtimestamp(NOW_MS / 1000 - 25 * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    no_time = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "acme-landing"}
    future = load("scheduler-input-thaw.json")  # a week ahead of NOW: the message's age counts
    messages = [
        message(on_failure_record(old_event)),  # parked 2h05m ago, but the event is 25 hours old
        message(on_failure_record(no_time), sent_ms=NOW_MS - 25 * 3_600_000),
        message(future, SCHEDULER_ATTRIBUTES, sent_ms=NOW_MS - 25 * 3_600_000),
        message(on_failure_record(no_time)),  # 2h05m: fine
    ]
    queue, lam = FakeQueue(messages), FakeLambda()

    summary, lines = run(queue, lam)

    assert [result.status for result in summary.results] == ["left", "left", "left", "re-driven"]
    assert summary.render().endswith("left 3 (too old 3)")
    assert "(event 25h00m old, parked 2h05m ago): too old: older than the dedup TTL (86400 s)" in lines[0]
    assert "(parked 25h00m ago): too old" in lines[1]
    assert "(event 0m old, parked 25h00m ago): too old" in lines[2]
    assert "actions that did succeed the first time would run again (a second start); --force re-drives it" in lines[0]
    assert len(lam.calls) == 1


def test_the_dedup_ttl_and_force_change_what_is_too_old() -> None:
    event = load("scheduler-input-nightly.json")  # 9h25m before NOW
    policy = Policy(STACK_POLICY.functions, dedup_ttl=3600, stack="polytrigger")
    queue, lam = FakeQueue([message(event, SCHEDULER_ATTRIBUTES)]), FakeLambda()

    summary, lines = run(queue, lam, policy, dry_run=True)

    assert summary.left("too old") == 1
    assert "older than the dedup TTL (3600 s)" in lines[0]

    summary, lines = run(queue, lam, Policy(policy.functions, dedup_ttl=3600, force=True, stack="polytrigger"))

    assert summary.count("re-driven") == 1
    assert "[--force: older than the dedup TTL (3600 s); a second start is possible]" in lines[0]
    assert len(lam.calls) == 1


def test_a_dispatch_message_older_than_the_dedup_ttl_stays() -> None:
    start = deferred_start(dispatch_action(NOW_MS / 1000 - 3 * 86400), since=0, attempt=9, first_at=0)
    queue = FakeQueue([message(encode(start))])

    summary, lines = run(queue, FakeLambda(), WITH_DISPATCH)

    assert (queue.sent, summary.left("too old")) == ([], 1)
    assert "-> dispatch queue (event 3d00h old, parked 2h05m ago): too old" in lines[0]


# -- --stack -------------------------------------------------------------------------------------

DEAD_LETTER_URL = QUEUE_URL
DISPATCH_DEAD_LETTER_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/polytrigger-DispatchDeadLetterQueue-Uv9"


@dataclass
class FakeCloudFormation:
    outputs: dict[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def describe_stacks(self, **kwargs: Any) -> dict[str, Any]:
        self.asked.append(kwargs["StackName"])
        return {
            "Stacks": [
                {
                    "StackName": kwargs["StackName"],
                    "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in self.outputs.items()],
                    "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
                }
            ]
        }


STACK_OUTPUTS = {
    "S3TriggerFunctionArn": S3_FUNCTION,
    "ScheduleTriggerFunctionArn": SCHEDULE_FUNCTION,
    "DeadLetterQueueUrl": DEAD_LETTER_URL,
    "DeadLetterQueueArn": "arn:aws:sqs:us-east-1:123456789012:polytrigger-DeadLetterQueue-Xy12Zw34",
    "DispatchQueueUrl": DISPATCH_QUEUE_URL,
    "DispatchDeadLetterQueueUrl": DISPATCH_DEAD_LETTER_URL,
    "DispatcherFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:polytrigger-DispatcherFunction-Wx12",
}


def test_read_stack_takes_the_outputs_and_the_dedup_ttl() -> None:
    stack = read_stack(FakeCloudFormation(STACK_OUTPUTS, {"IdempotencyTtlSeconds": "7200"}), "polytrigger")

    assert stack.functions == (S3_FUNCTION, SCHEDULE_FUNCTION)  # never the dispatcher
    assert (stack.dead_letter_queue_url, stack.dispatch_dead_letter_queue_url) == (
        DEAD_LETTER_URL,
        DISPATCH_DEAD_LETTER_URL,
    )
    assert (stack.dispatch_queue_url, stack.dedup_ttl) == (DISPATCH_QUEUE_URL, 7200)
    assert read_stack(FakeCloudFormation(STACK_OUTPUTS), "polytrigger").dedup_ttl == 86400


@pytest.mark.parametrize(
    ("outputs", "parameters", "reason"),
    [
        ({"DeadLetterQueueUrl": DEAD_LETTER_URL}, {}, "is it a polytrigger stack"),
        (STACK_OUTPUTS, {"IdempotencyTtlSeconds": "a day"}, "IdempotencyTtlSeconds is not a number"),
    ],
)
def test_a_stack_that_is_not_polytrigger_s_is_refused(
    outputs: dict[str, str], parameters: dict[str, str], reason: str
) -> None:
    with pytest.raises(StackError, match=reason):
        read_stack(FakeCloudFormation(outputs, parameters), "other")


def stack_command(
    monkeypatch: pytest.MonkeyPatch, cloudformation: FakeCloudFormation
) -> tuple[FakeQueue, FakeQueue, FakeQueue, FakeLambda]:
    dead, dispatch_dead, dispatch = FakeQueue([]), FakeQueue([]), FakeQueue([])
    sqs = FakeSqs({DEAD_LETTER_URL: dead, DISPATCH_DEAD_LETTER_URL: dispatch_dead, DISPATCH_QUEUE_URL: dispatch})
    lam = FakeLambda()
    monkeypatch.setattr(redrive_cli, "default_clients", lambda url: (sqs, lam))
    monkeypatch.setattr(redrive_cli, "default_cloudformation", lambda: cloudformation)
    return dead, dispatch_dead, dispatch, lam


def test_stack_re_drives_both_dead_letter_queues(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cloudformation = FakeCloudFormation(STACK_OUTPUTS, {"IdempotencyTtlSeconds": "86400"})
    dead, dispatch_dead, dispatch, lam = stack_command(monkeypatch, cloudformation)
    event = happened(load("eventbridge-object-created.json"), hours_ago=2)
    foreign = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:not-polytrigger"
    dead.messages = [
        message(on_failure_record(event), sent_ms=now_ms()),
        message(on_failure_record(event, foreign), sent_ms=now_ms()),
    ]
    start = deferred_start(dispatch_action(time.time() - 3600), since=0, attempt=2, first_at=0)
    dispatch_dead.messages = [message(encode(start), attributes(ERROR_MESSAGE="5 receives"), sent_ms=now_ms())]

    assert main(["redrive", "--stack", "polytrigger"]) == 1

    out = capsys.readouterr().out.splitlines()
    assert cloudformation.asked == ["polytrigger"]
    assert [(call["FunctionName"], json.loads(call["Payload"])) for call in lam.calls] == [(S3_FUNCTION, event)]
    assert [decode_body(sent["MessageBody"]).id for sent in dispatch.sent] == [start.id]
    assert [m["Body"] for m in dead.visible()] == [json.dumps(on_failure_record(event, foreign))]
    assert dispatch_dead.messages == []
    assert out[0] == f"DeadLetterQueueUrl: {DEAD_LETTER_URL}"
    assert "names function not-polytrigger, which is not one of stack polytrigger's functions: left" in out[2]
    assert out[3] == f"DispatchDeadLetterQueueUrl: {DISPATCH_DEAD_LETTER_URL}"
    assert out[-1] == "3 message(s): re-driven 2, would re-drive 0, skipped 0, left 1 (not allowed 1)"


def test_stack_with_queue_url_function_and_dedup_ttl(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cloudformation = FakeCloudFormation(STACK_OUTPUTS, {"IdempotencyTtlSeconds": "600"})
    dead, dispatch_dead, _, lam = stack_command(monkeypatch, cloudformation)
    nightly = happened(load("scheduler-input-nightly.json"), hours_ago=1)  # older than the stack's 600 s
    dead.messages = [
        message(nightly, SCHEDULER_ATTRIBUTES, sent_ms=now_ms()),
        message(happened(load("eventbridge-object-created.json"), 0.5), RULE_ATTRIBUTES, sent_ms=now_ms()),
    ]
    dispatch_dead.messages = [message("not read: --queue-url names the other queue")]
    command = ["redrive", "--stack", "polytrigger", "--queue-url", DEAD_LETTER_URL, "--function", SCHEDULE_FUNCTION]

    assert main(command) == 1

    out = capsys.readouterr().out.splitlines()
    assert "too old: older than the dedup TTL (600 s)" in out[0]
    assert out[1].startswith("skipped ")
    assert out[-1] == "2 message(s): re-driven 0, would re-drive 0, skipped 1, left 1 (too old 1)"

    assert main([*command, "--dedup-ttl", "7200"]) == 0

    assert [call["FunctionName"] for call in lam.calls] == [SCHEDULE_FUNCTION]
    assert len(dispatch_dead.messages) == 1


def test_stack_refuses_a_function_that_is_not_its_own(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, _, lam = stack_command(monkeypatch, FakeCloudFormation(STACK_OUTPUTS))

    with pytest.raises(SystemExit) as exited:
        main(["redrive", "--stack", "polytrigger", "--function", "someone-elses-function"])

    assert (exited.value.code, lam.calls) == (2, [])
    assert "--function someone-elses-function is not one of stack polytrigger's functions" in capsys.readouterr().err


def test_an_unreadable_stack_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Missing(FakeCloudFormation):
        def describe_stacks(self, **kwargs: Any) -> dict[str, Any]:
            text = "Stack with id nope does not exist"
            raise ClientError({"Error": {"Code": "ValidationError", "Message": text}}, "DescribeStacks")

    stack_command(monkeypatch, Missing({}))

    assert main(["redrive", "--stack", "nope"]) == 2

    assert capsys.readouterr().err == (
        "polytrigger: cannot read the stack nope: ValidationError: Stack with id nope does not exist\n"
    )
