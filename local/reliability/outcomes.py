"""Reliability scenarios of run outcomes: every run's ending known, and told once, however it comes.

- webhook 30 % dropped and 30 % duplicated: runs started by real S3 triggers through the S3 handler
  end completed, completed with errors, failed or canceled (seeded); the fake Polytomic's webhook,
  subscribed to a loopback Function URL relaying to the real webhook handler, delivers their events
  in batches (reordered, some dropped, some twice); then the poller runs as its schedule would, a
  minute apart, until no run is open;
- no webhook and events aged out: the poller is down for 49 h, so every run's events are gone
  (Polytomic keeps them 48 h) before anyone read them; only reconciliation, which asks each
  execution's status (every run due, while the poll has time), can know how they ended.

Counted from both sides: Polytomic's (each execution and the outcome it was given) and ours (the
ledger's status, and the `run_<status>` lines logged, one per ending). An execution whose status
the ledger does not know, or knows wrong, is *lost*; a start made twice is *doubled*; an ending
told zero times or more than once (a line, and a metric by route, each) counts in "told 0 times or
twice", and so does a freshness breach where a scenario makes promises; a webhook delivery of an
ending answered 2xx while its run was neither settled nor parked counts in "acked, not done or
parked". The poller's clock is the fake's (`harness_time`), so the
schedule's minutes and Polytomic's 48 h pass without waiting.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Self

from local.polytomic.records import Outcome
from local.reliability.harness import BULK, MODEL, ROUTES, Harness, Row, Run, Tally, s3_event
from local.stack.function_url import FunctionUrl

OUTCOMES: tuple[Outcome, ...] = ("completed", "completed_with_errors", "failed", "canceled")
RECONCILE_AFTER = 60  # RUN_RECONCILE_AFTER_SECONDS at its minimum
SCHEDULE = 60  # the poller's schedule: every minute
LOOKUPS_PER_POLL = 20  # at the least (every run due is looked up while the poll has time): bounds the polls
BATCHES = 10  # webhook deliveries happen this many times while the files land
WEBHOOK_SECRET = "whsec-reliability-0123456789"
POLLER_ONLY = 3600  # RUN_RECONCILE_AFTER_SECONDS where an ending the poller skips must show: none is looked up
OTHER_EVENTS = 250  # the organisation's events about no run: two and a half pages
AT_ONCE = 150  # of them sharing one created_at: more than a page
FRESHNESS = 1800  # the promise route's `freshness: 30m`
WAVES = 4  # the promises are written in this many waves, GAP apart, and fall due so
GAP = 360  # more than the five minutes every poll reads again: a wave's endings are re-read by its own polls only
ITEM_LIMIT = 64 * 1024  # no item of the table may grow past this (DynamoDB's own limit is 400 KB)
CHAINED = "c4a1e2f3-0b5d-4e6f-8a7b-9c0d1e2f3a4b"  # started when a run of MODEL completes
CHAIN_ROUTES = (
    ROUTES
    + f"""  - name: chained
    polytomic: {{sync: {MODEL}, events: [completed]}}
    syncs: [{{id: {CHAINED}}}]
"""
)
FRESH_ROUTES = ROUTES.replace("    syncs:\n", f"    freshness: {FRESHNESS // 60}m\n    syncs:\n", 1)


@contextlib.contextmanager
def harness_time(fake: Any) -> Iterator[None]:
    """The poller's `now` is the fake Polytomic's (real time plus `advance_clock`): minutes pass at once."""
    from polytrigger.flows import on_poll as poller

    class FakeNow(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Self:
            return cls.fromtimestamp(fake.now().timestamp(), tz)

    original = getattr(poller, "datetime")  # noqa: B009 - not exported: the flow's own import
    setattr(poller, "datetime", FakeNow)  # noqa: B010 - the module's global, for this scenario only
    try:
        yield
    finally:
        setattr(poller, "datetime", original)  # noqa: B010


@dataclass
class Said:
    """What the handlers logged (at INFO) and printed (their metrics) during a scenario."""

    logs: io.StringIO = field(default_factory=io.StringIO)
    out: io.StringIO = field(default_factory=io.StringIO)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().split("\n") if line.strip()]

    def endings(self) -> list[dict[str, Any]]:
        """The `run_<status>` lines: one per run ended, naming its execution and how the ending came."""
        return [
            line for line in self.lines() if str(line.get("status", "")).startswith("run_") and "execution_id" in line
        ]

    def breaches(self) -> list[dict[str, Any]]:
        """The `freshness_breach` lines: one per promise not kept, naming its trigger and sync."""
        return [line for line in self.lines() if line.get("status") == "freshness_breach"]

    def ending_metrics(self) -> int:
        """`run_<status>` metrics by route (one per ending and route), from the handlers' EMF lines."""
        return self.metrics(lambda name: name.startswith("run_"), by_route=True)

    def breach_metrics(self) -> int:
        """`freshness_breach` metrics (one per breach told, in the invocation's own EMF line)."""
        return self.metrics(lambda name: name == "freshness_breach", by_route=False)

    def metrics(self, wanted: Callable[[str], bool], *, by_route: bool) -> int:
        total = 0
        for line in self.out.getvalue().splitlines():
            if not line.startswith('{"_aws"'):
                continue
            blob = json.loads(line)
            if ("route" in blob) != by_route:
                continue
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    if wanted(metric["Name"]):
                        value = blob[metric["Name"]]
                        total += int(sum(value) if isinstance(value, list) else value)
        return total


