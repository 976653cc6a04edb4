"""dispatch.deferred without AWS: delays, window ids, deferring and parking starts, debounce windows and
their flush, against the in-memory queue and windows and a fake clock."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.memory import MemoryQueue, MemoryWindows
from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferrals import (
    CONFIRM_POLL_SECONDS,
    FIRST_DELAY_SECONDS,
    OVERDUE_WINDOW_SECONDS,
    SKEW_SECONDS,
    UNCONFIRMED_WINDOW_SECONDS,
    Deferrals,
    Ready,
    coverage_since,
    delay_for,
    flush_delay,
    message_refusal,
    window_id,
)
from polytrigger.dispatch.messages import WINDOW_PREFIX, DeferredStart, WindowFlush, deferred_start, window_flush
from polytrigger.dispatch.ports import MAX_DELAY_SECONDS, RetryLater, Window, WindowsUnavailable
from tests.unit.dispatch_support import Clock, LateArrival

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
BULK = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
T0 = 1_795_000_000.0  # a fixed "now", epoch seconds


class BrokenWindows(MemoryWindows):
    """The window store, unreachable from the first call on `failing`."""

    def __init__(self, *failing: str) -> None:
        super().__init__()
        self.failing = set(failing)

    def _check(self, call: str) -> None:
        if call in self.failing:
            raise WindowsUnavailable(f"{call}: ProvisionedThroughputExceededException")

    def open(self, window: Window) -> bool:
        self._check("open")
        return super().open(window)

    def absorb(self, window_id: str, now: float, *, debounce: int, overdue_before: float) -> Window | None:
        self._check("absorb")
        return super().absorb(window_id, now, debounce=debounce, overdue_before=overdue_before)

    def confirm(self, window_id: str, opened_at: float) -> None:
        self._check("confirm")
        super().confirm(window_id, opened_at)

    def get(self, window_id: str) -> Window | None:
        self._check("get")
        return super().get(window_id)

    def close(self, window_id: str, opened_at: float) -> Window | None:
        self._check("close")
        return super().close(window_id, opened_at)


class Flapping(MemoryWindows):
    """Another writer closes the window after every open attempt fails and before every absorb."""

    def open(self, window: Window) -> bool:
        return False

    def absorb(self, window_id: str, now: float, *, debounce: int, overdue_before: float) -> Window | None:
        return None


def exactly(text: str) -> str:
    """A `match=` pattern for exactly this message."""
    return f"^{re.escape(text)}$"


def starting(text: str) -> str:
    """A `match=` pattern for a message that starts with this."""
    return f"^{re.escape(text)}"


def action(key: str = "orders/a.csv", *, debounce: int = 60, max_wait: int = 300, sequencer: str = "01") -> Action:
    trigger = Trigger.s3(
        bucket="acme-landing", key=key, event="created", sequencer=sequencer, time=datetime.fromtimestamp(T0 - 5, UTC)
    )
    return Action(
        route="orders", kind="start", sync=SyncTarget(id=SYNC), trigger=trigger, debounce=debounce, max_wait=max_wait
    )


def deferrals(
    queue: MemoryQueue | None = None,
    windows: MemoryWindows | None = None,
    clock: Clock | None = None,
    *,
    max_age: float = 21600,
    first_delay: int = 30,
) -> Deferrals:
    clock = clock if clock is not None else Clock(T0)
    return Deferrals(
        queue if queue is not None else MemoryQueue(),
        windows if windows is not None else MemoryWindows(),
        max_age=max_age,
        first_delay=first_delay,
        clock=clock,
        sleep=clock.sleep,
    )


def deferred(queue: MemoryQueue) -> list[DeferredStart]:
    sent = [message for message, _ in queue.sent]
    assert all(isinstance(message, DeferredStart) for message in sent)
    return [message for message in sent if isinstance(message, DeferredStart)]


def flushes(queue: MemoryQueue) -> list[WindowFlush]:
    sent = [message for message, _ in queue.sent]
    assert all(isinstance(message, WindowFlush) for message in sent)
    return [message for message in sent if isinstance(message, WindowFlush)]


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


# -- window_id -----------------------------------------------------------------------------------


def test_window_ids_are_per_action_sync_and_options_not_per_file_or_route() -> None:
    a, b = action("orders/a.csv"), action("orders/b.csv", sequencer="02")
    assert window_id(a) == window_id(b)
    assert window_id(a) == window_id(Action("other-route", "start", a.sync, b.trigger))
    assert window_id(a) != window_id(Action("orders", "start", SyncTarget(id=BULK), a.trigger))
    assert window_id(a) != window_id(Action("orders", "start", SyncTarget(id=SYNC, type="bulk"), a.trigger))
    assert window_id(a) != window_id(Action("orders", "activate", a.sync, a.trigger))
    resync = Action("orders", "start", SyncTarget(id=SYNC, options=(("resync", True),)), a.trigger)
    assert window_id(a) != window_id(resync)  # a resync is not absorbed into a plain start's window
    assert window_id(a).startswith(WINDOW_PREFIX)
    assert WINDOW_PREFIX == "polytrigger#window#"


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


# -- Deferrals.defer -----------------------------------------------------------------------------


def test_a_first_deferral_waits_the_first_delay() -> None:
    queue = MemoryQueue()
    a = action()

    outcome = deferrals(queue).defer(a, since=a.trigger.time.timestamp(), reason="Polytomic answered 409: running")

    assert (outcome.status, outcome.reason) == ("deferred", "Polytomic answered 409: running; retrying in 30 s")
    assert not outcome.retryable
    # the first deferral began waiting now: first_at is the clock's time
    assert queue.sent == [(deferred_start(a, since=a.trigger.time.timestamp(), attempt=1, first_at=T0), 30)]
    assert queue.parked == []


def test_each_attempt_is_a_new_message_with_a_longer_delay() -> None:
    queue, clock = MemoryQueue(), Clock(T0)
    d = deferrals(queue, clock=clock)
    a = action()
    for attempt in range(1, 5):
        d.defer(a, since=T0 - 5, reason="running", attempt=attempt, first_at=T0)
        clock.now += delay_for(attempt, 30)

    assert [delay for _, delay in queue.sent] == [30, 60, 120, 240]
    assert [message.attempt for message in deferred(queue)] == [1, 2, 3, 4]
    assert len({message.id for message in deferred(queue)}) == 4
    assert {(message.first_at, message.since) for message in deferred(queue)} == {(T0, T0 - 5)}


def test_a_deferral_that_would_wait_past_the_maximum_age_is_parked_with_the_reason() -> None:
    queue, clock = MemoryQueue(), Clock(T0)
    d = deferrals(queue, clock=clock, max_age=60, first_delay=1)
    a = action()
    attempt = 1
    while not queue.parked:  # 1 + 2 + 4 + 8 + 16 + 32 s: the sixth wait would end past 60 s
        outcome = d.defer(a, since=T0 - 5, reason="Polytomic answered 409: running", attempt=attempt, first_at=T0)
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
    assert queue.parked == [(deferred_start(a, since=T0 - 5, attempt=6, first_at=T0), outcome.reason)]


def test_a_deferral_exactly_at_the_maximum_age_still_waits() -> None:
    queue = MemoryQueue()
    d = deferrals(queue, clock=Clock(T0 + 59), max_age=60, first_delay=1)

    outcome = d.defer(action(), since=T0, reason="running", attempt=1, first_at=T0)  # 59 + 1 = 60: not past it

    assert outcome.status == "deferred"
    assert queue.parked == []


def test_a_message_waiting_an_hour_is_parked_at_once() -> None:
    queue = MemoryQueue()
    d = deferrals(queue, max_age=60, first_delay=1)

    outcome = d.defer(action(), since=T0, reason="running", attempt=2, first_at=T0 - 3600)

    assert outcome.status == "failed"
    assert outcome.reason == "running; still not started after 3600 s of retries (limit 60 s): parked"
    assert queue.sent == []
    assert len(queue.parked) == 1


def test_a_deferral_the_queue_cannot_take_is_retried_later() -> None:
    queue = MemoryQueue()
    queue.unavailable = "AWS.SimpleQueueService.NonExistentQueue"

    with pytest.raises(RetryLater) as raised:
        deferrals(queue).defer(action(), since=T0, reason="Polytomic answered 409: running")

    assert str(raised.value) == (
        "Polytomic answered 409: running; deferring it failed: AWS.SimpleQueueService.NonExistentQueue"
    )


def test_a_start_that_cannot_be_parked_is_retried_later() -> None:
    queue = MemoryQueue()
    queue.unavailable = "DISPATCH_DEAD_LETTER_QUEUE_URL is not set: cannot park a deferred start"
    d = deferrals(queue, max_age=60)

    with pytest.raises(
        RetryLater, match=starting("running; deferring it failed: DISPATCH_DEAD_LETTER_QUEUE_URL is not set")
    ):
        d.defer(action(), since=T0, reason="running", attempt=9, first_at=T0 - 3600)


# -- Deferrals.debounce --------------------------------------------------------------------------


def test_the_first_file_opens_a_window_the_next_join_it() -> None:
    queue, windows, clock = MemoryQueue(), MemoryWindows(), Clock(T0)
    d = deferrals(queue, windows, clock)

    outcomes = []
    for n in range(5):
        outcomes.append(d.debounce(action(f"orders/{n}.csv", sequencer=f"{n:02d}")))
        clock.now += 1

    assert [o.status for o in outcomes] == ["deferred"] + ["coalesced"] * 4
    assert outcomes[0].reason == "debounced: one start in 60 s covers every file until then"
    assert outcomes[1].reason == "absorbed into the open debounce window"
    wid = window_id(action())
    assert queue.sent == [(window_flush(action("orders/0.csv", sequencer="00"), wid, T0, 0), 60)]
    assert windows.get(wid) == Window(wid, T0, T0 + 4, T0 + 300, 5, sent=True)  # the opener confirmed its message


def test_after_the_window_closes_the_next_file_opens_a_new_one() -> None:
    queue, windows, clock = MemoryQueue(), MemoryWindows(), Clock(T0)
    d = deferrals(queue, windows, clock)
    d.debounce(action("orders/a.csv"))
    assert windows.close(window_id(action()), T0) is not None
    clock.now += 100

    outcome = d.debounce(action("orders/b.csv", sequencer="02"))

    assert outcome.status == "deferred"
    first, second = flushes(queue)
    assert (first.opened_at, second.opened_at) == (T0, T0 + 100)
    assert first.id != second.id


def test_a_window_message_carries_the_opening_action() -> None:
    queue = MemoryQueue()
    opener = action("orders/first.csv")

    deferrals(queue).debounce(opener)

    (flush,) = flushes(queue)
    assert flush.action == opener
    assert (flush.window, flush.generation) == (window_id(opener), 0)


def test_a_live_window_is_joined() -> None:
    windows, queue = MemoryWindows(), MemoryQueue()
    d = deferrals(queue, windows)

    first = d.debounce(action("orders/a.csv"))
    second = d.debounce(action("orders/b.csv", sequencer="02"))

    assert (first.status, second.status) == ("deferred", "coalesced")
    assert len(queue.sent) == 1
    window_ = windows.get(window_id(action()))
    assert window_ is not None
    assert window_.count == 2


def test_a_resync_is_not_absorbed_into_a_plain_window() -> None:
    windows, queue = MemoryWindows(), MemoryQueue()
    d = deferrals(queue, windows)
    plain = action()
    resync = Action("nightly", "start", SyncTarget(id=SYNC, options=(("resync", True),)), plain.trigger, 60, 300)

    outcomes = [d.debounce(plain), d.debounce(resync)]

    assert [o.status for o in outcomes] == ["deferred", "deferred"]  # each opened its own window
    assert {flush.window for flush in flushes(queue)} == {window_id(plain), window_id(resync)}
    assert len(windows.windows) == 2


def test_a_window_whose_message_could_not_be_queued_is_closed_again() -> None:
    windows, queue = MemoryWindows(), MemoryQueue()
    queue.unavailable = "queue unreachable"

    with pytest.raises(RetryLater) as raised:
        deferrals(queue, windows).debounce(action())

    assert str(raised.value) == "debouncing failed: QueueUnavailable: queue unreachable"
    assert windows.windows == {}  # the retry of this trigger will open a window, not join a dead one


@pytest.mark.parametrize("failing", ["open", "absorb", "get"])
def test_a_window_store_that_cannot_be_used_is_retried_later(failing: str) -> None:
    windows, queue, wid = BrokenWindows(failing), MemoryQueue(), window_id(action())
    if failing == "absorb":  # a live window is open: the file must join it
        windows.windows[wid] = Window(wid, T0, T0, T0 + 300, 1)
    if failing == "get":  # an overdue window is open: the file must look at it before replacing it
        windows.windows[wid] = Window(wid, T0, T0, T0 - 2 * OVERDUE_WINDOW_SECONDS, 1)

    with pytest.raises(RetryLater, match=starting(f"debouncing failed: WindowsUnavailable: {failing}: Provisioned")):
        deferrals(queue, windows).debounce(action())

    assert queue.sent == []


def test_an_overdue_window_is_replaced_not_joined() -> None:
    """A file ~58 min after the deadline was once still absorbed into a window with no message."""
    windows, queue = MemoryWindows(), MemoryQueue()
    wid = window_id(action())
    due = T0 - OVERDUE_WINDOW_SECONDS - 1  # quiet since `due - 60`: its flush was due at `due`; nothing came
    windows.open(Window(wid, due - 120, due - 60, due + 180, 7, sent=True))

    outcome = deferrals(queue, windows).debounce(action("orders/b.csv", sequencer="02"))

    assert outcome.status == "deferred"
    assert windows.get(wid) == Window(wid, T0, T0, T0 + 300, 1, sent=True)
    assert [(flush.opened_at, flush.generation) for flush in flushes(queue)] == [(T0, 0)]
    assert [delay for _, delay in queue.sent] == [60]


@pytest.mark.parametrize(
    ("last", "deadline"),
    [
        (T0 - OVERDUE_WINDOW_SECONDS - 60, T0 + 1000),  # quiet for long: its flush was due at last + 60
        (T0 - 10, T0 - OVERDUE_WINDOW_SECONDS),  # still busy, but its deadline is exactly the cut-off
    ],
)
def test_a_window_due_exactly_at_the_cut_off_is_still_joined(last: float, deadline: float) -> None:
    windows, queue = MemoryWindows(), MemoryQueue()
    wid = window_id(action())
    windows.open(Window(wid, last - 100, last, deadline, 7, sent=True))

    outcome = deferrals(queue, windows).debounce(action("orders/b.csv", sequencer="02"))

    assert outcome.status == "coalesced"
    assert windows.get(wid) == Window(wid, last - 100, T0, deadline, 8, sent=True)
    assert queue.sent == []


def test_an_unconfirmed_window_gets_its_message_sent_again_by_the_next_file() -> None:
    """The opener died between opening the window and sending its message; the retry (or the next
    file) once answered `coalesced` with nothing queued, and the files were never started."""
    windows, queue, opener = MemoryWindows(), MemoryQueue(), action("orders/a.csv")
    wid = window_id(opener)
    opened_at = T0 - UNCONFIRMED_WINDOW_SECONDS
    windows.open(Window(wid, opened_at, opened_at, opened_at + 300, 1))  # opened, never confirmed

    outcome = deferrals(queue, windows).debounce(action("orders/b.csv", sequencer="02"))

    assert outcome.status == "coalesced"
    assert outcome.reason == ("absorbed into the open debounce window, whose message was not confirmed: sent it again")
    # the window's own first message (same id as the opener's would have been), due when it would have been
    assert [(f.id, f.window, f.opened_at, f.generation) for f in flushes(queue)] == [
        (window_flush(opener, wid, opened_at, 0).id, wid, opened_at, 0)
    ]
    assert [delay for _, delay in queue.sent] == [60 - UNCONFIRMED_WINDOW_SECONDS]
    window_ = windows.get(wid)
    assert window_ is not None
    assert (window_.sent, window_.count) == (True, 2)
    # confirmed now: the next file just joins
    assert deferrals(queue, windows).debounce(action("orders/c.csv", sequencer="03")).reason == (
        "absorbed into the open debounce window"
    )
    assert len(queue.sent) == 1


class ConfirmedWhileWaiting(MemoryWindows):
    """The opener confirms its message while a joining file polls the window."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock, self.polls = clock, 0

    def get(self, window_id: str) -> Window | None:
        self.polls += 1
        window = super().get(window_id)
        if window is not None and self.polls == 2:
            self.confirm(window_id, window.opened_at)
        return super().get(window_id)


