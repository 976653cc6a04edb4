"""Reliability scenario of arrival deadlines: weekdays x routes with `expect`, each day's data landing on
time, late or never, the poller run every minute on the stack's clock, the Scheduler's firings delivered
twice, and DynamoDB throttling injected into the deadline book's requests.

Four routes expect something each weekday (UTC, `grace: 5m`): two a key (`expect.key`), two gated ones
a partition (`expect.partition: {date: "{day}"}`) or a marker key (the gate's completion is the
arrival). Each (route, day) is, in turn, on time (its object, or its partition's marker, lands through
the real S3 function before `by`), late (after `by` + grace, within the hour) or never. On each weekday
the poller runs every minute (the handler as its schedule invokes it) from 05:00 to 09:00 UTC, then the
clock jumps to the next weekday's 05:00 (the next look catches up whatever fell due meanwhile). At
each route's late instant its Scheduler firing `{"deadline": route}` is delivered twice (the Scheduler
is at-least-once). `ProvisionedThroughputExceededException` strikes a share of the deadline book's
requests (`DeadlineBook`'s client, and the landings it reads) during polls and firings: the invocation
fails and is simply run again (the next minute's poll; a firing is delivered again).

Counted from the handlers' own lines: `deadline missed` (ERROR, metric `deadline_missed`) must come once
per late or never day and never for an on-time one; `arrived late` (WARNING, metric `arrived_late`)
once per late day and never for a never day. The row's "told 0 times or twice" is the (route, day)
pairs whose reports differ from that; "lost" the reports due and not made, "doubled" those made twice
or for a day that was on time.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from local.reliability.gates import Faults, FaultyTable
from local.reliability.harness import BUCKET, Harness, Row, s3_event
from local.reliability.holds import metric
from local.reliability.outcomes import harness_time
from local.reliability.queue import DispatchQueues

SYNCS = {
    "orders": "dead1000-0000-4000-8000-000000000001",
    "ledger": "dead1000-0000-4000-8000-000000000002",
    "sales": "dead1000-0000-4000-8000-000000000003",
    "vendor": "dead1000-0000-4000-8000-000000000004",
}
BY = {"orders": "06:00", "ledger": "06:30", "sales": "07:00", "vendor": "07:30"}  # UTC
GRACE_MINUTES = 5
WINDOW = (5, 9)  # UTC hours of each weekday the poller runs every minute
THROTTLE = 0.03  # of the deadline book's requests, during polls and firings
DEADLINE_ROUTES = f"""
routes:
  - name: orders
    s3: {{bucket: {BUCKET}, key: "orders/**"}}
    expect: {{key: "orders/dt={{day}}/_SUCCESS", by: "{BY["orders"]}", grace: {GRACE_MINUTES}m, timezone: UTC, days: MON-FRI}}
    syncs: [{{id: {SYNCS["orders"]}}}]
  - name: ledger
    s3: {{bucket: {BUCKET}, key: "ledger/**"}}
    expect: {{key: "ledger/{{day}}.csv", by: "{BY["ledger"]}", grace: {GRACE_MINUTES}m, timezone: UTC, days: MON-FRI}}
    syncs: [{{id: {SYNCS["ledger"]}}}]
  - name: sales
    s3: {{bucket: {BUCKET}, key: "sales/date={{date}}/*"}}
    gate: {{marker: "sales/date={{date}}/_SUCCESS"}}
    expect:
      partition: {{date: "{{day}}"}}
      by: "{BY["sales"]}"
      grace: {GRACE_MINUTES}m
      timezone: UTC
      days: MON-FRI
    syncs: [{{id: {SYNCS["sales"]}}}]
  - name: vendor
    s3: {{bucket: {BUCKET}, key: "vendor/date={{date}}/*"}}
    gate: {{marker: "vendor/date={{date}}/_DONE"}}
    expect: {{key: "vendor/date={{day}}/_DONE", by: "{BY["vendor"]}", grace: {GRACE_MINUTES}m, timezone: UTC, days: MON-FRI}}
    syncs: [{{id: {SYNCS["vendor"]}}}]