@contextlib.contextmanager
def outcome_scenario(
    h: Harness, routes: str = ROUTES, *, reconcile_after: int = RECONCILE_AFTER, **env: str
) -> Iterator[tuple[Run, Said]]:
    """A scenario with the webhook secret stored, reconciliation after a minute (or `reconcile_after`
    seconds), the dispatch queues (for chained starts), the handlers' endings captured."""
    from polytrigger import bootstrap
    from polytrigger.observability import logger

    secrets, sqs = h.stack.secrets_client(), h.stack.client("sqs")
    arn = secrets.create_secret(Name=f"polytomic-webhook-{uuid.uuid4().hex[:8]}", SecretString=WEBHOOK_SECRET)["ARN"]
    suffix = uuid.uuid4().hex[:8]
    queue = sqs.create_queue(QueueName=f"reliability-dispatch-{suffix}")["QueueUrl"]
    parked = sqs.create_queue(QueueName=f"reliability-dispatch-dlq-{suffix}")["QueueUrl"]
    scenario_env = {
        "POLYTOMIC_WEBHOOK_SECRET_ID": arn,
        "RUN_RECONCILE_AFTER_SECONDS": str(reconcile_after),
        "DISPATCH_QUEUE_URL": queue,
        "DISPATCH_DEAD_LETTER_QUEUE_URL": parked,
        **env,
    }
    said, handler, level = Said(), logger.registered_handler, logger.log_level
    try:
        with (
            h.scenario(routes, **scenario_env) as run,
            harness_time(h.stack.fake),
            contextlib.redirect_stdout(said.out),
        ):
            previous = handler.setStream(said.logs)  # type: ignore[attr-defined]
            logger.setLevel("INFO")  # the endings are INFO and ERROR lines
            bootstrap.reset()
            try:
                yield run, said
            finally:
                bootstrap.reset()
                logger.setLevel(level)
                handler.setStream(previous)  # type: ignore[attr-defined]
    finally:
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        for url in (queue, parked):
            sqs.delete_queue(QueueUrl=url)


def ledger_state(h: Harness) -> tuple[dict[str, str], set[str]]:
    """Each run's status in the ledger ('' while open), and the runs still watched (open)."""
    statuses: dict[str, str] = {}
    watched: set[str] = set()
    for item in h.stack.table_items():
        key = item["id"]["S"]
        if key.startswith("run#"):
            statuses[key.removeprefix("run#")] = item.get("status", {}).get("S", "")
            if item.get("due_in", {}).get("S", "").startswith("open#"):
                watched.add(key.removeprefix("run#"))
    return statuses, watched


def due_count(h: Harness, kind: str, until: datetime | None = None) -> int:
    """How many items of `kind` (open, tell, promise) the ledger's `due` index holds (due by `until`, if given):
    a count read from the index, as the poller finds them, not a scan of the table."""
    from polytrigger.dispatch.table import DUE_INDEX, DUE_SHARDS, iso

    client, total = h.stack.dynamodb_client(), 0
    for shard in range(DUE_SHARDS):
        request: dict[str, Any] = {
            "TableName": h.stack.table_name,
            "IndexName": DUE_INDEX,
            "Select": "COUNT",
            "KeyConditionExpression": "due_in = :kind" + (" AND due_at <= :until" if until else ""),
            "ExpressionAttributeValues": {
                ":kind": {"S": f"{kind}#{shard}"},
                **({":until": {"S": iso(until)}} if until else {}),
            },
        }
        while True:
            page = client.query(**request)
            total += int(page.get("Count", 0))
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return total


