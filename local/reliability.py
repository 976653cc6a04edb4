"""`make reliability`: at-least-once in, exactly one execution per (trigger, sync) out.

Each scenario drives the real S3 handler (as Lambda would invoke it asynchronously: retries, then
the dead-letter queue) against the local stack — DynamoDB Local, moto, and the fake Polytomic with
fault injection — then counts both sides: executions Polytomic created per action (by the
Idempotency-Key each carries), and events parked in the dead-letter queue. An action with no
execution whose event was not parked is *lost*; an action with two executions is *doubled*.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.lambda_async import AsyncInvoker, Delivery, drain
from local.stack import LocalStack

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
_RETRY_SUFFIX = re.compile(r"-r\d+$")


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


@dataclass
class Run:
    """One scenario's events and every delivery of them, gathered from every thread."""

    events: list[dict[str, Any]] = field(default_factory=list)
    deliveries: dict[str, list[Delivery]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, event: dict[str, Any], delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.setdefault(event["id"], []).append(delivery)

    def outcomes(self, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        chosen = [self.deliveries.get(event["id"], [])] if event is not None else self.deliveries.values()
        return [o for ds in chosen for d in ds for s in d.summaries for o in s.get("outcomes", [])]


def s3_event(run_id: str, index: int) -> dict[str, Any]:
    """A fresh upload, in the S3 → EventBridge shape the template wires up."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
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
                "key": f"in/{run_id}/part {index:05d}+ü.csv",
                "size": 1024,
                "etag": uuid.uuid4().hex,
                "sequencer": f"{int(time.time() * 1000):012X}{index:06X}",
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
        self._dir = tempfile.TemporaryDirectory(prefix="polytrigger-reliability-")
        self.routes_file = Path(self._dir.name) / "routes.yaml"
        self.routes_file.write_text(ROUTES, encoding="utf-8")
        self.dlq_url = ""

    def close(self) -> None:
        self._dir.cleanup()

    def n(self, full: int, minimum: int = 4) -> int:
        return max(minimum, round(full * self.scale))

    @contextmanager
    def scenario(self, **env: str) -> Iterator[Run]:
        from aws_lambda_powertools.utilities import parameters

        from polytrigger.runtime import app as runtime

        self.stack.reset()
        self.stack.fake.add_sync(MODEL, kind="model")
        self.stack.fake.add_sync(BULK, kind="bulk")
        self.dlq_url = self.sqs.create_queue(QueueName=f"polytrigger-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        overrides = {"ROUTES_FILE": str(self.routes_file), "POWERTOOLS_LOG_LEVEL": "CRITICAL", **env}
        with self.stack.environ(**overrides):
            runtime.reset()
            parameters.clear_caches()  # type: ignore[no-untyped-call]
            try:
                yield Run()
            finally:
                runtime.reset()
                parameters.clear_caches()  # type: ignore[no-untyped-call]

    def invoker(self, **options: Any) -> AsyncInvoker:
        from polytrigger.handlers import s3

        return AsyncInvoker(s3.handler, function_name="polytrigger-s3", sqs=self.sqs, dlq_url=self.dlq_url, **options)

    def count(self, name: str, run: Run, started: float, notes: str = "") -> Row:
        from polytrigger.events import s3_triggers
        from polytrigger.routing import load_routes

        routes = load_routes(self.routes_file)
        parked_records = drain(self.sqs, self.dlq_url)
        unreadable = [r for r in parked_records if not r.get("responsePayload", {}).get("errorMessage")]
        if unreadable:
            raise AssertionError(f"{name}: {len(unreadable)} parked event(s) without a readable reason")
        parked = {r["requestPayload"]["id"] for r in parked_records}
        executions = self.stack.fake.executions()
        per_key = Counter(_RETRY_SUFFIX.sub("", e.idempotency_key or "") for e in executions)
        by_id = {e.id: e for e in executions}
        expected = seen = lost = doubled = covered = 0
        known: set[str] = set()
        for event in run.events:
            for action in routes.actions_for(s3_triggers(event)):
                expected += 1
                known.add(action.dedup_key)
                starts = per_key[action.dedup_key]
                seen += starts
                doubled += max(0, starts - 1)
                if starts or event["id"] in parked:
                    continue
                if _covered(run.outcomes(event), action.sync.id, action.trigger.time, by_id):
                    covered += 1
                else:
                    lost += 1
        doubled += sum(count for key, count in per_key.items() if key not in known)  # strays
        duplicates = sum(1 for outcome in run.outcomes() if outcome["status"] == "duplicate")
        if covered:
            notes = f"{covered} covered by a run created since the trigger; {notes}".rstrip("; ")
        return Row(
            name, len(run.events), expected, seen, duplicates, len(parked), lost, doubled,
            time.monotonic() - started, notes,
        )  # fmt: skip


def _covered(outcomes: list[dict[str, Any]], sync_id: str, since: datetime, executions: dict[str, Any]) -> bool:
    """A start reported as an execution of the sync created at or after the trigger (after a 500)."""
    for outcome in outcomes:
        execution = executions.get(outcome.get("execution_id") or "")
        if (
            execution is not None
            and outcome["sync_id"] == execution.sync_id == sync_id
            and execution.created_at >= since
        ):
            return True
    return False


# -- scenarios ---------------------------------------------------------------------------------


def baseline(h: Harness) -> Row:
    with h.scenario() as run:
        started = time.monotonic()
        invoker = h.invoker()
        run.events = [s3_event("baseline", i) for i in range(h.n(200))]
        for event in run.events:
            run.add(event, invoker.invoke(event))
        return h.count("every trigger once", run, started)


def redelivered(h: Harness) -> Row:
    with h.scenario() as run:
        started = time.monotonic()
        invoker = h.invoker()
        run.events = [s3_event("again", i) for i in range(h.n(100))]
        for _ in range(3):
            for event in run.events:
                run.add(event, invoker.invoke(event))
        return h.count("each trigger delivered 3 times", run, started)


def concurrent_threads(h: Harness, copies: int) -> Row:
    """The same event delivered `copies` times at once; in-progress conflicts retry like AWS does."""
    with h.scenario() as run:
        started = time.monotonic()
        invoker = h.invoker(retry_delays=(1.0, 2.0))
        run.events = [s3_event(f"threads{copies}", i) for i in range(h.n(max(4, 100 // copies), minimum=2))]
        for event in run.events:
            barrier = threading.Barrier(copies)

            def deliver(event: dict[str, Any] = event, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                run.add(event, invoker.invoke(event))

            threads = [threading.Thread(target=deliver) for _ in range(copies)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return h.count(f"{copies} concurrent deliveries (threads)", run, started)


def concurrent_processes(h: Harness, copies: int) -> Row:
    """Separate processes (separate containers) share DynamoDB Local and race for each trigger."""
    with h.scenario() as run:
        started = time.monotonic()
        run.events = [s3_event(f"procs{copies}", i) for i in range(h.n(20, minimum=3))]
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(copies)
        results = context.Queue()
        env = dict(os.environ)
        workers = [
            context.Process(
                target=_process_worker,
                args=(env, h.dlq_url, run.events),
                kwargs={"barrier": barrier, "index": index, "results": results},
            )
            for index in range(copies)
        ]
        for worker in workers:
            worker.start()
        for _ in workers:
            for event, (summaries, errors, parked) in zip(run.events, results.get(timeout=600), strict=True):
                run.add(event, Delivery(summaries=summaries, errors=errors, parked=parked))
        for worker in workers:
            worker.join()
        return h.count(f"{copies} concurrent deliveries (processes)", run, started)


def _process_worker(
    env: dict[str, str], dlq_url: str, events: list[dict[str, Any]], *, barrier: Any, index: int, results: Any
) -> None:
    os.environ.clear()
    os.environ.update(env, POWERTOOLS_METRICS_DISABLED="true")
    import boto3

    from polytrigger.handlers import s3

    sqs = boto3.client("sqs")
    invoker = AsyncInvoker(
        s3.handler, function_name=f"polytrigger-s3-{index}", sqs=sqs, dlq_url=dlq_url, retry_delays=(1.0, 2.0)
    )
    found = []
    for event in events:
        barrier.wait(timeout=120)
        delivery = invoker.invoke(event)
        found.append((delivery.summaries, delivery.errors, delivery.parked))
    results.put(found)


def holder_dies(h: Harness) -> Row:
    """The first invocation dies while its call is at Polytomic; its retry must neither lose nor double."""
    with h.scenario() as run:
        started = time.monotonic()
        fake = h.stack.fake
        run.events = [s3_event("dies", i) for i in range(h.n(5, minimum=2))]
        invoker = h.invoker(retry_delays=(2.5, 2.5))
        context = multiprocessing.get_context("spawn")
        for event in run.events:
            hold = fake.inject(hold=True, path_contains=MODEL)
            doomed = context.Process(target=_die_mid_call, args=(dict(os.environ), event))
            doomed.start()
            if not hold.reached.wait(60):
                doomed.kill()
                raise AssertionError("the doomed invocation never reached Polytomic")
            doomed.kill()  # Lambda cuts the invocation off mid-call
            doomed.join()
            hold.release()  # ...but Polytomic had the request and finishes it
            run.add(event, invoker.invoke(event))  # AWS retries once the in-progress record expires
        return h.count("first holder dies mid-call", run, started, "in-progress expiry = its remaining time")


def _die_mid_call(env: dict[str, str], event: dict[str, Any]) -> None:
    os.environ.clear()
    os.environ.update(env, POWERTOOLS_METRICS_DISABLED="true")
    from local.lambda_context import LocalContext
    from polytrigger.handlers import s3

    s3.handler(event, LocalContext(function_name="polytrigger-s3-doomed", timeout_seconds=2.0))


def _in_parallel(h: Harness, run: Run, label: str, count: int) -> None:
    """Deliver `count` fresh uploads from 8 threads: many invocations at once, as in a busy hour."""
    invoker = h.invoker()
    run.events = [s3_event(label, i) for i in range(count)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for event, delivery in zip(run.events, pool.map(invoker.invoke, run.events), strict=True):
            run.add(event, delivery)


def transient_faults(h: Harness) -> Row:
    """30% of calls: 429/502/503/504, a dropped connection, or an answer after the client gave up."""
    read_timeout = 0.25
    with h.scenario(POLYTOMIC_READ_TIMEOUT=str(read_timeout)) as run:
        started = time.monotonic()
        h.stack.fake.set_random_faults(0.3, seed=h.seed, drop=True, timeout=read_timeout * 2)
        _in_parallel(h, run, "faults", h.n(1000, minimum=40))
        return h.count("30% transient faults", run, started, f"seed {h.seed}")


def replayed_500s(h: Harness) -> Row:
    """30% of calls answer 500, stored under the key and replayed: fresh derived keys must get through."""
    with h.scenario() as run:
        started = time.monotonic()
        h.stack.fake.set_random_faults(0.3, seed=h.seed + 1, statuses=(500,), drop=False)
        _in_parallel(h, run, "500s", h.n(200, minimum=20))
        return h.count("30% replayed 500s", run, started, f"seed {h.seed + 1}")


def started_despite_500(h: Harness) -> Row:
    """A 500 after Polytomic created the run: the run is found, not started again."""
    with h.scenario() as run:
        started = time.monotonic()
        invoker = h.invoker()
        run.events = [s3_event("500-ran", i) for i in range(h.n(50, minimum=5))]
        for event in run.events:
            h.stack.fake.inject(500, method="POST", path_contains=f"{MODEL}/executions", side_effects=True)
            run.add(event, invoker.invoke(event))
        return h.count("500 after the run was created", run, started)


def rotation(h: Harness) -> Row:
    """The key is rotated mid-run: the new key is stored, then the old one revoked."""
    with h.scenario() as run:
        started = time.monotonic()
        fake, old, new = h.stack.fake, "fake-polytomic-api-key", f"rotated-{uuid.uuid4().hex}"
        invoker = h.invoker()
        run.events = [s3_event("rotation", i) for i in range(h.n(200, minimum=10))]
        half = len(run.events) // 2
        for index, event in enumerate(run.events):
            if index == half:
                fake.set_api_keys([old, new])
                h.stack.put_secret(new)
                fake.set_api_keys([new])
            run.add(event, invoker.invoke(event))
        refused = sum(1 for call in fake.calls if call.status == 401)
        return h.count("key rotated mid-run", run, started, f"{refused} call(s) answered 401")


def table_outage(h: Harness) -> Row:
    """The dedup table is gone: no call is made without a record; parked events are re-driven later."""
    with h.scenario() as run:
        started = time.monotonic()
        dynamodb = h.stack.dynamodb_client()
        dynamodb.delete_table(TableName=h.stack.table_name)
        invoker = h.invoker()
        run.events = [s3_event("outage", i) for i in range(h.n(20, minimum=4))]
        for event in run.events:
            run.add(event, invoker.invoke(event))
        calls_during_outage = len(h.stack.fake.calls)
        parked = drain(h.sqs, h.dlq_url)
        h.stack.create_table()
        for record in parked:  # the operator's re-drive
            run.add(record["requestPayload"], invoker.invoke(record["requestPayload"]))
        notes = f"{len(parked)} parked, {calls_during_outage} calls during the outage, then re-driven"
        return h.count("dedup table missing", run, started, notes)


SCENARIOS: tuple[Callable[[Harness], Row], ...] = (
    baseline,
    redelivered,
    lambda h: concurrent_threads(h, 2),
    lambda h: concurrent_threads(h, 10),
    lambda h: concurrent_threads(h, 50),
    lambda h: concurrent_processes(h, 2),
    lambda h: concurrent_processes(h, 10),
    holder_dies,
    transient_faults,
    replayed_500s,
    started_despite_500,
    rotation,
    table_outage,
)


# 50 Python processes cost a minute of start-up on two cores: the full run only.
FULL_SCALE_ONLY: tuple[Callable[[Harness], Row], ...] = (lambda h: concurrent_processes(h, 50),)


def run_all(stack: LocalStack, scale: float, seed: int) -> list[Row]:
    harness = Harness(stack, scale, seed)
    scenarios = SCENARIOS if scale < 0.5 else SCENARIOS[:7] + FULL_SCALE_ONLY + SCENARIOS[7:]
    try:
        return [scenario(harness) for scenario in scenarios]
    finally:
        harness.close()


def table(rows: Sequence[Row]) -> str:
    header = (
        "scenario", "triggers sent", "starts expected", "starts seen", "duplicates suppressed",
        "parked in DLQ", "lost", "doubled", "seconds", "notes",
    )  # fmt: skip
    lines = [header] + [
        (
            r.scenario,
            str(r.triggers),
            str(r.expected),
            str(r.seen),
            str(r.duplicates),
            str(r.parked),
            str(r.lost),
            str(r.doubled),
            f"{r.seconds:.1f}",
            r.notes,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    rendered.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(rendered)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # the table says it all
    parser = argparse.ArgumentParser(prog="make reliability", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full trigger counts (default 1)")
    parser.add_argument("--seed", type=int, default=20261123, help="seed of the random faults")
    args = parser.parse_args(argv)
    print(f"polytrigger reliability run (scale {args.scale}, seed {args.seed}) on the local stack ...", flush=True)
    with LocalStack() as stack, contextlib.redirect_stdout(io.StringIO()):  # the handlers' metrics lines
        engine = stack.dynamodb_engine
        rows = run_all(stack, args.scale, args.seed)
    print(table(rows))
    bad = [r.scenario for r in rows if r.lost or r.doubled]
    print(f"\nlost: {sum(r.lost for r in rows)}, doubled: {sum(r.doubled for r in rows)} (DynamoDB: {engine})")
    if bad:
        print(f"FAILED: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
