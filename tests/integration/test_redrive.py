"""`polytrigger redrive` against the local stack: a real SQS queue (moto), the real handlers in process.

moto can only run a Lambda function in Docker, so ``InProcessLambda`` plays Lambda's asynchronous
invoke: it answers 202, runs the real handler, and parks a failed event in the queue as the
on-failure destination would. Invoking any other function goes to moto's Lambda, which knows none.
The stack (``--stack``) is a CloudFormation stack on moto with polytrigger's outputs and parameter.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from local.stack import LocalStack
from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.outcomes import ActionsFailed
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.messages import DeferredStart, decode_body, deferred_start, encode
from polytrigger.tools import redrive_cli
from polytrigger.tools.cli import main
from polytrigger.tools.redrive import Policy, Summary, redrive
from polytrigger.tools.redrive_sources import REDRIVEN_BECAUSE, function_name
from tests.integration.dispatch_support import BUSY_SYNC, Dispatch, statuses
from tests.integration.support import (
    ORDERS_MODEL,
    WAREHOUSE_BULK,
    Invoker,
    load_event,
    posts,
    starts,
)

ACCOUNT = "123456789012"
S3_FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:polytrigger-S3TriggerFunction-Ab12Cd34Ef56"
SCHEDULE_FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:polytrigger-ScheduleTriggerFunction-Gh78Ij90Kl12"
GONE_FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:polytrigger-S3TriggerFunction-Deleted0000"
FOREIGN_FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:someone-elses-function"
STACK = Policy((S3_FUNCTION, SCHEDULE_FUNCTION), stack="polytrigger")  # what --stack reads
ORDERS_KEY = "s3://acme-landing/orders/2026/11/23/orders-0001.csv"


def on_failure_record(function_arn: str, event: Any, error: Exception, attempts: int = 3) -> dict[str, Any]:
    """Lambda's invocation record for an SQS on-failure destination (asynchronous invocation, retries exhausted)."""
    request_id = str(uuid.uuid4())
    return {
        "version": "1.0",
        "timestamp": "2026-11-23T09:18:41.203Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": request_id,
            "stackTrace": [],
        },
    }


def recent(event: dict[str, Any], seconds_ago: int = 300) -> dict[str, Any]:
    """The sample event as if it had happened ``seconds_ago`` (within the dedup TTL: re-drivable)."""
    return {**event, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))}


def dead_letter_attributes(**values: str) -> dict[str, dict[str, str]]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


@dataclass
class Queue:
    url: str
    sqs: Any

    def send(self, body: Any, attributes: dict[str, dict[str, str]] | None = None) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        sent = self.sqs.send_message(QueueUrl=self.url, MessageBody=text, MessageAttributes=attributes or {})
        return str(sent["MessageId"])

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) messages."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return int(found[names[0]]), int(found[names[1]])

    def bodies(self) -> list[str]:
        """The visible messages' bodies, as sent (they stay visible)."""
        got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return sorted(message["Body"] for message in got.get("Messages", []))


