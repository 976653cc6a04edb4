"""Reliability scenarios of gates: a route that starts once per complete partition, across duplicates,
concurrency, DynamoDB faults, a crash after the firing claim, a re-delivered partition and a manifest
naming a file that never lands.

Every object lands through the real S3 function, invoked as Lambda invokes it asynchronously (two
retries, then the dead-letter queue), from 10 threads at once, each event delivered twice and the
whole shuffled across partitions. DynamoDB faults are injected into the gates' own client (its
requests, as botocore raises their errors): `ProvisionedThroughputExceededException` on any request
(the invocation fails, and Lambda delivers the event again) and `TransactionCanceledException` with a
`TransactionConflict` on a counting transaction (the store reads again and retries). Faults strike the
first two attempts of a delivery only, so Lambda's third is clean and nothing is parked by them.
Every clock of polytrigger's and the poller's is the fake's (`StackClock`, `harness_time`): the
owed start's grace and a gate's timeout pass at once.

Counted from Polytomic's side, per partition version (the start's Idempotency-Key is derived from the
partition, its version and the version's first object, so each execution is attributed to one):

- **partitions complete**: versions whose every required object (40 parts and the marker, or every
  file its manifest lists) was delivered;
- **fired early**: executions created before the version's last required object was first delivered;
- **fired twice**: versions with more than one execution, and executions attributed to no version;
- **missed**: complete versions with no execution of their own and no run of their sync created since
  their last required object was delivered (a later run covers them: the dispatcher answers `covered`).

Fired twice and missed are also the table's "doubled" and "lost"; a timeout report made zero times
or twice for an incomplete partition (or made at all for a complete one) counts in "told 0 times or twice".
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from local.reliability.dispatch import dispatcher
from local.reliability.harness import (
    BUCKET,
    GateCounts,
    Harness,
    Row,
    Run,
    acked_not_done,
    base_key,
    event_key,
    s3_event,
)
from local.reliability.holds import metric, poll
from local.reliability.outcomes import harness_time
from local.reliability.queue import DispatchQueues

ORDERS = "e1a7e000-0000-4000-8000-000000000001"  # started by the marker + 40 parts gate
VENDOR = "e1a7e000-0000-4000-8000-000000000002"  # started by the manifest gate
PARTS = 40
LISTED = 6  # files a manifest lists
TIMEOUT_HOURS = 2
WORKERS = 10  # invocations at once
THROTTLE = 0.05  # of the gates' requests, on a delivery's first two attempts
CONFLICT = 0.2  # of the gates' counting transactions, on a delivery's first two attempts
FAULTY_ATTEMPTS = 2  # Lambda's third attempt is clean: a fault is retried, never parked
GATE_ROUTES = f"""
routes:
  - name: orders
    s3: {{bucket: {BUCKET}, key: "orders/dt={{date}}/**"}}
    gate: {{marker: "orders/dt={{date}}/_SUCCESS", at_least: {{objects: {PARTS}}}}}
    syncs: [{{id: {ORDERS}}}]
  - name: vendor
    s3: {{bucket: {BUCKET}, key: "vendor/{{date}}/**"}}
    gate:
      manifest: {{key: "vendor/{{date}}/manifest.json", format: json}}
      timeout: {TIMEOUT_HOURS}h
    syncs: [{{id: {VENDOR}}}]
"""


class Crash(Exception):
    """The invocation dies here (a timeout, the process killed): Lambda delivers its event again."""


@dataclass
class Faults:
    """What is injected into the gates' DynamoDB client, and how often it struck."""

    rng: random.Random
    throttle: float = 0.0
    conflict: float = 0.0
    throttled: int = 0
    conflicts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)

    def armed(self) -> bool:
        return bool(getattr(self.local, "armed", False))

    def strike(self, chance: float) -> bool:
        if not chance or not self.armed():
            return False
        with self.lock:
            return self.rng.random() < chance