"""
FATES = ("on time", "late", "never")
KEYS = {  # what lands for a (route, day): the expected object, or the gate's marker
    "orders": "orders/dt={day}/_SUCCESS",
    "ledger": "ledger/{day}.csv",
    "sales": "sales/date={day}/_SUCCESS",
    "vendor": "vendor/date={day}/_DONE",
}


@contextlib.contextmanager
def injected(faults: Faults) -> Iterator[Faults]:
    """Every `DeadlineBook` made meanwhile (the poller's) talks through `FaultyTable`."""
    from polytrigger.deadlines.book import DeadlineBook

    made = DeadlineBook.__init__

    def faulty_init(self: DeadlineBook, client: Any, *args: Any, **kwargs: Any) -> None:
        made(self, FaultyTable(client, faults), *args, **kwargs)

    DeadlineBook.__init__ = faulty_init  # type: ignore[method-assign]
    try:
        yield faults
    finally:
        DeadlineBook.__init__ = made  # type: ignore[method-assign]


@dataclass
class Day:
    """One (route, day): its fate, and when its data lands (epoch seconds on the stack's clock; None: never)."""

    route: str
    day: date
    fate: str
    lands: float | None


@dataclass
class Deadlines:
    h: Harness
    clock: Any  # local.stack.dispatch_pump.StackClock
    out: io.StringIO
    logs: io.StringIO
    faults: Faults
    polls: int = 0
    failed_polls: int = 0
    firings: int = 0
    failed_firings: int = 0
    repeated_firings: int = 0  # the Scheduler's second delivery of a firing
    landed: int = 0
    summaries: list[dict[str, Any]] = field(default_factory=list)

    def at(self, moment: datetime) -> None:
        self.clock.until(moment.timestamp())

    def invoke(self, event: dict[str, Any]) -> bool:
        """The poller's handler, as Lambda runs it, with the faults armed; False if it failed."""
        from local.stack.lambda_context import LocalContext
        from polytrigger.handlers import poller

        self.faults.local.armed = True
        try:
            self.summaries.append(poller.handler(event, LocalContext(function_name="polytrigger-poller")))
            return True
        except Exception:  # a throttled invocation fails, as it does in Lambda
            return False
        finally:
            self.faults.local.armed = False

    def poll(self) -> None:
        """The poller's every-minute schedule: a failed poll is simply the next minute's to do again."""
        self.polls += 1
        self.failed_polls += not self.invoke({"poll": self.h.stack.fake.now().isoformat()})

    def fire(self, route: str) -> None:
        """A deadline's Scheduler firing, delivered again until it succeeds (Lambda's retries)."""
        event = {"deadline": route, "time": self.h.stack.fake.now().isoformat()}
        for _ in range(10):
            self.firings += 1
            if self.invoke(event):
                return
            self.failed_firings += 1
        raise AssertionError(f"the firing for {route} failed ten times")

    def land(self, key: str) -> None:
        """`key` lands: the real S3 function, its event stamped with the stack's clock (S3's event time)."""
        from local.stack.lambda_context import LocalContext
        from polytrigger.handlers import s3

        event = s3_event("deadlines", self.landed, at=self.h.stack.fake.now())
        event["detail"]["object"]["key"] = key
        s3.handler(event, LocalContext(function_name="polytrigger-s3"))  # faults unarmed: the S3 side is not tested
        self.landed += 1

    def said(self, status: str) -> Counter[tuple[str, str]]:
        """(route, day) of each log line of `status`."""
        lines = [json.loads(line) for line in self.logs.getvalue().splitlines() if line.strip()]
        return Counter((line["route"], line["day"]) for line in lines if line.get("status") == status)


@contextlib.contextmanager
def deadline_scenario(h: Harness, faults: Faults) -> Iterator[Deadlines]:
    """DEADLINE_ROUTES, the poller and the S3 function on the fake's clock, WARNING lines and metrics captured."""
    from local.stack.dispatch_pump import StackClock
    from polytrigger import bootstrap
    from polytrigger.observability import logger

    queues, out, logs, clock = DispatchQueues.create(h.sqs), io.StringIO(), io.StringIO(), StackClock(h.stack.fake)
    handler, level = logger.registered_handler, logger.log_level
    try:
        with (
            h.scenario(DEADLINE_ROUTES, **queues.env()),
            harness_time(h.stack.fake),
            contextlib.redirect_stdout(out),
            injected(faults) as injecting,
        ):
            for sync in SYNCS.values():
                h.stack.fake.add_sync(sync, kind="model")
            previous = handler.setStream(logs)  # type: ignore[attr-defined]
            logger.setLevel("WARNING")  # `deadline missed` is an ERROR line, `arrived late` a WARNING
            bootstrap.use_clock(clock.now, clock.sleep)
            try:
                yield Deadlines(h, clock, out, logs, injecting)
            finally:
                bootstrap.use_clock()
                logger.setLevel(level)
                handler.setStream(previous)  # type: ignore[attr-defined]
    finally:
        queues.delete()


def weekdays(after: datetime, count: int) -> list[date]:
    """The first `count` weekdays after `after`'s day."""
    days: list[date] = []
    day = after.date()
    while len(days) < count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


def plan(days: list[date], rng: random.Random) -> list[Day]:
    """Each (route, day) on time, late or never, in turn (shuffled per day), and when its data lands."""
    planned = []
    for index, day in enumerate(days):
        routes = list(BY)
        rng.shuffle(routes)
        for offset, route in enumerate(routes):
            fate = FATES[(index + offset) % len(FATES)]
            hour, minute = (int(part) for part in BY[route].split(":"))
            by = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
            if fate == "on time":
                lands: float | None = (by - timedelta(minutes=rng.randint(1, 50))).timestamp()
            elif fate == "late":
                lands = (by + timedelta(minutes=GRACE_MINUTES + rng.randint(1, 55), seconds=30)).timestamp()
            else:
                lands = None
            planned.append(Day(route, day, fate, lands))
    return planned


def deadlines_under_faults(h: Harness) -> Row:
    """Weekdays x 4 routes, each day on time, late or never; the poller every minute, the firings twice,
    DynamoDB throttling on the deadline book: each miss reported once, each late arrival once."""
    began, rng = time.monotonic(), random.Random(h.seed + 11)
    faults = Faults(random.Random(h.seed + 12), throttle=THROTTLE)
    with deadline_scenario(h, faults) as d:
        days = weekdays(h.stack.fake.now() + timedelta(days=1), h.n(10, minimum=3))
        planned = plan(days, rng)
        first = datetime(days[0].year, days[0].month, days[0].day, WINDOW[0] - 1, tzinfo=UTC)
        d.at(first)
        for route in BY:  # the wiring's first firing: from now on each route's next look is in the table
            d.fire(route)
        firing_at = {
            (route, hour * 60 + minute + GRACE_MINUTES)
            for route, text in BY.items()
            for hour, minute in [(int(part) for part in text.split(":"))]
        }
        for day in days:
            landing = sorted(
                ((p.lands, KEYS[p.route].format(day=day.isoformat())) for p in planned if p.day == day and p.lands),
                key=lambda pair: pair[0],
            )
            start = datetime(day.year, day.month, day.day, WINDOW[0], tzinfo=UTC)
            for minute in range((WINDOW[1] - WINDOW[0]) * 60):
                now = start + timedelta(minutes=minute)
                while landing and landing[0][0] <= now.timestamp():
                    d.at(datetime.fromtimestamp(landing[0][0], UTC))
                    d.land(landing.pop(0)[1])
                d.at(now)
                for route, at in sorted(firing_at):
                    if at == now.hour * 60 + now.minute:
                        d.fire(route)
                        d.fire(route)  # the Scheduler delivers at least once
                        d.repeated_firings += 1
                d.poll()
        faults.throttle = 0.0
        d.at(datetime.fromtimestamp(d.clock.now(), UTC) + timedelta(minutes=10))
        d.poll()  # a last clean look
        return count(d, planned, began)


def count(d: Deadlines, planned: list[Day], began: float) -> Row:
    missed, late = d.said("deadline_missed"), d.said("arrived_late")
    expected_missed = {(p.route, p.day.isoformat()) for p in planned if p.fate != "on time"}
    expected_late = {(p.route, p.day.isoformat()) for p in planned if p.fate == "late"}
    wrong = lost = doubled = 0
    for p in planned:
        pair = (p.route, p.day.isoformat())
        want = (int(pair in expected_missed), int(pair in expected_late))
        got = (missed[pair], late[pair])
        wrong += got != want
        lost += sum(max(0, w - g) for w, g in zip(want, got, strict=True))
        doubled += sum(max(0, g - w) for w, g in zip(want, got, strict=True))
    strays = sum(n for pair, n in missed.items() if pair not in {(p.route, p.day.isoformat()) for p in planned})
    fates = Counter(p.fate for p in planned)
    days = len({p.day for p in planned})
    name = f"deadlines: {days} weekdays x {len(BY)} routes, on time / late / never, firings twice, DynamoDB faults"
    reports_due = len(expected_missed) + len(expected_late)
    result = Row(
        name, len(planned), reports_due, sum(missed.values()) + sum(late.values()), d.repeated_firings, 0, lost, doubled + strays, time.monotonic() - began, "", 0, told_wrong=wrong,
    )  # fmt: skip
    result.facts = {
        "route_days": len(planned),
        "on_time": fates["on time"],
        "late": fates["late"],
        "never": fates["never"],
        "missed_reports": sum(missed.values()),
        "missed_pairs": len(missed),
        "missed_on_time": sum(1 for p in planned if p.fate == "on time" and missed[(p.route, p.day.isoformat())]),
        "late_reports": sum(late.values()),
        "late_pairs": len(late),
        "late_for_never": sum(1 for p in planned if p.fate == "never" and late[(p.route, p.day.isoformat())]),
        "missed_metric": metric(d.out, "deadline_missed"),
        "late_metric": metric(d.out, "arrived_late"),
        "polls": d.polls,
        "failed_polls": d.failed_polls,
        "firings": d.firings,
        "failed_firings": d.failed_firings,
        "throttled": d.faults.throttled,
        "landed": d.landed,
        "told_wrong": wrong,
    }
    facts = result.facts
    result.notes = (
        f"{fates['on time']} on time, {fates['late']} late, {fates['never']} never: {facts['missed_reports']}"
        f" `deadline missed` (metric {facts['missed_metric']}), {facts['missed_on_time']} for a day on time;"
        f" {facts['late_reports']} `arrived late` (metric {facts['late_metric']}), {facts['late_for_never']} for a"
        f" day never; {facts['polls']} polls, {facts['failed_polls']} failed on {facts['throttled']} throttled"
        f" requests; {facts['firings']} firings, {facts['failed_firings']} failed and delivered again"
    )
    return result


SCENARIOS: tuple[Callable[[Harness], Row], ...] = (deadlines_under_faults,)
