"""Replay's plan and live loop, with the table in memory: grouping, skipping, the rate ceiling, Ctrl-C."""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.outcomes import Outcome
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferrals import coverage_since
from polytrigger.dispatch.landings import Landing, LandingsUnavailable
from polytrigger.reconciliation.listing import Listed
from polytrigger.routing import Routes, parse_routes
from polytrigger.tools import replay_cli
from polytrigger.tools.replay import Interrupt, Progress, RateLimit, carry_out
from polytrigger.tools.replay_plan import Plan, Selection, Start, make_plan
from polytrigger.tools.replay_reads import ReplayInputError

MODEL = "248df4b7-aa70-47b8-a036-33ac447e668d"
BULK = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
OTHER = "3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f"
BUCKET = "acme-landing"
DAY = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
NOW = (DAY + timedelta(days=5)).timestamp()


def routes() -> Routes:
    return parse_routes(
        {
            "routes": [
                {
                    "name": "orders",
                    "s3": {"bucket": BUCKET, "key": "orders/{date}/*.csv"},
                    "debounce": "5m",
                    "syncs": [{"id": MODEL}, {"id": BULK, "type": "bulk", "fetch_mode": "incremental"}],
                },
                {"name": "orders-too", "s3": {"bucket": BUCKET, "key": "orders/**"}, "syncs": [{"id": MODEL}]},
                {
                    "name": "vendor",
                    "s3": {"bucket": BUCKET, "key": "vendor/{date}/**"},
                    "gate": {"marker": "vendor/{date}/_SUCCESS"},
                    "syncs": [{"id": OTHER, "activate_first": True}],
                },
                {
                    "name": "resync",
                    "s3": {"bucket": BUCKET, "key": "full/*.csv"},
                    "syncs": [{"id": OTHER, "resync": True}],
                },
                {
                    "name": "gone",
                    "s3": {"bucket": BUCKET, "key": "gone/*", "events": ["deleted"]},
                    "syncs": [{"id": OTHER}],
                },
            ]
        }
    )


def obj(key: str, minutes: int = 0) -> Listed:
    return Listed(BUCKET, key, DAY + timedelta(minutes=minutes), "etag-" + key, 1)


@dataclass
class Table:
    """The table as the plan reads it, in memory."""

    kept: dict[tuple[str, str], Landing] = field(default_factory=dict)
    by_sync: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    waiting: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (key, sync id) -> state
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def landings(self, objects: list[tuple[str, str]]) -> dict[tuple[str, str], Landing]:
        return {one: self.kept[one] for one in objects if one in self.kept}

    def runs(self, sync: SyncTarget, since: float) -> list[tuple[float, str]]:
        return sorted(run for run in self.by_sync.get(sync.id, []) if run[0] >= since)

    def pending(self, listed: Listed, route: str, sync: SyncTarget) -> tuple[str, str] | None:
        return self.waiting.get((listed.key, sync.id))

    def done(self, action: Action) -> dict[str, Any] | None:
        return self.outcomes.get(action.dedup_key)

    def run_after(self, sync: str, listed: Listed, execution: str) -> None:
        self.by_sync.setdefault(sync, []).append((coverage_since(listed.trigger("replay").time, NOW), execution))


def plan(objects: list[Listed], table: Table | None = None, **selection: Any) -> Plan:
    return make_plan(objects, routes(), Selection(**selection), table or Table(), NOW)


def starts_of(found: Plan) -> list[tuple[str, str, str, int, str]]:
    return [(s.route, s.sync.id, s.to_dict()["partition"], len(s.objects), s.action.trigger.key) for s in found.starts]


def test_one_start_per_sync_and_options_for_every_object_whose_trigger_is_the_newest() -> None:
    found = plan([obj("orders/2026-12-01/a.csv", 5), obj("orders/2026-12-02/b.csv", 9), obj("orders/2026-12-01/c.csv")])
    assert starts_of(found) == [
        ("orders", BULK, "", 3, "orders/2026-12-02/b.csv"),
        ("orders", MODEL, "", 3, "orders/2026-12-02/b.csv"),  # two routes of one sync: one start
    ]
    assert [s.action.trigger.found_by for s in found.starts] == ["replay", "replay"]
    assert found.partitions == [("orders", "date=2026-12-01"), ("orders", "date=2026-12-02")]


