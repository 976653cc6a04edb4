"""Reliability scenarios of a paused sync: files land across a freeze and a thaw, and faults meanwhile.

While MODEL is paused (the fake answers a start `400 sync_inactive` and `GET /api/syncs/{id}` says
`active: false`), files land through the real S3 function: each start is *held*, all of them in one
hold item (`polytrigger.dispatch.holds`); BULK, active, starts for every file as usual. Some files
are delivered twice (Lambda's at-least-once), the first `GET` of the sync answers 503 through the
client's retries (the invocation fails and Lambda retries it), and one hold write is throttled by
DynamoDB (again a failed invocation, retried). Then the thaw:

- *by its schedule*: a route `action: activate` on MODEL fires (delivered twice); polytrigger's own
  activation releases the hold at once, as ONE start message on the dispatch queue; a poll past
  CHECK_SECONDS afterwards finds nothing left to release;
- *by hand*: someone resumes the sync in Polytomic (`fake.set_active`); the poll due CHECK_SECONDS
  later fails once on a 503 from `GET /api/syncs/{id}` and once more on a failed send of the release
  (Lambda retries the poll each time), then releases it;
- *past its limit*: the sync stays paused past the route's `hold` (the default, 7 days: the routes
  file has no `hold` key yet); the poll parks the hold in the dispatch dead-letter queue with the
  reason, counts `hold_expired` and notes a `parked#` item under the sync for `status`.

Counted from Polytomic's side: every file's MODEL start is one run of MODEL created after the file
landed (exactly one run after the thaw, whatever the number of files: any second one is *doubled*),
or parked with its hold (past the limit: parked is told, not lost); each BULK start is its own run.
The poller's clock is the fake's (`outcomes.harness_time`), so 5 minutes or 7 days pass at once.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from local.reliability.dispatch import dispatcher
from local.reliability.harness import BUCKET, MODEL, ROUTES, Harness, Landed, Row, Run, acked_not_done, s3_event
from local.reliability.outcomes import harness_time
from local.reliability.queue import DispatchQueues

PAUSED_ROUTES = f"""{ROUTES}  - name: thaw
    schedule: thaw
    action: activate
    syncs: [{{id: {MODEL}}}]
"""
STATUS_SAMPLE = 3  # files whose `polytrigger status` is read before and after the thaw


@dataclass
class Faults:
    """What was injected, and how often it struck."""

    throttled_writes: int = 0
    failed_sends: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextlib.contextmanager
def injected(*, throttle_holds: int = 0, fail_release_sends: int = 0) -> Iterator[Faults]:
    """The first `throttle_holds` hold writes fail as DynamoDB throttling makes them fail; the first
    `fail_release_sends` sends of a start to the dispatch queue fail as an SQS outage makes them fail."""
    from polytrigger.dispatch.holds import DynamoHolds, HoldsUnavailable
    from polytrigger.dispatch.messages import DeferredStart
    from polytrigger.dispatch.ports import QueueUnavailable
    from polytrigger.dispatch.queue import SqsQueue

    hold, send, faults = DynamoHolds.hold, SqsQueue.send, Faults()

    def throttled_hold(self: DynamoHolds, *args: Any, **kwargs: Any) -> Any:
        with faults.lock:
            strike = faults.throttled_writes < throttle_holds
            faults.throttled_writes += strike
        if strike:  # what `hold` raises when UpdateItem answers this error
            raise HoldsUnavailable("ProvisionedThroughputExceededException")
        return hold(self, *args, **kwargs)

    def failing_send(self: SqsQueue, message: Any, delay_seconds: int) -> None:
        with faults.lock:
            strike = isinstance(message, DeferredStart) and faults.failed_sends < fail_release_sends
            faults.failed_sends += strike
        if strike:
            raise QueueUnavailable("injected: SendMessage to the dispatch queue failed (ServiceUnavailable)")
        send(self, message, delay_seconds)

    DynamoHolds.hold = throttled_hold  # type: ignore[method-assign]
    SqsQueue.send = failing_send  # type: ignore[method-assign]
    try:
        yield faults
    finally:
        DynamoHolds.hold = hold  # type: ignore[method-assign]
        SqsQueue.send = send  # type: ignore[method-assign]


def metric(out: io.StringIO, name: str) -> int:
    """The sum of a metric over the handlers' EMF lines printed so far."""
    total = 0
    for line in out.getvalue().splitlines():
        if not line.startswith('{"_aws"'):
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            if any(m["Name"] == name for m in directive["Metrics"]):
                value = blob[name]
                total += int(sum(value) if isinstance(value, list) else value)
    return total


