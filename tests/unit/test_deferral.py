"""deferral.py and windows.py without AWS: delays, windows, messages, parking, with a fake clock and queue."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polytrigger.actions import Action, SyncTarget
from polytrigger.deferral import (
    FIRST_DELAY_SECONDS,
    Deferrals,
    decode,
    delay_for,
    encode,
    flush_delay,
    message_key,
    window_message,
)
from polytrigger.queue import MAX_DELAY_SECONDS
from polytrigger.triggers import Trigger
from polytrigger.windows import MemoryWindows, Window, window_id

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
BULK = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
T0 = 1_795_000_000.0  # a fixed "now", epoch seconds


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class MemoryQueue:
    """The Queue protocol in memory: what was sent (with its delay) and what was parked (with why)."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []
        self.parked: list[tuple[dict[str, Any], str]] = []

    def send(self, body: dict[str, Any], delay_seconds: int) -> None:
        self.sent.append((json.loads(json.dumps(body)), delay_seconds))  # what SQS would carry: JSON

    def park(self, body: dict[str, Any], reason: str) -> None:
        self.parked.append((json.loads(json.dumps(body)), reason))


def action(key: str = "orders/a.csv", *, debounce: int = 60, max_wait: int = 300, sequencer: str = "01") -> Action:
    trigger = Trigger.s3(
        bucket="acme-landing", key=key, event="created", sequencer=sequencer, time=datetime.fromtimestamp(T0 - 5, UTC)
    )
    return Action(
        route="orders", kind="start", sync=SyncTarget(id=SYNC), trigger=trigger, debounce=debounce, max_wait=max_wait
    )


# -- delay_for -----------------------------------------------------------------------------------


def test_delays_start_at_the_first_delay_and_double() -> None:
    assert [delay_for(attempt) for attempt in range(1, 7)] == [30, 60, 120, 240, 480, 900]
    assert [delay_for(attempt, first=1) for attempt in range(1, 5)] == [1, 2, 4, 8]
    assert FIRST_DELAY_SECONDS == 30


def test_delays_never_exceed_what_sqs_allows() -> None:
    assert delay_for(7) == delay_for(50) == delay_for(10_000) == MAX_DELAY_SECONDS == 900


def test_an_attempt_below_one_counts_as_the_first() -> None:
    assert delay_for(0) == delay_for(-3) == delay_for(1) == 30


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=1, max_value=900))
def test_delays_are_whole_growing_and_bounded(attempt: int, first: int) -> None:
    delay = delay_for(attempt, first)
    assert isinstance(delay, int)
    assert min(first, MAX_DELAY_SECONDS) <= delay <= MAX_DELAY_SECONDS
    assert delay_for(attempt + 1, first) >= delay


# -- MemoryWindows -------------------------------------------------------------------------------


def test_a_window_opens_once() -> None:
    windows = MemoryWindows()
    first = Window("w", T0, T0, T0 + 300, 1)

    assert windows.open(first)
    assert not windows.open(Window("w", T0 + 1, T0 + 1, T0 + 301, 1))  # the open one stays
    assert windows.get("w") == first
    assert windows.get("other") is None


def test_absorbing_counts_the_arrival_and_moves_last_arrival_not_the_deadline() -> None:
    windows = MemoryWindows()
    windows.open(Window("w", T0, T0, T0 + 300, 1))

    assert windows.absorb("w", T0 + 10)
    assert windows.absorb("w", T0 + 20)

    assert windows.get("w") == Window("w", T0, T0 + 20, T0 + 300, 3)


def test_nothing_is_absorbed_into_a_missing_or_stale_window() -> None:
    windows = MemoryWindows()
    assert not windows.absorb("w", T0)
    windows.open(Window("w", T0, T0, T0 + 300, 1))

    assert not windows.absorb("w", T0 + 5000, stale_before=T0 + 301)  # deadline long past
    assert windows.absorb("w", T0 + 5000, stale_before=T0 + 300)  # deadline exactly at the cut-off: still live
    assert windows.get("w") == Window("w", T0, T0 + 5000, T0 + 300, 2)