def test_the_same_objects_make_the_same_idempotency_keys_in_any_order() -> None:
    objects = [obj(f"orders/2026-12-0{day}/{day}.csv", day) for day in range(1, 6)]
    first = [s.action.dedup_key for s in plan(objects).starts]
    assert first == [s.action.dedup_key for s in plan(list(reversed(objects))).starts]


def test_a_gated_route_starts_once_per_partition_and_activates_first() -> None:
    found = plan([obj("vendor/d1/a.parquet"), obj("vendor/d1/_SUCCESS", 1), obj("vendor/d2/a.parquet")])
    assert starts_of(found) == [
        ("vendor", OTHER, "date=d1", 2, "vendor/d1/_SUCCESS"),
        ("vendor", OTHER, "date=d2", 1, "vendor/d2/a.parquet"),
    ]
    assert all(s.activate is not None and s.activate.kind == "activate" for s in found.starts)


def test_what_a_run_covers_is_skipped_and_the_rest_start_once() -> None:
    older, newer = obj("orders/2026-12-01/a.csv"), obj("orders/2026-12-01/b.csv", 30)
    table = Table()
    table.run_after(MODEL, older, "run-1")  # a run created after the older object only
    found = plan([older, newer], table, routes=("orders",))
    assert [(s.listed.key, s.sync.id, s.reason, s.detail) for s in found.skipped] == [
        ("orders/2026-12-01/a.csv", MODEL, "covered", "run run-1")
    ]
    assert starts_of(found) == [
        ("orders", BULK, "", 2, "orders/2026-12-01/b.csv"),
        ("orders", MODEL, "", 1, "orders/2026-12-01/b.csv"),
    ]


def test_a_run_does_not_cover_a_resync() -> None:
    listed = obj("full/a.csv")
    table = Table()
    table.run_after(OTHER, listed, "run-1")
    assert starts_of(plan([listed], table)) == [("resync", OTHER, "", 1, "full/a.csv")]


def test_a_pending_start_is_skipped_with_its_state() -> None:
    listed = obj("orders/2026-12-01/a.csv")
    table = Table(
        kept={(BUCKET, listed.key): landing(listed)}, waiting={(listed.key, MODEL): ("held", "the sync is paused")}
    )
    found = plan([listed], table, routes=("orders",))
    assert [(s.sync.id, s.reason) for s in found.skipped] == [(MODEL, "held")]
    assert [s.sync.id for s in found.starts] == [BULK]


def test_a_landing_older_than_any_wait_is_not_asked_whether_it_waits() -> None:
    listed = obj("orders/2026-12-01/a.csv")
    long_ago = NOW + 30 * 86400  # a month later, the hold (7 days) and every other wait are long over
    table = Table(
        kept={(BUCKET, listed.key): landing(listed)}, waiting={(listed.key, MODEL): ("held", "the sync is paused")}
    )
    found = make_plan([listed], routes(), Selection(routes=("orders",)), table, long_ago)
    assert found.skipped == []
    assert sorted(s.sync.id for s in found.starts) == sorted([MODEL, BULK])


def test_a_start_made_by_an_earlier_replay_is_not_planned_again() -> None:
    objects = [obj("orders/2026-12-01/a.csv"), obj("orders/2026-12-01/b.csv", 1)]
    first = plan(objects, routes=("orders",))
    table = Table(outcomes={first.starts[0].action.dedup_key: {"status": "deferred"}})
    again = plan(objects, table, routes=("orders",))
    assert [s.sync.id for s in again.starts] == [first.starts[1].sync.id]
    assert {(s.reason, s.detail) for s in again.skipped} == {("started earlier", "deferred")}


def test_filters_narrow_by_route_bucket_prefix_time_and_partition() -> None:
    objects = [obj("orders/2026-12-01/a.csv"), obj("orders/2026-12-03/b.csv", 60), obj("vendor/d1/x")]
    assert len(plan(objects, routes=("vendor",)).matched) == 1
    assert len(plan(objects, bucket=BUCKET, prefix="orders/2026-12-03/").matched) == 1
    assert len(plan(objects, since=DAY + timedelta(minutes=30)).matched) == 1
    assert len(plan(objects, until=DAY + timedelta(minutes=30)).matched) == 2
    assert len(plan(objects, partitions=(("date", "2026-12-02", "2026-12-31"),)).matched) == 1
    assert len(plan(objects, bucket="elsewhere").matched) == 0


