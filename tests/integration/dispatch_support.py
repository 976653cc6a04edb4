"""The dispatch queue on the local stack: moto SQS queues, a spy on what polytrigger queued, and a pump.

The pump does what the Lambda event source mapping does for the dispatcher: it receives messages
from the (moto) dispatch queue, wraps them in the SQS Lambda event shape, invokes the real
dispatcher handler and deletes every message that is not in ``batchItemFailures`` (those become
visible again, as after a visibility timeout, and a redrive policy parks them after 5 receives).

moto (5.x) honours ``DelaySeconds``: a delayed message is neither received nor counted as visible
until its delay has passed (``ApproximateNumberOfMessagesDelayed`` counts it meanwhile). The pump
does not rely on that blindly: every message polytrigger queued is recorded with its delay by the
spy, and a message received before its delay had passed is set invisible for the rest of it and
counted in ``Pump.early`` (the tests assert that list stays empty).

Every loop is time-boxed; nothing here waits without a bound.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.stack import LocalStack
from local.stack.dispatch_pump import lambda_record
from tests.integration.support import Invoker

BUCKET = "acme-landing"
# Syncs of the dispatch tests' own routes (not the bundled ones): each route has its own sync, so the
# debounce windows (one per action and sync) of different tests never meet.
BURST_SYNC = "b0b0b0b0-0000-4000-8000-000000000001"
TRICKLE_SYNC = "b0b0b0b0-0000-4000-8000-000000000002"
BUSY_SYNC = "b0b0b0b0-0000-4000-8000-000000000003"
BURST_BULK = "b0b0b0b0-0000-4000-8000-000000000004"

DEBOUNCE = 2
TRICKLE_MAX_WAIT = 4
MAX_AGE_SECONDS = 60  # the smallest DEFERRAL_MAX_AGE_SECONDS allowed

ROUTES_YAML = f"""\
routes:
  - name: burst
    s3: {{bucket: {BUCKET}, key: "burst/**"}}
    debounce: {DEBOUNCE}
    syncs: [{{id: {BURST_SYNC}}}]
  - name: burst-bulk
    s3: {{bucket: {BUCKET}, key: "bulk-burst/**"}}
    debounce: {DEBOUNCE}
    syncs: [{{id: {BURST_BULK}, type: bulk, fetch_mode: incremental}}]
  - name: trickle
    s3: {{bucket: {BUCKET}, key: "trickle/**"}}
    debounce: {DEBOUNCE}
    max_wait: {TRICKLE_MAX_WAIT}
    syncs: [{{id: {TRICKLE_SYNC}}}]
  - name: busy
    s3: {{bucket: {BUCKET}, key: "busy/**"}}
    syncs: [{{id: {BUSY_SYNC}}}]