@dataclass
class Started:
    """The runs the triggers started, with the outcome each was given at Polytomic."""

    outcome: dict[str, str] = field(default_factory=dict)  # execution id -> the outcome Polytomic gave it
    model: set[str] = field(default_factory=set)  # the executions of MODEL (the chained route follows them)
    polls: list[dict[str, Any]] = field(default_factory=list)  # each poll's summary

    def lookups(self) -> int:
        return sum(int(p.get("looked_up", 0)) for p in self.polls)

    def calls(self) -> int:
        return sum(int(p.get("polytomic_calls", 0)) for p in self.polls)


def land(
    h: Harness,
    run: Run,
    started: Started,
    *,
    label: str,
    count: int,
    rng: random.Random,
    outcomes: tuple[Outcome, ...] = OUTCOMES,
    landed_before: float = 0.0,
) -> Iterator[int]:
    """`count` files land one after another (two runs each: the routes' model and bulk syncs), each run
    given a seeded outcome (one of `outcomes`); yields after each file (its index), so a scenario can
    deliver meanwhile. `landed_before`: each file's event is dated this many seconds before the fake's
    clock (S3 dates an event when the object landed, before the function hears of it), else now."""
    fake, invoker = h.stack.fake, h.invoker()
    for index in range(count):
        chosen = {sync: rng.choice(outcomes) for sync in (MODEL, BULK)}
        for sync, given in chosen.items():
            fake.set_outcome(sync, given)  # the runs this file starts end so (they take no time)
        at = fake.now() - timedelta(seconds=landed_before) if landed_before else None
        event = s3_event(f"{label}-{h.seed}", index, at=at)
        run.events.append(event)
        run.add(event, invoker.invoke(event))
        for outcome in run.outcomes(event):
            if outcome.get("execution_id") and outcome.get("sync_id") in chosen:
                started.outcome[outcome["execution_id"]] = chosen[outcome["sync_id"]]
                if outcome["sync_id"] == MODEL:
                    started.model.add(outcome["execution_id"])
        yield index


def poll(h: Harness, after: float = SCHEDULE) -> list[dict[str, Any]]:
    """One poll, a minute after the last (or `after` seconds from now on the fake's clock), as the schedule
    invokes the poller (retried, then parked, by Lambda)."""
    from polytrigger.handlers import poller

    h.stack.fake.advance_clock(after)
    invoker = h.invoker(poller.handler, function_name="polytrigger-poller")
    return invoker.invoke({"poll": h.stack.fake.now().isoformat()}).summaries


def poll_until_settled(h: Harness, started: Started, most: int) -> None:
    """The poller, as its schedule runs it, until no run is open (at most `most` polls)."""
    for _ in range(most):
        started.polls.extend(poll(h))
        if not due_count(h, "open"):
            return


def deliver_chained(h: Harness) -> int:
    """The dispatch queue's messages (the chained starts the endings set off) to the real dispatcher."""
    import os

    from local.stack.dispatch_pump import pump
    from local.stack.lambda_context import LocalContext
    from polytrigger.handlers import dispatcher

    answers = pump(
        h.stack.client("sqs"),
        os.environ["DISPATCH_QUEUE_URL"],
        lambda event, _: dispatcher.handler(event, LocalContext(function_name="polytrigger-dispatcher")),
        timeout=120,
    )
    return len(answers)


def chained_starts(said: Said, started: Started) -> Tally:
    """Every chained start exactly once: per run of MODEL that completed, one chained action done
    (started, or covered by a chained run created since); none is lost, no ending starts twice."""
    lines = [json.loads(line) for line in said.logs.getvalue().split("\n") if line.strip()]
    done: Counter[str] = Counter()
    starts: Counter[str] = Counter()
    for line in lines:
        if line.get("route") == "chained" and line.get("status") in ("started", "covered"):
            upstream = str(line.get("trigger", "")).split(" run ", 1)[-1].split(" ", 1)[0]
            done[upstream] += 1
            starts[upstream] += line["status"] == "started"
    completed = [e for e, given in started.outcome.items() if given == "completed" and e in started.model]
    return Tally(
        seen=sum(starts.values()),  # the chained runs started (strays to the triggers' own count)
        lost=sum(1 for e in completed if not done[e]),
        doubled=sum(n - 1 for n in starts.values() if n > 1) + sum(n - 1 for n in done.values() if n > 1),
    )


