"""Reliability scenarios on what a start asks and how hard Polytomic is asked: options, activation, bursts.

- options lost: a plain start and a resync of the same sync for the same file are two actions, and both run;
- replayed 500s on activation: schedules that pause and thaw syncs while 30 % of those calls answer a
  500 that Polytomic replays for the same Idempotency-Key; each is set again under a fresh key;
- unbounded concurrency: a burst of uploads with the S3 function's reserved concurrency (the
  template's `S3TriggerConcurrency`) and Polytomic answering 429 with Retry-After above a rate.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from local.polytomic.faults import default_body
from local.polytomic.http import Reply
from local.reliability.failures import redrive
from local.reliability.harness import BUCKET, BULK, MODEL, Harness, Row, acked_not_done, base_key, event_key, s3_event

OPTIONS_ROUTES = f"""
routes:
  - name: every-file
    s3: {{bucket: {BUCKET}, key: "in/**"}}
    syncs: [{{id: {MODEL}}}]
  - name: csv-resync
    s3: {{bucket: {BUCKET}, key: "in/**/*.csv"}}
    syncs: [{{id: {MODEL}, resync: true}}]
"""
SCHEDULE_ROUTES = f"""
routes:
  - name: weekend-freeze
    schedule: freeze
    action: deactivate
    syncs: [{{id: {MODEL}}}, {{id: {BULK}, type: bulk}}]
  - name: monday-thaw
    schedule: thaw
    action: activate
    syncs: [{{id: {MODEL}}}, {{id: {BULK}, type: bulk}}]