"""


# -- S3 events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    """One upload: its S3 notification and the trigger time polytrigger will read from it."""

    key: str
    time: datetime
    event: dict[str, Any]


def s3_file(key: str, at: datetime | None = None) -> File:
    """An S3 event notification for one new upload (a fresh sequencer) at ``at`` (default: now).

    The event time keeps milliseconds, as S3 writes it, and is truncated (never rounded up), so the
    trigger time is never later than the moment the file was really sent.
    """
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    sequencer = uuid.uuid4().hex[:18].upper()
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AROAEXAMPLE:ingest"},
                "requestParameters": {"sourceIPAddress": "203.0.113.24"},
                "responseElements": {"x-amz-request-id": sequencer[:16], "x-amz-id-2": "local"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "polytrigger-objects",
                    "bucket": {
                        "name": BUCKET,
                        "ownerIdentity": {"principalId": "A3EXAMPLE"},
                        "arn": f"arn:aws:s3:::{BUCKET}",
                    },
                    "object": {"key": key, "size": 1024, "eTag": uuid.uuid4().hex, "sequencer": sequencer},
                },
            }
        ]
    }
    return File(key, moment, event)


def uncovered(stack: LocalStack, sync_id: str, files: Iterable[File]) -> list[str]:
    """The files no execution of the sync covers (none created at or after the file's trigger time)."""
    created = [execution.created_at for execution in stack.fake.executions(sync_id)]
    return [file.key for file in files if not any(moment >= file.time for moment in created)]


def statuses(answer: dict[str, Any]) -> list[str]:
    return [outcome["status"] for outcome in answer.get("outcomes", [])]


# -- what polytrigger put on the queues -------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One message polytrigger sent: its body, its delay, and when the send began (this process's clock)."""

    body: dict[str, Any]
    delay: int
    at: float
    parked_because: str = ""


@dataclass
class SentLog:
    """Filled by a spy around ``SqsQueue.send`` / ``SqsQueue.park`` (the real calls still go to moto)."""

    sent: list[Sent] = field(default_factory=list)
    parked: list[Sent] = field(default_factory=list)

    def by_id(self, message_id: str) -> Sent | None:
        for sent in reversed(self.sent):
            if sent.body.get("id") == message_id:
                return sent
        return None

    def of_kind(self, kind: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.body.get("kind") == kind]

    def windows(self) -> dict[tuple[str, float], list[Sent]]:
        """Window messages grouped by window (id and opening time), in generation order."""
        grouped: dict[tuple[str, float], list[Sent]] = {}
        for sent in self.of_kind("window"):
            grouped.setdefault((sent.body["window"], float(sent.body["opened_at"])), []).append(sent)
        return grouped


def install_spy(monkeypatch: Any, log: SentLog) -> None:
    """Record every send and park of every ``SqsQueue`` (the app's included) and still perform it."""
    from polytrigger.dispatch.messages import Message, encode
    from polytrigger.dispatch.queue import SqsQueue

    send, park = SqsQueue.send, SqsQueue.park

    def spy_send(queue: SqsQueue, message: Message, delay_seconds: int) -> None:
        began = time.time()
        send(queue, message, delay_seconds)
        log.sent.append(Sent(json.loads(json.dumps(encode(message))), int(delay_seconds), began))

    def spy_park(queue: SqsQueue, message: Message, reason: str) -> None:
        began = time.time()
        park(queue, message, reason)
        log.parked.append(Sent(json.loads(json.dumps(encode(message))), 0, began, reason))

    monkeypatch.setattr(SqsQueue, "send", spy_send)
    monkeypatch.setattr(SqsQueue, "park", spy_park)


# -- the queues -------------------------------------------------------------------------------


@dataclass
class Queues:
    """A dispatch queue and its dead-letter queue on the stack's moto, named uniquely per test."""

    sqs: Any
    url: str
    arn: str
    dead_letter_url: str
    region: str

    @classmethod
    def create(cls, stack: LocalStack) -> Queues:
        sqs = stack.client("sqs")
        suffix = uuid.uuid4().hex[:10]
        dead = sqs.create_queue(QueueName=f"polytrigger-dispatch-dlq-{suffix}")["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "5"})  # as template.yaml
        url = sqs.create_queue(
            QueueName=f"polytrigger-dispatch-{suffix}",
            Attributes={"VisibilityTimeout": "30", "RedrivePolicy": redrive},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return cls(sqs, url, arn, dead, stack.region)

    def env(self) -> dict[str, str]:
        return {"DISPATCH_QUEUE_URL": self.url, "DISPATCH_DEAD_LETTER_QUEUE_URL": self.dead_letter_url}

    def counts(self, url: str | None = None) -> dict[str, int]:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url or self.url, AttributeNames=names)["Attributes"]
        return {
            "visible": int(attributes["ApproximateNumberOfMessages"]),
            "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
        }

    def pending(self) -> int:
        """Messages still to be delivered: visible, delayed, or received and not yet deleted."""
        return sum(self.counts().values())

    def dead_letters(self, timeout: float = 3.0) -> list[dict[str, Any]]:
        """Every message of the dead-letter queue (received and left there: invisible for 30 s)."""
        found: list[dict[str, Any]] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            answer = self.sqs.receive_message(
                QueueUrl=self.dead_letter_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                VisibilityTimeout=30,
            )
            batch = answer.get("Messages", [])
            found.extend(batch)
            if not batch and not self.counts(self.dead_letter_url)["visible"]:
                break
        return found

    def delete(self) -> None:
        for url in (self.url, self.dead_letter_url):
            self.sqs.delete_queue(QueueUrl=url)


# -- the pump: the event source mapping --------------------------------------------------------


@dataclass
class Delivery:
    """One invocation of the dispatcher: the messages it got and what it answered."""

    messages: list[dict[str, Any]]
    answer: dict[str, Any]

    @property
    def outcomes(self) -> list[dict[str, Any]]:
        return list(self.answer.get("outcomes", []))

    @property
    def failed_ids(self) -> set[str]:
        return {item["itemIdentifier"] for item in self.answer.get("batchItemFailures", [])}


@dataclass
class Early:
    message_id: str
    delay: int
    waited: float


@dataclass
class Pump:
    """Receives from the dispatch queue and invokes the real dispatcher handler, like the event source mapping."""

    invoker: Invoker
    queues: Queues
    log: SentLog
    deliveries: list[Delivery] = field(default_factory=list)
    early: list[Early] = field(default_factory=list)

    def receive(self, *, timeout: float, max_messages: int = 10) -> list[dict[str, Any]]:
        """Wait at most ``timeout`` seconds for messages that are due; returns what arrived (maybe none)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            answer = self.queues.sqs.receive_message(
                QueueUrl=self.queues.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=max(0, min(1, int(left))),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=30,
            )
            due = self._due(answer.get("Messages", []))
            if due or time.monotonic() >= end:
                return due

    def _due(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages received before the delay polytrigger asked for are put back for the rest of it."""
        received_at = time.time()
        due = []
        for message in messages:
            try:
                sent = self.log.by_id(str(json.loads(message["Body"]).get("id")))
            except (ValueError, AttributeError):
                sent = None
            if sent is not None and received_at < sent.at + sent.delay:
                waited = received_at - sent.at
                self.early.append(Early(message["MessageId"], sent.delay, waited))
                self.queues.sqs.change_message_visibility(
                    QueueUrl=self.queues.url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=max(1, int(sent.delay - waited) + 1),
                )
                continue
            due.append(message)
        return due

    def deliver(self, messages: list[dict[str, Any]], *, settle: bool = True) -> Delivery:
        """One invocation with these messages; then delete the ones that did not fail (``settle``).

        A failed message is made visible again after a second (the visibility timeout, shortened).
        """
        event = {"Records": [lambda_record(message, self.queues.arn, self.queues.region) for message in messages]}
        delivery = Delivery(messages, self.invoker.dispatcher(event))
        self.deliveries.append(delivery)
        if settle:
            for message in messages:
                if message["MessageId"] in delivery.failed_ids:
                    self.queues.sqs.change_message_visibility(
                        QueueUrl=self.queues.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=1
                    )
                else:
                    self.queues.sqs.delete_message(QueueUrl=self.queues.url, ReceiptHandle=message["ReceiptHandle"])
        return delivery

    def next_message(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """The next due message (received, not delivered: visible again after 30 s unless delivered)."""
        messages = self.receive(timeout=timeout, max_messages=1)
        if not messages:
            raise AssertionError(
                f"no message became due on the dispatch queue within {timeout} s: {self.queues.counts()}"
            )
        return messages[0]

    def drain(self, *, timeout: float = 15.0) -> list[Delivery]:
        """Deliver every message until the queue is empty (delayed and re-queued ones included), within ``timeout``."""
        end = time.monotonic() + timeout
        done: list[Delivery] = []
        while time.monotonic() < end:
            if not self.queues.pending():
                return done
            messages = self.receive(timeout=min(1.0, max(0.0, end - time.monotonic())))
            if messages:
                done.append(self.deliver(messages))
        raise AssertionError(f"the dispatch queue was not drained within {timeout} s: {self.queues.counts()}")

    def until(self, done: Callable[[Delivery], bool], *, timeout: float = 15.0) -> Delivery:
        """Deliver what becomes due until a delivery satisfies ``done`` (within ``timeout``); returns that one."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            messages = self.receive(timeout=min(1.0, left))
            if messages and done(delivery := self.deliver(messages)):
                return delivery
        raise AssertionError(f"no delivery as expected within {timeout} s: {[d.outcomes for d in self.deliveries]}")

    def run_for(self, seconds: float) -> list[Delivery]:
        """Deliver whatever becomes due during the next ``seconds`` (then return, even if more is queued)."""
        end = time.monotonic() + seconds
        done: list[Delivery] = []
        while (left := end - time.monotonic()) > 0:
            messages = self.receive(timeout=min(1.0, left))
            if messages:
                done.append(self.deliver(messages))
        return done

    def outcomes(self) -> list[dict[str, Any]]:
        """Every outcome of every delivery so far, in order."""
        return [outcome for delivery in self.deliveries for outcome in delivery.outcomes]


@dataclass
class Dispatch:
    """What the dispatch tests work with: the handlers, the queues, the spy's log and the pump."""

    polytrigger: Invoker
    queues: Queues
    log: SentLog
    pump: Pump

    @property
    def stack(self) -> LocalStack:
        return self.polytrigger.stack

    def upload(self, key: str, at: datetime | None = None) -> tuple[File, dict[str, Any]]:
        """A file lands: the S3 function is invoked with its notification; returns the file and the answer."""
        file = s3_file(key, at)
        return file, self.polytrigger.s3(file.event)

    def log_lines(self, status: str | None = None) -> Iterator[dict[str, Any]]:
        for line in self.polytrigger.log_lines():
            if status is None or line.get("status") == status:
                yield line