def test_a_file_joining_a_window_its_opener_is_still_confirming_waits_for_it_then_sends_nothing() -> None:
    clock = Clock(T0)
    windows, queue = ConfirmedWhileWaiting(clock), MemoryQueue()
    wid = window_id(action())
    windows.open(Window(wid, T0, T0, T0 + 300, 1))  # opened just now; its message goes out meanwhile

    outcome = deferrals(queue, windows, clock).debounce(action("orders/b.csv", sequencer="02"))

    assert outcome.reason == "absorbed into the open debounce window"
    assert queue.sent == []
    assert windows.polls == 2
    assert clock.now == T0 + 2 * CONFIRM_POLL_SECONDS  # it waited only until the confirmation


def test_a_quick_retry_of_an_opener_whose_send_and_close_failed_sends_the_message() -> None:
    """The opener's send failed and so did its close; its retry came at once: it found its own window
    unconfirmed and answered `coalesced` with nothing queued (found again by make reliability)."""
    clock = Clock(T0)
    windows, queue = MemoryWindows(), MemoryQueue()
    wid = window_id(action())
    windows.open(Window(wid, T0 - 0.5, T0 - 0.5, T0 + 299.5, 1))  # the failed opener's, half a second ago

    outcome = deferrals(queue, windows, clock).debounce(action())

    assert outcome.reason == "absorbed into the open debounce window, whose message was not confirmed: sent it again"
    assert [(flush.window, flush.generation) for flush in flushes(queue)] == [(wid, 0)]
    assert clock.now >= T0 - 0.5 + UNCONFIRMED_WINDOW_SECONDS  # it gave the opener its time first