class FaultyTable:
    """The gates' DynamoDB client, failing as DynamoDB fails: throttled requests, conflicting transactions."""

    def __init__(self, client: Any, faults: Faults) -> None:
        self.client = client
        self.faults = faults

    def __getattr__(self, name: str) -> Any:
        from botocore.exceptions import ClientError

        call = getattr(self.client, name)
        if not callable(call) or name.startswith("_") or name in {"meta", "exceptions", "get_waiter"}:
            return call
        operation = "".join(word.capitalize() for word in name.split("_"))

        def faulty(**kwargs: Any) -> Any:
            faults = self.faults
            if faults.strike(faults.throttle):
                with faults.lock:
                    faults.throttled += 1
                error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeds"}
                raise ClientError({"Error": error}, operation)  # type: ignore[typeddict-item]
            if name == "transact_write_items" and faults.strike(faults.conflict):
                with faults.lock:
                    faults.conflicts += 1
                items = kwargs.get("TransactItems", [])
                reasons = [{"Code": "None"} for _ in items]
                reasons[faults.rng.randrange(len(reasons))] = {"Code": "TransactionConflict"}
                error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
                raise ClientError({"Error": error, "CancellationReasons": reasons}, operation)  # type: ignore[typeddict-item]
            return call(**kwargs)

        return faulty


@contextlib.contextmanager
def injected(faults: Faults) -> Iterator[Faults]:
    """Every `DynamoGates` made meanwhile (the S3 function's, the poller's) talks through `FaultyTable`."""
    from polytrigger.gating.store import DynamoGates

    made = DynamoGates.__init__

    def faulty_init(self: DynamoGates, client: Any, *args: Any, **kwargs: Any) -> None:
        made(self, FaultyTable(client, faults), *args, **kwargs)

    DynamoGates.__init__ = faulty_init  # type: ignore[method-assign]
    try:
        yield faults
    finally:
        DynamoGates.__init__ = made  # type: ignore[method-assign]


@contextlib.contextmanager
def crash_between(*, after_fire: set[str], after_start: set[str]) -> Iterator[Counter[str]]:
    """The invocation that wins a firing claim for a partition in `after_fire` dies right after it (before
    its start); one for a partition in `after_start` dies after its start is made, before the settle."""
    from polytrigger.gating.state import partition_text
    from polytrigger.gating.store import DynamoGates

    fire, settle, crashed, lock = DynamoGates.fire, DynamoGates.settle, Counter[str](), threading.Lock()

    def once(kind: str, partition: str) -> bool:
        with lock:
            if crashed[f"{kind}:{partition}"]:
                return False
            crashed[f"{kind}:{partition}"] += 1
            crashed[kind] += 1
            return True

    def crashing_fire(self: DynamoGates, state: Any) -> Any:
        won = fire(self, state)
        if (
            won is not None
            and partition_text(state.partition) in after_fire
            and once("fire", partition_text(state.partition))
        ):
            raise Crash("injected: the invocation died after claiming the firing, before the start")
        return won

    def crashing_settle(self: DynamoGates, state: Any) -> None:
        if partition_text(state.partition) in after_start and once("settle", partition_text(state.partition)):
            raise Crash("injected: the invocation died after the start, before the settle")
        settle(self, state)

    DynamoGates.fire = crashing_fire  # type: ignore[method-assign]
    DynamoGates.settle = crashing_settle  # type: ignore[method-assign]
    try:
        yield crashed
    finally:
        DynamoGates.fire = fire  # type: ignore[method-assign]
        DynamoGates.settle = settle  # type: ignore[method-assign]


# -- objects, deliveries -----------------------------------------------------------------------


def upload(key: str, *, size: int = 1024) -> dict[str, Any]:
    """A fresh upload of `key` (a new sequencer), in the S3 → EventBridge shape."""
    event = s3_event("gates", 0)
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["size"] = size
    return event


def key_of(event: dict[str, Any]) -> str:
    return str(event["detail"]["object"]["key"])


@dataclass
class Partition:
    """One partition version's objects: those it needs, and when each was first delivered (the stack's clock)."""

    route: str
    date: str
    version: int
    required: list[dict[str, Any]]
    extra: list[dict[str, Any]] = field(default_factory=list)  # delivered, but not required (never complete)
    complete: bool = True

    @property
    def text(self) -> str:
        return f"date={self.date}"


