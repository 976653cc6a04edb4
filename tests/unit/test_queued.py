"""DispatchPolicy.perform_message: what a message from the dispatch queue does, against the fake Polytomic in process
(with the real client) and the in-memory dedup table, windows and queue.

A deferred start is covered by a run since its trigger, started, deferred again, or parked; a window
flush waits for quiet, then starts once for every file it gathered, or defers past its last file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from local.memory import MemoryDedup, MemoryQueue, MemoryWindows
from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.outcomes import Outcome
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.calls import Calls
from polytrigger.dispatch.deferrals import SKEW_SECONDS, Deferrals, window_id
from polytrigger.dispatch.messages import DeferredStart, WindowFlush, deferred_start, window_flush
from polytrigger.dispatch.policy import DispatchPolicy
from polytrigger.dispatch.ports import Window, WindowsUnavailable
from tests.unit.dispatch_support import ATTEMPTS, COVERING, RUNNING, SYNC, Clock, LateArrival, Polytomic

OLDER = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
T0 = 1_795_000_000.0  # a fixed "now", epoch seconds
DEADLINE = T0 + 300  # the dispatcher invocation's: after every moment these tests reach


@dataclass
class World:
    api: Polytomic
    dedup: MemoryDedup
    queue: MemoryQueue
    windows: MemoryWindows
    clock: Clock
    deferrals: Deferrals
    policy: DispatchPolicy

    def perform(self, message: DeferredStart | WindowFlush) -> Outcome:
        outcome = self.policy.perform_message(message, DEADLINE)
        assert {(call.operation, call.deadline) for call in self.api.calls} <= {
            ("start", DEADLINE),
            ("executions", DEADLINE),
        }  # a queued message only starts (and looks for runs), never past the invocation's deadline
        return outcome


def world(
    windows: MemoryWindows | None = None, clock: Clock | None = None, *, max_age: float = 21600, first_delay: int = 30
) -> World:
    dedup, queue, clock = MemoryDedup(), MemoryQueue(), clock or Clock(T0)
    api = Polytomic(clock)
    windows = windows if windows is not None else MemoryWindows()
    deferrals = Deferrals(queue, windows, max_age=max_age, first_delay=first_delay, clock=clock, sleep=clock.sleep)
    return World(
        api, dedup, queue, windows, clock, deferrals, DispatchPolicy(Calls(api.client, dedup, clock), deferrals)
    )


def action(key: str = "orders/a.csv", *, sequencer: str = "01", **sync: Any) -> Action:
    trigger = Trigger.s3(
        bucket="acme-landing", key=key, event="created", sequencer=sequencer, time=datetime.fromtimestamp(T0 - 5, UTC)
    )
    return Action(
        route="orders", kind="start", sync=SyncTarget(id=SYNC, **sync), trigger=trigger, debounce=60, max_wait=300
    )


class Unreadable(MemoryWindows):
    def get(self, window_id: str) -> Window | None:
        raise WindowsUnavailable("ResourceNotFoundException")


# -- a deferred start ----------------------------------------------------------------------------


@pytest.mark.parametrize("after", [0.0, 0.001, 40.0])
def test_a_run_created_since_the_trigger_covers_a_deferred_start(after: float) -> None:
    w, a = world(), action()
    w.api.ran(OLDER, T0 - 600)
    w.api.ran(COVERING, T0 - 5 + after)
    message = deferred_start(a, since=T0 - 5, attempt=1, first_at=T0 - 30)

    outcome = w.perform(message)

    assert outcome == Outcome.of(a, "covered", execution_id=COVERING, reason="a run created since the trigger has it")
    assert w.api.started == []
    assert w.queue.sent == []
    assert w.queue.parked == []
    assert message.id in w.dedup.records  # done: a redelivery is a duplicate


def test_a_deferred_start_with_no_run_since_its_trigger_starts_under_its_message_id() -> None:
    w, a = world(), action(type="bulk", options=(("schemas", ("public.a",)),))
    w.api.knows(a)
    w.api.ran(OLDER, T0 - 5.001)  # a moment before the trigger: it did not see the file
    message = deferred_start(a, since=T0 - 5, attempt=2, first_at=T0 - 30)

    outcome = w.perform(message)

    assert outcome == Outcome.of(a, "started", execution_id=w.api.started_id)
    # a new Idempotency-Key, not the action's: Polytomic would replay the first 409 for that
    assert w.api.started == [(SYNC, {"schemas": ["public.a"]}, message.id)]
    assert w.api.operations.count("executions") == 1


def test_a_start_that_no_other_run_does_is_never_covered() -> None:
    """A resync (or test, full fetch, chosen identities) asks for what a plain run would not do."""
    w, a = world(), action(options=(("resync", True),))
    w.api.ran(COVERING, T0 + 10)
    message = deferred_start(a, since=T0 - 5, attempt=1, first_at=T0)

    outcome = w.perform(message)

    assert (outcome.status, outcome.execution_id) == ("started", w.api.started_id)
    assert w.api.operations.count("executions") == 0
    assert w.api.start_keys == [message.id]


@pytest.mark.parametrize(
    ("options", "coverable"),
    [
        ((), True),
        ((("fetch_mode", "incremental"),), True),
        ((("schemas", ("public.a",)),), True),
        ((("resync", False),), True),
        ((("resync", True),), False),
        ((("test", True),), False),
        ((("identities", ("a",)),), False),
        ((("resync_mode", "refetch"),), False),
        ((("fetch_mode", "full"),), False),
    ],
)
def test_only_a_plain_start_can_be_covered_by_another_run(options: tuple[Any, ...], coverable: bool) -> None:
    assert SyncTarget(id=SYNC, options=options).coverable is coverable


def test_a_deferred_start_that_meets_another_409_is_deferred_again_with_a_longer_wait() -> None:
    w, a = world(), action()
    w.api.busy(since=T0 - 600)  # since before the trigger: it does not cover the file
    message = deferred_start(a, since=T0 - 5, attempt=2, first_at=T0 - 90)

    outcome = w.perform(message)

    assert (outcome.status, outcome.reason) == ("deferred", f"{RUNNING}; retrying in 120 s")
    # the next attempt keeps what the trigger needs (since) and when the waiting began (first_at)
    assert w.queue.sent == [(deferred_start(a, since=T0 - 5, attempt=3, first_at=T0 - 90), 120)]
    assert w.api.start_keys == [message.id]


def test_a_deferred_start_waiting_too_long_is_parked() -> None:
    w, a = world(max_age=3600), action()
    w.api.busy(since=T0 - 9000)
    message = deferred_start(a, since=T0 - 7205, attempt=7, first_at=T0 - 7200)

    outcome = w.perform(message)

    assert outcome.status == "failed"
    assert not outcome.retryable  # accounted for in the dead-letter queue: the message is done
    assert outcome.reason == f"{RUNNING}; still not started after 7200 s of retries (limit 3600 s): parked"
    assert w.queue.parked == [(deferred_start(a, since=T0 - 7205, attempt=8, first_at=T0 - 7200), outcome.reason)]
    assert w.queue.sent == []


def test_a_parked_message_moved_back_gets_a_fresh_wait() -> None:
    """A person moved it back from the dead-letter queue: its age counts from now, its attempts go on."""
    w, a = world(max_age=3600), action()
    w.api.busy(since=T0 - 9000)
    parked = replace(
        deferred_start(a, since=T0 - 7205, attempt=7, first_at=T0 - 7200),
        parked_because=f"{RUNNING}; still not started after 3600 s of retries: parked",
    )

    outcome = w.perform(parked)

    assert (outcome.status, outcome.reason) == ("deferred", f"{RUNNING}; retrying in 900 s")
    assert w.queue.sent == [(deferred_start(a, since=T0 - 7205, attempt=8, first_at=T0), 900)]
    assert w.queue.parked == []


def test_a_parked_message_moved_back_can_still_be_covered() -> None:
    w, a = world(), action()
    w.api.ran(COVERING, T0 - 1)
    parked = replace(deferred_start(a, since=T0 - 5, attempt=9, first_at=T0 - 99_999), parked_because="parked")

    assert w.perform(parked).status == "covered"
    assert w.api.started == []


def test_a_redelivered_deferred_start_is_done_once() -> None:
    w, a = world(), action()
    message = deferred_start(a, since=T0 - 5, attempt=1, first_at=T0)

    first, again = w.perform(message), w.perform(message)

    assert first.status == "started"
    assert (again.status, again.execution_id) == ("duplicate", w.api.started_id)
    assert len(w.api.started) == 1


def test_a_409_whose_deferral_cannot_be_queued_is_retried_and_not_remembered() -> None:
    w, a = world(), action()
    w.api.busy(since=T0 - 600)
    w.queue.unavailable = "AWS.SimpleQueueService.NonExistentQueue"
    message = deferred_start(a, since=T0 - 5, attempt=1, first_at=T0)

    outcome = w.perform(message)

    assert outcome.status == "failed"
    assert outcome.retryable  # the message returns to the queue: the start is not lost
    assert outcome.reason == (
        f"{RUNNING}; deferring it failed: AWS.SimpleQueueService.NonExistentQueue; the event will be retried"
    )
    w.queue.unavailable = None
    assert w.perform(message).status == "deferred"  # the redelivery does it again
    assert len(w.queue.sent) == 1


@pytest.mark.parametrize(
    ("status", "answer", "retryable"),
    [
        (503, "Polytomic answered 503: unavailable", True),
        (404, "Polytomic answered 404: not found", False),
    ],
)
def test_a_deferred_start_that_cannot_look_for_a_covering_run_starts_nothing(
    status: int, answer: str, retryable: bool
) -> None:
    w, a = world(), action()
    w.api.fake.inject(status, method="GET", times=ATTEMPTS, response_body={"message": answer.split(": ")[1]})
    message = deferred_start(a, since=T0 - 5, attempt=1, first_at=T0)

    outcome = w.perform(message)

    assert (outcome.status, outcome.retryable, outcome.parked) == ("failed", retryable, not retryable)
    assert outcome.reason is not None
    assert outcome.reason.startswith(f"looking for a run since the trigger failed: {answer}")
    assert w.api.started == []
    assert message.id not in w.dedup.records
    # a retry cannot fix a 404: the message is parked with the reason before it is acknowledged
    assert [(parked.id, why.split(";")[0]) for parked, why in w.queue.parked] == (
        [] if retryable else [(message.id, outcome.reason.split(";")[0])]
    )


@pytest.mark.parametrize("message_kind", ["deferred", "window"])
def test_a_queued_start_polytomic_refuses_is_parked_with_the_reason(message_kind: str) -> None:
    """A 400/403/404/422 once became `failed` and the message was deleted, parked nowhere."""
    w, a = world(), action()
    w.api.fake.inject(422, method="POST", response_body={"message": "sync is misconfigured"})
    message: DeferredStart | WindowFlush = (
        deferred_start(a, since=T0 - 5, attempt=1, first_at=T0)
        if message_kind == "deferred"
        else window_flush(a, window_id(a), T0 - 400, 0)  # its window is gone: start anyway
    )

    outcome = w.perform(message)

    assert (outcome.status, outcome.retryable, outcome.parked) == ("failed", False, True)
    assert outcome.reason == "Polytomic answered 422: sync is misconfigured; parked in the dispatch dead-letter queue"
    assert w.queue.parked == [(message, "Polytomic answered 422: sync is misconfigured")]
    assert message.id not in w.dedup.records  # not remembered: once re-driven, it is tried again


def test_a_refused_start_that_cannot_be_parked_goes_back_to_the_queue() -> None:
    w, a = world(), action()
    w.api.fake.inject(404, method="POST", response_body={"message": "no such sync"})
    w.queue.unavailable = "AWS.SimpleQueueService.NonExistentQueue"

    outcome = w.perform(deferred_start(a, since=T0 - 5, attempt=1, first_at=T0))

    assert (outcome.status, outcome.retryable, outcome.parked) == ("failed", True, False)
    assert outcome.reason == (
        "Polytomic answered 404: no such sync; parking it failed: AWS.SimpleQueueService.NonExistentQueue;"
        " the event will be retried"
    )


# -- a window flush ------------------------------------------------------------------------------


def burst(w: World, files: int) -> WindowFlush:
    """`files` files land one second apart from T0: the window's first message, as the queue holds it."""
    for n in range(files):
        w.deferrals.debounce(action(f"orders/{n}.csv", sequencer=f"{n:02d}"))
        w.clock.now += 1
    ((message, delay),) = w.queue.sent
    assert isinstance(message, WindowFlush)
    assert delay == 60
    w.queue.sent.clear()
    return message