def test_a_window_is_closed_once_and_only_by_its_own_opening() -> None:
    windows = MemoryWindows()
    windows.open(Window("w", T0, T0, T0 + 300, 1))
    windows.absorb("w", T0 + 3)

    assert windows.close("w", T0 + 1) is None  # another window's message
    closed = windows.close("w", T0)

    assert closed == Window("w", T0, T0 + 3, T0 + 300, 2)
    assert windows.close("w", T0) is None  # the second close finds nothing
    assert windows.get("w") is None
    assert windows.open(Window("w", T0 + 10, T0 + 10, T0 + 310, 1))  # and a new window can open


def test_window_ids_are_per_action_sync_and_options_not_per_file_or_route() -> None:
    a, b = action("orders/a.csv"), action("orders/b.csv", sequencer="02")
    assert window_id(a) == window_id(b)
    assert window_id(a) == window_id(Action("other-route", "start", a.sync, b.trigger))
    assert window_id(a) != window_id(Action("orders", "start", SyncTarget(id=BULK), a.trigger))
    assert window_id(a) != window_id(Action("orders", "start", SyncTarget(id=SYNC, type="bulk"), a.trigger))
    resync = Action("orders", "start", SyncTarget(id=SYNC, options=(("resync", True),)), a.trigger)
    assert window_id(a) != window_id(resync)  # a resync is not absorbed into a plain start's window
    assert window_id(a).startswith("polytrigger#window#")


# -- flush_delay ---------------------------------------------------------------------------------


def window(opened: float = T0, last: float = T0, max_wait: float = 300) -> Window:
    return Window("w", opened, last, opened + max_wait, 1)


def test_flush_now_after_a_quiet_debounce() -> None:
    assert flush_delay(window(last=T0), action(debounce=60), T0 + 60) == 0
    assert flush_delay(window(last=T0), action(debounce=60), T0 + 61.5) == 0


def test_flush_waits_for_the_rest_of_the_quiet_period() -> None:
    assert flush_delay(window(last=T0 + 30), action(debounce=60), T0 + 60) == 30
    assert flush_delay(window(last=T0 + 30.2), action(debounce=60), T0 + 60) == 31  # rounded up, never early


def test_flush_never_waits_past_the_deadline() -> None:
    busy = window(last=T0 + 299, max_wait=300)
    assert flush_delay(busy, action(debounce=60, max_wait=300), T0 + 280) == 20  # not 59
    assert flush_delay(busy, action(debounce=60, max_wait=300), T0 + 300) == 0  # at the deadline: now
    assert flush_delay(busy, action(debounce=60, max_wait=300), T0 + 400) == 0  # late: now


def test_flush_waits_at_least_a_second_when_it_waits() -> None:
    assert flush_delay(window(last=T0 + 59.9), action(debounce=60), T0 + 119.8) == 1


@given(
    debounce=st.integers(min_value=1, max_value=900),
    extra=st.integers(min_value=0, max_value=3600),
    last=st.floats(min_value=0, max_value=5000, allow_nan=False),
    now=st.floats(min_value=0, max_value=5000, allow_nan=False),
)
def test_flush_delay_is_never_past_the_deadline_nor_before_quiet(
    debounce: int, extra: int, last: float, now: float
) -> None:
    max_wait = debounce + extra
    w = Window("w", T0, T0 + min(last, now), T0 + max_wait, 1)
    delay = flush_delay(w, action(debounce=debounce, max_wait=max_wait), T0 + now)
    if delay:
        assert T0 + now < w.deadline
        assert delay <= max(1, w.deadline - (T0 + now) + 1)  # at most the (rounded-up) time to the deadline
        assert delay >= 1
    else:
        assert T0 + now - w.last_arrival >= debounce or T0 + now >= w.deadline


# -- encode / decode -----------------------------------------------------------------------------


