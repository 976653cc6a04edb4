"""Arrival deadlines at run time: each due day's partition or object looked at when its warn and late
instants pass, each miss reported once, and its late arrival once.

Two kinds of items in the dedup table, both in the `due` index under `late#<shard>`, so the poller
looks at them only when they fall due (`dispatch.table`):

- `deadline#<route>`: up to when the route's deadlines were looked at (`checked_until`) and the next
  instant one needs a look (`due_at`: a warn or late instant, computed by `routing.expect.next_deadlines`
  in the route's zone, so a time the clocks skip is looked at the instant they jump, as the routes
  file says). The Scheduler's schedules wired from the routes file (`route_wiring.deadline_schedules`) invoke the
  poller at the same times of day: they make the first item, and a day the poller missed is caught at
  the next look, which goes over every due day since `checked_until`.
- `late#<route>#<day>`: day D's deadline once it was warned of (`warned`) or missed (`missed`). Put
  only if absent (or warned), so a miss is reported once whoever looks, twice-run or after a crash;
  a missed one is due again every CHECK_SECONDS until the data arrives, then closed (`arrived`, out of
  the index) by a conditional update, so its late arrival too is reported once.

The items are `deadlines.book`'s. "Arrived": the expected key's landing (`file#…`,
`dispatch.landings`), or on a gated route the partition's gate having completed at least once
(`gating.state.read_gate(...).fired >= 1`). "Paused": every sync of the route is paused in Polytomic
(by hand, or by a polytrigger `deactivate` route): it raises nothing, and one INFO line says why.
Idle, this costs nothing: the items are read only when due.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from polytrigger.deadlines.book import DeadlineBook, Late, late_id
from polytrigger.dispatch.table import iso
from polytrigger.gating.state import partition_text
from polytrigger.observability import count, logger
from polytrigger.routing.expect import Deadline, next_deadlines
from polytrigger.routing.globs import Partition
from polytrigger.routing.model import Route, Routes

CHECK_SECONDS = 300  # a missed partition is looked for again this often
FIRST_LOOK = timedelta(hours=1)  # a route never looked at: its deadlines this far back (the Scheduler retries an hour)
CATCH_UP = timedelta(days=7)  # at most this far back (a poller down for weeks reports a week)
WATCH_LATE = timedelta(days=7)  # a missed partition is waited for this long, then no longer watched


@dataclass(frozen=True, slots=True)
class Expected:
    """What a route expects on day D: one object (`key`), or on a gated route a partition."""

    route: Route
    day: date
    key: str  # "" : a partition
    partition: Partition | None  # on a gated route: the partition whose gate must complete

    @property
    def what(self) -> str:
        if self.key:
            return f"s3://{self.route.bucket}/{self.key}"
        return f"partition {partition_text(self.partition or ())}"


def expected_on(route: Route, day: date) -> Expected:
    """Day D's object (`expect.key` filled) or, on a gated route, its partition (`expect.partition` filled,
    in the key glob's order; else the partition of the filled key)."""
    expect = route.expect
    assert expect is not None
    key = expect.key_for(day) if expect.key else ""
    partition: Partition | None = None
    if route.gate is not None:
        if expect.partition:
            given = dict(expect.partition_for(day))
            names = route.key_pattern.names if route.key_pattern is not None else tuple(given)
            partition = tuple((name, given.get(name, "")) for name in names)
        else:
            partition = route.partition(key)
    return Expected(route, day, key, partition)


@dataclass(frozen=True, slots=True)
class Seen:
    """Whether day D's data is there, since when, and if not what is missing (as people read it)."""

    arrived: bool
    at: datetime | None = None
    missing: str = ""


@dataclass(slots=True)
class Looked:
    warned: int = 0
    missed: int = 0
    arrived_late: int = 0
    skipped: int = 0

    def add(self, other: Looked) -> None:
        self.warned += other.warned
        self.missed += other.missed
        self.arrived_late += other.arrived_late
        self.skipped += other.skipped