def test_a_window_still_receiving_files_waits_for_quiet_then_starts_once_for_all() -> None:
    w = world()
    first = burst(w, 3)  # the last file lands at T0 + 2
    w.clock.now = T0 + 60

    waiting = w.perform(first)

    assert (waiting.status, waiting.reason) == ("deferred", "files are still landing: start in 2 s")
    assert w.api.started == []
    ((second, delay),) = w.queue.sent
    assert (second, delay) == (window_flush(first.action, first.window, T0, 1), 2)
    w.clock.now = T0 + 62

    outcome = w.perform(second)  # a new message id: not a duplicate of the first

    assert outcome == Outcome.of(
        first.action, "started", execution_id=w.api.started_id, reason="one start for 3 trigger(s)"
    )
    assert w.api.start_keys == [second.id]
    assert w.windows.windows == {}


def test_a_quiet_window_starts_once_for_every_file_and_a_redelivery_is_a_duplicate() -> None:
    w = world()
    message = burst(w, 5)
    w.clock.now = T0 + 64

    outcome, again = w.perform(message), w.perform(message)

    assert outcome == Outcome.of(
        action("orders/0.csv", sequencer="00"),
        "started",
        execution_id=w.api.started_id,
        reason="one start for 5 trigger(s)",
    )
    assert again.status == "duplicate"
    assert w.api.started == [(SYNC, {}, message.id)]  # the message id is the Idempotency-Key
    assert w.windows.windows == {}
    assert w.queue.sent == []