def test_an_action_survives_the_queue() -> None:
    model = Action(
        route="customers",
        kind="start",
        sync=SyncTarget(id=SYNC, options=(("identities", ("a", "b")), ("resync", True))),
        trigger=Trigger.s3(
            bucket="acme-landing",
            key="exports/Q4 report+final 100% münchen.csv",
            event="deleted",
            sequencer="0055AED6DCD9",
            time=datetime(2026, 11, 23, 9, 15, 42, 318000, tzinfo=UTC),
        ),
        debounce=60,
        max_wait=600,
    )
    bulk = Action(
        route="nightly",
        kind="start",
        sync=SyncTarget(id=BULK, type="bulk", options=(("fetch_mode", "full"), ("schemas", ("public.a",)))),
        trigger=Trigger.scheduled(schedule="nightly", time=datetime(2026, 11, 23, 2, 0, tzinfo=UTC)),
    )
    for original in (model, bulk):
        carried = decode(json.loads(json.dumps(encode(original))))
        assert carried == original
        assert carried.dedup_key == original.dedup_key
        assert carried.sync.body() == original.sync.body()


def test_activate_first_is_not_carried() -> None:
    """The dispatcher only starts: whether the route activates first does not travel (nor matter) there."""
    original = Action("orders", "start", SyncTarget(id=SYNC, activate_first=True), action().trigger)
    carried = decode(json.loads(json.dumps(encode(original))))
    assert carried.sync.activate_first is False
    assert carried.dedup_key == original.dedup_key