@pytest.fixture
def queue(local_stack: LocalStack) -> Iterator[Queue]:
    """A fresh dead-letter queue on the stack's moto server, deleted afterwards."""
    sqs = local_stack.client("sqs")
    url = sqs.create_queue(QueueName=f"polytrigger-dlq-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    yield Queue(url, sqs)
    sqs.delete_queue(QueueUrl=url)


@dataclass
class InProcessLambda:
    """Lambda's asynchronous ``invoke`` for the two functions, running the real handlers in this process."""

    polytrigger: Invoker
    queue: Queue
    summaries: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["InvocationType"] == "Event"
        handlers = {
            function_name(S3_FUNCTION): self.polytrigger.s3,
            function_name(SCHEDULE_FUNCTION): self.polytrigger.schedule,
        }
        handler = handlers.get(function_name(kwargs["FunctionName"]))
        if handler is None:  # moto's Lambda: ResourceNotFoundException
            return dict(self.polytrigger.stack.client("lambda").invoke(**kwargs))
        event = json.loads(kwargs["Payload"])
        try:
            self.summaries.append(handler(event))
        except ActionsFailed as error:  # Lambda's retries would fail the same way: parked again
            self.failures.append(error)
            self.queue.send(on_failure_record(kwargs["FunctionName"].removesuffix(":$LATEST"), event, error))
        return {"StatusCode": 202, "Payload": b""}


def run(queue: Queue, lam: InProcessLambda, policy: Policy = STACK, **options: Any) -> tuple[Summary, list[str]]:
    lines: list[str] = []
    summary = redrive(
        queue.url, sqs=queue.sqs, lambda_api=lam, policy=policy, echo=lines.append, wait_seconds=0, **options
    )
    return summary, lines


def outcomes(summary: dict[str, Any]) -> dict[str, str]:
    return {outcome["sync_id"]: outcome["status"] for outcome in summary["outcomes"]}


def test_redrive_starts_what_failed_and_the_rest_come_back_duplicate(polytrigger: Invoker, queue: Queue) -> None:
    fake = polytrigger.stack.fake
    event = recent(load_event("eventbridge-object-created.json"))  # orders-landing: orders model, warehouse bulk
    fake.inject(503, times=3, path_contains=ORDERS_MODEL)  # outlasts the client's three attempts
    with pytest.raises(ActionsFailed) as raised:
        polytrigger.s3(event)
    assert (len(fake.executions(ORDERS_MODEL)), len(fake.executions(WAREHOUSE_BULK))) == (0, 1)
    queue.send(on_failure_record(S3_FUNCTION, event, raised.value))  # what AWS parks after its two retries
    fake.reset_calls()
    lam = InProcessLambda(polytrigger, queue)

    summary, lines = run(queue, lam)

    assert summary.clean
    assert summary.count("re-driven") == 1
    [line] = lines
    assert f"lambda on-failure: {ORDERS_KEY} (Object Created) -> {function_name(S3_FUNCTION)}" in line
    assert "[RetriesExhausted after 3 attempt(s): ActionsFailed: 1 action(s) failed and will be retried" in line
    assert "503" in line
    [result] = lam.summaries
    assert outcomes(result) == {ORDERS_MODEL: "started", WAREHOUSE_BULK: "duplicate"}
    assert [call.path for call in starts(fake)] == [f"/api/syncs/{ORDERS_MODEL}/executions"]
    assert (len(fake.executions(ORDERS_MODEL)), len(fake.executions(WAREHOUSE_BULK))) == (1, 1)
    assert queue.counts() == (0, 0)


def test_every_shape_is_re_driven_and_a_refused_invoke_stays(polytrigger: Invoker, queue: Queue) -> None:
    fake = polytrigger.stack.fake
    thaw = recent(load_event("scheduler-input-thaw.json"))
    rule = queue.send(  # the S3 rule could not invoke the function: the event never ran
        recent(load_event("eventbridge-object-created.json")),
        dead_letter_attributes(
            RULE_ARN=f"arn:aws:events:us-east-1:{ACCOUNT}:rule/polytrigger-S3TriggerFunctionS3Object-1A2B3C4D5E6F",
            TARGET_ARN=S3_FUNCTION,
            ERROR_CODE="SDK_CLIENT_ERROR",
            ERROR_MESSAGE="Unable to invoke Lambda function: Rate Exceeded.",
            EXHAUSTED_RETRY_CONDITION="MaximumRetryAttempts",
            RETRY_ATTEMPTS="8",
        ),
    )
    schedule = queue.send(  # a schedule could not invoke the function
        thaw,
        dead_letter_attributes(
            SCHEDULE_ARN=f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/polytrigger-ThawSchedule-Qr12St34",
            TARGET_ARN=SCHEDULE_FUNCTION,
            ERROR_CODE="AWS.Scheduler.LambdaTooManyRequestsException",
            ERROR_MESSAGE="Rate exceeded",
        ),
    )
    nightly = recent(load_event("scheduler-input-nightly.json"))
    gone_record = on_failure_record(GONE_FUNCTION, nightly, RuntimeError("boom"))
    gone = queue.send(gone_record)  # a function given with --function that no longer exists
    foreign_record = on_failure_record(FOREIGN_FUNCTION, nightly, RuntimeError("boom"))
    foreign = queue.send(foreign_record)  # not one of the functions it may invoke
    garbage = queue.send("<html>not an event</html>")
    lam = InProcessLambda(polytrigger, queue)

    summary, lines = run(queue, lam, Policy((S3_FUNCTION, SCHEDULE_FUNCTION, GONE_FUNCTION)))

    by_id = {result.message_id: result for result in summary.results}
    assert (by_id[rule].status, by_id[schedule].status) == ("re-driven", "re-driven")
    assert [by_id[left].status for left in (gone, foreign, garbage)] == ["left"] * 3
    assert "invoke failed: ResourceNotFoundException" in by_id[gone].line
    assert "names function someone-elses-function, which is not one of the functions given with --function" in (
        by_id[foreign].line
    )
    assert "unreadable: the body is not JSON" in by_id[garbage].line
    assert f"eventbridge rule: {ORDERS_KEY} (Object Created) -> polytrigger-S3TriggerFunction-" in by_id[rule].line
    assert f"scheduler: schedule thaw @ {thaw['time']}" in by_id[schedule].line
    assert not summary.clean
    assert summary.render().endswith("left 3 (unreadable 1, not allowed 1, failed 1)")
    assert len(lines) == 5
    assert sorted(status for result in lam.summaries for status in outcomes(result).values()) == [
        "activated",
        "activated",
        "started",
        "started",
    ]
    assert len(posts(fake)) == 4
    assert queue.counts() == (3, 0)  # left in the queue, visible again at once
    assert queue.bodies() == sorted(  # untouched
        [json.dumps(gone_record), json.dumps(foreign_record), "<html>not an event</html>"]
    )


def test_a_re_drive_that_fails_again_is_parked_again_not_lost(polytrigger: Invoker, queue: Queue) -> None:
    fake = polytrigger.stack.fake
    event = recent(load_event("eventbridge-object-created.json"))
    fake.inject(503, times=6, path_contains=ORDERS_MODEL)  # Polytomic is still down for the first re-drive
    with pytest.raises(ActionsFailed) as raised:
        polytrigger.s3(event)
    first = queue.send(on_failure_record(S3_FUNCTION, event, raised.value))
    lam = InProcessLambda(polytrigger, queue)

    summary, lines = run(queue, lam)

    assert [result.status for result in summary.results] == ["re-driven", "skipped"]
    assert summary.results[0].message_id == first
    assert "parked after this run started" in lines[1]  # not re-driven again in a loop
    assert len(lam.failures) == 1
    [parked] = queue.bodies()
    assert json.loads(parked)["requestPayload"] == event
    assert queue.counts() == (1, 0)

    again, _ = run(queue, lam)  # Polytomic is back

    assert [result.status for result in again.results] == ["re-driven"]
    assert outcomes(lam.summaries[-1]) == {ORDERS_MODEL: "started", WAREHOUSE_BULK: "duplicate"}
    assert queue.counts() == (0, 0)


def test_dry_run_lists_and_leaves_the_queue_untouched(
    local_stack: LocalStack, queue: Queue, capsys: pytest.CaptureFixture[str]
) -> None:
    local_stack.fake.reset()
    event = recent(load_event("eventbridge-object-created.json"))
    record = on_failure_record(S3_FUNCTION, event, RuntimeError("1 action(s) failed and will be retried"))
    queue.send(record)
    queue.send("not json")

    code = main(["redrive", "--queue-url", queue.url, "--function", S3_FUNCTION, "--dry-run"])  # boto3: moto

    out = capsys.readouterr().out.splitlines()
    assert code == 1  # the unreadable message stays: worth a non-zero exit
    assert len(out) == 3
    assert sum(line.startswith("would re-drive ") for line in out) == 1
    assert sum(line.startswith("left ") for line in out) == 1
    assert out[-1] == (
        "2 message(s): re-driven 0, would re-drive 1, skipped 0, left 1 (unreadable 1)"
        " (dry run: nothing invoked, sent or deleted)"
    )
    assert local_stack.fake.calls == []
    assert queue.counts() == (2, 0)
    assert queue.bodies() == sorted([json.dumps(record), "not json"])


def test_max_re_drives_at_most_n(polytrigger: Invoker, queue: Queue) -> None:
    thaw = recent(load_event("scheduler-input-thaw.json"))
    schedule_arn = f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/polytrigger-ThawSchedule-Qr12St34"
    for _ in range(3):
        queue.send(thaw, dead_letter_attributes(SCHEDULE_ARN=schedule_arn, TARGET_ARN=SCHEDULE_FUNCTION))
    lam = InProcessLambda(polytrigger, queue)

    summary, _ = run(queue, lam, max_messages=2)

    assert summary.count("re-driven") == 2
    assert [outcomes(result) for result in lam.summaries][1] == {ORDERS_MODEL: "duplicate", WAREHOUSE_BULK: "duplicate"}
    assert queue.counts() == (1, 0)


# -- --stack: the stack's functions only, both dead-letter queues, the dedup TTL -----------------

STACK_TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"IdempotencyTtlSeconds": {"Type": "Number", "Default": 86400}},
    "Resources": {
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "DispatchQueue": {"Type": "AWS::SQS::Queue"},
        "DispatchDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
    },
    "Outputs": {
        "S3TriggerFunctionArn": {"Value": S3_FUNCTION},
        "ScheduleTriggerFunctionArn": {"Value": SCHEDULE_FUNCTION},
        "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
        "DispatchQueueUrl": {"Value": {"Ref": "DispatchQueue"}},
        "DispatchDeadLetterQueueUrl": {"Value": {"Ref": "DispatchDeadLetterQueue"}},
    },
}