def test_a_window_that_closes_while_a_file_waits_for_its_confirmation_has_covered_the_file() -> None:
    clock = Clock(T0)
    windows, queue = MemoryWindows(), MemoryQueue()
    wid = window_id(action())
    windows.open(Window(wid, T0, T0, T0 + 300, 1))
    d = deferrals(queue, windows, clock)

    def closed_meanwhile(seconds: float) -> None:  # flushed, or closed by its failed opener
        windows.windows.pop(wid, None)

    d.sleep = closed_meanwhile

    outcome = d.debounce(action("orders/b.csv", sequencer="02"))

    assert outcome.reason == "absorbed into the debounce window, since closed"
    assert queue.sent == []


def test_a_window_whose_confirmation_fails_still_defers_and_is_repaired_by_a_later_file() -> None:
    windows, queue, clock = BrokenWindows("confirm"), MemoryQueue(), Clock(T0)
    d = deferrals(queue, windows, clock)

    assert d.debounce(action("orders/a.csv")).status == "deferred"  # its message is on the queue
    clock.now += UNCONFIRMED_WINDOW_SECONDS
    windows.failing.clear()
    assert d.debounce(action("orders/b.csv", sequencer="02")).status == "coalesced"

    first, again = flushes(queue)
    assert first.id == again.id  # the same message twice: the dispatcher does it once