def test_a_deleted_only_route_and_unmatched_keys_replay_nothing() -> None:
    found = plan([obj("gone/a"), obj("misc/b")])
    assert found.seen == 2
    assert found.matched == []
    assert found.starts == []


def landing(listed: Listed) -> Landing:
    return Landing(
        bucket=listed.bucket,
        key=listed.key,
        sequencer="01",
        landed_at=listed.last_modified,
        received_at=listed.last_modified + timedelta(seconds=1),
    )


# -- the live loop --------------------------------------------------------------------------------


@dataclass
class Clock:
    now_at: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.now_at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_at += seconds


@dataclass
class Starter:
    clock: Clock
    made: list[float] = field(default_factory=list)
    takes: float = 2.0  # each start takes this long
    then: Any = None  # called after each start (a Ctrl-C)

    def start(self, start: Start) -> Outcome:
        self.made.append(self.clock.now_at)
        self.clock.now_at += self.takes
        if self.then is not None:
            self.then(len(self.made))
        return Outcome.of(start.action, "started", execution_id=f"run-{len(self.made)}")


@dataclass
class Claims:
    landed_keys: list[str] = field(default_factory=list)
    handled_keys: list[str] = field(default_factory=list)

    def landed(self, trigger: Trigger, received: float) -> bool:
        self.landed_keys.append(trigger.key)
        return True

    def handled(self, trigger: Trigger) -> None:
        self.handled_keys.append(trigger.key)


def wide_plan(syncs: int) -> Plan:
    ids = [f"7c2e8d3a-3f4b-4a5c-9dae-{index:012d}" for index in range(syncs)]
    fan = parse_routes(
        {"routes": [{"name": "fan", "s3": {"bucket": BUCKET, "key": "*"}, "syncs": [{"id": i} for i in ids]}]}
    )
    return make_plan([obj("a"), obj("b", 1)], fan, Selection(), Table(), NOW)


def test_the_rate_ceiling_spaces_starts_from_when_the_previous_one_was_done() -> None:
    clock = Clock()
    starter = Starter(clock)
    result = carry_out(wide_plan(12), starter, Claims(), RateLimit(6, clock.now, clock.sleep), clock=clock.now)
    assert len(result.outcomes) == 12
    gaps = [later - earlier for earlier, later in zip(starter.made, starter.made[1:], strict=False)]
    assert min(gaps) >= 10  # 6 a minute: never two closer than 10 s, however long a start takes
    assert max(sum(1 for t in starter.made if first <= t < first + 60) for first in starter.made) <= 6


def test_the_first_start_does_not_wait_and_the_next_wait_one_interval_after_the_previous_is_done() -> None:
    clock = Clock()
    starter = Starter(clock, takes=30)
    carry_out(wide_plan(3), starter, Claims(), RateLimit(60, clock.now, clock.sleep), clock=clock.now)
    assert starter.made[0] == 1000.0
    assert clock.slept == [1.0, 1.0]  # a slow start is no credit: Polytomic's call was somewhere inside it


def test_ctrl_c_stops_after_the_current_start_and_keeps_what_was_done() -> None:
    clock, claims, interrupt = Clock(), Claims(), Interrupt()
    starter = Starter(clock, then=lambda made: interrupt.request() if made == 2 else None)
    result = carry_out(wide_plan(5), starter, claims, RateLimit(600, clock.now, clock.sleep), interrupt=interrupt)
    assert result.interrupted
    assert len(result.outcomes) == 2
    assert claims.handled_keys == ["a", "b", "a", "b"]  # both objects of each start made


