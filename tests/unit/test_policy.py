"""DispatchPolicy: what a 409 and a 429 mean for an action (decided once), and debouncing, under dedup."""

from __future__ import annotations

import pytest

from local.memory import MemoryDedup, MemoryQueue, MemoryWindows
from polytrigger.core.actions import ActionKind
from polytrigger.dispatch.calls import Calls
from polytrigger.dispatch.deferrals import Deferrals, coverage_since, window_id
from polytrigger.dispatch.messages import DeferredStart, WindowFlush
from polytrigger.dispatch.policy import DispatchPolicy
from tests.unit.dispatch_support import ATTEMPTS, DEADLINE, RUNNING, WHEN, Clock, Polytomic, act, landed

NOW = WHEN.timestamp() + 2  # the trigger was delivered two seconds after the file landed


def deferrals(queue: MemoryQueue, windows: MemoryWindows | None = None) -> Deferrals:
    return Deferrals(queue, windows or MemoryWindows(), max_age=21600, first_delay=30, clock=lambda: NOW)


def polytomic() -> Polytomic:
    """Polytomic, on a clock at NOW."""
    return Polytomic(Clock(NOW))


def policy(api: Polytomic, dedup: MemoryDedup, queue: MemoryQueue | None = None) -> DispatchPolicy:
    return DispatchPolicy(Calls(api.client, dedup, clock=lambda: NOW), deferrals(queue or MemoryQueue()))


# -- a run in progress (409) --------------------------------------------------------------------


def test_a_start_that_meets_a_run_in_progress_is_deferred() -> None:
    api, dedup, queue, action = polytomic(), MemoryDedup(), MemoryQueue(), act()
    api.busy()
    outcome = policy(api, dedup, queue).perform(action, DEADLINE)
    assert (outcome.status, outcome.retryable) == ("deferred", False)
    assert outcome.reason == f"{RUNNING}; retrying in 30 s"
    [(message, delay)] = queue.sent
    assert delay == 30
    assert isinstance(message, DeferredStart)
    # covered only by a run created after the file landed (the event's whole second stands for any
    # moment of it; a second more for Polytomic's clock); the wait counts from now
    assert message.since == coverage_since(WHEN, NOW) == WHEN.timestamp() + 2
    assert (message.action, message.attempt, message.first_at) == (action, 1, NOW)
    assert message.id != action.dedup_key  # a new Idempotency-Key: Polytomic would replay the 409 for the old one
    assert list(dedup.records) == [action.dedup_key]  # a redelivery does not defer it twice
    assert policy(api, dedup, queue).perform(action, DEADLINE).status == "duplicate"
    assert len(queue.sent) == 1
    assert api.started_ids == []


@pytest.mark.parametrize("kind", ["activate", "deactivate"])
def test_only_a_start_is_deferred(kind: ActionKind) -> None:
    """Polytomic does not document a 409 to an activation; were one to come, it is the final word."""
    api, queue = polytomic(), MemoryQueue()
    api.fake.inject(409, path_contains="/activate")
    outcome = policy(api, MemoryDedup(), queue).perform(act(kind), DEADLINE)
    assert (outcome.status, outcome.reason) == ("already_running", RUNNING)
    assert queue.sent == []


def test_a_fresh_attempt_after_a_server_error_that_meets_a_run_is_a_409_like_any_other() -> None:
    """After a 500 and a fresh key, a 409 is decided in the same place: the start is deferred."""
    api, queue, action = polytomic(), MemoryQueue(), act()
    api.busy()  # a run since before the trigger: it does not cover it
    api.fake.inject(500)
    outcome = policy(api, MemoryDedup(), queue).perform(action, DEADLINE)
    assert (outcome.status, outcome.retryable) == ("deferred", False)
    assert (outcome.reason or "").startswith(RUNNING)
    assert api.start_keys == [action.dedup_key, f"{action.dedup_key}-r1"]
    assert len(queue.sent) == 1


def test_a_start_that_cannot_be_deferred_is_retried_and_not_remembered() -> None:
    api, dedup, queue = polytomic(), MemoryDedup(), MemoryQueue()
    api.busy()
    queue.unavailable = "AWS.SimpleQueueService.NonExistentQueue"
    outcome = policy(api, dedup, queue).perform(act(), DEADLINE)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == (
        f"{RUNNING}; deferring it failed: AWS.SimpleQueueService.NonExistentQueue; the event will be retried"
    )
    assert dedup.records == {}


