"""The dispatch queue of a reliability scenario, pumped by the stack's pump, and what its deliveries add up to.

`DispatchQueues` makes the template's dispatch queue and its dead-letter queue (`local.stack.dispatch_pump`:
a message received `MAX_RECEIVES` times moves there) and pumps it with the stack's `DispatchPump`, as
the Lambda event source mapping would: one message per invocation with its real ApproximateReceiveCount,
a message reported in `batchItemFailures` (or whose invocation raised) visible again at once, any other
deleted. From the pump's deliveries it counts whether each acknowledged message was done, or parked in
the dispatch dead-letter queue with a reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from local.stack.dispatch_pump import DispatchPump, DispatchQueue, Handler, receives


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
    queue: DispatchQueue
    parked: list[Parked] = field(default_factory=list)
    _pump: DispatchPump | None = None

    @classmethod
    def create(cls, sqs: Any) -> DispatchQueues:
        return cls(DispatchQueue.create(sqs, "polytrigger-reliability-dispatch"))

    def env(self) -> dict[str, str]:
        return {**self.queue.env(), "DEFERRAL_FIRST_DELAY_SECONDS": "1", "DEFERRAL_MAX_AGE_SECONDS": "600"}

    def delete(self) -> None:
        self.queue.delete()

    def send(self, body: str, delay: int = 0) -> None:
        """A message nobody in the stack wrote (anyone allowed to send to the queue could)."""
        self.queue.send(body, delay)

    def pump(self, handler: Handler, *, timeout: float, quiet: float = 0.0) -> None:
        """Deliver until the queue is empty (delayed and returned messages included), within `timeout`.

        `quiet`: keep polling this long after the queue looked empty (a window waiting for quiet re-queues).
        """
        if self._pump is None:
            self._pump = DispatchPump(self.queue, handler, batch_size=1, returned_after=0, errors="return")
        self._pump.drain(timeout=timeout, quiet=quiet)

    @property
    def deliveries(self) -> dict[str, list[Received]]:
        """Every delivery, by SQS message id (one message per invocation)."""
        found: dict[str, list[Received]] = {}
        for delivery in self._pump.deliveries if self._pump is not None else []:
            for message in delivery.messages:
                received = Received(
                    message["Body"], receives(message), delivery.acked(message), delivery.outcomes, delivery.error
                )
                found.setdefault(message["MessageId"], []).append(received)
        return found

    # -- what was parked, and what was acknowledged ---------------------------------------------

    def take_parked(self) -> list[Parked]:
        """Every message of the dispatch dead-letter queue (taken out), with the reason it was parked with."""
        for message in self.queue.dead_letters(take=True):
            reason = message.get("MessageAttributes", {}).get("ERROR_MESSAGE", {}).get("StringValue", "")
            self.parked.append(Parked(message["Body"], reason))
        return self.parked

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