def test_a_start_that_failed_leaves_its_landings_unhandled() -> None:
    clock, claims = Clock(), Claims()

    class Failing(Starter):
        def start(self, start: Start) -> Outcome:
            return Outcome.of(start.action, "failed", reason="404")

    result = carry_out(wide_plan(1), Failing(clock), claims, RateLimit(60, clock.now, clock.sleep))
    assert [outcome.status for _, outcome in result.failed] == ["failed"]
    assert claims.landed_keys == ["a", "b"]
    assert claims.handled_keys == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_only_on_a_terminal() -> None:
    screen, pipe = Terminal(), io.StringIO()
    for stream in (screen, pipe):
        bar = Progress(2, stream)
        bar.advance("one")
        bar.advance("two")
        bar.close()
    assert "2/2" in screen.getvalue()
    assert pipe.getvalue() == ""


def test_a_rate_below_one_a_minute_is_refused() -> None:
    with pytest.raises(ValueError, match="per_minute"):
        RateLimit(0)


# -- what the user asked for ----------------------------------------------------------------------


def asked(*argv: str) -> Selection:
    parser = argparse.ArgumentParser()
    replay_cli.register(parser.add_subparsers(dest="command"))
    return replay_cli.selection_of(parser.parse_args(["replay", *argv]), routes())


def test_a_date_alone_for_until_takes_that_whole_day_and_times_without_offset_are_utc() -> None:
    chosen = asked("--route", "orders", "--since", "2026-12-01T06:00", "--until", "2026-12-03")
    assert chosen.since == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert chosen.until == datetime(2026, 12, 4, tzinfo=UTC)


def test_a_partition_is_one_value_or_a_range() -> None:
    chosen = asked("--route", "orders", "--partition", "date=2026-12-01..2026-12-07", "--partition", "date=x")
    assert chosen.partitions == (("date", "2026-12-01", "2026-12-07"), ("date", "x", "x"))


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--route", "order"], "did you mean orders?"),
        (["--route", "orders", "--partition", "date=9..1"], "9 comes after 1"),
        (["--route", "orders", "--partition", "Date"], "NAME=VALUE"),
        (["--route", "orders", "--since", "2026-12-02", "--until", "2026-12-01"], "must be before"),
        (["s3://b/p", "--inventory", "s3://b/m.json"], "not both"),
        (["--route", "orders", "--partition", "vendor=a"], "they have: date"),
    ],
)
def test_what_cannot_be_replayed_is_said_in_one_line(argv: list[str], said: str) -> None:
    with pytest.raises(ReplayInputError, match=said.replace("?", r"\?")):
        asked(*argv)


def test_ctrl_c_during_a_wait_stops_within_a_second_and_a_second_ctrl_c_stops_at_once() -> None:
    clock, interrupt = Clock(), Interrupt()
    limit = RateLimit(1, clock.now, clock.sleep)
    limit.made()  # the next start may come a minute from now

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        interrupt.request()  # Ctrl-C during the first second of the wait

    limit.sleep = sleep
    limit.wait(lambda: interrupt.requested)
    assert clock.slept == [1.0]
    with pytest.raises(KeyboardInterrupt):
        interrupt.request()


def test_a_table_that_cannot_keep_a_landing_stops_the_run_before_that_start() -> None:
    clock = Clock()
    starter = Starter(clock)

    class Broken(Claims):
        def landed(self, trigger: Trigger, received: float) -> bool:
            if len(starter.made) == 1:
                raise LandingsUnavailable("the file's landing could not be kept: AccessDenied")
            return True

    result = carry_out(wide_plan(3), starter, Broken(), RateLimit(600, clock.now, clock.sleep))
    assert len(result.outcomes) == 1
    assert "AccessDenied" in result.stopped_by
    assert not result.interrupted


def test_two_routes_of_one_sync_that_differ_in_activate_first_still_make_one_start() -> None:
    both = parse_routes(
        {
            "routes": [
                {"name": "first", "s3": {"bucket": BUCKET, "key": "x/*"}, "syncs": [{"id": MODEL}]},
                {
                    "name": "second",
                    "s3": {"bucket": BUCKET, "key": "y/*"},
                    "syncs": [{"id": MODEL, "activate_first": True}],
                },
            ]
        }
    )
    found = make_plan([obj("x/a"), obj("y/b", 5)], both, Selection(), Table(), NOW)
    assert [(s.route, len(s.objects), s.action.trigger.key) for s in found.starts] == [("second", 2, "y/b")]
    assert found.starts[0].activate is not None  # the newest object's route activates first