@dataclass
class Gates:
    """One gate scenario: its run, queues, what was delivered when, and what the handlers printed."""

    h: Harness
    run: Run
    queues: DispatchQueues
    out: io.StringIO
    logs: io.StringIO
    clock: Any  # local.stack.dispatch_pump.StackClock
    versions: list[Partition] = field(default_factory=list)
    first_sent: dict[str, float] = field(default_factory=dict)  # event id -> its first delivery's start
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: Faults = field(default_factory=lambda: Faults(random.Random(0)))  # none, unless a scenario injects some
    polls: list[dict[str, Any]] = field(default_factory=list)
    failed_polls: int = 0  # poller invocations that failed (Lambda retried them)

    def deliver(self, events: Sequence[dict[str, Any]], *, workers: int = WORKERS) -> None:
        """Each event as Lambda delivers it (retried, then parked), `workers` at once, in the order given."""
        invoker = self.h.invoker(self._armed_handler())

        def one(event: dict[str, Any]) -> None:
            with self.lock:
                self.first_sent.setdefault(event_key(event), self.clock.now())
            self.faults.local.attempt = 0
            self.run.add(event, invoker.invoke(event))

        known = {event_key(e) for e in self.run.events}
        for event in events:
            if event_key(event) not in known:
                known.add(event_key(event))
                self.run.events.append(event)
        if workers <= 1:
            for event in events:
                one(event)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, events))

    def _armed_handler(self) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        from polytrigger.handlers import s3

        local = self.faults.local

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            local.attempt = getattr(local, "attempt", 0) + 1
            local.armed = local.attempt <= FAULTY_ATTEMPTS
            try:
                answer: dict[str, Any] = s3.handler(event, context)
                return answer
            finally:
                local.armed = False

        return handler

    def poll(self, after: float) -> Any:
        polled = poll(self.h, after)
        self.polls.extend(polled.summaries)
        return polled

    def pump(self) -> None:
        self.queues.pump(dispatcher(), timeout=120)

    def reports(self) -> list[dict[str, Any]]:
        """The `gate timed out` ERROR lines."""
        lines = [json.loads(line) for line in self.logs.getvalue().splitlines() if line.strip()]
        return [line for line in lines if str(line.get("message", "")).startswith("gate timed out")]


@contextlib.contextmanager
def gate_scenario(h: Harness, faults: Faults | None = None) -> Iterator[Gates]:
    """GATE_ROUTES on a fresh dispatch queue, polytrigger and the poller on the fake's clock, the handlers'
    metrics and ERROR lines captured, the bucket the manifests are read from."""
    from local.stack.dispatch_pump import StackClock
    from polytrigger import bootstrap
    from polytrigger.observability import logger

    queues, out, logs, clock = DispatchQueues.create(h.sqs), io.StringIO(), io.StringIO(), StackClock(h.stack.fake)
    handler, level = logger.registered_handler, logger.log_level
    s3 = h.stack.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=BUCKET)
    try:
        with (
            h.scenario(GATE_ROUTES, **queues.env()) as run,
            harness_time(h.stack.fake),
            contextlib.redirect_stdout(out),
            injected(faults or Faults(random.Random(0))) as injecting,
        ):
            for sync in (ORDERS, VENDOR):
                h.stack.fake.add_sync(sync, kind="model")
            previous = handler.setStream(logs)  # type: ignore[attr-defined]
            logger.setLevel("ERROR")  # a timeout report is an ERROR line
            bootstrap.use_clock(clock.now, clock.sleep)
            try:
                yield Gates(h, run, queues, out, logs, clock, faults=injecting)
            finally:
                bootstrap.use_clock()
                logger.setLevel(level)
                handler.setStream(previous)  # type: ignore[attr-defined]
    finally:
        queues.delete()