def test_a_window_that_keeps_opening_and_closing_is_retried_later() -> None:
    queue = MemoryQueue()
    with pytest.raises(RetryLater, match=exactly("debouncing failed: the debounce window kept opening and closing")):
        deferrals(queue, Flapping()).debounce(action())
    assert queue.sent == []


# -- Deferrals.flush -----------------------------------------------------------------------------


def opened(windows: MemoryWindows, a: Action, *, last: float = T0, count: int = 1) -> WindowFlush:
    """A window opened at T0 (last file at `last`) and its first message."""
    windows.open(Window(window_id(a), T0, last, T0 + a.max_wait, count))
    return window_flush(a, window_id(a), T0, 0)


def test_a_quiet_window_is_closed_and_ready_for_every_file_it_gathered() -> None:
    windows, queue, a = MemoryWindows(), MemoryQueue(), action(debounce=60)
    message = opened(windows, a, last=T0 + 20, count=4)

    ready = deferrals(queue, windows, Clock(T0 + 80)).flush(message)

    assert ready == Ready(arrivals=4, since=T0 + 80 + SKEW_SECONDS, now=T0 + 80)
    assert windows.windows == {}  # closed: the next file opens a new window
    assert queue.sent == []


def test_a_window_still_receiving_files_waits_for_quiet_with_its_next_message() -> None:
    windows, queue, a = MemoryWindows(), MemoryQueue(), action(debounce=60)
    message = opened(windows, a, last=T0 + 50, count=3)

    outcome = deferrals(queue, windows, Clock(T0 + 60)).flush(message)

    assert not isinstance(outcome, Ready)
    assert (outcome.status, outcome.reason) == ("deferred", "files are still landing: start in 50 s")
    assert queue.sent == [(window_flush(a, window_id(a), T0, 1), 50)]  # the next generation: a new message id
    assert windows.get(window_id(a)) == Window(window_id(a), T0, T0 + 50, T0 + 300, 3)  # still open


