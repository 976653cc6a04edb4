"""The reliability run's harness: one local stack, a fresh start per scenario, and the counts of its row.

Every scenario drives the real handlers against DynamoDB Local, moto and the fake Polytomic, then
counts both sides: executions Polytomic created per action (by the Idempotency-Key each carries,
with the `-r<n>` of a fresh attempt stripped), and what was parked with a reason. An action with no
execution, not covered by a run created after its file landed and not parked is *lost*; one with
two executions is *doubled*. A delivery that was acknowledged (the invocation succeeded, or the
message was deleted) while an action of it neither got done (an outcome other than `failed`) nor
was parked with a reason found in a dead-letter queue counts in "acked, not done or parked".
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.stack import LocalStack
from local.stack.lambda_async import AsyncInvoker, Delivery, Handler

MODEL = "5d1c8f0e-2b7a-4c3d-9e8f-0a1b2c3d4e5f"
BULK = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
BUCKET = "reliability-landing"
ROUTES = f"""
routes:
  - name: landing
    s3: {{bucket: {BUCKET}, key: "in/**"}}
    syncs:
      - id: {MODEL}
      - id: {BULK}
        type: bulk
        fetch_mode: incremental
"""
RETRY_SUFFIX = re.compile(r"-r\d+$")  # a fresh attempt after a replayed 500 or refusal: `<key>-r<n>`


def base_key(key: str | None) -> str:
    """The action's own key of an Idempotency-Key (a fresh attempt's `-r<n>` stripped)."""
    return RETRY_SUFFIX.sub("", key or "")


def event_key(event: Any) -> str:
    """What identifies one event among a scenario's: its id, else its JSON (a schedule's input has no id)."""
    if isinstance(event, dict) and isinstance(event.get("id"), str):
        return str(event["id"])
    return json.dumps(event, sort_keys=True)


@dataclass
class GateCounts:
    """A gate row's own columns (local.reliability.gates), counted per partition version from Polytomic's side."""

    complete: int = 0  # versions whose every required object was delivered
    early: int = 0  # starts created before their version's last required object was first delivered
    twice: int = 0  # starts past a version's first, and starts attributed to no version (strays)
    missed: int = 0  # complete versions with no start, and no run of their sync created since they completed
    covered: int = 0  # complete versions with no start of their own, but such a run
    strays: int = 0  # of `twice`: starts attributed to no version
    told_wrong: int = 0  # timeout reports made zero times or twice (or for a complete partition)


@dataclass
class Row:
    scenario: str
    triggers: int
    expected: int
    seen: int
    duplicates: int
    parked: int
    lost: int
    doubled: int
    seconds: float
    notes: str = ""
    acked_not_done: int = 0  # deliveries acknowledged although an action was neither done nor parked with a reason
    facts: dict[str, int] = field(default_factory=dict)  # what the scenario's notes say, for the tests
    # run-outcome rows: endings (and freshness breaches) told zero times or more than once; None: not a row of those
    told_wrong: int | None = None
    gate: GateCounts | None = None  # gate rows: partitions complete, fired early, fired twice, missed


@dataclass
class Run:
    """One scenario's events, every delivery of them (from every thread), and what was parked, with why."""

    events: list[dict[str, Any]] = field(default_factory=list)
    deliveries: dict[str, list[Delivery]] = field(default_factory=dict)
    parked: dict[str, str] = field(default_factory=dict)  # event key -> the reason it was parked with
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, event: dict[str, Any], delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.setdefault(event_key(event), []).append(delivery)

    def outcomes(self, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        chosen = [self.deliveries.get(event_key(event), [])] if event is not None else self.deliveries.values()
        return [o for ds in chosen for d in ds for s in d.summaries for o in s.get("outcomes", [])]


@dataclass(frozen=True)
class Landed:
    """One action a landed file (or a schedule) asked for, and when it had happened by (epoch seconds)."""

    action: Any  # polytrigger.core.actions.Action
    at: float
    event: str  # event_key of its event


@dataclass
class Tally:
    expected: int = 0
    seen: int = 0
    lost: int = 0
    doubled: int = 0
    covered: int = 0
    parked: int = 0


def s3_event(run_id: str, index: int, *, prefix: str = "in", at: datetime | None = None) -> dict[str, Any]:
    """A fresh upload, in the S3 → EventBridge shape the template wires up."""
    now = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": now,
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {
                "key": f"{prefix}/{run_id}/part {index:05d}+ü.csv",
                "size": 1024,
                "etag": uuid.uuid4().hex,
                "sequencer": f"{int(time.time() * 1000):012X}{index:06X}{uuid.uuid4().hex[:6].upper()}",
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


class Harness:
    """Runs scenarios on one local stack; each starts from an empty table, queue and fake."""

    def __init__(self, stack: LocalStack, scale: float, seed: int) -> None:
        self.stack = stack
        self.scale = scale
        self.seed = seed
        self.sqs = stack.client("sqs")
        self.deferred_outcomes: dict[str, list[dict[str, Any]]] = {}  # the dispatcher's, by action dedup key
        self._dir = tempfile.TemporaryDirectory(prefix="polytrigger-reliability-")
        self.routes_file = Path(self._dir.name) / "routes.yaml"
        # The template's DeadLetterQueue: Lambda's on-failure destination and the functions' own parking place.
        self.dlq_url = stack.dead_letter_queue_url

    def close(self) -> None:
        self._dir.cleanup()

    def n(self, full: int, minimum: int = 4) -> int:
        return max(minimum, round(full * self.scale))

    @contextmanager
    def scenario(self, routes: str = ROUTES, **env: str) -> Iterator[Run]:
        from aws_lambda_powertools.utilities import parameters

        from polytrigger import bootstrap

        self.stack.reset()
        self.deferred_outcomes = {}
        self.stack.fake.add_sync(MODEL, kind="model")
        self.stack.fake.add_sync(BULK, kind="bulk")
        self.routes_file.write_text(routes, encoding="utf-8")
        overrides = {
            "ROUTES_FILE": str(self.routes_file),
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
            "DEFERRAL_FIRST_DELAY_SECONDS": "1",  # a start still throttled after its retries is deferred this long
            **env,
        }
        with self.stack.environ(**overrides):
            bootstrap.reset()
            parameters.clear_caches()  # type: ignore[no-untyped-call]
            try:
                yield Run()
            finally:
                bootstrap.reset()
                parameters.clear_caches()  # type: ignore[no-untyped-call]

    def invoker(
        self, handler: Handler | None = None, *, function_name: str = "polytrigger-s3", **options: Any
    ) -> AsyncInvoker:
        if handler is None:
            from polytrigger.handlers import s3

            handler = s3.handler
        return AsyncInvoker(handler, function_name=function_name, sqs=self.sqs, dlq_url=self.dlq_url, **options)

    def deliver_deferred(self) -> None:
        """Deliver the starts the S3 function deferred to the dispatch queue (a 429 that outlasted its in-call
        retries waits there) to the real dispatcher, with the stack's one pump, as the event source mapping would.

        The dispatcher's outcomes are kept by the action's dedup key (`deferred_outcomes`, until the scenario
        is counted): a start covered by a later run of its sync is `covered`.
        """
        from local.stack.dispatch_pump import DispatchPump, DispatchQueue
        from polytrigger.dispatch.messages import UnsupportedMessage, decode_body
        from polytrigger.handlers import dispatcher

        pump = DispatchPump(DispatchQueue.at(self.sqs, os.environ["DISPATCH_QUEUE_URL"]), dispatcher.handler)
        for delivery in pump.drain(timeout=120):
            for message, outcome in zip(delivery.messages, delivery.outcomes, strict=False):
                try:
                    key = decode_body(message["Body"]).action.dedup_key
                except UnsupportedMessage:
                    continue
                self.deferred_outcomes.setdefault(key, []).append(outcome)

    def take_parked(self, run: Run) -> list[dict[str, Any]]:
        """Every record in the dead-letter queue (taken out), remembered with its reason."""
        records = self.stack.parked_events()
        self._remember(run, records)
        return records

    @staticmethod
    def _remember(run: Run, records: list[dict[str, Any]]) -> None:
        for record in records:
            reason = (record.get("responsePayload") or {}).get("errorMessage") or ""
            if not reason:
                raise AssertionError(f"a parked event without a readable reason: {json.dumps(record)[:300]}")
            run.parked[event_key(record.get("requestPayload"))] = reason

    def peek_parked(self, run: Run) -> list[dict[str, Any]]:
        """Every record in the dead-letter queue, remembered with its reason and left there (for a re-drive)."""
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
            )
            messages = [m for m in answer.get("Messages", []) if m["MessageId"] not in found]
            if not messages:
                break
            for message in messages:
                found[message["MessageId"]] = (message["ReceiptHandle"], json.loads(message["Body"]))
        for receipt, _ in found.values():  # visible again at once
            self.sqs.change_message_visibility(QueueUrl=self.dlq_url, ReceiptHandle=receipt, VisibilityTimeout=0)
        records = [record for _, record in found.values()]
        self._remember(run, records)
        return records

    def park_again(self, record: dict[str, Any]) -> None:
        """Put a record (taken from the dead-letter queue) back there."""
        reason = record["responsePayload"]["errorMessage"]
        attributes = {"ERROR_MESSAGE": {"DataType": "String", "StringValue": reason[:1000]}}
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps(record), MessageAttributes=attributes)

    def routes(self) -> Any:
        from polytrigger.routing import load_routes

        return load_routes(self.routes_file)

    def landed(self, event: dict[str, Any], at: float, parse: Callable[[Any], list[Any]] | None = None) -> list[Landed]:
        """The actions the routes make of an event that had happened by `at`."""
        from polytrigger.events import s3_triggers

        triggers = (parse or s3_triggers)(event)
        return [Landed(action, at, event_key(event)) for action in self.routes().actions_for(triggers)]

    def count(self, name: str, run: Run, started: float, notes: str = "") -> Row:
        """The row of a scenario of S3 events, once the starts it deferred are delivered: each action's own executions
        are those carrying its key (or its deferred starts' ids) and its options."""
        from polytrigger.events import s3_triggers

        routes = self.routes()
        self.deliver_deferred()
        deferred_outcomes, self.deferred_outcomes = self.deferred_outcomes, {}
        parked_records = self.take_parked(run)
        parked = {event_key(r["requestPayload"]) for r in parked_records}
        executions = self.stack.fake.executions()
        deferred = _deferred_starts(action for event in run.events for action in routes.actions_for(s3_triggers(event)))
        per_start = Counter(deferred.get(started_as(e), started_as(e)) for e in executions)
        by_id = {e.id: e for e in executions}
        expected = seen = lost = doubled = covered = 0
        known: set[tuple[str, str]] = set()
        for event in run.events:
            for action in routes.actions_for(s3_triggers(event)):
                expected += 1
                known.add(asked_as(action))
                starts = per_start[asked_as(action)]
                seen += starts
                doubled += max(0, starts - 1)
                if starts or event_key(event) in parked:
                    continue
                if _covered([*run.outcomes(event), *deferred_outcomes.get(action.dedup_key, [])], action, by_id):
                    covered += 1
                else:
                    lost += 1
        doubled += sum(count for start, count in per_start.items() if start not in known)  # strays
        duplicates = sum(1 for outcome in run.outcomes() if outcome["status"] == "duplicate")
        if covered:
            notes = f"{covered} covered by a run created since the trigger; {notes}".rstrip("; ")
        return Row(
            name, len(run.events), expected, seen, duplicates, len(parked), lost, doubled,
            time.monotonic() - started, notes, acked_not_done(run, routes, s3_triggers), {"covered": covered},
        )  # fmt: skip

    def tally(self, landed: Iterable[Landed], parked: set[str], *, extra_keys: Iterable[str] = ()) -> Tally:
        """Count from Polytomic's side: executions per action, coverage by a run created after the file landed.

        An action's own executions are those under its dedup key or one of its deferred starts' ids
        (`-r<n>` stripped). `parked`: event keys and action dedup keys parked with a reason.
        `extra_keys`: other keys an execution may carry (a debounce window's messages), doubled past one.
        """
        from polytrigger.dispatch.messages import message_id

        executions = self.stack.fake.executions()
        per_start = Counter(started_as(e) for e in executions)
        per_key = Counter(base_key(e.idempotency_key) for e in executions)
        extra = set(extra_keys)
        result, attributed = Tally(), set[str]()
        for item in landed:
            action = item.action
            keys = {action.dedup_key} | {message_id(action.dedup_key, "deferred", a) for a in range(1, 16)}
            attributed |= keys
            starts = sum(per_start[(key, asked_as(action)[1])] for key in keys)
            result.expected += 1
            result.seen += starts
            result.doubled += max(0, starts - 1)
            if starts:
                continue
            if item.event in parked or action.dedup_key in parked:
                result.parked += 1
            elif any(_may_cover(e, action) and e.created_at.timestamp() >= item.at for e in executions):
                result.covered += 1
            else:
                result.lost += 1
        result.seen += sum(count for key, count in per_key.items() if key in extra - attributed)
        result.doubled += sum(max(0, count - 1) for key, count in per_key.items() if key in extra - attributed)
        result.doubled += sum(count for key, count in per_key.items() if key not in attributed | extra)  # strays
        return result