def test_a_window_closed_by_an_attempt_whose_start_failed_still_starts() -> None:
    w = world()
    message = burst(w, 2)
    w.clock.now = T0 + 61
    w.api.fake.inject(503, method="POST", times=ATTEMPTS)  # every attempt of the client's call

    failed = w.perform(message)

    assert (failed.status, failed.retryable) == ("failed", True)
    assert w.windows.windows == {}  # it closed the window before it called Polytomic

    retried = w.perform(message)  # the redelivery finds the window closed: it starts anyway

    assert retried == Outcome.of(message.action, "started", execution_id=w.api.started_id)
    assert w.api.start_keys == [message.id, message.id]  # the same Idempotency-Key: Polytomic started at most once


def test_a_window_flush_that_meets_a_409_defers_since_its_last_file_not_before_it() -> None:
    """Every file of the window must be covered: the deferred start needs a run created after the last one."""
    clock = Clock(T0 + 60)
    a = action()
    w = world(LateArrival(clock, at=T0 + 60.5), clock)
    w.windows.open(Window(window_id(a), T0, T0, T0 + 300, 1))
    w.api.busy(since=T0 - 600)

    outcome = w.perform(window_flush(a, window_id(a), T0, 0))

    assert (outcome.status, outcome.reason) == ("deferred", f"{RUNNING}; retrying in 30 s")
    # since is the late file's arrival; the wait began when the flush read the clock
    ((deferred, delay),) = w.queue.sent
    since = T0 + 60.5 + SKEW_SECONDS  # and a margin for Polytomic's clock
    assert (deferred, delay) == (deferred_start(a, since=since, attempt=1, first_at=T0 + 60), 30)

    # a run dated T0 + 61.2 may have started before the file that landed at T0 + 60.5: it does not cover it
    w.api.idle()
    w.api.ran(OLDER, T0 + 61.2)
    assert isinstance(deferred, DeferredStart)
    assert w.perform(deferred).status == "started"