def replace_generation(message: WindowFlush, generation: int) -> WindowFlush:
    return window_flush(message.action, message.window, message.opened_at, generation)


def test_a_window_at_its_deadline_is_ready_however_busy() -> None:
    windows, queue, a = MemoryWindows(), MemoryQueue(), action(debounce=60, max_wait=300)
    message = replace_generation(opened(windows, a, last=T0 + 299, count=40), 5)

    ready = deferrals(queue, windows, Clock(T0 + 300)).flush(message)

    assert ready == Ready(40, T0 + 300 + SKEW_SECONDS, T0 + 300)
    assert queue.sent == []


def test_a_file_that_lands_while_the_window_closes_moves_since_past_it() -> None:
    """Every file of the window must be covered: only a run created after the last one covers them all."""
    clock, a = Clock(T0 + 60), action(debounce=60)
    windows = LateArrival(clock, at=T0 + 60.5)
    message = opened(windows, a)

    ready = deferrals(MemoryQueue(), windows, clock).flush(message)

    assert ready == Ready(arrivals=2, since=T0 + 60.5 + SKEW_SECONDS, now=T0 + 60)


def test_a_window_already_closed_is_ready_with_no_arrivals() -> None:
    """An earlier attempt of this message closed it, and its start failed: start anyway."""
    windows, a = MemoryWindows(), action()
    message = window_flush(a, window_id(a), T0, 2)

    assert deferrals(MemoryQueue(), windows, Clock(T0 + 90)).flush(message) == Ready(0, T0 + 90 + SKEW_SECONDS, T0 + 90)