def orders(label: str, index: int, version: int = 1) -> Partition:
    date = f"{label}-{index:03d}-{uuid.uuid4().hex[:6]}"
    return renewed(Partition("orders", date, version, []), version)


def renewed(partition: Partition, version: int) -> Partition:
    """The partition's objects uploaded (again): 40 parts and the marker, each a new upload."""
    prefix = f"orders/dt={partition.date}"
    files = [upload(f"{prefix}/part-{index:03d}.parquet") for index in range(PARTS)]
    return Partition("orders", partition.date, version, [*files, upload(f"{prefix}/_SUCCESS")])


def twice_shuffled(partitions: Sequence[Partition], rng: random.Random) -> list[dict[str, Any]]:
    """Every object of the partitions delivered twice (the second the same event), in one shuffled order."""
    events = [event for p in partitions for event in [*p.required, *p.extra]]
    deliveries = events + events
    rng.shuffle(deliveries)
    return deliveries


# -- counting ----------------------------------------------------------------------------------


def attribution(h: Harness, partitions: Sequence[Partition]) -> dict[str, Partition]:
    """Every Idempotency-Key a start of a partition version may carry: its action's own (the version's
    first object may be any of its objects) and its queued starts' message ids; each to its version."""
    from polytrigger.dispatch.messages import message_id
    from polytrigger.gating.keeper import fired_actions
    from polytrigger.gating.state import GateState

    routes, keys = h.routes(), dict[str, Partition]()
    for p in partitions:
        route = routes.named(p.route)
        assert route is not None
        partition = (("date", p.date),)
        for event in [*p.required, *p.extra]:
            state = GateState(p.route, partition, version=p.version, fired=p.version, first_key=key_of(event))
            for action in fired_actions(route, state):
                keys[action.dedup_key] = p
                for attempt in range(1, 16):
                    keys[message_id(action.dedup_key, "deferred", attempt)] = p
    return keys


def tally(g: Gates, sync: str, reported: Counter[str] | None = None) -> tuple[GateCounts, int]:
    """The gate columns from Polytomic's side, and how many starts it saw (executions of `sync`)."""
    keys = attribution(g.h, g.versions)
    executions = g.h.stack.fake.executions(sync)
    by_version: dict[int, list[Any]] = {}
    strays = 0
    for execution in executions:
        p = keys.get(base_key(execution.idempotency_key))
        if p is None:
            strays += 1
        else:
            by_version.setdefault(id(p), []).append(execution)
    counts = GateCounts(strays=strays)
    for p in g.versions:
        started = by_version.get(id(p), [])
        counts.complete += p.complete
        counts.twice += max(0, len(started) - 1)
        last = max(g.first_sent[event_key(e)] for e in p.required)
        if p.complete and not started:  # a later run of the sync has every object of it (as the dispatcher says)
            covering = any(e.created_at.timestamp() >= last for e in executions)
            counts.covered += covering
            counts.missed += not covering
        counts.early += sum(1 for e in started if e.created_at.timestamp() < last or not p.complete)
    counts.twice += strays
    if reported is not None:
        for p in {p.text: p for p in g.versions}.values():
            expected = 0 if any(q.complete for q in g.versions if q.text == p.text) else 1
            counts.told_wrong += int(reported[p.text] != expected)
    return counts, len(executions)


