"""The poller reading Polytomic's events API: every event once, whatever the log holds and in either order.

The real `PollFlow` and `PolytomicReads` with the real client, against the fake Polytomic in process
on a hand-moved clock, with the run ledger on DynamoDB Local. The events API is the organisation's
whole log, pages by time only (`starting_after` / `ending_before`, at most 100 events a page), and
its order is not documented: each test runs oldest first and newest first. What the poller hands on
to the bus is the witness that nothing was skipped or done twice: every event is handed on once.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.polytomic import IN_PROCESS_URL, FakePolytomic
from local.stack import LocalStack
from polytrigger.flows.on_poll import PollFlow
from polytrigger.polytomic.client import PolytomicClient
from polytrigger.polytomic.reads import PolytomicReads
from polytrigger.runs import event_log
from polytrigger.runs.bus import BusUnavailable, RunEventBus
from polytrigger.runs.dynamo_ledger import DynamoLedger
from polytrigger.runs.event_log import MAX_PAGES, PAGE, SKEW
from polytrigger.runs.ledger import Run
from polytrigger.settings import API_VERSIONS
from tests.integration.support import captured_logs
from tests.unit.dispatch_support import Clock, Secret

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # where the cursor is when a test begins
ORDERS = ["oldest", "newest"]


class Bus(RunEventBus):
    """The bus the poller hands events on to: what it took, in order; it refuses from its `failing_after`-th on."""

    def __init__(self) -> None:
        super().__init__("polytomic-events", lambda: None)
        self.taken: list[str] = []
        self.failing_after: int | None = None

    def publish(self, event: Mapping[str, Any]) -> None:
        if self.failing_after is not None and len(self.taken) >= self.failing_after:
            raise BusUnavailable("EventBridge bus polytomic-events: InternalFailure")
        self.taken.append(str(event["id"]))


@dataclass
class World:
    stack: LocalStack
    order: str
    log: io.StringIO
    clock: Clock = field(default_factory=lambda: Clock((START + timedelta(minutes=10)).timestamp()))
    bus: Bus = field(default_factory=Bus)

    def __post_init__(self) -> None:
        self.fake = FakePolytomic(clock=self.clock, sleep=self.clock.sleep)
        self.fake.set_event_order(self.order)  # type: ignore[arg-type]
        self.fake.add_sync(SYNC, kind="model")
        client = PolytomicClient(
            IN_PROCESS_URL,
            API_VERSIONS[0],
            Secret(),
            http=self.fake.in_process(),
            sleep=self.clock.sleep,
            clock=self.clock,
        )
        self.ledger = DynamoLedger(self.stack.dynamodb_client(), self.stack.table_name, clock=self.clock)
        self.flow = PollFlow(
            reads=PolytomicReads(client),
            ledger=self.ledger,
            reconcile_after=timedelta(minutes=15),
            bus=self.bus,
            clock=self.now,
        )
        assert self.ledger.advance(None, START)  # the schedule has been polling: the cursor is set

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now, UTC)

    def run(self, at: datetime, *, recorded: bool = True) -> str:
        """A run of SYNC created at `at` and ended a millisecond later (two events); in the ledger when
        polytrigger started it."""
        execution = self.fake.add_run(SYNC, at, run_seconds=0.001)
        if recorded:
            self.ledger.record(Run(execution, SYNC, "model", started_at=at), "orders", "s3://b/k.csv (created)", at, at)
        return execution

    def poll(self) -> dict[str, Any]:
        return self.flow.poll()

    def polls_until_caught_up(self, most: int) -> list[dict[str, Any]]:
        """Poll a minute apart until a poll reads up to now (at most `most` polls)."""
        summaries = [self.poll()]
        while summaries[-1].get("cursor_age_seconds", 1) and len(summaries) < most:
            self.clock.now += 60
            summaries.append(self.poll())
        return summaries

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().split("\n") if line.strip()]

    def cursor(self) -> datetime | None:
        return self.ledger.cursor()[0]

    def event_ids(self) -> list[str]:
        return [event["id"] for event in self.fake.events()]

    def status(self, execution: str) -> str:
        run = self.ledger.get(execution)
        assert run is not None
        return run.status


@pytest.fixture(params=ORDERS)
def world(clean: LocalStack, request: pytest.FixtureRequest) -> Iterator[World]:
    with captured_logs() as log:
        yield World(clean, request.param, log)


def test_a_page_full_of_the_organisations_other_events_does_not_stop_the_poller(world: World) -> None:
    """Other event types fill pages (one created_at shared across a page's end too); the run after them ends."""
    for number in range(80):
        world.fake.add_event("connection.updated", START + timedelta(seconds=1 + number / 10))
    shared = START + timedelta(seconds=30)
    for _ in range(50):
        world.fake.add_event("model.updated", shared)
    execution = world.run(START + timedelta(minutes=2))

    world.polls_until_caught_up(3)

    assert world.status(execution) == "completed"
    assert sorted(world.bus.taken) == sorted(world.event_ids())  # every event, once: none skipped at the shared time
    cursor = world.cursor()
    assert cursor is not None
    assert cursor >= START + timedelta(minutes=2)


def test_more_than_a_page_at_one_instant_is_read_as_far_as_the_api_lets_and_passed(world: World) -> None:
    """The API pages by time only: past PAGE events sharing one created_at, no query reaches the rest.
    The poller reads a page of them, says how many it may have missed, and goes on."""
    crowded = START + timedelta(minutes=1)
    for _ in range(PAGE + 50):
        world.fake.add_event("model.updated", crowded)
    execution = world.run(START + timedelta(minutes=2))

    first = world.poll()
    world.clock.now += 60
    second = world.poll()

    assert world.status(execution) == "completed"
    assert len(world.bus.taken) == len(set(world.bus.taken)) >= PAGE + 2
    cursor = world.cursor()
    assert cursor is not None
    assert cursor > crowded
    assert first["polytomic_calls"] < MAX_PAGES  # no loop on the crowded instant
    assert second["polytomic_calls"] < MAX_PAGES  # read again in the overlap, passed again
    assert first["cursor_age_seconds"] == second["cursor_age_seconds"] == 0
    (unread,) = [line for line in world.lines() if line.get("status") == "events_unread"]  # said once
    assert unread["message"].startswith(f"poller: more than {PAGE} events at {crowded.isoformat()}")


def test_a_failed_hand_on_keeps_the_cursor_before_what_was_not_handed_on(world: World) -> None:
    """Catching up (no overlap): the bus fails after 120 events; the next poll hands on the rest, each once."""
    executions = [world.run(START + timedelta(seconds=2 * n), recorded=n % 10 == 0) for n in range(80)]
    assert world.ledger.advance(START, START, behind=True)
    world.bus.failing_after = 120

    with pytest.raises(BusUnavailable):
        world.poll()
    handed = set(world.bus.taken)
    cursor = world.cursor()
    assert cursor is not None
    assert all(event["id"] in handed for event in world.fake.events() if _at(event) < cursor)
    assert cursor > START  # the pages handed on before the failure are kept

    world.bus.failing_after = None
    world.clock.now += 60
    world.polls_until_caught_up(3)

    assert sorted(world.bus.taken) == sorted(world.event_ids())  # each once, none lost
    assert {world.status(execution) for execution in executions[::10]} == {"completed"}


def test_a_burst_over_a_polls_pages_is_read_whole_from_the_oldest(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More events than a poll reads (scaled down: a poll of 3 requests, 320 events in 16 seconds):
    a truncated poll keeps the cursor at the oldest event it did not read, and the next polls go on
    from there, in either order."""
    monkeypatch.setattr(event_log, "MAX_PAGES", 3)
    runs = 160
    for number in range(runs):
        world.run(START + timedelta(seconds=1, microseconds=100_000 * number), recorded=number % 50 == 0)
    assert len(world.event_ids()) == 2 * runs > event_log.MAX_PAGES * PAGE

    first = world.poll()
    cursor = world.cursor()
    assert cursor is not None
    unread = [event for event in world.fake.events() if event["id"] not in set(world.bus.taken)]
    assert unread
    assert cursor <= min(_at(event) for event in unread)  # nothing unread behind the cursor
    assert first["cursor_age_seconds"] > 0

    world.clock.now += 60
    world.polls_until_caught_up(10)

    assert sorted(world.bus.taken) == sorted(world.event_ids())
    cursor, behind = world.ledger.cursor()
    assert cursor is not None
    assert cursor >= max(_at(event) for event in world.fake.events())
    assert not behind  # caught up: the overlap again from the next poll


def test_an_event_dated_in_the_future_does_not_carry_the_cursor_past_now(world: World) -> None:
    world.run(world.now() + timedelta(hours=2))  # its running event is dated two hours ahead

    world.poll()
    cursor = world.cursor()
    assert cursor is not None
    assert cursor <= world.now() + SKEW

    world.clock.now += 60
    later = world.run(world.now() - timedelta(seconds=30))
    world.clock.now += 60
    world.poll()

    assert world.status(later) == "completed"  # the events after now are still read
    assert sorted(world.bus.taken) == sorted(world.event_ids())


def test_an_idle_poll_is_one_call_no_write_and_no_age(world: World) -> None:
    world.poll()
    world.fake.reset_calls()

    summary = world.poll()

    assert (summary["polytomic_calls"], summary["cursor_age_seconds"]) == (1, 0)
    assert world.ledger.cursor() == (START, False)


def _at(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["created_at"]).replace("Z", "+00:00"))
