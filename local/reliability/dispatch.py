"""Reliability scenarios on the dispatch queue: messages nobody should trust, and a dispatcher that breaks.

Genuine messages are made the way production makes them: files land while their sync is running,
Polytomic answers 409, and the real S3 function defers each start to the dispatch queue. Among
them go forged messages (well-formed, but for actions the routes do not make) or garbage; or the
dispatcher itself raises at random. Then the queue is pumped like the event source mapping does.
Each message must end done, or parked in the dispatch dead-letter queue with a reason; no forged
or unreadable message may reach Polytomic.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from local.reliability.harness import (
    BUCKET,
    MODEL,
    Harness,
    Landed,
    Row,
    Run,
    Tally,
    acked_not_done,
    base_key,
    s3_event,
)
from local.reliability.queue import DispatchQueues

OTHER_SYNC = "99999999-9999-4999-8999-999999999999"  # exists at Polytomic, named by no route
QUEUED_ROUTES = f"""
routes:
  - name: busy
    s3: {{bucket: {BUCKET}, key: "busy/**"}}
    syncs: [{{id: {MODEL}}}]
  - name: full
    s3: {{bucket: {BUCKET}, key: "full/**"}}
    syncs: [{{id: {MODEL}, resync: true}}]
"""


@contextlib.contextmanager
def dispatching(h: Harness) -> Iterator[tuple[Run, DispatchQueues]]:
    """A scenario with a dispatch queue and its dead-letter queue (the template's), deferral on."""
    queues = DispatchQueues.create(h.sqs)
    try:
        with h.scenario(QUEUED_ROUTES, **queues.env()) as run:
            h.stack.fake.add_sync(OTHER_SYNC, kind="model")
            yield run, queues
    finally:
        queues.delete()


def deferred_files(h: Harness, run: Run, prefix: str, count: int) -> list[Landed]:
    """`count` files land while their sync runs: the first starts it, each other start is deferred (409).

    Then the run ends and later runs take no time, so the deferred starts can go through.
    """
    fake = h.stack.fake
    fake.add_sync(MODEL, kind="model", run_seconds=3600)
    invoker = h.invoker()
    landed: list[Landed] = []
    for index in range(count):
        event = s3_event(f"{prefix}-{h.seed}", index, prefix=prefix)
        at = time.time()
        run.events.append(event)
        run.add(event, invoker.invoke(event))
        landed += h.landed(event, at)
    fake.finish_running(MODEL)
    fake.add_sync(MODEL, kind="model", run_seconds=0)
    return landed


def dispatcher() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    from polytrigger.handlers import dispatcher as handler

    entry: Callable[[dict[str, Any], Any], dict[str, Any]] = handler.handler
    return entry


def finish(
    h: Harness,
    name: str,
    run: Run,
    queues: DispatchQueues,
    landed: list[Landed],
    *,
    started: float,
    windows: bool = False,
) -> tuple[Row, Tally]:
    """The row of a dispatch scenario: Polytomic's executions per action, both dead-letter queues.

    `windows`: a debounce window's run carries its message's id, which stands for no one file.
    """
    from polytrigger.events import s3_triggers

    h.take_parked(run)
    queues.take_parked()
    extra = queues.message_ids() if windows else set()
    tally = h.tally(landed, set(run.parked) | queues.parked_actions(), extra_keys=extra)
    duplicates = sum(1 for o in run.outcomes() if o["status"] == "duplicate")
    duplicates += sum(
        1 for ds in queues.deliveries.values() for d in ds for o in d.outcomes if o["status"] == "duplicate"
    )
    unaccounted = acked_not_done(run, h.routes(), s3_triggers) + queues.acked_not_done()
    row = Row(
        name, len(run.events), tally.expected, tally.seen, duplicates, len(queues.parked) + len(run.parked),
        tally.lost, tally.doubled, time.monotonic() - started, "", unaccounted,
    )  # fmt: skip
    return row, tally


# -- forged messages ------------------------------------------------------------------------------


def _forge(kind: int, body: dict[str, Any]) -> dict[str, Any]:
    """A well-formed message for an action the routes do not make, in one of five ways (`FORGERIES`)."""
    action = json.loads(json.dumps(body["action"]))
    if kind == 0:
        action["kind"] = "deactivate"  # pause the sync
    elif kind == 1:
        action["sync"]["id"] = OTHER_SYNC  # start a sync no route names
    elif kind == 2:
        action["sync"]["options"] = [["resync", True]]  # other options
    elif kind == 3:
        action["route"] = "made-up"  # a route that does not exist
    else:
        action["trigger"]["key"] = "elsewhere/" + action["trigger"]["key"]  # a file outside the route
    return {**body, "action": action}


FORGERIES = ("pause the sync", "another sync", "other options", "unknown route", "file outside the route")


def forged_messages(h: Harness) -> Row:
    """Forged dispatch messages among genuine deferred starts: each parked with a reason, none performed."""
    from polytrigger.dispatch.messages import deferred_start, encode
    from polytrigger.events import s3_triggers

    with dispatching(h) as (run, queues):
        started = time.monotonic()
        landed = deferred_files(h, run, "busy", h.n(100, minimum=5))
        routes, forged_ids = h.routes(), set()
        for index in range(h.n(100, minimum=len(FORGERIES))):
            (action,) = routes.actions_for(s3_triggers(s3_event(f"forged-{h.seed}", index, prefix="busy")))
            body = _forge(
                index % len(FORGERIES),
                encode(deferred_start(action, since=time.time(), attempt=1, first_at=time.time())),
            )
            forged_ids.add(body["id"])
            queues.send(json.dumps(body), delay=index % 2)
        queues.pump(dispatcher(), timeout=120)
        row, tally = finish(h, "forged dispatch message", run, queues, landed, started=started)
        performed = [
            call
            for call in h.stack.fake.calls
            if call.method == "POST"
            and (
                base_key(call.headers.get("idempotency-key")) in forged_ids
                or OTHER_SYNC in call.path
                or call.path.endswith("/activate")
            )
        ]
        refused = sum(1 for p in queues.parked if p.reason.startswith("dispatch queue message refused: "))
        row.triggers += len(forged_ids)
        row.facts = {"forged": len(forged_ids), "refused": refused, "performed": len(performed)}
        row.notes = (
            f"{len(forged_ids)} forged ({', '.join(FORGERIES)}): {refused} parked with the reason,"
            f" {len(performed)} performed; {tally.covered} covered by a run created since the file landed"
        )
        return row


# -- malformed messages ----------------------------------------------------------------------------


def garbage(genuine: dict[str, Any], nesting: int) -> list[str]:
    """Bodies polytrigger never writes: not JSON, the wrong shapes, fields of the wrong kind, deep nesting."""
    action = genuine["action"]

    def with_(**fields: Any) -> str:
        return json.dumps({**genuine, **fields})

    return [
        "not json {",
        "[]",
        "null",
        "42",
        json.dumps("a string"),
        json.dumps({"kind": "start", "sync": MODEL}),  # a kind polytrigger never wrote
        json.dumps({"kind": "deferred"}),  # fields missing
        with_(action={**action, "sync": {**action["sync"], "id": "../../admin"}}),  # not a sync UUID
        with_(since="yesterday"),
        with_(attempt=0),
        with_(id="not-a-message-id"),
        with_(action={**action, "trigger": {**action["trigger"], "time": 1e308}}),  # not a time
        with_(kind="window", window="polytrigger#" + "0" * 64, opened_at=1.0, generation=0),  # a dedup record
        "[" * nesting + "]" * nesting,  # past the JSON parser's recursion limit
    ]


def malformed_messages(h: Harness) -> Row:
    """Garbage among genuine deferred starts: each parked as it came, with the reason; no call."""
    from polytrigger.dispatch.messages import deferred_start, encode
    from polytrigger.events import s3_triggers

    with dispatching(h) as (run, queues):
        started = time.monotonic()
        landed = deferred_files(h, run, "busy", h.n(50, minimum=3))
        (action,) = h.routes().actions_for(s3_triggers(s3_event(f"template-{h.seed}", 0, prefix="busy")))
        template = encode(deferred_start(action, since=time.time(), attempt=1, first_at=time.time()))
        bodies = garbage(template, nesting=20_000)
        count = h.n(100, minimum=len(bodies))
        for index in range(count):
            queues.send(bodies[index % len(bodies)], delay=index % 2)
        queues.pump(dispatcher(), timeout=120)
        row, tally = finish(h, "malformed dispatch message", run, queues, landed, started=started)
        genuine = {item.action.dedup_key for item in landed}
        genuine |= {
            deferred_start(item.action, since=0, attempt=a, first_at=0).id for item in landed for a in range(1, 16)
        }
        stray = [
            c
            for c in h.stack.fake.calls
            if c.method == "POST" and base_key(c.headers.get("idempotency-key")) not in genuine
        ]
        unreadable = sum(
            1 for p in queues.parked if p.reason.startswith("dispatch queue message that polytrigger did not write")
        )
        row.triggers += count
        row.facts = {"malformed": count, "unreadable": unreadable, "calls": len(stray)}
        row.notes = (
            f"{count} malformed ({len(bodies)} kinds): {unreadable} parked as they came, with the reason;"
            f" {len(stray)} calls for them; {tally.covered} covered by a run created since the file landed"
        )
        return row


# -- the dispatcher raises ---------------------------------------------------------------------------


@contextlib.contextmanager
def breaking(seed: int, rate: float, poison_every: int) -> Iterator[dict[str, int]]:
    """Make the dispatcher raise TypeError (a bug) on a fraction of deliveries, before or after its call.

    `DispatchPolicy.perform_message` raises before doing anything for `rate` of deliveries, and always for every
    `poison_every`-th message; `Calls.call` raises after Polytomic answered for `rate / 2` of calls
    (the run exists, the answer is lost). Undone on exit.
    """
    from polytrigger.dispatch.calls import Calls
    from polytrigger.dispatch.policy import DispatchPolicy

    rng, seen, poison = random.Random(seed), [], set()
    counts = {"before": 0, "after": 0}
    perform, call = DispatchPolicy.perform_message, Calls.call

    def broken_perform(self: DispatchPolicy, message: Any, deadline: float | None) -> Any:
        if message.id not in seen:
            seen.append(message.id)
            if (len(seen) - 1) % poison_every == 0:
                poison.add(message.id)
        if message.id in poison or rng.random() < rate:
            counts["before"] += 1
            raise TypeError("a bug in the dispatcher (injected)")
        return perform(self, message, deadline)

    def broken_call(self: Calls, *args: Any, **kwargs: Any) -> Any:
        result = call(self, *args, **kwargs)
        if rng.random() < rate / 2:
            counts["after"] += 1
            raise TypeError("a bug after the call (injected)")
        return result

    DispatchPolicy.perform_message = broken_perform  # type: ignore[method-assign]
    Calls.call = broken_call  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        DispatchPolicy.perform_message = perform  # type: ignore[method-assign]
        Calls.call = call  # type: ignore[method-assign]
        counts["poisoned"] = len(poison)


def internal_errors(h: Harness) -> Row:
    """The dispatcher raises at random: every message goes back to the queue, and is parked on its last receive."""
    from polytrigger.flows.on_dispatch_message import MAX_RECEIVES

    with dispatching(h) as (run, queues):
        started = time.monotonic()
        landed = deferred_files(h, run, "full", h.n(200, minimum=10))  # resyncs: each deferred start is a real start
        with breaking(h.seed + 2, rate=0.3, poison_every=10) as broke:
            queues.pump(dispatcher(), timeout=180)
        row, _ = finish(h, "internal error while dispatching", run, queues, landed, started=started)
        last = sum(1 for p in queues.parked if p.reason.startswith(f"failed on its last receive ({MAX_RECEIVES} of"))
        row.facts = {"raised": broke["before"] + broke["after"], "returned": queues.returned()}
        row.facts |= {"poisoned": broke["poisoned"], "parked_last": last}
        row.notes = (
            f"{broke['before']} deliveries raised before, {broke['after']} after the call: {queues.returned()} returned"
            f" to the queue; {broke['poisoned']} always raising, {last} parked on receive {MAX_RECEIVES} with the reason"
        )
        return row
