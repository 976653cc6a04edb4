"""A reconciliation pass, on in-memory twins of the listing, the cursor and the landings: which objects
it looks at, what it hands on, when its cursor moves, and where the next pass begins."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from polytrigger.core.outcomes import Outcome, Report
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.landings import Landing
from polytrigger.reconciliation.cursor import Cursor
from polytrigger.reconciliation.listing import PAGE, Listed, Page
from polytrigger.reconciliation.passes import Passes
from polytrigger.routing import parse_routes

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ROUTE = parse_routes(
    {
        "routes": [
            {
                "name": "orders",
                "s3": {"bucket": "acme", "key": "orders/**/*.csv", "reconcile": {"every": "15m", "overlap": "1h"}},
                "syncs": [{"id": SYNC}],
            }
        ]
    }
).routes[0]


@dataclass
class Bucket:
    objects: dict[str, datetime] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def page(self, bucket: str, prefix: str, after: str = "", size: int = PAGE) -> Page:
        self.calls.append(after)
        keys = sorted(key for key in self.objects if key.startswith(prefix) and key > after)
        here = keys[:size]
        more = len(keys) > size
        return Page(
            prefix,
            tuple(Listed(bucket, key, self.objects[key], "etag", 1) for key in here),
            here[-1] if more else "",
        )


@dataclass
class Cursors:
    item: dict[str, object] = field(default_factory=dict)

    def take(self, route: str, now: float, lease_seconds: float) -> Cursor | None:
        if float(self.item.get("lease_until", 0.0)) >= now:  # type: ignore[arg-type]
            return None
        self.item.setdefault("started", datetime.fromtimestamp(now, UTC))
        self.item.setdefault("after", "")
        self.item.update(lease_until=now + lease_seconds, holder="me")
        return Cursor(route, "me", self.item["started"], self.item["after"], self.item.get("checkpoint"))  # type: ignore[arg-type]

    def advance(self, cursor: Cursor, after: str, now: float, lease_seconds: float) -> Cursor:
        self.item.update(after=after, lease_until=now + lease_seconds)
        return replace(cursor, after=after)

    def finish(self, cursor: Cursor) -> None:
        self.item = {"checkpoint": cursor.started}

    def release(self, cursor: Cursor) -> None:
        self.item.pop("lease_until", None)


@dataclass
class Landings:
    kept: dict[str, Landing] = field(default_factory=dict)
    reads: int = 0

    def get_many(self, objects: list[tuple[str, str]]) -> dict[tuple[str, str], Landing]:
        self.reads += len(objects)
        return {(b, k): self.kept[k] for b, k in objects if k in self.kept}

    def handled(self, trigger: Trigger) -> None:
        self.kept[trigger.key] = replace(self.kept[trigger.key], handled=True)

    def event(self, key: str, at: datetime) -> None:
        self.kept[key] = Landing("acme", key, "seq", at, at)


@dataclass
class World:
    bucket: Bucket = field(default_factory=Bucket)
    cursors: Cursors = field(default_factory=Cursors)
    landings: Landings = field(default_factory=Landings)
    now: datetime = T0
    handed: list[list[str]] = field(default_factory=list)
    retry: bool = False

    def claim(self, triggers: list[Trigger], received: float) -> list[Trigger]:
        for trigger in triggers:
            self.landings.kept[trigger.key] = Landing(
                "acme", trigger.key, "", trigger.time, trigger.time, "etag", "reconciliation", handled=False
            )
        return triggers

    def handle(self, triggers: list[Trigger], remaining_ms: int) -> Report:
        self.handed.append([trigger.key for trigger in triggers])
        report = Report()
        report.add(
            Outcome("orders", SYNC, "model", "start", "failed" if self.retry else "started", retryable=self.retry)
        )
        return report

    def passes(self, page_size: int = PAGE) -> Passes:
        return Passes(
            self.bucket,
            self.cursors,
            self.landings,
            self.claim,
            self.handle,
            clock=lambda: self.now.timestamp(),  # noqa: PLW0108  # the time the test sets later
            page_size=page_size,
        )


def test_the_first_pass_looks_back_the_overlap_and_leaves_the_youngest_for_the_next() -> None:
    world = World()
    world.bucket.objects = {
        "orders/a.csv": T0 - timedelta(hours=2),  # before the overlap: not read
        "orders/b.csv": T0 - timedelta(minutes=30),
        "orders/c.txt": T0 - timedelta(minutes=30),  # not the route's
        "orders/d.csv": T0 - timedelta(minutes=1),  # its event may be on the way
    }
    result = world.passes().run(ROUTE, lambda: 600.0)
    assert (result.state, result.listed, result.looked_at) == ("complete", 4, 1)
    assert world.handed == [["orders/b.csv"]]
    assert world.landings.reads == 1
    assert world.cursors.item == {"checkpoint": T0}

    world.now = T0 + timedelta(minutes=15)
    again = world.passes().run(ROUTE, lambda: 600.0)
    assert [key for batch in world.handed for key in batch] == ["orders/b.csv", "orders/d.csv"]
    assert again.looked_at == 2  # b (handled: nothing more) and d


def test_an_object_whose_event_came_costs_a_read_and_nothing_more() -> None:
    world = World()
    world.bucket.objects = {"orders/a.csv": T0 - timedelta(minutes=20)}
    world.landings.event("orders/a.csv", T0 - timedelta(minutes=20))
    result = world.passes().run(ROUTE, lambda: 600.0)
    assert (result.looked_at, len(result.found), world.handed) == (1, 0, [])


def test_the_cursor_moves_only_past_handled_pages_and_a_retry_stops_the_pass_there() -> None:
    world = World()
    world.bucket.objects = {f"orders/{index}.csv": T0 - timedelta(minutes=20) for index in range(5)}
    world.retry = True
    result = world.passes(page_size=2).run(ROUTE, lambda: 600.0)
    assert (result.state, result.pages) == ("retry", 1)
    assert world.cursors.item["after"] == ""
    assert not any(landing.handled for landing in world.landings.kept.values())

    world.retry = False
    world.now += timedelta(minutes=15)
    result = world.passes(page_size=2).run(ROUTE, lambda: 600.0)
    assert (result.state, result.pages, len(result.found)) == ("complete", 3, 5)
    assert world.bucket.calls == ["", "", "orders/1.csv", "orders/3.csv"]
    assert world.cursors.item == {"checkpoint": T0}  # the pass's start, not the invocation's


def test_a_pass_out_of_time_lists_nothing_more_and_keeps_its_start() -> None:
    world = World()
    world.bucket.objects = {f"orders/{index}.csv": T0 - timedelta(minutes=20) for index in range(5)}
    budget = iter([600.0, 600.0, 600.0, 600.0, 10.0])
    result = world.passes(page_size=2).run(ROUTE, lambda: next(budget, 10.0))
    assert (result.state, result.pages) == ("paused", 1)
    assert world.cursors.item["after"] == "orders/1.csv"
    assert world.cursors.item["started"] == T0
    assert "lease_until" not in world.cursors.item  # let go: the next firing takes it at once


def test_a_route_held_by_another_invocation_is_left_alone() -> None:
    world = World()
    world.cursors.item = {"lease_until": T0.timestamp() + 60}
    result = world.passes().run(ROUTE, lambda: 600.0)
    assert (result.state, result.pages, world.bucket.calls) == ("busy", 0, [])
