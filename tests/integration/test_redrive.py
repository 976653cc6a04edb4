"""`polytrigger redrive` against the local stack: a real SQS queue (moto), the real handlers in process.

moto can only run a Lambda function in Docker, so ``InProcessLambda`` plays Lambda's asynchronous
invoke: it answers 202, runs the real handler, and parks a failed event in the queue as the
on-failure destination would. Invoking any other function goes to moto's Lambda, which knows none.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.stack import LocalStack
from polytrigger.handlers.answer import ActionsFailed
from polytrigger.tools.cli import main
from polytrigger.tools.redrive import Summary, function_name, redrive
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


def run(queue: Queue, lam: InProcessLambda, **options: Any) -> tuple[Summary, list[str]]:
    lines: list[str] = []
    summary = redrive(queue.url, sqs=queue.sqs, lambda_api=lam, echo=lines.append, wait_seconds=0, **options)
    return summary, lines


def outcomes(summary: dict[str, Any]) -> dict[str, str]:
    return {outcome["sync_id"]: outcome["status"] for outcome in summary["outcomes"]}


def test_redrive_starts_what_failed_and_the_rest_come_back_duplicate(polytrigger: Invoker, queue: Queue) -> None:
    fake = polytrigger.stack.fake
    event = load_event("eventbridge-object-created.json")  # orders-landing: the orders model and warehouse bulk syncs
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
    rule = queue.send(  # the S3 rule could not invoke the function: the event never ran
        load_event("eventbridge-object-created.json"),
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
        load_event("scheduler-input-thaw.json"),
        dead_letter_attributes(
            SCHEDULE_ARN=f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/polytrigger-ThawSchedule-Qr12St34",
            TARGET_ARN=SCHEDULE_FUNCTION,
            ERROR_CODE="AWS.Scheduler.LambdaTooManyRequestsException",
            ERROR_MESSAGE="Rate exceeded",
        ),
    )
    gone_record = on_failure_record(GONE_FUNCTION, load_event("scheduler-input-nightly.json"), RuntimeError("boom"))
    gone = queue.send(gone_record)
    garbage = queue.send("<html>not an event</html>")
    lam = InProcessLambda(polytrigger, queue)

    summary, lines = run(queue, lam)

    by_id = {result.message_id: result for result in summary.results}
    assert (by_id[rule].status, by_id[schedule].status) == ("re-driven", "re-driven")
    assert (by_id[gone].status, by_id[garbage].status) == ("left", "left")
    assert "invoke failed: ResourceNotFoundException" in by_id[gone].line
    assert "unreadable: the body is not JSON" in by_id[garbage].line
    assert f"eventbridge rule: {ORDERS_KEY} (Object Created) -> polytrigger-S3TriggerFunction-" in by_id[rule].line
    assert "scheduler: schedule thaw @ 2026-11-30T06:00:00Z" in by_id[schedule].line
    assert not summary.clean
    assert len(lines) == 4
    assert sorted(status for result in lam.summaries for status in outcomes(result).values()) == [
        "activated",
        "activated",
        "started",
        "started",
    ]
    assert len(posts(fake)) == 4
    assert queue.counts() == (2, 0)  # left in the queue, visible again at once
    assert queue.bodies() == sorted([json.dumps(gone_record), "<html>not an event</html>"])  # untouched


def test_a_re_drive_that_fails_again_is_parked_again_not_lost(polytrigger: Invoker, queue: Queue) -> None:
    fake = polytrigger.stack.fake
    event = load_event("eventbridge-object-created.json")
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
    event = load_event("eventbridge-object-created.json")
    record = on_failure_record(S3_FUNCTION, event, RuntimeError("1 action(s) failed and will be retried"))
    queue.send(record)
    queue.send("not json")

    code = main(["redrive", "--queue-url", queue.url, "--dry-run"])  # boto3 from the stack's environment

    out = capsys.readouterr().out.splitlines()
    assert code == 1  # the unreadable message stays: worth a non-zero exit
    assert len(out) == 3
    assert sum(line.startswith("would re-drive ") for line in out) == 1
    assert sum(line.startswith("left ") for line in out) == 1
    assert out[-1] == (
        "2 message(s): re-driven 0, would re-drive 1, skipped 0, left 1 (dry run: nothing invoked, nothing deleted)"
    )
    assert local_stack.fake.calls == []
    assert queue.counts() == (2, 0)
    assert queue.bodies() == sorted([json.dumps(record), "not json"])


def test_max_re_drives_at_most_n(polytrigger: Invoker, queue: Queue) -> None:
    for _ in range(3):
        queue.send(load_event("scheduler-input-thaw.json"), dead_letter_attributes(TARGET_ARN=SCHEDULE_FUNCTION))
    lam = InProcessLambda(polytrigger, queue)

    summary, _ = run(queue, lam, max_messages=2)

    assert summary.count("re-driven") == 2
    assert [outcomes(result) for result in lam.summaries][1] == {ORDERS_MODEL: "duplicate", WAREHOUSE_BULK: "duplicate"}
    assert queue.counts() == (1, 0)