def told_wrong(said: Said, executions: list[str], promised: dict[tuple[str, str], bool] | None = None) -> int:
    """Endings told zero times or more than once: every execution at Polytomic has ended, so each is
    told once (one line, and one metric by route); a line for a run Polytomic does not have counts
    too. With `promised` ((trigger, sync id) -> whether a breach is due), each breach due is told
    once and no other: one told zero times, twice, or where none was due counts (and so does a
    metric without its line)."""
    told = Counter(line["execution_id"] for line in said.endings())
    known = set(executions)
    wrong = sum(1 for e in executions if told[e] != 1) + sum(n for e, n in told.items() if e not in known)
    wrong += abs(sum(told.values()) - said.ending_metrics())
    if promised is not None:
        breaches = Counter((line["trigger"], line["sync_id"]) for line in said.breaches())
        wrong += sum(1 for key, due in promised.items() if breaches[key] != int(due))
        wrong += sum(n for key, n in breaches.items() if key not in promised)
        wrong += abs(sum(breaches.values()) - said.breach_metrics())
    return wrong


def count(
    h: Harness,
    name: str,
    run: Run,
    *,
    said: Said,
    started: Started,
    began: float,
    chained: Tally | None = None,
    promised: dict[tuple[str, str], bool] | None = None,
    **extra: int,
) -> Row:
    """The row: runs whose ending the ledger knows (right), each told once (and each breach due); the
    triggers' own starts."""
    starts = h.count(name, run, began)  # each trigger's starts once (and what was parked, taken out)
    statuses, watched = ledger_state(h)
    executions = [e.id for e in h.stack.fake.executions()]
    told = Counter(line["execution_id"] for line in said.endings())
    how = Counter(line["outcome_from"] for line in said.endings())
    unknown = [e for e in executions if not statuses.get(e)]
    wrong = [e for e in executions if statuses.get(e) and statuses[e] != started.outcome.get(e, statuses[e])]
    untold = [e for e in executions if statuses.get(e) and not told[e]]  # settled, but no line and metric said so
    metrics = said.ending_metrics()
    lost = len(unknown) + len(wrong) + starts.lost
    doubled = starts.doubled
    if chained is not None:  # the chained runs are not the triggers' own starts: counted by the chain
        lost, doubled = lost + chained.lost, doubled + chained.doubled - chained.seen
    mix = Counter(started.outcome.values())
    row = Row(
        name, len(run.events), len(executions), len(executions) - len(unknown) - len(wrong), extra.get("suppressed", 0),
        starts.parked, lost, doubled, time.monotonic() - began, "", starts.acked_not_done + extra.get("acked", 0),
    )  # fmt: skip
    row.told_wrong = told_wrong(said, executions, promised)
    row.facts = {
        "runs": len(executions),
        "unknown": len(unknown),
        "wrong": len(wrong),
        "open": len(watched),
        "untold": len(untold),
        "told": sum(told.values()),
        "told_twice": sum(1 for n in told.values() if n > 1),
        "metrics": metrics,
        "webhook": how["webhook"],
        "poller": how["poller"],
        "reconciliation": how["reconciliation"],
        "polls": len(started.polls),
        "lookups": started.lookups(),
        "polytomic_calls": started.calls(),
        **{f"outcome_{outcome}": mix[outcome] for outcome in OUTCOMES},
        **extra,
    }
    row.notes = (
        f"{len(executions)} runs ({', '.join(f'{mix[o]} {o}' for o in OUTCOMES)}); endings by webhook"
        f" {how['webhook']}, poller {how['poller']}, reconciliation {how['reconciliation']}"
        f" in {len(started.polls)} poll(s) ({started.calls()} Polytomic calls, {started.lookups()} lookups)"
    )
    return row