def row(g: Gates, name: str, sync: str, started: float, *, reported: Counter[str] | None = None) -> Row:
    from polytrigger.events import s3_triggers

    g.h.take_parked(g.run)
    g.queues.take_parked()
    counts, seen = tally(g, sync, reported)
    deliveries = sum(len(ds) for ds in g.run.deliveries.values())
    result = Row(
        name, len(g.run.events), counts.complete, seen, deliveries - len(g.run.events),
        len(g.run.parked) + len(g.queues.parked), counts.missed, counts.twice, time.monotonic() - started,
        "", acked_not_done(g.run, g.h.routes(), s3_triggers) + g.queues.acked_not_done(),
        told_wrong=counts.told_wrong if reported is not None else None, gate=counts,
    )  # fmt: skip
    attempts = sum(len(d.summaries) + len(d.errors) for ds in g.run.deliveries.values() for d in ds)
    result.facts = {
        "partitions": len({p.text for p in g.versions}),
        "complete": counts.complete,
        "early": counts.early,
        "twice": counts.twice,
        "missed": counts.missed,
        "strays": counts.strays,
        "covered": counts.covered,
        "deliveries": deliveries,
        "failed_attempts": sum(len(d.errors) for ds in g.run.deliveries.values() for d in ds),
        "attempts": attempts,
        "lambda_parked": len(g.run.parked),
        "dispatch_parked": len(g.queues.parked),
        "started_inline": sum(1 for o in g.run.outcomes() if o["status"] == "started"),
        "queued_by_poller": sum(int(s.get("gate_starts_queued", 0)) for s in g.polls),
        "fired_metric": metric(g.out, "gate_fired"),
        "throttled": g.faults.throttled,
        "conflicts": g.faults.conflicts,
        "failed_polls": g.failed_polls,
    }
    return result


def gate_items(h: Harness, route: str) -> dict[str, Any]:
    """Each partition's gate state (by `date=...`), read as the store reads it."""
    from polytrigger.gating.state import GATE_PREFIX, GateState
    from polytrigger.gating.store import partition_of

    found: dict[str, Any] = {}
    for item in h.stack.table_items():
        if item["id"]["S"].startswith(f"{GATE_PREFIX}{route}#"):
            partition = partition_of(item)
            found[dict(partition)["date"]] = GateState.from_item(item, route, partition)
    return found


def counted_once(h: Harness, partitions: Sequence[Partition]) -> int:
    """Partitions whose gate holds each object once, its last version fired, nothing owed."""
    states = gate_items(h, "orders")
    latest = {p.date: p.version for p in partitions}
    return sum(
        1
        for date, version in latest.items()
        if (s := states.get(date)) is not None
        and (s.version, s.fired, s.objects, s.owed) == (version, version, PARTS, 0)
        and s.marker_at
    )


def settle_owed(g: Gates) -> None:
    """Past OWED_GRACE: the poller queues what an invocation left owed, the dispatcher makes it; then again."""
    from polytrigger.gating.store import OWED_GRACE

    g.poll(OWED_GRACE + 1)
    g.pump()
    g.poll(OWED_GRACE + 1)
    g.pump()


# -- the scenarios -----------------------------------------------------------------------------


def gates_under_faults(h: Harness) -> Row:
    """Partitions of 40 parts and a marker, every object delivered twice, shuffled, 10 invocations at once,
    DynamoDB throttling and transaction conflicts injected: each partition starts once, when complete."""
    began, rng = time.monotonic(), random.Random(h.seed)
    faults = Faults(random.Random(h.seed + 1), throttle=THROTTLE, conflict=CONFLICT)
    with gate_scenario(h, faults) as g:
        g.versions = [orders("faults", index) for index in range(h.n(20, minimum=3))]
        g.deliver(twice_shuffled(g.versions, rng))
        faults.throttle = faults.conflict = 0.0
        settle_owed(g)
        name = f"gates: {len(g.versions)} partitions x ({PARTS} parts + marker), twice, 10 at once, DynamoDB faults"
        result = row(g, name, ORDERS, began)
        facts = result.facts
        facts["counted_once"] = counted_once(h, g.versions)
        result.notes = (
            f"{facts['complete']} partitions complete: {facts['started_inline']} answered started by the completing"
            f" object's own invocation (the others' failed after the start, and were retried),"
            f" {facts['queued_by_poller']} queued by the poller; {facts['throttled']}"
            f" requests throttled, {facts['conflicts']} transactions conflicted, {facts['failed_attempts']} invocations"
            f" failed and were retried; {facts['counted_once']} gates count each of their {PARTS} parts once"
        )
        return result


