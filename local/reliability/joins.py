"""Reliability of joins: a route that starts JOINED once UP_A and UP_B have both completed, once per pair.

Pair after pair, the two upstream endings reach the real webhook function (signed, as Polytomic
delivers them) with what at-least-once delivery does to them, chosen per pair by the seed:

- *duplicated*: an ending is delivered again after it was answered 200;
- *reordered*: B's ending first, or A's;
- *concurrent*: both endings handled at once, by two invocations (threads);
- *repeated upstream*: A completes twice before B completes (the older run may be reported last):
  B pairs with A's latest run;
- *a crash between two writes*: once per pair, the invocation dies before recording its ending,
  right after firing (the set recorded, its start owed, nothing sent), on the send of the start, or
  before forgetting the owed start; the webhook answers 503 and Polytomic delivers the event again.

Then the dispatch queue goes through the real dispatcher, which starts JOINED on the fake. Counted:
per pair, the set it should start on (A's latest run, B's run) is started (or covered) exactly
once: none lost, none twice, and JOINED has as many executions on Polytomic's side as pairs.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from local.reliability.harness import ROUTES, Harness, Row
from local.reliability.outcomes import WEBHOOK_SECRET, deliver_chained, outcome_scenario

UP_A = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9"
UP_B = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
JOINED = "3b4c5d6e-7f8a-4b9c-8d0e-2f3a4b5c6d7e"
JOIN_ROUTES = (
    ROUTES
    + f"""  - name: joined
    polytomic: {{syncs: [{UP_A}, {UP_B}], events: [completed], within: 12h}}
    syncs: [{{id: {JOINED}}}]