@dataclass
class Delivered:
    """What the fake's webhook deliveries of run endings did, batch after batch."""

    dropped: int = 0  # endings the drop knob swallowed
    duplicated: int = 0  # endings sent twice
    delivered: int = 0  # deliveries of an ending answered 2xx
    acked: int = 0  # ... while its run was not settled
    retried: int = 0  # deliveries answered non-2xx at least once (Polytomic tried again)
    given_up: int = 0  # deliveries answered non-2xx every time (Polytomic gave up)
    gave_up_on: set[str] = field(default_factory=set)  # ... their event ids

    def add(self, h: Harness, report: Any) -> None:
        endings = {e["id"]: e for e in h.stack.fake.events() if e["type"].startswith(("sync.", "bulk_sync."))}
        endings = {key: e for key, e in endings.items() if not e["type"].endswith(".running")}
        self.dropped += sum(1 for e in report.dropped if e in endings)
        self.duplicated += sum(1 for e in report.duplicated if e in endings)
        self.retried += sum(1 for d in report.deliveries if any(not 200 <= s < 300 for s in d.statuses))
        self.given_up += sum(1 for d in report.deliveries if not d.delivered)
        self.gave_up_on.update(d.event_id for d in report.deliveries if not d.delivered)
        ok = [
            endings[d.event_id]["event"]["execution_id"]
            for d in report.deliveries
            if d.delivered and d.event_id in endings
        ]
        self.delivered += len(ok)
        statuses, _ = ledger_state(h)
        self.acked += sum(1 for execution in ok if not statuses.get(execution))  # 2xx, yet not settled