def gates_after_a_crash(h: Harness) -> Row:
    """The completing invocation dies right after its firing claim (half the partitions) or after its start,
    before the settle (the other half); Lambda delivers its event again; the poller makes what is owed."""
    from polytrigger.gating.store import OWED_GRACE

    began, rng = time.monotonic(), random.Random(h.seed + 2)
    with gate_scenario(h) as g:
        g.versions = [orders("crash", index) for index in range(h.n(10, minimum=2))]
        before = {p.text for p in g.versions[::2]}
        after = {p.text for p in g.versions[1::2]}
        with crash_between(after_fire=before, after_start=after) as crashed:
            g.deliver(twice_shuffled(g.versions, rng))
        started_inline = len(h.stack.fake.executions(ORDERS))
        early = g.poll(60)  # within the grace: the start may still be on its way
        g.pump()
        queued_early = sum(int(s.get("gate_starts_queued", 0)) for s in early.summaries)
        g.poll(OWED_GRACE)
        g.pump()
        queued = sum(int(s.get("gate_starts_queued", 0)) for s in g.polls)
        g.poll(OWED_GRACE + 1)  # nothing owed any more
        g.pump()
        name = "gates: completing invocation dies after the firing claim or the start"
        result = row(g, name, ORDERS, began)
        facts = result.facts
        facts |= {
            "crashed_after_fire": crashed["fire"],
            "crashed_after_start": crashed["settle"],
            "started_before_poll": started_inline,
            "queued_within_grace": queued_early,
            "queued_after_grace": queued - queued_early,
            "queued_later": sum(int(s.get("gate_starts_queued", 0)) for s in g.polls) - queued,
            "counted_once": counted_once(h, g.versions),
        }
        statuses = Counter(o["status"] for ds in g.queues.deliveries.values() for d in ds for o in d.outcomes)
        facts["dispatcher_started"] = statuses["started"]
        facts["dispatcher_covered"] = statuses["covered"]
        facts["dispatcher_duplicate"] = statuses["duplicate"]
        result.notes = (
            f"{crashed['fire']} died after the firing claim, {crashed['settle']} after the start (Lambda delivered"
            f" each again: nothing started); within the grace the poller queued {queued_early}; after"
            f" {OWED_GRACE // 60} min it queued {facts['queued_after_grace']}, each under its action's own dedup"
            f" key ({facts['dispatcher_started']} started, {facts['dispatcher_covered']} covered by that run,"
            f" {facts['dispatcher_duplicate']} found made before the crash); later polls queued {facts['queued_later']}"
        )
        return result


def gates_redelivered(h: Harness) -> Row:
    """Complete partitions; their events again (nothing more); then every object uploaded again, twice,
    shuffled, at once, with DynamoDB faults: exactly one more start per partition."""
    began, rng = time.monotonic(), random.Random(h.seed + 3)
    faults = Faults(random.Random(h.seed + 4), throttle=THROTTLE, conflict=CONFLICT)
    with gate_scenario(h, faults) as g:
        first = [orders("again", index) for index in range(h.n(10, minimum=2))]
        g.versions = list(first)
        g.deliver(twice_shuffled(first, rng))
        settle_owed(g)
        after_first = len(h.stack.fake.executions(ORDERS))
        g.deliver(twice_shuffled(first, rng))  # the same events again (EventBridge delivers at least once)
        settle_owed(g)
        after_repeats = len(h.stack.fake.executions(ORDERS))
        second = [renewed(p, 2) for p in first]
        g.versions += second
        g.deliver(twice_shuffled(second, rng))
        faults.throttle = faults.conflict = 0.0
        settle_owed(g)
        name = "gates: partitions uploaded again after completion"
        result = row(g, name, ORDERS, began)
        facts = result.facts
        facts |= {
            "after_first": after_first,
            "after_repeats": after_repeats,
            "after_second": len(h.stack.fake.executions(ORDERS)),
            "counted_once": counted_once(h, second),
        }
        result.notes = (
            f"{len(first)} partitions: {after_first} starts; their events again: {after_repeats}; every object"
            f" uploaded again: {facts['after_second']} ({facts['throttled']} requests throttled,"
            f" {facts['conflicts']} transactions conflicted, {facts['failed_attempts']} invocations retried)"
        )
        return result


