"""local.memory: the in-memory ports the unit tests and the burst simulation share behave as the adapters do.

The windows' conditional writes (one opener, one closer), the queue's trip through the wire format,
and the dedup table's remember-settled / forget-failed / busy-while-in-progress rules.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from local.memory import MemoryDedup, MemoryQueue, MemoryWindows, wire
from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.outcomes import Outcome
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferrals import window_id
from polytrigger.dispatch.messages import deferred_start, window_flush
from polytrigger.dispatch.ports import DedupBusy, DedupUnavailable, QueueUnavailable, Window

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
T0 = 1_795_000_000.0  # a fixed "now", epoch seconds
ACTION = Action(
    route="orders",
    kind="start",
    sync=SyncTarget(id=SYNC),
    trigger=Trigger.s3(
        bucket="acme-landing", key="orders/a.csv", event="created", sequencer="01", time=datetime.fromtimestamp(T0, UTC)
    ),
)


# -- MemoryWindows -------------------------------------------------------------------------------


def test_a_window_opens_once() -> None:
    windows = MemoryWindows()
    first = Window("w", T0, T0, T0 + 300, 1)

    assert windows.open(first)
    assert not windows.open(Window("w", T0 + 1, T0 + 1, T0 + 301, 1))  # the open one stays
    assert windows.get("w") == first
    assert windows.get("other") is None


def join(windows: MemoryWindows, wid: str, now: float, overdue_before: float = float("-inf")) -> Window | None:
    return windows.absorb(wid, now, debounce=60, overdue_before=overdue_before)


def test_absorbing_counts_the_arrival_and_moves_last_arrival_not_the_deadline() -> None:
    windows = MemoryWindows()
    windows.open(Window("w", T0, T0, T0 + 300, 1))

    assert join(windows, "w", T0 + 10) == Window("w", T0, T0 + 10, T0 + 300, 2)
    assert join(windows, "w", T0 + 20) == Window("w", T0, T0 + 20, T0 + 300, 3)

    assert windows.get("w") == Window("w", T0, T0 + 20, T0 + 300, 3)


def test_nothing_is_absorbed_into_a_missing_or_overdue_window() -> None:
    windows = MemoryWindows()
    assert join(windows, "w", T0) is None
    assert windows.get("w") is None  # absorbing does not open
    windows.open(Window("w", T0, T0, T0 + 300, 1))  # quiet since T0: its flush was due at T0 + 60

    assert join(windows, "w", T0 + 5000, overdue_before=T0 + 61) is None  # long overdue
    assert windows.get("w") == Window("w", T0, T0, T0 + 300, 1)  # untouched
    assert join(windows, "w", T0 + 5000, overdue_before=T0 + 60) is not None  # due exactly at the cut-off
    assert windows.get("w") == Window("w", T0, T0 + 5000, T0 + 300, 2)


def test_a_busy_window_is_due_at_its_deadline() -> None:
    windows = MemoryWindows()
    windows.open(Window("w", T0, T0 + 290, T0 + 300, 9))  # files until the end: due at its deadline

    assert join(windows, "w", T0 + 1000, overdue_before=T0 + 301) is None
    assert join(windows, "w", T0 + 1000, overdue_before=T0 + 300) is not None


def test_a_window_past_its_deadline_is_joined_when_no_overdue_cut_off_is_asked() -> None:
    windows = MemoryWindows()
    windows.open(Window("w", T0, T0, T0 + 300, 1))

    assert join(windows, "w", T0 + 10**6) is not None
    assert windows.get("w") == Window("w", T0, T0 + 10**6, T0 + 300, 2)


def test_a_window_is_confirmed_only_for_its_own_opening() -> None:
    windows = MemoryWindows()
    windows.open(Window("w", T0, T0, T0 + 300, 1))

    windows.confirm("w", T0 + 1)  # another window's opener
    assert windows.get("w") == Window("w", T0, T0, T0 + 300, 1, sent=False)
    windows.confirm("w", T0)
    windows.confirm("never", T0)
    assert windows.get("w") == Window("w", T0, T0, T0 + 300, 1, sent=True)
    assert join(windows, "w", T0 + 1) == Window("w", T0, T0 + 1, T0 + 300, 2, sent=True)  # absorbing keeps it


def test_a_window_is_closed_once_and_only_by_its_own_opening() -> None:
    windows = MemoryWindows()
    windows.open(Window("w", T0, T0, T0 + 300, 1))
    join(windows, "w", T0 + 3)

    assert windows.close("w", T0 + 1) is None  # another window's message
    assert windows.get("w") is not None
    closed = windows.close("w", T0)

    assert closed == Window("w", T0, T0 + 3, T0 + 300, 2)  # its last state
    assert windows.close("w", T0) is None  # the second close finds nothing
    assert windows.close("never", T0) is None
    assert windows.get("w") is None
    assert windows.open(Window("w", T0 + 10, T0 + 10, T0 + 310, 1))  # and a new window can open


def test_windows_are_independent() -> None:
    windows = MemoryWindows()
    assert windows.open(Window("a", T0, T0, T0 + 300, 1))
    assert windows.open(Window("b", T0 + 1, T0 + 1, T0 + 301, 1))

    join(windows, "a", T0 + 2)
    windows.close("b", T0 + 1)

    assert windows.windows == {"a": Window("a", T0, T0 + 2, T0 + 300, 2)}


# -- MemoryQueue ---------------------------------------------------------------------------------


def test_the_queue_keeps_what_was_sent_with_its_delay_in_order() -> None:
    queue = MemoryQueue()
    first = deferred_start(ACTION, since=T0, attempt=1, first_at=T0)
    second = window_flush(ACTION, window_id(ACTION), T0, 2)

    queue.send(first, 30)
    queue.send(second, 0)

    assert queue.sent == [(first, 30), (second, 0)]
    assert queue.parked == []


def test_the_queue_parks_a_message_with_why() -> None:
    queue = MemoryQueue()
    message = deferred_start(ACTION, since=T0, attempt=6, first_at=T0 - 3600)

    queue.park(message, "running; still not started after 3600 s of retries (limit 60 s): parked")

    assert queue.parked == [(message, "running; still not started after 3600 s of retries (limit 60 s): parked")]
    assert queue.sent == []


def test_the_queue_holds_messages_as_they_come_back_from_the_wire() -> None:
    """What is not carried (a route's activate_first) is not there when the dispatcher reads it."""
    carried = Action(ACTION.route, ACTION.kind, SyncTarget(id=SYNC, activate_first=True), ACTION.trigger)
    message = deferred_start(carried, since=T0, attempt=1, first_at=T0)
    queue = MemoryQueue()

    queue.send(message, 30)
    queue.park(message, "why")

    ((sent, _),) = queue.sent
    ((parked, _),) = queue.parked
    assert sent != message
    assert sent == parked == wire(message)
    assert sent.action.sync.activate_first is False
    assert sent.id == message.id
    assert sent.action.dedup_key == message.action.dedup_key


def test_an_unavailable_queue_takes_nothing() -> None:
    queue = MemoryQueue()
    queue.unavailable = "AWS.SimpleQueueService.NonExistentQueue"
    message = deferred_start(ACTION, since=T0, attempt=1, first_at=T0)

    with pytest.raises(QueueUnavailable, match=re.escape("AWS.SimpleQueueService.NonExistentQueue")):
        queue.send(message, 30)
    with pytest.raises(QueueUnavailable, match=re.escape("AWS.SimpleQueueService.NonExistentQueue")):
        queue.park(message, "why")

    assert queue.sent == []
    assert queue.parked == []


# -- MemoryDedup ---------------------------------------------------------------------------------


class Calls:
    """A perform callback that counts its calls and answers with a fixed outcome (or raises)."""

    def __init__(self, outcome: Outcome, error: Exception | None = None) -> None:
        self.outcome, self.error, self.count = outcome, error, 0

    def __call__(self) -> Outcome:
        self.count += 1
        if self.error is not None:
            raise self.error
        return self.outcome


STARTED = Outcome.of(ACTION, "started", execution_id="9b2e1c4d-5f6a-4b7c-8d9e-0f1a2b3c4d5e")
FAILED = Outcome.of(ACTION, "failed", reason="Polytomic answered 503; the event will be retried", retryable=True)


def test_a_settled_outcome_is_remembered_and_comes_back_as_a_duplicate() -> None:
    dedup, perform = MemoryDedup(), Calls(STARTED)

    first = dedup.once("k", perform)
    again = dedup.once("k", perform)

    assert first == STARTED
    assert again == Outcome.of(
        ACTION, "duplicate", execution_id=STARTED.execution_id, reason="already started for this trigger"
    )
    assert perform.count == 1
    assert dedup.seen == ["k", "k"]
    assert dedup.once("other", perform) == STARTED  # keys are independent
    assert perform.count == 2


def test_a_failed_outcome_is_returned_and_not_remembered() -> None:
    dedup, perform = MemoryDedup(), Calls(FAILED)

    assert dedup.once("k", perform) is FAILED
    assert dedup.once("k", perform).retryable  # done again: a retry can fix it
    assert perform.count == 2
    assert dedup.records == {}


def test_an_exception_propagates_and_is_not_remembered() -> None:
    dedup = MemoryDedup()

    with pytest.raises(ZeroDivisionError):
        dedup.once("k", Calls(STARTED, ZeroDivisionError("a bug")))

    assert dedup.once("k", Calls(STARTED)) == STARTED  # neither remembered nor stuck in progress


def test_a_key_whose_first_call_has_not_finished_is_busy() -> None:
    dedup = MemoryDedup()
    inner: list[Exception] = []

    def perform() -> Outcome:
        try:
            dedup.once("k", Calls(STARTED))
        except DedupBusy as busy:
            inner.append(busy)
        return STARTED

    assert dedup.once("k", perform) == STARTED
    assert [error.args for error in inner] == [("k",)]  # the inner call was refused, not performed


def test_an_unavailable_table_calls_nothing() -> None:
    dedup, perform = MemoryDedup(), Calls(STARTED)
    dedup.unavailable = "ResourceNotFoundException"

    with pytest.raises(DedupUnavailable, match="ResourceNotFoundException"):
        dedup.once("k", perform)
    with pytest.raises(DedupUnavailable, match="ResourceNotFoundException"):
        dedup.next_attempt("k")

    assert perform.count == 0
    assert dedup.seen == ["k"]


def test_fresh_attempts_are_counted_per_key() -> None:
    dedup = MemoryDedup()
    counted = [dedup.next_attempt(key) for key in ("a", "a", "b", "a")]
    assert counted == [1, 2, 1, 3]