def test_a_message_of_an_earlier_window_leaves_the_newer_one_open() -> None:
    windows, a = MemoryWindows(), action()
    newer = Window(window_id(a), T0 + 100, T0 + 100, T0 + 400, 1)
    windows.open(newer)
    message = window_flush(a, window_id(a), T0, 0)  # redelivered after its window was closed and another opened

    ready = deferrals(MemoryQueue(), windows, Clock(T0 + 110)).flush(message)

    assert ready == Ready(0, T0 + 110 + SKEW_SECONDS, T0 + 110)
    assert windows.get(window_id(a)) == newer  # the newer window keeps its files and its own message


def test_a_flush_that_cannot_read_the_window_is_retried_later() -> None:
    windows, a = BrokenWindows("get"), action()

    with pytest.raises(RetryLater, match=starting("the debounce window cannot be read or closed: get: Provisioned")):
        deferrals(MemoryQueue(), windows).flush(window_flush(a, window_id(a), T0, 0))


def test_a_flush_that_cannot_close_the_window_is_retried_later_and_leaves_it_open() -> None:
    windows, a = BrokenWindows("close"), action(debounce=60)
    message = opened(windows, a)

    with pytest.raises(RetryLater, match=starting("the debounce window cannot be read or closed: close: Provisioned")):
        deferrals(MemoryQueue(), windows, Clock(T0 + 60)).flush(message)

    assert window_id(a) in windows.windows