def manifest(key: str, names: Sequence[str], h: Harness) -> dict[str, Any]:
    body = json.dumps([{"key": name} for name in names]).encode()
    h.stack.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return upload(key, size=len(body))


def gates_timed_out(h: Harness) -> Row:
    """Manifests of 6 files; in most partitions one never lands: each reported once at the timeout (naming it),
    though the polls past it fail on throttled requests and are retried; the others start once."""
    began, rng = time.monotonic(), random.Random(h.seed + 5)
    faults = Faults(random.Random(h.seed + 6), throttle=THROTTLE, conflict=CONFLICT)
    with gate_scenario(h, faults) as g:
        count = h.n(10, minimum=2)
        names = [f"file-{index}.csv" for index in range(LISTED)]
        for index in range(count + max(1, count // 4)):
            date = f"vendor-{index:03d}-{uuid.uuid4().hex[:6]}"
            folder = f"vendor/{date}"
            files = [upload(f"{folder}/{name}") for name in names]
            complete = index >= count
            listed = manifest(f"{folder}/manifest.json", names, h)
            required = [listed, *files] if complete else [listed, *files[:-1]]
            g.versions.append(Partition("vendor", date, 1, required, complete=complete))
        g.deliver(twice_shuffled(g.versions, rng))
        faults.throttle = faults.conflict = 0.0
        g.poll(3600)  # an hour on: nothing to report yet
        reported_early = len(g.reports())
        poller = _faulty_polls(g, faults)
        for _ in range(3):  # the timeout passed, then two more polls
            poller(TIMEOUT_HOURS * 3600 / 2)
        g.pump()
        reports = g.reports()
        reported = Counter(_partition_of(line["message"]) for line in reports)
        naming = sum(1 for line in reports if "/file-5.csv" in line["message"] and "/file-0.csv" not in line["message"])
        name = "gates: manifests naming a file that never lands, polls failing"
        result = row(g, name, VENDOR, began, reported=reported)
        facts = result.facts
        facts |= {
            "incomplete": count,
            "reports": len(reports),
            "reported_partitions": len(reported),
            "reported_early": reported_early,
            "naming_the_missing_file": naming,
            "timed_out_metric": metric(g.out, "gate_timed_out"),
        }
        result.notes = (
            f"{count} partitions wait for a file that never lands: {len(reports)} timeout reports"
            f" ({naming} naming just that file, gate_timed_out {facts['timed_out_metric']}), none before"
            f" {TIMEOUT_HOURS} h; {facts['failed_polls']} polls failed on throttled requests and were retried;"
            f" {facts['complete']} complete partitions started {result.seen} times"
        )
        return result


def _faulty_polls(g: Gates, faults: Faults) -> Callable[[float], None]:
    """A poll `after` seconds on, its first two attempts throttled now and then (Lambda retries the poll)."""
    from polytrigger.handlers import poller

    local = faults.local

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        local.attempt = getattr(local, "attempt", 0) + 1
        local.armed = local.attempt <= FAULTY_ATTEMPTS
        try:
            answer: dict[str, Any] = poller.handler(event, context)
            return answer
        finally:
            local.armed = False

    def polled(after: float) -> None:
        g.h.stack.fake.advance_clock(after)
        local.attempt = 0
        faults.throttle = THROTTLE * 4  # a poll makes few gate requests: strike more often
        try:
            delivery = g.h.invoker(handler, function_name="polytrigger-poller").invoke(
                {"poll": g.h.stack.fake.now().isoformat()}
            )
        finally:
            faults.throttle = 0.0
        g.polls.extend(delivery.summaries)
        g.failed_polls += len(delivery.errors)

    return polled


def _partition_of(message: str) -> str:
    """`date=...` out of a `gate timed out: route vendor, partition date=... incomplete` line."""
    return message.split("partition ", 1)[1].split(" ", 1)[0]


SCENARIOS: tuple[Callable[[Harness], Row], ...] = (
    gates_under_faults,
    gates_after_a_crash,
    gates_redelivered,
    gates_timed_out,
)
