"""The dispatch queue on the local stack, and the one pump that plays the Lambda event source mapping for it.

`DispatchQueue` is the template's DispatchQueue and its dead-letter queue on the stack's moto: unique
names, and the redrive policy that moves a message received `MAX_RECEIVES` times (the dispatcher's) to
the dead-letter queue. `DispatchPump` receives what is due, hands it to the real dispatcher handler as the SQS event
the mapping builds (real ApproximateReceiveCount included), deletes every message not reported in
`batchItemFailures` and makes the others visible again (the visibility timeout, shortened). An
invocation that raises returns its whole batch, as Lambda does. Every delivery is recorded, and
every loop is bounded.

The pump runs on one of two clocks:

- **real time** (the demo, the reliability run, the smoke tests of the wiring to real SQS): moto keeps
  each message's `DelaySeconds` and the pump waits for it;
- **the stack's clock** (`StackClock`: the fake Polytomic's clock, real time plus what a test
  advanced), which polytrigger reads too (`polytrigger.bootstrap.use_clock`): polytrigger's sends
  reach moto undelayed while `SentLog` keeps each delay on that clock; a message received before it
  is due is held in flight, and when nothing is due the pump moves the clock to the next due message
  instead of waiting for it. A 2 s debounce, a 7 s trickle or a minute of deferrals take milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from local.stack.lambda_context import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:polytrigger-dispatch"
HOLD_SECONDS = 43_200  # SQS's longest visibility timeout: a message held by the pump until it is due
MAX_DELIVERIES = 5_000  # no drain needs more: beyond it, something loops


class NotDrained(AssertionError):
    """The queue did not get where the caller waited for within its time."""


def lambda_record(message: dict[str, Any], arn: str = QUEUE_ARN, region: str = "us-east-1") -> dict[str, Any]:
    """An SQS message (as `receive_message` returns it) as the Lambda event source mapping hands it over."""
    attributes = message.get("Attributes", {})
    now = str(int(time.time() * 1000))
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", now),
            "SenderId": attributes.get("SenderId", "AROAEXAMPLE:polytrigger"),
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", now),
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def sqs_event(messages: list[dict[str, Any]], arn: str = QUEUE_ARN, region: str = "us-east-1") -> dict[str, Any]:
    return {"Records": [lambda_record(message, arn, region) for message in messages]}


def receives(message: dict[str, Any]) -> int:
    """How often SQS has handed this message out, this time included."""
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


# -- the queues ------------------------------------------------------------------------------------


@dataclass
class DispatchQueue:
    """A dispatch queue and its dead-letter queue on the stack's moto."""

    sqs: Any
    url: str
    arn: str
    dead_letter_url: str = ""
    region: str = "us-east-1"

    @classmethod
    def create(cls, sqs: Any, name: str = "polytrigger-dispatch", *, region: str = "us-east-1") -> DispatchQueue:
        """Both queues as template.yaml makes them, named `<name>-<suffix>` (`-dlq-` for the dead letters)."""
        from polytrigger.flows.on_dispatch_message import MAX_RECEIVES  # the redrive policy's maxReceiveCount

        suffix = uuid.uuid4().hex[:10]
        dead = sqs.create_queue(QueueName=f"{name}-dlq-{suffix}")["QueueUrl"]
        redrive = json.dumps({"deadLetterTargetArn": _arn(sqs, dead), "maxReceiveCount": str(MAX_RECEIVES)})
        url = sqs.create_queue(
            QueueName=f"{name}-{suffix}", Attributes={"VisibilityTimeout": "30", "RedrivePolicy": redrive}
        )["QueueUrl"]
        return cls(sqs, url, _arn(sqs, url), dead, region)

    @classmethod
    def at(cls, sqs: Any, url: str, dead_letter_url: str = "") -> DispatchQueue:
        """Queues someone else made (the demo's)."""
        return cls(sqs, url, _arn(sqs, url), dead_letter_url)

    def env(self) -> dict[str, str]:
        return {"DISPATCH_QUEUE_URL": self.url, "DISPATCH_DEAD_LETTER_QUEUE_URL": self.dead_letter_url}

    def send(self, body: str, delay: int = 0) -> None:
        """A message nobody in the stack wrote (anyone allowed to send to the queue could)."""
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body, DelaySeconds=delay)

    def counts(self, url: str | None = None) -> dict[str, int]:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        found = self.sqs.get_queue_attributes(QueueUrl=url or self.url, AttributeNames=names)["Attributes"]
        return {
            "visible": int(found.get("ApproximateNumberOfMessages", "0")),
            "in_flight": int(found.get("ApproximateNumberOfMessagesNotVisible", "0")),
            "delayed": int(found.get("ApproximateNumberOfMessagesDelayed", "0")),
        }

    def pending(self) -> int:
        """Messages still to be delivered: visible, delayed, or received and not yet deleted."""
        return sum(self.counts().values())

    def dead_letters(self, *, take: bool = False) -> list[dict[str, Any]]:
        """Every message of the dead-letter queue, with its attributes (`take`: deleted, else left in flight)."""
        found: list[dict[str, Any]] = []
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.dead_letter_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                VisibilityTimeout=HOLD_SECONDS,
            )
            batch = answer.get("Messages", [])
            if not batch:
                return found
            found.extend(batch)
            if take:
                for message in batch:
                    self.sqs.delete_message(QueueUrl=self.dead_letter_url, ReceiptHandle=message["ReceiptHandle"])

    def delete(self) -> None:
        for url in (self.url, self.dead_letter_url):
            if url:
                self.sqs.delete_queue(QueueUrl=url)


