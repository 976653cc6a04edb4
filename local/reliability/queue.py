"""The dispatch queue for the reliability run: moto queues as the template makes them, and the event source mapping.

`DispatchQueues` creates a dispatch queue whose redrive policy moves a message to its dead-letter
queue after `MAX_RECEIVES` receives (template.yaml), and pumps it like the Lambda event source
mapping: each due message goes to the real dispatcher handler with its real ApproximateReceiveCount;
a message reported in `batchItemFailures` is made visible again at once (the visibility timeout,
shortened), any other is deleted. Every delivery is recorded, so the run can check that each
acknowledged message was done, or parked in the dispatch dead-letter queue with a reason.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.stack.dispatch_pump import lambda_record
from local.stack.lambda_context import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class Received:
    """One delivery of one message to the dispatcher, and what came of it."""

    body: str
    receives: int
    acked: bool
    outcomes: list[dict[str, Any]]
    error: str = ""


@dataclass
class Parked:
    body: str
    reason: str  # the ERROR_MESSAGE attribute: "" when SQS moved it there without one


@dataclass
class DispatchQueues:
    sqs: Any
    url: str
    arn: str
    dead_letter_url: str
    deliveries: dict[str, list[Received]] = field(default_factory=dict)  # by SQS message id
    parked: list[Parked] = field(default_factory=list)

    @classmethod
    def create(cls, sqs: Any) -> DispatchQueues:
        from polytrigger.flows.on_dispatch_message import MAX_RECEIVES

        suffix = uuid.uuid4().hex[:10]
        dead = sqs.create_queue(QueueName=f"polytrigger-reliability-dispatch-dlq-{suffix}")["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": str(MAX_RECEIVES)})
        url = sqs.create_queue(
            QueueName=f"polytrigger-reliability-dispatch-{suffix}",
            Attributes={"VisibilityTimeout": "30", "RedrivePolicy": redrive},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return cls(sqs, url, arn, dead)

    def env(self) -> dict[str, str]:
        return {
            "DISPATCH_QUEUE_URL": self.url,
            "DISPATCH_DEAD_LETTER_QUEUE_URL": self.dead_letter_url,
            "DEFERRAL_FIRST_DELAY_SECONDS": "1",
            "DEFERRAL_MAX_AGE_SECONDS": "600",
        }

    def delete(self) -> None:
        for url in (self.url, self.dead_letter_url):
            self.sqs.delete_queue(QueueUrl=url)

    def send(self, body: str, delay: int = 0) -> None:
        """A message nobody in the stack wrote (anyone allowed to send to the queue could)."""
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body, DelaySeconds=delay)

    def pending(self) -> int:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        found = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return sum(int(found.get(name, "0")) for name in names)

    # -- the event source mapping ------------------------------------------------------------

    def pump(self, handler: Handler, *, timeout: float, quiet: float = 0.0) -> None:
        """Deliver until the queue is empty (delayed and returned messages included), within `timeout`.

        `quiet`: keep polling this long after the queue looked empty (a window waiting for quiet re-queues).
        """
        end = time.monotonic() + timeout
        empty_since: float | None = None
        while time.monotonic() < end:
            answer = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=30,
            )
            messages = answer.get("Messages", [])
            for message in messages:
                self._deliver(handler, message)
            if messages:
                empty_since = None
                continue
            if self.pending():
                time.sleep(0.1)
                continue
            empty_since = empty_since or time.monotonic()
            if time.monotonic() - empty_since >= quiet:
                return
            time.sleep(0.1)
        raise AssertionError(f"the dispatch queue was not drained within {timeout} s ({self.pending()} pending)")

    def _deliver(self, handler: Handler, message: dict[str, Any]) -> None:
        """One message per invocation, so each answer's outcomes are that message's."""
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        event = {"Records": [self._record(message)]}
        try:
            answer = handler(event, LocalContext(function_name="polytrigger-dispatcher"))
            failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
            received = Received(
                message["Body"], receives, message["MessageId"] not in failed, answer.get("outcomes", [])
            )
        except Exception as error:  # the whole invocation failed: Lambda returns the batch
            received = Received(message["Body"], receives, False, [], f"{type(error).__name__}: {error}")
        self.deliveries.setdefault(message["MessageId"], []).append(received)
        if received.acked:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        else:
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return lambda_record(message, self.arn)

    # -- what was parked, and what was acknowledged ---------------------------------------------

    def take_parked(self) -> list[Parked]:
        """Every message of the dispatch dead-letter queue (taken out), with the reason it was parked with."""
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.dead_letter_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            )
            messages = answer.get("Messages", [])
            if not messages:
                return self.parked
            for message in messages:
                reason = message.get("MessageAttributes", {}).get("ERROR_MESSAGE", {}).get("StringValue", "")
                self.parked.append(Parked(message["Body"], reason))
                self.sqs.delete_message(QueueUrl=self.dead_letter_url, ReceiptHandle=message["ReceiptHandle"])

    def parked_actions(self) -> set[str]:
        """The dedup keys of the actions whose messages were parked with a reason."""
        from polytrigger.dispatch.messages import UnsupportedMessage, decode_body

        keys: set[str] = set()
        for parked in self.parked:
            try:
                message = decode_body(parked.body)
            except UnsupportedMessage:
                continue
            if parked.reason:
                keys.add(message.action.dedup_key)
        return keys

    def acked_not_done(self) -> int:
        """Messages deleted although not done (a `failed` outcome, or none) and not parked with a reason.

        A message parked with no reason (moved by SQS after its receives ran out) counts too.
        """
        parked = Counter(_same(p.body) for p in self.parked if p.reason)
        missing = sum(1 for p in self.parked if not p.reason)
        for deliveries in self.deliveries.values():
            last = deliveries[-1]
            if not last.acked:
                continue
            done = last.outcomes and all(o["status"] != "failed" for o in last.outcomes)
            if done:
                continue
            if last.outcomes and not all(o.get("parked") for o in last.outcomes if o["status"] == "failed"):
                missing += 1
                continue
            key = _same(last.body)
            if parked[key] > 0:
                parked[key] -= 1
            else:
                missing += 1
        return missing

    def message_ids(self) -> set[str]:
        """The `id` of every message delivered (a dispatch message's id is its start's Idempotency-Key)."""
        ids: set[str] = set()
        for deliveries in self.deliveries.values():
            try:
                data = json.loads(deliveries[0].body)
            except (ValueError, RecursionError):
                continue
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                ids.add(data["id"])
        return ids

    def received(self) -> int:
        return sum(len(d) for d in self.deliveries.values())

    def returned(self) -> int:
        """Deliveries handed back to the queue (reported in batchItemFailures, or the invocation failed)."""
        return sum(1 for ds in self.deliveries.values() for d in ds if not d.acked)


def _same(body: str) -> str:
    """A parked body as it was sent (the dispatcher adds `parked_because` to a message it parks)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if isinstance(data, dict):
        data.pop("parked_because", None)
        return json.dumps(data, sort_keys=True)
    return body