@contextlib.contextmanager
def paused_scenario(h: Harness) -> Iterator[tuple[Run, DispatchQueues, io.StringIO]]:
    """PAUSED_ROUTES on a fresh dispatch queue, MODEL paused, the poller on the fake's clock, the
    handlers' metrics captured. Every clock of polytrigger's is the fake's: minutes and days pass at once."""
    from local.stack.dispatch_pump import StackClock
    from polytrigger import bootstrap

    queues, out, clock = DispatchQueues.create(h.sqs), io.StringIO(), StackClock(h.stack.fake)
    try:
        with (
            h.scenario(PAUSED_ROUTES, **queues.env()) as run,
            harness_time(h.stack.fake),
            contextlib.redirect_stdout(out),
        ):
            bootstrap.use_clock(clock.now, clock.sleep)  # holds, landings and the dispatch path on the fake's clock
            try:
                h.stack.fake.set_active(MODEL, False)
                yield run, queues, out
            finally:
                bootstrap.use_clock()
    finally:
        queues.delete()


def land_while_paused(h: Harness, run: Run, label: str, count: int) -> tuple[list[Landed], int]:
    """`count` files land while MODEL is paused; every third is delivered again afterwards. The first
    GET of the sync answers 503 (through the client's three tries); one hold write is throttled."""
    invoker, landed = h.invoker(), list[Landed]()
    h.stack.fake.inject(503, times=3, method="GET", path_contains=f"/api/syncs/{MODEL}")
    with injected(throttle_holds=1) as faults:
        for index in range(count):
            at = time.time()
            event = s3_event(f"{label}-{h.seed}", index)
            run.events.append(event)
            run.add(event, invoker.invoke(event))
            landed += h.landed(event, at)
        for event in run.events[::3]:  # Lambda delivers some events twice
            run.add(event, invoker.invoke(event))
    return landed, faults.throttled_writes