"""
)
CRASHES = ("record", "fire", "send", "sent")  # where an invocation dies (see the module's docstring)
ATTEMPTS = 6  # Polytomic delivers an event this often before it gives up (none should be needed past 2)


@dataclass
class Crashes:
    """The crash armed for the current pair (struck once), and how often each kind struck."""

    armed: str = ""
    struck: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def strike(self, kind: str) -> bool:
        with self.lock:
            if self.armed != kind:
                return False
            self.armed = ""
            self.struck[kind] += 1
            return True


@contextlib.contextmanager
def crashing(crashes: Crashes) -> Iterator[None]:
    """The join's writes and the start's send, each able to die once where `crashes` is armed."""
    from polytrigger.dispatch.ports import QueueUnavailable
    from polytrigger.dispatch.queue import SqsQueue
    from polytrigger.runs.joins import DynamoJoins, JoinsUnavailable

    record, fire, sent, send = DynamoJoins.record, DynamoJoins.fire, DynamoJoins.sent, SqsQueue.send

    def dying_record(self: DynamoJoins, *args: Any) -> None:
        if crashes.strike("record"):
            raise JoinsUnavailable("injected: died before recording the ending")
        record(self, *args)

    def dying_fire(self: DynamoJoins, *args: Any) -> bool:
        fired = fire(self, *args)
        if fired and crashes.strike("fire"):
            raise JoinsUnavailable("injected: died after firing, before queueing the start")
        return fired

    def dying_sent(self: DynamoJoins, *args: Any) -> None:
        if crashes.strike("sent"):
            raise JoinsUnavailable("injected: died after queueing the start, before forgetting it")
        sent(self, *args)

    def dying_send(self: SqsQueue, message: Any, delay_seconds: int) -> None:
        if message.action.route == "joined" and crashes.strike("send"):
            raise QueueUnavailable("injected: SendMessage of the joined start failed")
        send(self, message, delay_seconds)

    DynamoJoins.record = dying_record  # type: ignore[method-assign,assignment]
    DynamoJoins.fire = dying_fire  # type: ignore[method-assign,assignment]
    DynamoJoins.sent = dying_sent  # type: ignore[method-assign,assignment]
    SqsQueue.send = dying_send  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoJoins.record = record  # type: ignore[method-assign]
        DynamoJoins.fire = fire  # type: ignore[method-assign]
        DynamoJoins.sent = sent  # type: ignore[method-assign]
        SqsQueue.send = send  # type: ignore[method-assign]


def ending(sync: str, execution: str, at: datetime) -> dict[str, Any]:
    """A run's completion, as Polytomic's webhook delivers it (signed), and its event id."""
    body = {
        "id": str(uuid.uuid4()),
        "type": "sync.completed",
        "organization_id": "5d5c8f3e-0a1b-4c2d-8e3f-4a5b6c7d8e9f",
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "event": {"execution_id": execution, "sync_id": sync, "status": "completed"},
    }
    raw = json.dumps(body).encode()
    return {
        "version": "2.0",
        "rawPath": "/",
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "headers": {
            "content-type": "application/json",
            "polytomic-signature": hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest(),
        },
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }


@dataclass
class Deliveries:
    answered: Counter[int] = field(default_factory=Counter)
    given_up: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, request: dict[str, Any]) -> None:
        """Deliver until answered 2xx, as Polytomic retries (at most ATTEMPTS times)."""
        from local.stack.lambda_context import LocalContext
        from polytrigger.handlers import webhook

        for _ in range(ATTEMPTS):
            status = int(webhook.handler(request, LocalContext(function_name="polytrigger-webhook"))["statusCode"])
            with self.lock:
                self.answered[status] += 1
            if 200 <= status < 300:
                return
        with self.lock:
            self.given_up += 1


def together(calls: list[Callable[[], None]]) -> None:
    """Each call in its own thread, all released at once (two invocations handling two endings)."""
    gate = threading.Barrier(len(calls))
    failures: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        try:
            gate.wait()
            call()
        except BaseException as error:  # reported below, in the scenario's thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def joins_pairs_duplicated_reordered_concurrent_and_crashing(h: Harness) -> Row:
    rng = random.Random(h.seed + 31)
    pairs = h.n(120, minimum=12)
    crashes, sent = Crashes(), Deliveries()
    expected: list[str] = []
    facts: Counter[str] = Counter()
    with outcome_scenario(h, JOIN_ROUTES) as (_, said), crashing(crashes):
        began = time.monotonic()
        h.stack.fake.add_sync(JOINED, kind="model")
        for pair in range(pairs):
            t0 = datetime.now(UTC)
            a, b = f"a-{pair}", f"b-{pair}"
            requests = [
                ending(UP_A, a, t0 + timedelta(milliseconds=200)),
                ending(UP_B, b, t0 + timedelta(milliseconds=400)),
            ]
            if rng.random() < 0.3:  # A completed twice before B: the older run may be reported last
                older = ending(UP_A, f"{a}-earlier", t0)
                requests = [*rng.sample([requests[0], older], 2), requests[1]]  # both before B: B pairs the latest
                facts["repeated_upstream"] += 1
            else:
                rng.shuffle(requests)
            duplicates = [request for request in requests if rng.random() < 0.4]
            facts["duplicated"] += len(duplicates)
            crashes.armed = rng.choice(("", *CRASHES))
            if rng.random() < 0.5 and len(requests) == 2:
                together([functools.partial(sent.deliver, request) for request in requests])
                facts["concurrent"] += 1
            else:
                for request in requests:
                    sent.deliver(request)
            for request in duplicates:
                sent.deliver(request)
            crashes.armed = ""
            deliver_chained(h)  # the joined start (if any) through the dispatcher, before the next pair
            expected.append(f"sync {UP_A} run {a}, sync {UP_B} run {b} ended (completed last)")
        done: Counter[str] = Counter()
        started = 0
        for line in said.lines():
            if line.get("route") == "joined" and line.get("status") in ("started", "covered"):
                done[str(line.get("trigger"))] += 1
                started += line["status"] == "started"
        executions = len(h.stack.fake.executions(JOINED))
        lost = sum(1 for key in expected if not done[key]) + sent.given_up
        doubled = sum(count - 1 for count in done.values() if count > 1) + max(0, executions - started)
        strays = sum(count for key, count in done.items() if key not in expected)
        refused = sum(count for status, count in sent.answered.items() if not 200 <= status < 300)
        facts.update(
            {f"crash_{kind}": crashes.struck[kind] for kind in CRASHES}
            | {"pairs": pairs, "executions": executions, "strays": strays, "refused": refused, "started": started}
        )
        deliveries = sum(sent.answered.values())
        return Row(
            scenario="joins: pairs duplicated, reordered, concurrent, crashing",
            triggers=deliveries,
            expected=pairs,
            seen=sum(1 for key in expected if done[key]),
            duplicates=deliveries - refused - 2 * pairs - facts["repeated_upstream"],
            parked=0,
            lost=lost,
            doubled=doubled + strays,
            seconds=time.monotonic() - began,
            notes=(
                f"{pairs} pairs: {facts['concurrent']} handled at once, {facts['repeated_upstream']} with A twice,"
                f" {facts['duplicated']} endings again; crashes {dict(crashes.struck)} answered 503 and redelivered"
                f" ({refused} answers); JOINED ran {executions} times"
            ),
            facts=dict(facts),
        )


SCENARIOS: tuple[Callable[[Harness], Row], ...] = (joins_pairs_duplicated_reordered_concurrent_and_crashing,)