def _arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


# -- clocks, and what polytrigger queued ------------------------------------------------------------


class StackClock:
    """The fake Polytomic's clock (real time plus every `advance`), shared by polytrigger and the pump.

    Polytomic dates its runs by it, polytrigger reads it (`bootstrap.use_clock(clock.now, clock.sleep)`)
    and the pump delivers by it: moving it forward is a wait that costs nothing.
    """

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def now(self) -> float:
        return float(self.fake.now().timestamp())

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self.fake.advance_clock(seconds)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def until(self, moment: float) -> None:
        self.advance(moment - self.now())


@dataclass(frozen=True)
class Sent:
    """One message polytrigger sent or parked: its body, its delay, and when (the pump's clock)."""

    body: dict[str, Any]
    delay: int
    at: float
    parked_because: str = ""

    @property
    def due(self) -> float:
        return self.at + self.delay


@dataclass
class SentLog:
    """Every message polytrigger's `SqsQueue` sent or parked (`recording`), and when it is due.

    On the stack's clock (`virtual`), sends reach moto undelayed and their delay is kept here; the pump
    claims each received message's send to know when it is due.
    """

    clock: Callable[[], float] = time.time
    virtual: bool = False
    sent: list[Sent] = field(default_factory=list)
    parked: list[Sent] = field(default_factory=list)
    _claimed: set[int] = field(default_factory=set)

    @contextlib.contextmanager
    def recording(self) -> Iterator[SentLog]:
        """Record every send and park of every `SqsQueue` (the app's included) and still perform it."""
        from polytrigger.dispatch.messages import Message, encode
        from polytrigger.dispatch.queue import SqsQueue

        send, park = SqsQueue.send, SqsQueue.park

        def record_send(queue: SqsQueue, message: Message, delay_seconds: int) -> None:
            at = self.clock()
            send(queue, message, 0 if self.virtual else delay_seconds)
            self.sent.append(Sent(json.loads(json.dumps(encode(message))), int(delay_seconds), at))

        def record_park(queue: SqsQueue, message: Message, reason: str) -> None:
            at = self.clock()
            park(queue, message, reason)
            self.parked.append(Sent(json.loads(json.dumps(encode(message))), 0, at, reason))

        SqsQueue.send, SqsQueue.park = record_send, record_park  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            SqsQueue.send, SqsQueue.park = send, park  # type: ignore[method-assign]

    def by_id(self, message_id: str) -> Sent | None:
        for sent in reversed(self.sent):
            if sent.body.get("id") == message_id:
                return sent
        return None

    def claim(self, body: str) -> Sent | None:
        """The earliest send of this body's message id not yet claimed by a received message."""
        message_id = _body_id(body)
        for index, sent in enumerate(self.sent):
            if index not in self._claimed and message_id is not None and sent.body.get("id") == message_id:
                self._claimed.add(index)
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


def _body_id(body: str) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None


# -- the pump --------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """One invocation of the dispatcher: the messages it got, what it answered (or the error it raised)."""

    messages: list[dict[str, Any]]
    answer: dict[str, Any]
    error: str = ""
    at: float = 0.0  # when it was invoked (epoch seconds, the pump's clock)

    @property
    def outcomes(self) -> list[dict[str, Any]]:
        return list(self.answer.get("outcomes", []))

    @property
    def failed_ids(self) -> set[str]:
        return {item["itemIdentifier"] for item in self.answer.get("batchItemFailures", [])}

    def acked(self, message: dict[str, Any]) -> bool:
        """Deleted from the queue: the invocation answered and did not hand this message back."""
        return not self.error and message["MessageId"] not in self.failed_ids