def statuses(h: Harness, run: Run) -> list[str]:
    """What `polytrigger status` says of MODEL for a few of the files (read by key and index, never a scan)."""
    from polytrigger.tools.fate import Records, fate_of

    records, routes, found = Records(h.stack.dynamodb_client(), h.stack.table_name), h.routes(), []
    last = len(run.events) - 1
    for event in [run.events[last * i // (STATUS_SAMPLE - 1)] for i in range(STATUS_SAMPLE)]:  # first, ..., last
        fate = fate_of(BUCKET, event["detail"]["object"]["key"], routes, records, sync=MODEL)
        found += [sync.state for sync in fate.syncs]
    return found


def poll(h: Harness, after: float) -> Any:
    """The poller, `after` seconds later on the fake's clock, as its schedule invokes it (retried, then parked)."""
    from polytrigger.handlers import poller

    h.stack.fake.advance_clock(after)
    return h.invoker(poller.handler, function_name="polytrigger-poller").invoke(
        {"poll": h.stack.fake.now().isoformat()}
    )


def count_paused(
    h: Harness,
    name: str,
    run: Run,
    queues: DispatchQueues,
    *,
    landed: list[Landed],
    out: io.StringIO,
    started: float,
    facts: dict[str, int],
    parked_holds: bool = False,
) -> Row:
    """The row: `finish`'s counts (a release carries its own message id), and exactly one run of MODEL
    after the thaw; with `parked_holds`, a MODEL start whose hold was parked counts as parked, not lost."""
    from polytrigger.dispatch.holds import hold_id
    from polytrigger.dispatch.messages import UnsupportedMessage, decode_body
    from polytrigger.events import s3_triggers

    h.take_parked(run)
    queues.take_parked()
    held_by_parked: set[str] = set()  # parked with its hold: every file it held (told, with the reason)
    if parked_holds:
        parked_ids = set[str]()
        for message in queues.parked:
            with contextlib.suppress(UnsupportedMessage):
                parked_ids.add(hold_id(decode_body(message.body).action))
        held_by_parked = {item.action.dedup_key for item in landed if hold_id(item.action) in parked_ids}
    parked = set(run.parked) | queues.parked_actions() | held_by_parked
    tally = h.tally(landed, parked, extra_keys=queues.message_ids())  # a release's run carries its message id
    duplicates = sum(1 for o in run.outcomes() if o["status"] == "duplicate")
    duplicates += sum(
        1 for ds in queues.deliveries.values() for d in ds for o in d.outcomes if o["status"] == "duplicate"
    )
    runs = len(h.stack.fake.executions(MODEL))
    row = Row(
        name, len(run.events), tally.expected, tally.seen, duplicates, len(queues.parked) + len(run.parked),
        tally.lost, tally.doubled + max(0, runs - 1),  # one start after the thaw for every held file: any other is one too many
        time.monotonic() - started, "", acked_not_done(run, h.routes(), s3_triggers) + queues.acked_not_done(),
    )  # fmt: skip
    row.facts = {
        "files": len(run.events),
        "held": sum(1 for o in run.outcomes() if o["status"] == "held"),
        "starts_after_thaw": runs,
        "covered": tally.covered,
        "parked_files": tally.parked,
        "released": metric(out, "hold_released"),
        "expired": metric(out, "hold_expired"),
        "parked_metric": metric(out, "parked"),
        "dispatch_parked": len(queues.parked),
        "lambda_parked": len(run.parked),
        **facts,
    }
    return row


def paused_thawed_by_schedule(h: Harness) -> Row:
    """Files land while MODEL is paused; its thaw schedule fires (twice): one start for all of them."""
    from polytrigger.handlers import schedule

    with paused_scenario(h) as (run, queues, out):
        began, fake = time.monotonic(), h.stack.fake
        landed, throttled = land_while_paused(h, run, "paused", h.n(200, minimum=6))
        held_status = statuses(h, run).count("held")
        gets_503 = sum(1 for c in fake.calls if c.method == "GET" and c.status == 503)
        thaw = {"schedule": "thaw", "time": fake.now().strftime("%Y-%m-%dT%H:%M:%SZ")}
        thawing = h.invoker(schedule.handler, function_name="polytrigger-schedule")
        for _ in range(2):  # the schedule's event delivered twice: activated once, released once
            thawing.invoke(thaw)
        released_at_once = metric(out, "hold_released")
        queues.pump(dispatcher(), timeout=120)
        after = poll(h, 301)  # past CHECK_SECONDS: nothing is held any more
        queues.pump(dispatcher(), timeout=60)
        covered_status = statuses(h, run).count("covered")
        row = count_paused(
            h, "paused sync, thawed by its schedule", run, queues, landed=landed, out=out, started=began,
            facts={"throttled": throttled, "gets_503": gets_503, "status_held": held_status,
                   "status_covered": covered_status, "released_at_once": released_at_once,
                   "released_by_poll": sum(int(s.get("holds_released", 0)) for s in after.summaries)},
        )  # fmt: skip
        row.notes = (
            f"{row.facts['held']} starts held ({gets_503} GETs of the sync answered 503, {throttled} hold write"
            f" throttled, every 3rd file delivered twice); the thaw schedule (twice) released {released_at_once}"
            f" hold at once: {row.facts['starts_after_thaw']} run of the paused sync for {row.facts['files']} files;"
            f" status: {held_status} of {STATUS_SAMPLE} held before, {covered_status} covered after"
        )
        return row


def paused_resumed_by_hand(h: Harness) -> Row:
    """Files land while MODEL is paused; someone resumes it in Polytomic; the poll due 5 minutes later
    fails on a 503 and on a failed send of the release, is retried by Lambda, and releases one start."""
    from polytrigger.dispatch.holds import CHECK_SECONDS

    with paused_scenario(h) as (run, queues, out):
        began, fake = time.monotonic(), h.stack.fake
        landed, throttled = land_while_paused(h, run, "resumed", h.n(200, minimum=6))
        early = poll(h, 60)  # a minute later, still paused: not due yet, nothing asked
        fake.set_active(MODEL, True)  # resumed by hand, in Polytomic
        fake.inject(503, times=3, method="GET", path_contains=f"/api/syncs/{MODEL}")
        with injected(fail_release_sends=1) as faults:
            polled = poll(h, CHECK_SECONDS)
        queues.pump(dispatcher(), timeout=120)
        gets_503 = sum(1 for c in fake.calls if c.method == "GET" and c.status == 503)
        row = count_paused(
            h, "paused sync, resumed by hand", run, queues, landed=landed, out=out, started=began,
            facts={"throttled": throttled, "gets_503": gets_503, "failed_sends": faults.failed_sends,
                   "poll_errors": len(polled.errors), "released_early": sum(int(s.get("holds_released", 0))
                   for s in early.summaries), "released_by_poll": sum(int(s.get("holds_released", 0))
                   for s in polled.summaries)},
        )  # fmt: skip
        row.notes = (
            f"{row.facts['held']} starts held; resumed in Polytomic; the poll {CHECK_SECONDS // 60} min on failed"
            f" {len(polled.errors)} time(s) ({gets_503 - 3} GETs answered 503, {faults.failed_sends} release send"
            f" failed), retried by Lambda: {row.facts['released_by_poll']} hold released,"
            f" {row.facts['starts_after_thaw']} run of the sync for {row.facts['files']} files"
        )
        return row


def paused_past_the_hold(h: Harness) -> Row:
    """Files land while MODEL is paused and it stays paused past the hold limit: parked, with the reason."""
    from polytrigger.dispatch.holds import CHECK_SECONDS
    from polytrigger.routing.model import DEFAULT_HOLD_SECONDS  # the routes say no `hold`: the default

    with paused_scenario(h) as (run, queues, out):
        began = time.monotonic()
        landed, throttled = land_while_paused(h, run, "expired", h.n(50, minimum=4))
        polled = poll(h, DEFAULT_HOLD_SECONDS + CHECK_SECONDS)
        reasons = [p.reason for p in queues.take_parked()]
        notes = sum(1 for i in h.stack.table_items() if i["id"]["S"].startswith("parked#"))
        status = statuses(h, run)
        row = count_paused(
            h, "paused sync, held past its limit", run, queues, landed=landed, out=out, started=began, parked_holds=True,
            facts={"throttled": throttled, "parked_notes": notes, "status_parked": status.count("parked"),
                   "expired_by_poll": sum(int(s.get("holds_expired", 0)) for s in polled.summaries),
                   "reason_says_paused": sum(1 for r in reasons if "still paused" in r and "redrive" in r)},
        )  # fmt: skip
        row.notes = (
            f"{row.facts['held']} starts held, paused for 7 days + {CHECK_SECONDS // 60} min (the default `hold`):"
            f" {row.facts['dispatch_parked']} hold parked in the dispatch DLQ ({row.facts['reason_says_paused']}"
            f" with the reason), hold_expired {row.facts['expired']}, {notes} parked# item;"
            f" status: {row.facts['status_parked']} of {STATUS_SAMPLE} parked"
        )
        return row


SCENARIOS: tuple[Callable[[Harness], Row], ...] = (
    paused_thawed_by_schedule,
    paused_resumed_by_hand,
    paused_past_the_hold,
)