def test_a_window_flush_that_cannot_read_its_window_is_retried() -> None:
    w, a = world(Unreadable()), action()
    message = window_flush(a, window_id(a), T0, 0)

    outcome = w.perform(message)

    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == (
        "the debounce window cannot be read or closed: ResourceNotFoundException; the event will be retried"
    )
    assert w.api.started == []
    assert message.id not in w.dedup.records


def test_a_throttled_deferred_start_is_deferred_again_for_at_least_the_retry_after() -> None:
    """Found by bench-bursts: a 429 returned the message for the queue's whole visibility timeout (7 minutes)
    and used up one of its five receives; it now waits as long as Polytomic asked, as a 409 does."""
    w, a = world(first_delay=10), action()
    w.api.fake.inject(429, retry_after=45, method="POST", times=ATTEMPTS)
    message = deferred_start(a, since=T0 - 5, attempt=1, first_at=T0)

    outcome = w.perform(message)

    assert w.api.pauses == [45] * (ATTEMPTS - 1)  # the client waited Retry-After between its attempts
    assert (outcome.status, outcome.reason) == (
        "deferred",
        "Polytomic answered 429: too many requests; retrying in 45 s",
    )
    assert w.queue.sent == [(deferred_start(a, since=T0 - 5, attempt=2, first_at=T0), 45)]  # not the 20 s of attempt 2


@pytest.mark.parametrize("kind", ["deactivate", "activate"])
def test_a_chained_pause_or_activation_is_done_although_a_run_was_created_since_its_trigger(kind: str) -> None:
    """Coverage is a start's: a run since the ending does not pause (or activate) the sync for it."""
    w = world()
    ending = Trigger.polytomic(
        sync_id=OLDER, execution=COVERING, status="completed", time=datetime.fromtimestamp(T0 - 5, UTC)
    )
    chained = Action(route="freeze-after", kind=kind, sync=SyncTarget(id=SYNC), trigger=ending)  # type: ignore[arg-type]
    w.api.knows(chained)
    w.api.ran(COVERING, T0)  # a run of the chained sync created since the ending

    outcome = w.policy.perform_message(deferred_start(chained, since=T0 - 5, attempt=1, first_at=T0 - 5), DEADLINE)

    assert outcome.status == f"{kind}d"
    assert w.api.operations.count("executions") == 0
    assert [(call.operation, call.sync_id) for call in w.api.calls] == [("set_active", SYNC)]