def started_as(execution: Any) -> tuple[str, str]:
    """What an execution was started as: its Idempotency-Key (`-r<n>` stripped) and the options it was sent."""
    return base_key(execution.idempotency_key), json.dumps(execution.options, sort_keys=True)


def _deferred_starts(actions: Iterable[Any]) -> dict[tuple[str, str], tuple[str, str]]:
    """What a start deferred to the dispatch queue is sent as (its message's id), for each action: the action's own."""
    from polytrigger.dispatch.messages import message_id

    return {
        (message_id(action.dedup_key, "deferred", attempt), asked_as(action)[1]): asked_as(action)
        for action in actions
        for attempt in range(1, 16)
    }


def asked_as(action: Any) -> tuple[str, str]:
    """What a start of the action is sent as: its dedup key and its body."""
    return action.dedup_key, json.dumps(action.sync.body(), sort_keys=True)


def _may_cover(execution: Any, action: Any) -> bool:
    """A run of the action's sync that does what it asks: any run for a plain start, else one with its options."""
    if execution.sync_id != action.sync.id:
        return False
    return bool(action.sync.coverable) or all(execution.options.get(k) == v for k, v in action.sync.body().items())


def _covered(outcomes: list[dict[str, Any]], action: Any, executions: dict[str, Any]) -> bool:
    """A start reported as a run of the sync that does what it asks, created at or after the trigger (after a 500,
    or by the dispatcher for a deferred start that a later run covered)."""
    for outcome in outcomes:
        execution = executions.get(outcome.get("execution_id") or "")
        if (
            execution is not None
            and outcome["sync_id"] == execution.sync_id
            and _may_cover(execution, action)
            and execution.created_at >= action.trigger.time
        ):
            return True
    return False


def acked_not_done(run: Run, routes: Any, parse: Callable[[Any], list[Any]]) -> int:
    """Acknowledged deliveries with an action neither done nor parked with a reason (must be 0).

    An invocation that answered is acknowledged: each of its `failed` outcomes must say it was parked
    and its event must be in the dead-letter queue with a reason; an answer with no outcome for an
    event the routes act on must be parked too. One that failed every attempt was parked by Lambda.
    """
    missing = 0
    for event in run.events:
        key = event_key(event)
        for delivery in run.deliveries.get(key, []):
            if delivery.parked and key not in run.parked:
                missing += 1
            for summary in delivery.summaries:
                outcomes = summary.get("outcomes", [])
                failed = [o for o in outcomes if o["status"] == "failed"]
                if (failed and (key not in run.parked or not all(o.get("parked") for o in failed))) or (
                    not outcomes and key not in run.parked and routes.actions_for(_triggers(parse, event))
                ):
                    missing += 1
    return missing


def _triggers(parse: Callable[[Any], list[Any]], event: Any) -> list[Any]:
    try:
        return parse(event)
    except ValueError:  # polytrigger.events.UnsupportedEvent: nothing to act on, so nothing acknowledged silently
        return []