"""
S3_TRIGGER_CONCURRENCY = 10  # template.yaml, S3TriggerConcurrency's default: the function's reserved concurrency
POLYTOMIC_RATE = 25  # requests a second Polytomic answers; beyond it: 429, Retry-After: 1


def options_lost(h: Harness) -> Row:
    """A plain start and a resync of one sync on overlapping globs: both run for every file, neither twice."""
    with h.scenario(OPTIONS_ROUTES) as run:
        started = time.monotonic()
        invoker = h.invoker()
        run.events = [s3_event("options", i) for i in range(h.n(200, minimum=10))]
        with ThreadPoolExecutor(max_workers=8) as pool:
            for event, delivery in zip(run.events, pool.map(invoker.invoke, run.events), strict=True):
                run.add(event, delivery)
        executions = h.stack.fake.executions(MODEL)
        resyncs = sum(1 for e in executions if e.options.get("resync") is True)
        notes = f"{resyncs} resync runs and {len(executions) - resyncs} plain runs for {len(run.events)} files"
        row = h.count("plain and resync start of one file", run, started, notes)
        row.facts = {"files": len(run.events), "resync_runs": resyncs, "plain_runs": len(executions) - resyncs}
        return row


def activation_500s(h: Harness) -> Row:
    """Freeze and thaw schedules while 30 % of (de)activation calls answer a 500 replayed for the key."""
    from polytrigger.events import schedule_trigger
    from polytrigger.handlers import schedule

    def parse(event: Any) -> list[Any]:
        return [schedule_trigger(event)]

    with h.scenario(SCHEDULE_ROUTES) as run:
        started = time.monotonic()
        fake = h.stack.fake
        fake.set_random_faults(0.3, seed=h.seed + 4, statuses=(500,), drop=False, path_contains="/activate")
        invoker = h.invoker(schedule.handler, function_name="polytrigger-schedule")
        first = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
        for cycle in range(h.n(100, minimum=5)):
            for name, hours in (("freeze", 0), ("thaw", 60)):
                moment = first + timedelta(weeks=cycle, hours=hours)
                event = {"schedule": name, "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
                run.events.append(event)
                run.add(event, invoker.invoke(event))
        parked = h.peek_parked(run)
        fake.clear_faults()  # Polytomic is well again: what was parked is re-driven
        summary, _ = redrive(h, run)
        still = len(h.take_parked(run))
        routes = h.routes()
        sets = [c for c in fake.calls if c.method == "POST" and c.path.endswith("/activate")]
        done = [c for c in sets if c.status == 200 and not c.replayed]
        per_key: dict[str, int] = {}
        for call in done:
            key = base_key(call.headers.get("idempotency-key"))
            per_key[key] = per_key.get(key, 0) + 1
        expected = seen = lost = doubled = 0
        for event in run.events:
            for action in routes.actions_for(parse(event)):
                expected += 1
                count = per_key.pop(action.dedup_key, 0)
                seen += count
                doubled += max(0, count - 1)
                lost += 1 if not count and event_key(event) not in run.parked else 0
        doubled += sum(per_key.values())  # strays
        errors = [c for c in sets if c.status == 500]
        fresh = sum(1 for c in done if c.headers.get("idempotency-key") != base_key(c.headers.get("idempotency-key")))
        notes = (
            f"{len(errors)} calls answered 500 ({sum(c.replayed for c in errors)} replayed for the same key);"
            f" {fresh} set again under a fresh key; {len(parked)} events parked after Lambda's two retries,"
            f" {summary.count('re-driven')} re-driven: "
        )
        notes += "every action set once" if seen == expected and not doubled else f"{expected - seen} actions never set"
        duplicates = sum(1 for o in run.outcomes() if o["status"] == "duplicate")
        row = Row(
            "replayed 500s on activation", len(run.events), expected, seen, duplicates, still, lost,
            doubled, time.monotonic() - started, notes, acked_not_done(run, routes, parse),
        )  # fmt: skip
        row.facts = {"errors_500": len(errors), "fresh": fresh, "parked_first": len(parked)}
        row.facts |= {"redriven": summary.count("re-driven")}
        return row


class RateLimit:
    """Polytomic's rate limit on the fake: past `rate` requests in a second, 429 with Retry-After: 1.

    The burst's first second finds its budget spent (another client of the organisation used it), so
    at least one 429 is answered however slowly the machine sends: the row always tries that path.
    """

    def __init__(self, fake: Any, rate: int) -> None:
        self.fake, self.rate = fake, rate
        self.lock = threading.Lock()
        self.second, self.used, self.limited = -1, 0, 0
        self.answer = fake._answer  # the fake's request pipeline, wrapped for the scenario

    def __enter__(self) -> RateLimit:
        self.fake._answer = self._answer
        return self

    def __exit__(self, *exc: object) -> None:
        del self.fake._answer  # the class's method again

    def _answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        with self.lock:
            second = int(time.monotonic())
            if second != self.second:
                self.second, self.used = second, self.rate if self.second == -1 else 0
            self.used += 1
            over = self.used > self.rate
            self.limited += over
        if over:
            return Reply(429, default_body(429), {"Retry-After": "1"}, fault="rate limit")
        reply: Reply = self.answer(method, path, headers, raw)
        return reply


def unbounded_concurrency(h: Harness) -> Row:
    """A burst of uploads at once: at most S3_TRIGGER_CONCURRENCY run, the rest are throttled and retried.

    A start still answered 429 after its in-call retries waits on the dispatch queue (at least its
    Retry-After); the dispatcher delivers it once the burst is over, as the event source mapping would.
    """
    with h.scenario() as run:
        started = time.monotonic()
        invoker = h.invoker(retry_delays=(1.0, 2.0))
        run.events = [s3_event("burst", i) for i in range(h.n(300, minimum=40))]
        slots = threading.BoundedSemaphore(S3_TRIGGER_CONCURRENCY)
        lock, busy = threading.Lock(), {"now": 0, "peak": 0, "throttled": 0}
        rng = random.Random(h.seed + 5)

        def arrive(event: dict[str, Any]) -> None:
            throttled = 0
            while not slots.acquire(blocking=False):  # throttled: Lambda keeps the event and tries again later
                with lock:
                    busy["throttled"] += 1
                    pause = min(2.0, 0.1 * 2**throttled) * rng.uniform(0.5, 1.0)
                throttled += 1
                time.sleep(pause)
            with lock:
                busy["now"] += 1
                busy["peak"] = max(busy["peak"], busy["now"])
            try:
                run.add(event, invoker.invoke(event))
            finally:
                with lock:
                    busy["now"] -= 1
                slots.release()

        with RateLimit(h.stack.fake, POLYTOMIC_RATE) as limit, ThreadPoolExecutor(max_workers=64) as pool:
            for future in [pool.submit(arrive, event) for event in run.events]:
                future.result()
            h.deliver_deferred()
        calls = len(h.stack.fake.calls)
        notes = (
            f"at most {busy['peak']} invocations at once (reserved {S3_TRIGGER_CONCURRENCY}), {busy['throttled']}"
            f" throttled tries, retried later; {limit.limited} of {calls} calls answered 429 (over {POLYTOMIC_RATE}/s, Retry-After 1 s)"
        )
        row = h.count("burst, concurrency bounded", run, started, notes)
        row.facts |= {"peak": busy["peak"], "throttled": busy["throttled"], "429s": limit.limited, "calls": calls}
        return row