@dataclass
class Early:
    """A message SQS handed out before the delay polytrigger asked for (the pump put it back)."""

    message_id: str
    delay: int
    waited: float


@dataclass
class _Held:
    message: dict[str, Any]
    due: float


@dataclass
class DispatchPump:
    """Receives from the dispatch queue and invokes the dispatcher, like the Lambda event source mapping.

    `log`: what polytrigger queued (required on the stack's clock; on real time, a message received
    before its delay is put back for the rest of it and noted in `early`). `batch_size`: messages per
    invocation. `returned_after`: seconds before a handed-back message is visible again.
    `errors`: "raise" lets an invocation's exception through to the caller; "return" hands the batch
    back, as Lambda does.
    """

    queue: DispatchQueue
    handler: Handler
    log: SentLog | None = None
    clock: StackClock | None = None
    batch_size: int = 10
    returned_after: int = 0
    errors: Literal["raise", "return"] = "raise"
    deliveries: list[Delivery] = field(default_factory=list)
    early: list[Early] = field(default_factory=list)
    _held: dict[str, _Held] = field(default_factory=dict)
    _returned: dict[str, float] = field(default_factory=dict)  # SQS message id -> visible again at (clock)

    def __post_init__(self) -> None:
        if self.clock is not None and (self.log is None or not self.log.virtual):
            raise ValueError("on the stack's clock the pump needs the virtual SentLog that keeps the delays")

    # -- what the tests and runs call -----------------------------------------------------------

    def deliver(self, messages: list[dict[str, Any]], *, settle: bool = True) -> Delivery:
        """One invocation with these messages; then delete the ones not handed back (`settle`)."""
        event = sqs_event(messages, self.queue.arn, self.queue.region)
        context = LocalContext(function_name="polytrigger-dispatcher")
        at = self.clock.now() if self.clock is not None else time.time()
        try:
            delivery = Delivery(messages, self.handler(event, context), at=at)
        except Exception as error:  # the whole invocation failed: Lambda returns the batch
            if self.errors == "raise":
                raise
            delivery = Delivery(messages, {}, f"{type(error).__name__}: {error}", at)
        self.deliveries.append(delivery)
        if settle:
            for message in messages:
                if delivery.acked(message):
                    self.queue.sqs.delete_message(QueueUrl=self.queue.url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    self._hand_back(message)
        return delivery

    def next_message(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """The next due message, received but not delivered (the caller delivers or deletes it)."""
        messages = self._receive_real(timeout, 1) if self.clock is None else self._virtual_due(timeout, 1)
        if not messages:
            raise NotDrained(f"no message became due on the dispatch queue within {timeout} s: {self.queue.counts()}")
        return messages[0]

    def drain(self, *, timeout: float = 15.0, quiet: float = 0.0) -> list[Delivery]:
        """Deliver until the queue is empty (delayed and handed-back messages included), within `timeout`.

        `quiet`: on real time, keep polling this long after the queue looked empty.
        """
        end, done = self._now() + timeout, list[Delivery]()
        empty_since: float | None = None
        while len(done) < MAX_DELIVERIES:
            if self._empty():
                empty_since = self._now() if empty_since is None else empty_since
                if self.clock is not None or self._now() - empty_since >= quiet:
                    return done
            else:
                empty_since = None
            messages = self._due(end)
            if messages:
                done.append(self.deliver(messages))
            elif self._now() >= end:
                break
        raise NotDrained(f"the dispatch queue was not drained within {timeout} s: {self.queue.counts()}")

    def until(self, done: Callable[[Delivery], bool], *, timeout: float = 15.0) -> Delivery:
        """Deliver what becomes due until a delivery satisfies `done` (within `timeout`); returns that one."""
        end = self._now() + timeout
        for _ in range(MAX_DELIVERIES):
            messages = self._due(end)
            if messages and done(delivery := self.deliver(messages)):
                return delivery
            if not messages and self._now() >= end:
                break
        raise NotDrained(f"no delivery as expected within {timeout} s: {[d.outcomes for d in self.deliveries]}")

    def run_for(self, seconds: float) -> list[Delivery]:
        """Deliver whatever becomes due during the next `seconds` (then return, even if more is queued)."""
        end, done = self._now() + seconds, list[Delivery]()
        for _ in range(MAX_DELIVERIES):
            messages = self._due(end)
            if messages:
                done.append(self.deliver(messages))
            elif self._now() >= end:
                break
        return done

    def outcomes(self) -> list[dict[str, Any]]:
        """Every outcome of every delivery so far, in order."""
        return [outcome for delivery in self.deliveries for outcome in delivery.outcomes]

    def answers(self) -> list[dict[str, Any]]:
        return [delivery.answer for delivery in self.deliveries]

    # -- receiving ------------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.now() if self.clock is not None else time.monotonic()

    def _empty(self) -> bool:
        return not self._held and self.queue.pending() == 0

    def _due(self, end: float) -> list[dict[str, Any]]:
        """Due messages (a batch at most), waiting for some until `end` at most (one poll's worth on real time)."""
        left = max(0.0, end - self._now())
        if self.clock is None:
            return self._receive_real(min(left, 1.0), self.batch_size)
        return self._virtual_due(left, self.batch_size)

    def _virtual_due(self, timeout: float, most: int) -> list[dict[str, Any]]:
        """On the stack's clock: what is due now, else a jump to the next due message (within `timeout`)."""
        assert self.clock is not None
        self._collect()
        due = self._take_due(most)
        if due:
            return due
        if not self._held:
            if self.queue.pending():  # only what moto itself delays (sent by hand with DelaySeconds): real time
                time.sleep(0.05)
            else:  # nothing on the way: the wait passes at once
                self.clock.advance(timeout)
            return []
        earliest = min(held.due for held in self._held.values())
        self.clock.until(min(earliest, self.clock.now() + timeout))
        return self._take_due(most)

    def _receive_real(self, timeout: float, most: int) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            answer = self.queue.sqs.receive_message(
                QueueUrl=self.queue.url,
                MaxNumberOfMessages=most,
                WaitTimeSeconds=max(0, min(1, int(left))),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=30,
            )
            due = self._not_early(answer.get("Messages", []))
            if due or time.monotonic() >= end:
                return due

    def _not_early(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """On real time, a message received before the delay polytrigger asked for is put back for the rest."""
        if self.log is None:
            return messages
        received_at, due = time.time(), []
        for message in messages:
            sent = self.log.by_id(_body_id(message["Body"]) or "")
            if sent is not None and received_at < sent.due:
                waited = received_at - sent.at
                self.early.append(Early(message["MessageId"], sent.delay, waited))
                self.queue.sqs.change_message_visibility(
                    QueueUrl=self.queue.url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=max(1, int(sent.delay - waited) + 1),
                )
                continue
            due.append(message)
        return due

    def _collect(self) -> None:
        """On the stack's clock: take every visible message into the pump's hands, each with when it is due."""
        assert self.clock is not None
        assert self.log is not None
        while True:
            answer = self.queue.sqs.receive_message(
                QueueUrl=self.queue.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=HOLD_SECONDS,
            )
            messages = answer.get("Messages", [])
            if not messages:
                return
            now = self.clock.now()
            for message in messages:
                returned = self._returned.pop(message["MessageId"], None)
                if returned is not None:
                    due = returned
                else:
                    sent = self.log.claim(message["Body"])
                    due = sent.due if sent is not None else now  # sent by hand: due when received
                self._held[message["MessageId"]] = _Held(message, due)

    def _take_due(self, most: int) -> list[dict[str, Any]]:
        assert self.clock is not None
        now = self.clock.now()
        ready = sorted((held for held in self._held.values() if held.due <= now), key=lambda held: held.due)[:most]
        for held in ready:
            del self._held[held.message["MessageId"]]
        return [held.message for held in ready]

    def _hand_back(self, message: dict[str, Any]) -> None:
        """Visible again after `returned_after` seconds (on the stack's clock: at once, due then)."""
        visibility = self.returned_after
        if self.clock is not None:
            self._returned[message["MessageId"]] = self.clock.now() + self.returned_after
            visibility = 0
        self.queue.sqs.change_message_visibility(
            QueueUrl=self.queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=visibility
        )


def pump(sqs: Any, queue_url: str, handler: Handler, *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Deliver until the queue holds nothing, delayed messages included; return the handler's answers."""
    dispatch = DispatchPump(DispatchQueue.at(sqs, queue_url), handler)
    with contextlib.suppress(NotDrained):  # what did arrive in time is answered all the same
        dispatch.drain(timeout=timeout)
    return dispatch.answers()