@given(
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    key=st.text(min_size=1, max_size=40),
    sequencer=st.sampled_from(["", "0055AED6DCD9", "0067419A3C5B7E2D10"]),
    identities=st.lists(st.text(max_size=10), max_size=3),
)
def test_any_s3_action_round_trips_with_its_dedup_key(
    moment: datetime, key: str, sequencer: str, identities: list[str]
) -> None:
    original = Action(
        route="r",
        kind="start",
        sync=SyncTarget(id=SYNC, options=(("identities", tuple(identities)),)),
        trigger=Trigger.s3(bucket="acme-landing", key=key, event="created", sequencer=sequencer, time=moment),
        debounce=5,
        max_wait=5,
    )
    carried = decode(json.loads(json.dumps(encode(original))))
    assert carried == original
    assert carried.dedup_key == original.dedup_key  # the identity falls back to the time without a sequencer


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"route": "r"},
        {**encode(action()), "sync": {"id": SYNC}},
        {**encode(action()), "trigger": "nope"},
        {**encode(action()), "debounce": "soon"},
    ],
)
def test_a_message_that_is_not_ours_does_not_decode(broken: dict[str, Any]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        decode(broken)


def test_message_keys_are_deterministic_and_distinct() -> None:
    key = message_key("abc", "deferred", 1)
    assert key == message_key("abc", "deferred", 1)
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert len({key, message_key("abc", "deferred", 2), message_key("abd", "deferred", 1)}) == 3


def test_window_messages_differ_by_generation_and_opening() -> None:
    a = action()
    wid = window_id(a)
    first, again, other = (
        window_message(a, wid, T0, 0),
        window_message(a, wid, T0, 1),
        window_message(a, wid, T0 + 1, 0),
    )
    assert (first["kind"], first["window"], first["opened_at"]) == ("window", wid, T0)
    assert len({first["id"], again["id"], other["id"]}) == 3
    assert decode(first["action"]) == a


# -- Deferrals.defer -----------------------------------------------------------------------------


def test_a_first_deferral_waits_the_first_delay() -> None:
    queue, clock = MemoryQueue(), Clock()
    deferrals = Deferrals(queue, MemoryWindows(), max_age=21600, first_delay=30, clock=clock)
    a = action()

    outcome = deferrals.defer(a, since=a.trigger.time.timestamp(), reason="Polytomic answered 409: running")

    assert (outcome.status, outcome.reason) == ("deferred", "Polytomic answered 409: running; retrying in 30 s")
    ((body, delay),) = queue.sent
    assert delay == 30
    assert body == {
        "kind": "deferred",
        "id": message_key(a.dedup_key, "deferred", 1),
        "action": json.loads(json.dumps(encode(a))),
        "since": a.trigger.time.timestamp(),
        "attempt": 1,
        "first_at": T0,  # the clock's now: this is when it began waiting
    }
    assert body["id"] != a.dedup_key  # a new Idempotency-Key: Polytomic would replay the 409 for the old one
    assert queue.parked == []


def test_each_attempt_is_a_new_message_with_a_longer_delay() -> None:
    queue, clock = MemoryQueue(), Clock()
    deferrals = Deferrals(queue, MemoryWindows(), max_age=21600, first_delay=30, clock=clock)
    a = action()
    for attempt in range(1, 5):
        deferrals.defer(a, since=T0 - 5, reason="running", attempt=attempt, first_at=T0)
        clock.now += delay_for(attempt, 30)

    assert [delay for _, delay in queue.sent] == [30, 60, 120, 240]
    assert len({body["id"] for body, _ in queue.sent}) == 4
    assert {body["first_at"] for body, _ in queue.sent} == {T0}


def test_a_deferral_that_would_wait_past_the_maximum_age_is_parked_with_the_reason() -> None:
    queue, clock = MemoryQueue(), Clock()
    deferrals = Deferrals(queue, MemoryWindows(), max_age=60, first_delay=1, clock=clock)
    a = action()
    attempt = 1
    while not queue.parked:  # 1 + 2 + 4 + 8 + 16 + 32 s: the sixth wait would end past 60 s
        outcome = deferrals.defer(
            a, since=T0 - 5, reason="Polytomic answered 409: running", attempt=attempt, first_at=T0
        )
        clock.now += delay_for(attempt, 1) if outcome.status == "deferred" else 0
        attempt += 1
        assert attempt < 20

    assert [delay for _, delay in queue.sent] == [1, 2, 4, 8, 16]
    assert outcome.status == "failed"
    assert not outcome.retryable  # parked: accounted for, so the message is not returned to the queue
    assert (
        outcome.reason
        == "Polytomic answered 409: running; still not started after 31 s of retries (limit 60 s): parked"
    )
    ((body, why),) = queue.parked
    assert why == outcome.reason
    assert (body["attempt"], body["first_at"]) == (6, T0)
    assert decode(body["action"]) == a


def test_a_deferral_exactly_at_the_maximum_age_still_waits() -> None:
    queue, clock = MemoryQueue(), Clock(T0 + 59)
    deferrals = Deferrals(queue, MemoryWindows(), max_age=60, first_delay=1, clock=clock)

    outcome = deferrals.defer(action(), since=T0, reason="running", attempt=1, first_at=T0)  # 59 + 1 = 60: not past it

    assert outcome.status == "deferred"
    assert queue.parked == []


def test_a_message_waiting_an_hour_is_parked_at_once() -> None:
    queue, clock = MemoryQueue(), Clock()
    deferrals = Deferrals(queue, MemoryWindows(), max_age=60, first_delay=1, clock=clock)

    outcome = deferrals.defer(action(), since=T0, reason="running", attempt=2, first_at=T0 - 3600)

    assert outcome.status == "failed"
    assert outcome.reason == "running; still not started after 3600 s of retries (limit 60 s): parked"
    assert queue.sent == []


# -- Deferrals.debounce --------------------------------------------------------------------------


def test_the_first_file_opens_a_window_the_next_join_it() -> None:
    queue, windows, clock = MemoryQueue(), MemoryWindows(), Clock()
    deferrals = Deferrals(queue, windows, max_age=21600, clock=clock)

    outcomes = []
    for n in range(5):
        outcomes.append(deferrals.debounce(action(f"orders/{n}.csv", sequencer=f"{n:02d}")))
        clock.now += 1

    assert [o.status for o in outcomes] == ["deferred"] + ["coalesced"] * 4
    ((body, delay),) = queue.sent
    assert delay == 60
    assert (body["kind"], body["generation"], body["opened_at"]) == ("window", 0, T0)
    assert windows.get(window_id(action())) == Window(window_id(action()), T0, T0 + 4, T0 + 300, 5)


def test_after_the_window_closes_the_next_file_opens_a_new_one() -> None:
    queue, windows, clock = MemoryQueue(), MemoryWindows(), Clock()
    deferrals = Deferrals(queue, windows, max_age=21600, clock=clock)
    deferrals.debounce(action("orders/a.csv"))
    assert windows.close(window_id(action()), T0) is not None
    clock.now += 100

    outcome = deferrals.debounce(action("orders/b.csv", sequencer="02"))

    assert outcome.status == "deferred"
    assert [body["opened_at"] for body, _ in queue.sent] == [T0, T0 + 100]
    assert queue.sent[0][0]["id"] != queue.sent[1][0]["id"]


def test_a_window_message_carries_the_opening_action() -> None:
    queue = MemoryQueue()
    deferrals = Deferrals(queue, MemoryWindows(), max_age=21600, clock=Clock())
    opener = action("orders/first.csv")

    deferrals.debounce(opener)

    assert decode(queue.sent[0][0]["action"]) == opener
    assert queue.sent[0][0]["window"] == window_id(opener)


def test_timestamps_survive_json_as_the_trigger_time() -> None:
    """Since and first_at are epoch floats; the trigger's time comes back to the microsecond."""
    moment = datetime(2026, 11, 23, 9, 15, 42, 318_123, tzinfo=UTC)
    a = Action(
        "r", "start", SyncTarget(id=SYNC), Trigger.s3(bucket="b", key="k", event="created", sequencer="", time=moment)
    )
    carried = decode(json.loads(json.dumps(encode(a))))
    assert carried.trigger.time == moment
    assert carried.trigger.time - moment == timedelta(0)


# -- the dispatcher's flush, where a window meets a running run ------------------------------------


class LateArrival(MemoryWindows):
    """A file lands (is absorbed) between the flush reading the window and closing it."""

    def __init__(self, clock: Clock, at: float) -> None:
        super().__init__()
        self.clock, self.at = clock, at

    def close(self, window_id: str, opened_at: float) -> Window | None:
        self.clock.now = self.at
        self.absorb(window_id, self.at)
        return super().close(window_id, opened_at)


class Busy:
    """A Polytomic client whose sync is always running."""

    def start(self, sync_type: str, sync_id: str, body: dict[str, Any], **_: Any) -> Any:
        from polytrigger.polytomic import AlreadyRunning

        raise AlreadyRunning("POST /api/syncs/x/executions: Polytomic answered 409: running", status=409)

    def executions(self, sync_type: str, sync_id: str, **_: Any) -> list[Any]:
        return []


class Once:
    def once_key(self, key: str, perform: Any) -> Any:
        return perform()


def test_a_flush_that_meets_a_running_run_defers_since_its_last_file_not_before_it() -> None:
    """Every file of the window must be covered: the deferred start needs a run created after the last one."""
    from polytrigger.dispatch import Dispatcher

    clock, queue, a = Clock(T0 + 60), MemoryQueue(), action(debounce=60)
    windows = LateArrival(clock, at=T0 + 60.5)
    windows.open(Window(window_id(a), T0, T0, T0 + 300, 1))
    deferrals = Deferrals(queue, windows, max_age=21600, first_delay=1, clock=clock)
    dispatcher = Dispatcher(Busy(), Once(), lambda *_: None, deferrals)  # type: ignore[arg-type]

    _, outcome = dispatcher.run_message(window_message(a, window_id(a), T0, 0))

    assert outcome.status == "deferred"
    ((body, _),) = queue.sent
    assert body["kind"] == "deferred"
    assert body["since"] >= T0 + 60.5  # a run created at T0 + 60.2 has not seen the file that landed at T0 + 60.5