def test_a_flush_that_cannot_queue_its_next_message_is_retried_later_and_leaves_the_window_open() -> None:
    windows, queue, a = MemoryWindows(), MemoryQueue(), action(debounce=60)
    message = opened(windows, a, last=T0 + 50)
    queue.unavailable = "ThrottlingException"

    with pytest.raises(RetryLater, match=exactly("the dispatch queue cannot be used: ThrottlingException")):
        deferrals(queue, windows, Clock(T0 + 60)).flush(message)

    assert window_id(a) in windows.windows  # the redelivered message flushes it


def test_send_queues_a_message_or_asks_for_a_retry() -> None:
    queue, a = MemoryQueue(), action()
    message = window_flush(a, window_id(a), T0, 3)
    d = deferrals(queue)

    d.send(message, 12)
    queue.unavailable = "AccessDenied"
    with pytest.raises(RetryLater, match=exactly("the dispatch queue cannot be used: AccessDenied")):
        d.send(message, 12)

    assert queue.sent == [(message, 12)]


# -- coverage_since --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "received", "since"),
    [
        # a whole second stands for all of it: landed by its end
        ("2026-11-23T10:00:05Z", 1795428010.5, 1795428006.0 + SKEW_SECONDS),
        # ... or by the time we received it, if that was earlier
        ("2026-11-23T10:00:05Z", 1795428005.4, 1795428005.4 + SKEW_SECONDS),
        ("2026-11-23T10:00:05.250Z", 1795428010.5, 1795428005.25 + SKEW_SECONDS),  # a precise time is kept
    ],
)
def test_coverage_starts_after_the_trigger_and_its_receipt_with_a_margin(
    trigger: str, received: float, since: float
) -> None:
    """EventBridge's whole-second time once let a run created up to ~1 s before the file count."""
    moment = datetime.fromisoformat(trigger)
    assert coverage_since(moment, received) == since


def test_a_window_message_must_be_one_its_action_could_have_written() -> None:
    """Found by `make reliability`: a forged window message for a route that does not debounce (its window
    item absent, so the flush starts at once) was performed: the routes make that action."""
    debounced, plain = action(debounce=60), action(debounce=0)
    assert message_refusal(window_flush(debounced, window_id(debounced), T0, 0)) is None
    assert message_refusal(deferred_start(plain, since=T0, attempt=1, first_at=T0)) is None
    assert message_refusal(window_flush(plain, window_id(plain), T0, 0)) == (
        "a window message for an action that does not debounce"
    )
    other = replace(debounced, sync=SyncTarget(id=BULK))
    assert message_refusal(window_flush(debounced, window_id(other), T0, 0)) == (
        "a window message naming another action's window"
    )