def test_a_start_polytomic_accepts_is_started_and_nothing_is_queued() -> None:
    api, queue = polytomic(), MemoryQueue()
    outcome = policy(api, MemoryDedup(), queue).perform(act(), DEADLINE)
    assert (outcome.status, outcome.execution_id) == ("started", api.started_id)
    assert [call.deadline for call in api.calls] == [DEADLINE]
    assert queue.sent == []


# -- debounce -----------------------------------------------------------------------------------


def test_a_debounced_start_opens_a_window_and_the_next_files_join_it_without_calling_polytomic() -> None:
    api, dedup, queue, windows = polytomic(), MemoryDedup(), MemoryQueue(), MemoryWindows()
    gatherer = DispatchPolicy(Calls(api.client, dedup), deferrals(queue, windows))
    files = [act(debounce=60, max_wait=300, trigger=landed(f"orders/{n}.csv", f"00{n}")) for n in range(3)]

    outcomes = [gatherer.perform(action, DEADLINE) for action in files]

    assert [o.status for o in outcomes] == ["deferred", "coalesced", "coalesced"]
    assert outcomes[0].reason == "debounced: one start in 60 s covers every file until then"
    assert api.calls == []
    assert api.fake.calls == []
    [(message, delay)] = queue.sent
    assert delay == 60
    assert isinstance(message, WindowFlush)
    assert (message.action, message.window) == (files[0], window_id(files[0]))
    assert list(dedup.records) == [action.dedup_key for action in files]  # each file is done once
    window = windows.get(window_id(files[0]))
    assert window is not None
    assert (window.count, window.deadline) == (3, NOW + 300)


def test_debounce_applies_to_starts_only() -> None:
    api, queue = polytomic(), MemoryQueue()
    outcome = policy(api, MemoryDedup(), queue).perform(act("activate", debounce=60), DEADLINE)
    assert outcome.status == "activated"
    assert (api.operations, queue.sent) == (["set_active"], [])


def test_a_window_that_cannot_be_opened_is_retried_and_not_remembered() -> None:
    api, dedup, queue = polytomic(), MemoryDedup(), MemoryQueue()
    queue.unavailable = "throttled"
    windows = MemoryWindows()
    outcome = DispatchPolicy(Calls(api.client, dedup), deferrals(queue, windows)).perform(act(debounce=60), DEADLINE)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == "debouncing failed: QueueUnavailable: throttled; the event will be retried"
    assert (dedup.records, windows.windows, api.calls) == ({}, {}, [])  # no window left without its message


# -- a 429 after the in-call retries ------------------------------------------------------------

THROTTLED = "Polytomic answered 429: too many requests"  # the fake's 429, with Retry-After: 45


def throttled(api: Polytomic) -> None:
    """Polytomic answers 429 with Retry-After: 45 to every attempt of the next call."""
    api.fake.inject(429, retry_after=45, times=ATTEMPTS)


def test_a_throttled_start_waits_on_the_dispatch_queue_at_least_as_long_as_polytomic_asked() -> None:
    """Found by bench-bursts: a start still throttled after its retries failed the invocation; Lambda
    retried it twice within minutes, into the same 429 storm, then parked it (and held a reserved
    concurrency slot while it slept on Retry-After)."""
    api, dedup, queue, action = polytomic(), MemoryDedup(), MemoryQueue(), act()
    throttled(api)
    outcome = policy(api, dedup, queue).perform(action, DEADLINE)
    assert api.pauses == [45]  # the client waited Retry-After once; the next would end past the deadline
    assert (outcome.status, outcome.retryable) == ("deferred", False)
    assert outcome.reason == f"{THROTTLED}; retrying in 45 s"
    [(message, delay)] = queue.sent
    assert delay == 45  # Retry-After, over the first 30 s delay
    assert isinstance(message, DeferredStart)
    assert message.since == coverage_since(WHEN, NOW)


@pytest.mark.parametrize("kind", ["activate", "deactivate"])
def test_a_throttled_activation_is_retried_by_aws_not_deferred(kind: ActionKind) -> None:
    api, dedup, queue = polytomic(), MemoryDedup(), MemoryQueue()
    throttled(api)
    outcome = policy(api, dedup, queue).perform(act(kind), DEADLINE)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert queue.sent == []