def say_due(deadline: Deadline, zone: str) -> str:
    """`due 06:00 Europe/Berlin (05:00 UTC)`: `by` as it fell that day (a moved one at the jump)."""
    local = deadline.by.astimezone(ZoneInfo(zone))
    return f"due {local:%H:%M} {zone} ({deadline.by.astimezone(UTC):%H:%M} UTC)"


def passed(route: Route, since: datetime, now: datetime) -> Iterator[Deadline]:
    """The route's deadlines whose warn or late instant may lie in (since, now], in time order."""
    expect = route.expect
    assert expect is not None
    start = since - timedelta(seconds=expect.grace) - timedelta(days=1)
    for deadline in next_deadlines(expect, start, 10_000):
        if (deadline.warn or deadline.by) > now:
            return
        yield deadline


def next_look(route: Route, now: datetime) -> datetime | None:
    """The first warn or late instant after `now` (a deadline already past `by` may be in its grace)."""
    expect = route.expect
    assert expect is not None
    start = now - timedelta(seconds=expect.grace) - timedelta(days=1)
    moments = [
        moment
        for deadline in next_deadlines(expect, start, 3)
        for moment in (deadline.warn, deadline.late)
        if moment is not None and moment > now
    ]
    return min(moments, default=None)


class DeadlineWatch:
    """The routes' deadlines: looked at when due, each report made once (by the look whose write made it so)."""

    def __init__(self, routes: Routes, book: DeadlineBook, active: Callable[[str, str], bool | None]) -> None:
        self.routes = routes
        self.book = book
        self.active = active  # Polytomic: is the sync active (None: not found, or unsaid)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.book.clock(), UTC)

    def route(self, name: str, now: datetime | None = None) -> Looked:
        """Look at every deadline of route `name` that passed since it was last looked at (a Scheduler
        firing, or its `deadline#` item falling due), then note when to look next."""
        now = now or self.now()
        route = self.routes.named(name)
        looked = Looked()
        if route is None or route.expect is None:
            logger.info(f"deadline check: route {name} has no expect in the routes file; nothing to check")
            self.book.forget(name)
            return looked
        since = max(self.book.checked_until(name) or now - FIRST_LOOK, now - CATCH_UP)
        for deadline in passed(route, since, now):
            if since < deadline.late <= now:
                self._late(route, deadline, now, looked)
            elif deadline.warn is not None and since < deadline.warn <= now:
                self._warn(route, deadline, now, looked)
        self.book.checked(name, now, next_look(route, now))
        return looked

    def due(self, more: Callable[[], bool] = lambda: True, now: datetime | None = None) -> Looked:
        """The poller's part: every route's next look and every missed day due by now, while there is time."""
        now = now or self.now()
        total = Looked()
        for due in self.book.due(now):
            if not more():
                break
            total.add(self._again(due.late, now) if due.late is not None else self.route(due.route, now))
        return total

    def seen(self, expected: Expected, now: datetime) -> Seen:
        """Has day D's object landed, or (gated) its partition's gate completed at least once?"""
        route = expected.route
        if route.gate is not None and expected.partition is not None:
            state = self.book.gate(route.name, expected.partition)
            if state is not None and state.fired >= 1:
                return Seen(True, datetime.fromisoformat(state.completed_at) if state.completed_at else None)
            if state is None:
                return Seen(False, missing=f"nothing has landed in {expected.what}")
            said = state.missing(route.gate, now)
            return Seen(False, missing=", ".join(said) if said else "its gate has not completed")
        landing = self.book.landing(route.bucket, expected.key)
        if landing is not None:
            return Seen(True, landing.landed_at)
        return Seen(False, missing=f"{expected.what} has not landed")

    def paused(self, route: Route) -> str:
        """Why the route raises nothing ("" : it is not paused): every one of its syncs is paused in Polytomic."""
        if route.syncs and all(self.active(sync.type, sync.id) is False for sync in route.syncs):
            return "all its syncs are paused in Polytomic"
        return ""

    def _warn(self, route: Route, deadline: Deadline, now: datetime, looked: Looked) -> None:
        expected = expected_on(route, deadline.day)
        seen = self.seen(expected, now)
        if seen.arrived or self._skipped(expected, deadline, "warning", looked):
            return
        if self.book.note(_day(expected, deadline), expected.what, "warned", now, until=deadline.late):
            line = f"deadline near: {self._say(expected, deadline)}: {seen.missing}"
            logger.warning(line, extra=_extra(expected, deadline, "deadline_warned"))
            count("deadline_warned")
            looked.warned += 1

    def _late(self, route: Route, deadline: Deadline, now: datetime, looked: Looked) -> None:
        expected = expected_on(route, deadline.day)
        seen = self.seen(expected, now)
        if seen.arrived:
            self.book.close(late_id(route.name, deadline.day), "on time", only_if="warned")
            return
        if self._skipped(expected, deadline, "deadline", looked):
            return
        again, until = now + timedelta(seconds=CHECK_SECONDS), deadline.late + WATCH_LATE
        if self.book.note(_day(expected, deadline), expected.what, "missed", now, again=again, until=until):
            line = f"deadline missed: {self._say(expected, deadline)}: {seen.missing}"
            logger.error(line, extra=_extra(expected, deadline, "deadline_missed"))
            count("deadline_missed")
            looked.missed += 1

    def _skipped(self, expected: Expected, deadline: Deadline, what: str, looked: Looked) -> bool:
        why = self.paused(expected.route)
        if why:
            line = f"{what} skipped: {self._say(expected, deadline)}: {why}"
            logger.info(line, extra=_extra(expected, deadline, "deadline_skipped"))
            looked.skipped += 1
        return bool(why)

    def _again(self, late: Late, now: datetime) -> Looked:
        """A missed day, due for another look: arrived (reported once, closed), or looked at again later."""
        looked = Looked()
        route = self.routes.named(late.route)
        if route is None or route.expect is None:
            self.book.close(late.id, "no longer expected", only_if="missed")
            return looked
        expected = expected_on(route, late.day)
        seen = self.seen(expected, now)
        if seen.arrived:
            if self.book.close(late.id, "arrived", only_if="missed"):
                minutes = max(0, round(((seen.at or now) - late.by).total_seconds() / 60))
                extra = {"status": "arrived_late", "route": route.name, "day": late.day.isoformat()}
                logger.warning(
                    f"arrived late: route {route.name}, {expected.what}, {minutes} minutes after its deadline",
                    extra={**extra, "due": expected.what, "late_minutes": minutes},
                )
                count("arrived_late")
                looked.arrived_late += 1
        elif now - late.by > WATCH_LATE:
            if self.book.close(late.id, "never arrived", only_if="missed"):
                logger.info(
                    f"deadline: route {route.name}, {expected.what} no longer watched, {WATCH_LATE.days} days late"
                )
        else:
            self.book.again(late.id, now + timedelta(seconds=CHECK_SECONDS))
        return looked

    @staticmethod
    def _say(expected: Expected, deadline: Deadline) -> str:
        expect = expected.route.expect
        assert expect is not None
        return f"route {expected.route.name}, {expected.what} {say_due(deadline, expect.timezone)}"


def _extra(expected: Expected, deadline: Deadline, status: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"status": status, "route": expected.route.name, "day": deadline.day.isoformat()}
    extra.update(due=expected.what, by=iso(deadline.by))
    if deadline.moved:
        extra["moved"] = True  # `by` fell in the clocks' spring-forward gap: the next valid instant
    return extra


def _day(expected: Expected, deadline: Deadline) -> Late:
    return Late(late_id(expected.route.name, deadline.day), expected.route.name, deadline.day, deadline.by)