@dataclass
class Stack:
    name: str
    dead_letters: Queue
    dispatch: Queue
    dispatch_dead_letters: Queue


@pytest.fixture
def stack(local_stack: LocalStack) -> Iterator[Stack]:
    """A CloudFormation stack on moto with polytrigger's outputs (its three queues real, its functions named)."""
    cloudformation, sqs = local_stack.client("cloudformation"), local_stack.client("sqs")
    name = f"polytrigger-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(STACK_TEMPLATE))
    outputs = {
        output["OutputKey"]: output["OutputValue"]
        for output in cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    }
    yield Stack(
        name,
        Queue(outputs["DeadLetterQueueUrl"], sqs),
        Queue(outputs["DispatchQueueUrl"], sqs),
        Queue(outputs["DispatchDeadLetterQueueUrl"], sqs),
    )
    cloudformation.delete_stack(StackName=name)


def test_stack_re_drives_its_functions_events_and_sends_dispatch_messages_back(
    polytrigger: Invoker, stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = polytrigger.stack.fake
    event = recent(load_event("eventbridge-object-created.json"))
    fake.inject(503, times=3, path_contains=ORDERS_MODEL)
    with pytest.raises(ActionsFailed) as raised:
        polytrigger.s3(event)
    failed = stack.dead_letters.send(on_failure_record(S3_FUNCTION, event, raised.value))
    foreign = stack.dead_letters.send(on_failure_record(FOREIGN_FUNCTION, event, RuntimeError("boom")))
    two_days_old = recent(load_event("scheduler-input-nightly.json"), seconds_ago=2 * 86400)
    too_old = stack.dead_letters.send(on_failure_record(SCHEDULE_FUNCTION, two_days_old, RuntimeError("503")))
    trigger = Trigger.s3(
        bucket="acme-landing", key="orders/x.csv", event="created", sequencer="0A1B", time=datetime.now(UTC)
    )
    action = Action(route="orders-landing", kind="start", sync=SyncTarget(id=ORDERS_MODEL), trigger=trigger)
    start = deferred_start(action, since=time.time(), attempt=5, first_at=time.time() - 600)
    moved = stack.dispatch_dead_letters.send(encode(start))  # as SQS moves it after 5 receives: no parked_because
    fake.reset_calls()
    lam = InProcessLambda(polytrigger, stack.dead_letters)
    monkeypatch.setattr(redrive_cli, "default_clients", lambda url: (stack.dead_letters.sqs, lam))

    code = main(["redrive", "--stack", stack.name])  # the stack is read from moto's CloudFormation

    out = capsys.readouterr().out.splitlines()
    assert code == 1
    by_id = {line.split()[1]: line for line in out if line.startswith(("re-driven ", "left "))}
    assert by_id[failed].startswith("re-driven ")
    assert "names function someone-elses-function, which is not one of stack polytrigger-" in by_id[foreign]
    assert "too old: older than the dedup TTL (86400 s)" in by_id[too_old]
    assert "--force re-drives it anyway" in by_id[too_old]
    assert by_id[moved].startswith("re-driven ")
    assert "-> dispatch queue" in by_id[moved]
    assert out[-1] == "4 message(s): re-driven 2, would re-drive 0, skipped 0, left 2 (not allowed 1, too old 1)"
    assert [outcomes(result) for result in lam.summaries] == [{ORDERS_MODEL: "started", WAREHOUSE_BULK: "duplicate"}]
    assert [call.path for call in starts(fake)] == [f"/api/syncs/{ORDERS_MODEL}/executions"]
    assert stack.dead_letters.counts() == (2, 0)
    assert stack.dispatch_dead_letters.counts() == (0, 0)
    [resent] = stack.dispatch.bodies()
    assert decode_body(resent) == DeferredStart(
        start.id, start.action, start.since, start.attempt, start.first_at, parked_because=REDRIVEN_BECAUSE
    )


def test_a_deferred_start_re_driven_to_the_dispatch_queue_gets_a_fresh_wait(dispatch: Dispatch) -> None:
    """Moved to the dead-letter queue by SQS, it says nothing of why: the re-drive says it, so a 409 defers it again.

    Without ``parked_because`` the dispatcher would park it again at the first 409, its deferral having run out
    (test_deferral: a deferral past its maximum age is parked).
    """
    fake = dispatch.stack.fake
    fake.add_sync(BUSY_SYNC, kind="model", run_seconds=3600)
    _, first = dispatch.upload("busy/first.csv")
    assert statuses(first) == ["started"]
    _, second = dispatch.upload("busy/second.csv")
    assert statuses(second) == ["deferred"]
    message = dispatch.pump.next_message()
    body = json.loads(message["Body"])
    body["first_at"] = dispatch.now() - 3600  # it has waited past DEFERRAL_MAX_AGE_SECONDS
    sqs = dispatch.queues.sqs
    sqs.delete_message(QueueUrl=dispatch.queues.url, ReceiptHandle=message["ReceiptHandle"])
    sqs.send_message(QueueUrl=dispatch.queues.dead_letter_url, MessageBody=json.dumps(body))  # as SQS moves it
    policy = Policy((S3_FUNCTION,), dispatch_queue_url=dispatch.queues.url)

    summary = redrive(dispatch.queues.dead_letter_url, sqs=sqs, lambda_api=NoLambda(), policy=policy, wait_seconds=0)

    assert summary.count("re-driven") == 1
    again = dispatch.pump.until(lambda delivery: bool(delivery.outcomes), timeout=20)
    assert statuses(again.answer) == ["deferred"]  # a fresh wait, not parked again
    assert dispatch.queues.dead_letters() == []
    fake.finish_running(BUSY_SYNC)
    dispatch.pump.drain(timeout=20)
    assert dispatch.pump.outcomes()[-1]["status"] == "started"
    assert len(fake.executions(BUSY_SYNC)) == 2


class NoLambda:
    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError(f"a dispatch message was sent to a function: {kwargs.get('FunctionName')}")