def outcomes_webhook_dropped_and_duplicated(h: Harness) -> Row:
    """1,000 runs; the webhook drops 30 % of events and sends 30 % twice, reordered; then the poller."""
    from polytrigger.handlers import webhook

    with outcome_scenario(h, CHAIN_ROUTES) as (run, said), FunctionUrl(webhook.handler) as url:
        began, fake, started = time.monotonic(), h.stack.fake, Started()
        fake.add_sync(CHAINED, kind="model")
        fake.subscribe_webhook(url.url, WEBHOOK_SECRET)
        fake.configure_webhooks(drop=0.3, duplicate=0.3, reorder=True, seed=h.seed + 12)
        poll(h)  # the schedule ran before the files came: the cursor is set
        files = h.n(500, minimum=20)  # two runs each
        every, sent = -(-files // BATCHES), Delivered()
        for index in land(h, run, started, label="outcomes", count=files, rng=random.Random(h.seed + 12)):
            if (index + 1) % every and index + 1 < files:
                continue
            sent.add(h, fake.deliver_webhooks())  # Polytomic's deliveries of the events so far
        dropped, duplicated = sent.dropped, sent.duplicated
        before = len({line["execution_id"] for line in said.endings() if line["outcome_from"] == "webhook"})
        poll_until_settled(h, started, 10)
        messages = deliver_chained(h)  # the chained starts the endings set off, once each
        poll_until_settled(h, started, 10)  # and the chained runs' own endings
        tally = chained_starts(said, started)
        follows = sum(1 for e, given in started.outcome.items() if given == "completed" and e in started.model)
        refused = sum(1 for status in url.answers if not 200 <= status < 300)
        read = int(started.polls[0].get("events", 0)) if started.polls else 0
        name = "run outcomes, webhook 30% dropped and 30% duplicated"
        row = count(
            h, name, run, said=said, started=started, began=began, suppressed=sent.delivered - before,
            acked=sent.acked, dropped=dropped, duplicated=duplicated, refused=refused, first_poll_read=read,
            chained=tally, chained_lost=tally.lost, chained_doubled=tally.doubled, chain_endings=follows,
            chained_starts=tally.seen,
        )  # fmt: skip
        row.notes += (
            f"; webhook: {dropped} endings dropped, {duplicated} sent twice, {refused} answers not 2xx"
            f" (seed {h.seed + 12}); the first poll read {read} of {len(fake.events())} events;"
            f" {follows} completed runs of the followed sync: chained starts lost {tally.lost}, doubled"
            f" {tally.doubled} ({messages} dispatcher batches)"
        )
        return row


def outcomes_events_aged_out(h: Harness) -> Row:
    """A few hundred runs; no webhook, the poller down for 49 h: reconciliation asks each execution."""
    with outcome_scenario(h) as (run, said):
        began, fake, started = time.monotonic(), h.stack.fake, Started()
        poll(h)  # the schedule ran, then stopped
        files = h.n(150, minimum=15)  # two runs each
        for _ in land(h, run, started, label="aged", count=files, rng=random.Random(h.seed + 13)):
            pass
        fake.advance_clock(49 * 3600)  # every run has ended; its events are gone
        left = len(fake.events())
        runs = len(started.outcome)
        poll_until_settled(h, started, -(-runs // LOOKUPS_PER_POLL) + 5)
        name = "run outcomes, no webhook and events aged out"
        row = count(h, name, run, said=said, started=started, began=began, events_left=left)
        row.notes += f"; {left} events left after 49 h; every run due looked up while the poll has time"
        return row


def cursor_at(h: Harness) -> datetime | None:
    """Where the poller's events cursor stands (None before the first poll)."""
    from polytrigger.runs.dynamo_ledger import CURSOR

    item = h.stack.dynamodb_client().get_item(TableName=h.stack.table_name, Key={"id": {"S": CURSOR}}).get("Item")
    return datetime.fromisoformat(item["after"]["S"]) if item and "after" in item else None


def newest_ending(h: Harness) -> datetime:
    return max(
        datetime.fromisoformat(e["created_at"].replace("Z", "+00:00"))
        for e in h.stack.fake.events()
        if e["type"].startswith(("sync.", "bulk_sync.")) and not e["type"].endswith(".running")
    )


def outcomes_other_events_then_an_ending(h: Harness) -> Row:
    """No webhook; more than a page of the organisation's other events (150 of them at one instant), then
    the runs end: the poller reads on past them, and tells every ending itself (nothing is looked up)."""
    with outcome_scenario(h, reconcile_after=POLLER_ONLY) as (run, said):
        began, fake, started = time.monotonic(), h.stack.fake, Started()
        poll(h)  # the cursor is set
        at = fake.now()
        for _ in range(AT_ONCE):
            fake.add_event("connection.updated", at)
        for number in range(OTHER_EVENTS - AT_ONCE):
            fake.add_event("model.updated", at + timedelta(milliseconds=number + 1))
        fake.advance_clock(1)
        files = h.n(100, minimum=5)  # two runs each, ended at once: every ending after the other events
        for _ in land(h, run, started, label="others", count=files, rng=random.Random(h.seed + 14)):
            pass
        poll_until_settled(h, started, 5)
        cursor = cursor_at(h)
        past = int(cursor is not None and cursor >= newest_ending(h))
        name = "run outcomes, a page of other events, then an ending"
        row = count(h, name, run, said=said, started=started, began=began, other_events=OTHER_EVENTS, cursor_past=past)
        row.notes += (
            f"; {OTHER_EVENTS} other events first ({AT_ONCE} at one instant), no webhook, no lookup for"
            f" {POLLER_ONLY // 60} min: the cursor {'moved' if past else 'did not move'} past the last ending"
        )
        return row


def outcomes_newest_first_burst(h: Harness) -> Row:
    """No webhook; the events API answers newest first; a burst of 5,000 endings: the poller reads every
    one (none skipped: nothing is looked up) and tells each once."""
    with outcome_scenario(h, reconcile_after=POLLER_ONLY) as (run, said):
        began, fake, started = time.monotonic(), h.stack.fake, Started()
        fake.set_event_order("newest")
        poll(h)  # the cursor is set
        files = h.n(2500, minimum=10)  # two runs each, ended at once
        for _ in land(h, run, started, label="newest", count=files, rng=random.Random(h.seed + 15)):
            pass
        events = len(fake.events())
        poll_until_settled(h, started, 10)
        name = "run outcomes, events newest first, 5,000 in a burst"
        row = count(h, name, run, said=said, started=started, began=began, events=events)
        row.notes += f"; {events} events, pages newest first, no webhook, no lookup for {POLLER_ONLY // 60} min"
        return row


@contextlib.contextmanager
def run_event_bus(h: Harness) -> Iterator[tuple[str, Callable[[], Counter[str]]]]:
    """An EventBridge bus with a rule sending what polytrigger hands on to a queue; yields the bus's name and
    `on_bus()`: how many times each Polytomic event (by its id) reached the bus so far."""
    from polytrigger.runs.bus import SOURCE

    events, sqs, suffix = h.stack.client("events"), h.stack.client("sqs"), uuid.uuid4().hex[:8]
    bus, rule = f"reliability-runs-{suffix}", f"reliability-all-{suffix}"
    events.create_event_bus(Name=bus)
    reader = sqs.create_queue(QueueName=f"reliability-bus-{suffix}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=reader, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "reader", "Arn": arn}])
    seen: Counter[str] = Counter()

    def on_bus() -> Counter[str]:
        seen.update(json.loads(body)["detail"]["id"] for body in h.stack.take(reader))
        return seen

    try:
        yield bus, on_bus
    finally:
        events.remove_targets(Rule=rule, EventBusName=bus, Ids=["reader"])
        events.delete_rule(Name=rule, EventBusName=bus)
        events.delete_event_bus(Name=bus)
        sqs.delete_queue(QueueUrl=reader)


@contextlib.contextmanager
def bus_and_queue_down() -> Iterator[None]:
    """The bus and the dispatch queue cannot be reached: the functions' containers find a bus name and a
    queue URL that do not exist (fresh containers meanwhile), then the real ones again."""
    import os

    from polytrigger import bootstrap

    saved = {name: os.environ[name] for name in ("RUN_EVENT_BUS_NAME", "DISPATCH_QUEUE_URL")}
    os.environ.update({name: f"{value}-gone" for name, value in saved.items()})
    bootstrap.reset()
    try:
        yield
    finally:
        os.environ.update(saved)
        bootstrap.reset()


def outcomes_bus_and_queue_down(h: Harness) -> Row:
    """Webhook on, a chained route, every event handed on to a bus; for two of the ten delivery batches
    the bus and the dispatch queue are down (the webhook answers 503, Polytomic tries 5 times more, then
    gives up; the schedule's poll that falls in the stretch fails too, and is retried, then parked, by Lambda);
    then the poller: every ending told once, every chained start once, every event on the bus once."""
    from polytrigger.handlers import webhook

    with (
        run_event_bus(h) as (bus, on_bus),
        outcome_scenario(h, CHAIN_ROUTES, RUN_EVENT_BUS_NAME=bus) as (run, said),
        FunctionUrl(webhook.handler) as url,
    ):
        began, fake, started = time.monotonic(), h.stack.fake, Started()
        fake.add_sync(CHAINED, kind="model")
        fake.subscribe_webhook(url.url, WEBHOOK_SECRET)
        fake.configure_webhooks(backoff=0.0, seed=h.seed + 16)  # 5 retries of a non-2xx answer (no wait: all fail)
        poll(h)  # the cursor is set
        files = h.n(200, minimum=12)  # two runs each
        every, sent, batch, down = -(-files // BATCHES), Delivered(), 0, range(BATCHES // 3, BATCHES // 3 + 2)
        failed_polls = 0
        for index in land(h, run, started, label="bus", count=files, rng=random.Random(h.seed + 16)):
            if (index + 1) % every and index + 1 < files:
                continue
            with bus_and_queue_down() if batch in down else contextlib.nullcontext():
                sent.add(h, fake.deliver_webhooks())
                if batch == down.start + 1:  # the schedule's minute comes in the stretch
                    failed_polls += not poll(h)
            batch += 1
        poll_until_settled(h, started, 10)
        messages = deliver_chained(h)  # the chained starts the endings set off, once each
        poll_until_settled(h, started, 10)  # and the chained runs' own endings
        tally = chained_starts(said, started)
        handed = on_bus()
        ids = [e["id"] for e in fake.events()]
        missing = sum(1 for e in ids if not handed[e])
        twice = sum(handed[e] - 1 for e in ids if handed[e] > 1) + sum(n for e, n in handed.items() if e not in ids)
        follows = sum(1 for e, given in started.outcome.items() if given == "completed" and e in started.model)
        chains_down = sum(  # endings that set off a chained start, whose every delivery came while it was down
            1
            for e in fake.events()
            if e["id"] in sent.gave_up_on and e["type"] == "sync.completed" and e["event"]["sync_id"] == MODEL
        )
        name = "run outcomes, bus and queue down mid-fan-out"
        row = count(
            h, name, run, said=said, started=started, began=began, acked=sent.acked, chained=tally,
            chained_lost=tally.lost, chained_doubled=tally.doubled, chain_endings=follows, chained_starts=tally.seen,
            retried=sent.retried, given_up=sent.given_up, events=len(ids), on_bus=sum(handed.values()),
            bus_missing=missing, bus_twice=twice, chains_down=chains_down, polls_failed=failed_polls,
        )  # fmt: skip
        row.lost += missing  # an event the bus never got is lost to whoever follows it there
        row.doubled += twice
        row.notes += (
            f"; batches {down.start + 1}-{down.stop} of {BATCHES} with the bus and the dispatch queue down:"
            f" {sent.retried} deliveries answered 503 (each retried 5 times), {sent.given_up} given up by Polytomic,"
            f" {failed_polls} poll failed (parked after Lambda's retries);"
            f" on the bus {sum(handed.values())} of {len(ids)} events ({missing} missing, {twice} twice);"
            f" {follows} completed runs of the followed sync ({chains_down} of them told while it was down):"
            f" chained starts lost {tally.lost}, doubled {tally.doubled} ({messages} dispatcher batches)"
        )
        return row


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it, roughly: each attribute's name and value, in bytes."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner.lstrip("-").replace(".", "").strip("0") or "0") // 2 + 2
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "BS"):
        return sum(len(x.encode() if isinstance(x, str) else x) for x in inner)
    if kind == "NS":
        return sum(_value_size({"N": x}) for x in inner)
    if kind == "L":
        return 3 + sum(_value_size(x) + 1 for x in inner)
    return 3 + sum(len(k.encode()) + _value_size(x) + 1 for k, x in inner.items())  # M


def outcomes_freshness_promises(h: Harness) -> Row:
    """10,000 promises on one route (`freshness: 30m`), written by real S3 triggers in four waves six
    minutes apart; the last wave's runs all fail. Polls a minute apart: each promise is checked at the
    first poll after it fell due, the last wave's breaches are told once each, no item passes 64 KB."""
    from polytrigger.events import s3_triggers

    with outcome_scenario(h, FRESH_ROUTES) as (run, said):
        began, fake, started = time.monotonic(), h.stack.fake, Started()
        poll(h)  # the cursor is set
        files, promised, routes = h.n(10_000, minimum=40) // 2, dict[tuple[str, str], bool](), h.routes()
        per_wave, landed = -(-files // WAVES), list[datetime]()
        schedule = fake.now() + timedelta(seconds=SCHEDULE)  # the poller's next minute
        for wave in range(WAVES):
            failing = wave == WAVES - 1
            landing = land(
                h, run, started, label=f"fresh{wave}", count=min(per_wave, files - wave * per_wave),
                rng=random.Random(h.seed + 17), outcomes=("failed",) if failing else ("completed",), landed_before=5,
            )  # fmt: skip
            for _ in landing:
                for action in routes.actions_for(s3_triggers(run.events[-1])):
                    promised[(action.trigger.describe(), action.sync.id)] = failing
                if fake.now() >= schedule:  # landing took a minute (at scale): the schedule polls meanwhile
                    started.polls.extend(poll(h, after=0))
                    schedule = fake.now() + timedelta(seconds=SCHEDULE)
            landed.append(fake.now())  # every file of the wave had landed by then
            fake.advance_clock(GAP)  # to the next wave; of the polls in between (they cost time) only the last is
            schedule = fake.now()  # made: with the next wave's first file, it settles this wave's endings
        items = h.stack.table_items()  # every promise written, none due yet: the table at its largest
        written = sum(1 for item in items if item["id"]["S"].startswith("promise#"))
        biggest = max(item_size(item) for item in items)
        if biggest > ITEM_LIMIT:  # an item that grows with the load: what this row is about, whatever else it counts
            raise AssertionError(f"an item of {biggest} bytes, over {ITEM_LIMIT}, with {written} promises pending")
        late = 0
        for wave_landed in landed:  # the clock moves on to the poll at which the next wave has fallen due
            due = wave_landed + timedelta(seconds=FRESHNESS)
            fake.advance_clock(max(0.0, (due - fake.now()).total_seconds() - SCHEDULE))  # (the polls between
            polled_by = fake.now() + timedelta(seconds=SCHEDULE)  # would find nothing due: left out, like those above)
            started.polls.extend(poll(h))
            late += due_count(h, "promise", polled_by)  # due by the poll's time, and not checked by it
        poll_until_settled(h, started, 5)  # and every run's ending
        kept = sum(int(p.get("promises_kept", 0)) for p in started.polls)
        breaches = sum(int(p.get("freshness_breaches", 0)) for p in started.polls)
        pages = len(fake.calls_to(lambda c: c.method == "GET" and c.path.endswith("/executions")))
        name = "run outcomes, 10,000 freshness promises on one route"
        row = count(
            h, name, run, said=said, started=started, began=began, promised=promised, promises=written,
            kept=kept, breaches=breaches, breaches_due=sum(promised.values()), checked_late=late,
            left=due_count(h, "promise"), biggest_item=biggest, execution_pages=pages,
        )  # fmt: skip
        row.notes += (
            f"; {written} promises in {WAVES} waves, {kept} kept, {breaches} breached (the last wave's runs"
            f" failed: {sum(promised.values())} due), {late} checked late, {row.facts['left']} left;"
            f" {pages} execution pages read; largest item {biggest} bytes"
        )
        return row


SCENARIOS: tuple[Callable[[Harness], Row], ...] = (
    outcomes_webhook_dropped_and_duplicated,
    outcomes_events_aged_out,
    outcomes_other_events_then_an_ending,
    outcomes_newest_first_burst,
    outcomes_bus_and_queue_down,
    outcomes_freshness_promises,
    # chained starts: their "exactly once" is counted in `chained_starts`, in both rows
)
