"""Calls: one action's Polytomic call under its key. The verdict table, from client errors to
outcomes; recovery from a 500 (a start looks for a run since its bound, then tries a fresh key; an
activation sets it again under a fresh key); and the dedup boundary (`DispatchPolicy.once`), with a
stub client and the in-memory dedup table.

Tests for review findings carry a docstring line "Review finding N: ..." (`grep -n "Review finding"`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from local.memory import MemoryDedup, MemoryQueue, MemoryWindows
from polytrigger.core.actions import Action, ActionKind
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.calls import FAILURES, REQUEST_SECONDS, VERDICTS, Calls, Running, Throttle, Verdict, verdict
from polytrigger.dispatch.deferrals import Deferrals, coverage_since
from polytrigger.dispatch.policy import DispatchPolicy
from polytrigger.dispatch.ports import DedupUnavailable, Refused, RetryLater
from polytrigger.polytomic.contract import (
    AlreadyRunning,
    CredentialsError,
    Execution,
    KeyInFlight,
    PolytomicError,
    Rejected,
    ServerError,
    Throttled,
    Transient,
    Unauthorized,
    UnreadableAnswer,
)
from tests.unit.dispatch_stubs import (
    COVERING,
    DEADLINE,
    EXECUTION,
    OTHER,
    SYNC,
    WHEN,
    Call,
    Clock,
    StubClient,
    act,
)

SERVER_ERROR = ServerError("POST /api/syncs/x/executions: Polytomic answered 500: internal error", status=500)
SET_ERROR = ServerError("POST /api/syncs/x/activate: Polytomic answered 500: oops", status=500)
RUNNING = AlreadyRunning("POST /api/syncs/x/executions: Polytomic answered 409: already running", status=409)
UNREADABLE = UnreadableAnswer("POST /api/syncs/x/executions: Polytomic answered 201 without an execution id")

# Times, epoch seconds. The trigger (WHEN, 10:00:00, a whole second) reached us 2 s later; its
# coverage bound is then 10:00:03 (the end of its second, or its arrival, plus the skew allowance).
# The start's first request went out at 10:00:10 (a deferred or debounced start goes out later still).
TRIGGERED = WHEN.timestamp()
RECEIVED = TRIGGERED + 2
SINCE = coverage_since(WHEN, RECEIVED)
SENT = TRIGGERED + 10
START_FOUND = "Polytomic answered 500, but this execution was created since the trigger or the request"

# Starts no plain run (scheduled, or another route's) does: after a 500 only runs since the request count.
UNCOVERABLE = [
    pytest.param((("resync", True),), id="resync"),
    pytest.param((("test", True),), id="test"),
    pytest.param((("fetch_mode", "full"),), id="full-fetch"),
    pytest.param((("identities", ("a@example.com",)),), id="identities"),
    pytest.param((("resync_mode", "full"),), id="resync-mode"),
]


def reason(error: Exception) -> str:
    """What an outcome shows of an error: Polytomic's answer without the request line."""
    return error.reason if isinstance(error, PolytomicError) else str(error)


def retried(error: Exception | str) -> str:
    return f"{reason(error) if isinstance(error, Exception) else error}; the event will be retried"


def call(
    client: StubClient,
    action: Action,
    dedup: MemoryDedup | None = None,
    *,
    key: str | None = None,
    at: float = SENT,
    since: float = SINCE,
) -> Outcome | Running | Throttle:
    """`Calls.call` with the clock at `at` (when the request goes out), without the dedup boundary."""
    starts = Calls(client, dedup if dedup is not None else MemoryDedup(), Clock(at))
    return starts.call(action, action.dedup_key if key is None else key, DEADLINE, since)


def perform(
    client: StubClient, action: Action, dedup: MemoryDedup | None = None, *, at: float = SENT, since: float = SINCE
) -> Outcome:
    """The call under dedup with the action's own key, as a policy makes it; a 409 here is a test failure."""
    starts = Calls(client, dedup if dedup is not None else MemoryDedup(), Clock(at))
    policy = DispatchPolicy(starts, Deferrals(MemoryQueue(), MemoryWindows(), max_age=3600))

    def attempt() -> Outcome:
        result = starts.call(action, action.dedup_key, DEADLINE, since)
        assert not isinstance(result, Running | Throttle), result
        return result

    return policy.once(action, action.dedup_key, attempt)


def summary(outcome: Outcome) -> tuple[str, str | None, str | None, bool]:
    return (outcome.status, outcome.execution_id, outcome.reason, outcome.retryable)


def start(action: Action, key: str) -> Call:
    """The start request `action` makes with Idempotency-Key `key`."""
    return Call("start", action.sync.type, action.sync.id, DEADLINE, key=key, body=action.sync.body())


def set_active(action: Action, key: str) -> Call:
    return Call("set_active", action.sync.type, action.sync.id, DEADLINE, key=key, active=action.kind == "activate")


def listing(action: Action) -> Call:
    return Call("executions", action.sync.type, action.sync.id, DEADLINE)


class SlowStart(StubClient):
    """Polytomic takes `seconds` to answer a start: the clock moves while the request is out."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def start(
        self, sync_type: str, sync_id: str, body: dict[str, Any], *, idempotency_key: str, deadline: float | None = None
    ) -> Execution:
        self.clock.now += self.seconds
        return super().start(sync_type, sync_id, body, idempotency_key=idempotency_key, deadline=deadline)


class Unsaved(MemoryDedup):
    """A dedup table that fails in `once`: before calling (`called=False`), or after calling, when it
    saves the outcome (`called=True`), as the Powertools adapter reports either. Counters still work."""

    def __init__(self, *, called: bool) -> None:
        super().__init__()
        self.called = called

    def once(self, key: str, perform: Callable[[], Outcome]) -> Outcome:
        self.seen.append(key)
        if self.called:
            perform()
            raise DedupUnavailable("Failed to update record state to success in idempotency store", called=True)
        raise DedupUnavailable("Failed to save in progress record to idempotency store", called=False)


def test_the_times_the_tests_use() -> None:
    """The coverage bound falls between the trigger and the first request: both bounds can be told apart."""
    assert (SINCE - TRIGGERED, SENT - TRIGGERED) == (2.0, 10.0)


# -- successes ----------------------------------------------------------------------------------


def test_start_sends_body_dedup_key_and_deadline() -> None:
    client = StubClient()
    action = act("start", "bulk", options=(("fetch_mode", "incremental"), ("schemas", ("public.a",))))
    outcome = perform(client, action)
    assert outcome.to_dict() == {
        "route": "orders-landing",
        "sync_id": SYNC,
        "sync_type": "bulk",
        "action": "start",
        "status": "started",
        "execution_id": EXECUTION,
    }
    body = {"fetch_mode": "incremental", "schemas": ["public.a"]}
    assert client.calls == [Call("start", "bulk", SYNC, DEADLINE, key=action.dedup_key, body=body)]


@pytest.mark.parametrize(
    ("kind", "active", "status"), [("activate", True, "activated"), ("deactivate", False, "deactivated")]
)
def test_activate_and_deactivate(kind: ActionKind, active: bool, status: str) -> None:
    client = StubClient()
    action = act(kind, "bulk")
    outcome = perform(client, action)
    assert (outcome.status, outcome.retryable, outcome.reason, outcome.execution_id) == (status, False, None, None)
    assert client.calls == [Call("set_active", "bulk", SYNC, DEADLINE, key=action.dedup_key, active=active)]


@pytest.mark.parametrize("kind", ["start", "activate"])
def test_the_key_given_is_the_idempotency_key_sent(kind: ActionKind) -> None:
    """A queued message calls with its own id, not the action's dedup key."""
    client = StubClient()
    message_id = "f" * 64
    result = Calls(client, MemoryDedup(), Clock(SENT)).call(act(kind), message_id, None, SINCE)
    assert isinstance(result, Outcome)
    assert [(call.key, call.deadline) for call in client.calls] == [(message_id, None)]


def test_the_clock_is_the_wall_clock_unless_given() -> None:
    client, dedup = StubClient(), MemoryDedup()
    assert Calls(client, dedup).clock is time.time
    clock = Clock(SENT)
    assert Calls(client, dedup, clock).clock is clock


# -- the error policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (AlreadyRunning("409", status=409), "running"),
        (ServerError("500", status=500), "server_error"),
        (Rejected("404", status=404), "refused"),
        (Rejected("422", status=422), "refused"),
        (Unauthorized("401", status=401), "retry"),
        (KeyInFlight("409", status=409), "retry"),
        (Transient("503", status=503), "retry"),
        (Transient("no answer"), "retry"),
        (UnreadableAnswer("201 without an execution id"), "retry"),
        (CredentialsError("cannot read the secret"), "retry"),
    ],
)
def test_the_policy_rules_on_each_failure(error: Exception, expected: Verdict) -> None:
    assert verdict(error) == expected


def test_the_policy_covers_every_polytomic_error_and_nothing_else() -> None:
    """An error the table does not name is a bug: it must propagate, not become an outcome."""
    assert set(PolytomicError.__subclasses__()) | {CredentialsError, Throttled} == set(FAILURES)
    assert UnreadableAnswer in FAILURES
    assert len(VERDICTS) == len(FAILURES) == len(set(FAILURES))
    assert not issubclass(ValueError, FAILURES)


def test_a_run_in_progress_is_running_for_the_caller_to_decide() -> None:
    """Calls neither defers nor reports a 409: the dispatch policy does."""
    client = StubClient().will_start(RUNNING)
    result = call(client, act())
    assert result == Running("Polytomic answered 409: already running")
    assert client.operations == ["start"]


@pytest.mark.parametrize("kind", ["start", "activate", "deactivate"])
def test_rejected_fails_without_retry(kind: ActionKind) -> None:
    error = Rejected("POST /api/syncs/x: Polytomic answered 404: sync not found", status=404)
    client = StubClient().will_start(error).will_set_active(error)
    outcome = perform(client, act(kind))
    assert (outcome.status, outcome.retryable) == ("failed", False)
    assert outcome.reason == "Polytomic answered 404: sync not found"  # without the request line
    assert len(client.calls) == 1


def test_unauthorized_fails_and_is_retried_so_the_event_is_parked_not_dropped() -> None:
    error = Unauthorized("POST /api/syncs/x/executions: Polytomic answered 401: bad key", status=401)
    outcome = perform(StubClient().will_start(error), act())
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == retried(error)


@pytest.mark.parametrize(
    "error",
    [
        Transient("POST /api/syncs/x/executions: Polytomic answered 503: unavailable", status=503),
        Transient("POST /api/syncs/x/executions: no answer from Polytomic (ReadTimeoutError)"),
        KeyInFlight("POST /api/syncs/x/executions: Polytomic answered 409: Idempotency-Key in flight", status=409),
        UnreadableAnswer("POST /api/syncs/x/activate: Polytomic answered 200 with active=false"),
        CredentialsError("cannot read the Polytomic secret 'p' from Secrets Manager: AccessDeniedException"),
    ],
)
@pytest.mark.parametrize("kind", ["start", "activate"])
def test_transient_failures_are_retryable_and_not_remembered(error: Exception, kind: ActionKind) -> None:
    dedup = MemoryDedup()
    action = act(kind)
    client = StubClient().will_start(error).will_set_active(error)
    outcome = perform(client, action, dedup)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == retried(error)
    assert [call.key for call in client.calls] == [action.dedup_key]  # no fresh key, no look: only a 500 has those
    assert dedup.seen == [action.dedup_key]
    assert dedup.records == {}
    assert (dedup.sent, dedup.attempts) == ({}, {})


def test_a_start_answered_without_an_execution_id_is_retried_under_the_same_key_and_not_remembered() -> None:
    """A 2xx always names its execution now (the client raises `UnreadableAnswer` otherwise): never a
    `started` without an id; the retry asks again with the same key, and Polytomic replays its answer."""
    action, dedup = act(), MemoryDedup()
    client = StubClient().will_start(UNREADABLE)
    first = perform(client, action, dedup)
    assert summary(first) == ("failed", None, retried(UNREADABLE), True)
    assert dedup.records == {}
    again = perform(client, action, dedup)
    assert summary(again) == ("started", EXECUTION, None, False)
    assert client.calls == [start(action, action.dedup_key), start(action, action.dedup_key)]
    assert list(dedup.records) == [action.dedup_key]


def test_an_error_the_policy_does_not_name_propagates_and_is_not_remembered() -> None:
    dedup = MemoryDedup()
    with pytest.raises(ZeroDivisionError):
        perform(StubClient().will_start(ZeroDivisionError("a bug")), act(), dedup)
    assert dedup.records == {}


# -- a 500 on activate / deactivate: set it again under a fresh key ------------------------------


@pytest.mark.parametrize(("kind", "status"), [("activate", "activated"), ("deactivate", "deactivated")])
def test_server_error_on_activate_or_deactivate_sets_it_again_at_once_under_a_fresh_key(
    kind: ActionKind, status: str
) -> None:
    """Review finding 8: Polytomic replays a 500 for its key for 24 h, so a retry under the same key
    could not freeze or thaw the sync that day; setting the state is idempotent, so it is set again at
    once under `<key>-r1`, without looking at runs."""
    action, dedup = act(kind), MemoryDedup()
    client = StubClient().will_set_active(SET_ERROR)
    outcome = perform(client, action, dedup)
    assert summary(outcome) == (status, None, None, False)
    key = action.dedup_key
    assert client.calls == [set_active(action, key), set_active(action, f"{key}-r1")]
    assert dedup.attempts == {key: 1}
    assert dedup.sent == {}  # no look for runs, so no bound to keep
    assert list(dedup.records) == [key]


@pytest.mark.parametrize("kind", ["activate", "deactivate"])
def test_a_second_server_error_on_activate_is_retryable_and_each_delivery_uses_a_new_key(kind: ActionKind) -> None:
    """Review finding 8: a second 500 is retried (not remembered), and every later delivery, whose
    first request gets the replayed 500, sets it again under a key Polytomic has not seen: -r2, -r3."""
    action, dedup = act(kind), MemoryDedup()
    again = ServerError("POST /api/syncs/x/activate: Polytomic answered 500: still broken", status=500)
    client = StubClient().will_set_active(SET_ERROR, again, SET_ERROR, again, SET_ERROR)
    first, second, third = (perform(client, action, dedup) for _ in range(3))
    failed_twice = f"{reason(SET_ERROR)}; a fresh attempt failed too: {retried(again)}"
    assert summary(first) == summary(second) == ("failed", None, failed_twice, True)
    assert summary(third) == ("activated" if kind == "activate" else "deactivated", None, None, False)
    key = action.dedup_key
    assert client.calls == [
        set_active(action, key),
        set_active(action, f"{key}-r1"),
        set_active(action, key),
        set_active(action, f"{key}-r2"),
        set_active(action, key),
        set_active(action, f"{key}-r3"),
    ]
    assert dedup.attempts == {key: 3}
    assert list(dedup.records) == [key]


@pytest.mark.parametrize(
    ("again", "retryable"),
    [
        (Rejected("POST ...: Polytomic answered 404: sync not found", status=404), False),
        (Transient("POST ...: Polytomic answered 503: unavailable", status=503), True),
        (KeyInFlight("POST ...: Polytomic answered 409: Idempotency-Key in flight", status=409), True),
        (Unauthorized("POST ...: Polytomic answered 401: bad key", status=401), True),
        (UnreadableAnswer("POST ...: Polytomic answered 200 with active=true"), True),
        (CredentialsError("cannot read the Polytomic secret 'p' from Secrets Manager: Throttling"), True),
    ],
)
def test_server_error_on_deactivate_then_the_fresh_attempt_fails_as_the_policy_rules(
    again: Exception, retryable: bool
) -> None:
    """Review finding 8: the second error's verdict decides, and the reason names both errors."""
    action, dedup = act("deactivate"), MemoryDedup()
    client = StubClient().will_set_active(SET_ERROR, again)
    outcome = perform(client, action, dedup)
    why = f"{reason(SET_ERROR)}; a fresh attempt failed too: {reason(again)}"
    assert summary(outcome) == ("failed", None, retried(why) if retryable else why, retryable)
    assert client.calls == [set_active(action, action.dedup_key), set_active(action, f"{action.dedup_key}-r1")]
    assert dedup.records == {}


def test_server_error_on_activate_then_the_fresh_attempt_finds_a_run_in_progress() -> None:
    """Review finding 8: a 409 to the fresh attempt is `Running`, as for any 409: the caller decides."""
    action = act("activate")
    client = StubClient().will_set_active(SET_ERROR, RUNNING)
    result = call(client, action)
    assert result == Running(f"{reason(SET_ERROR)}; a fresh attempt failed too: {reason(RUNNING)}")
    assert client.calls == [set_active(action, action.dedup_key), set_active(action, f"{action.dedup_key}-r1")]


def test_server_error_on_activate_when_the_retry_counter_cannot_be_kept_calls_nothing_more() -> None:
    """Review finding 8: without a counted fresh key there is no second request (no key to reuse)."""

    class CounterDown(MemoryDedup):
        def next_attempt(self, key: str) -> int:
            raise DedupUnavailable("ProvisionedThroughputExceededException")

    action = act("activate")
    client = StubClient().will_set_active(SET_ERROR)
    outcome = perform(client, action, CounterDown())
    why = f"{reason(SET_ERROR)}; then the retry counter could not be kept: ProvisionedThroughputExceededException"
    assert summary(outcome) == ("failed", None, retried(why), True)
    assert client.calls == [set_active(action, action.dedup_key)]


# -- a 500 on start: look before trying again --------------------------------------------------


@pytest.mark.parametrize(
    "created_at",
    [
        "2026-11-23T10:00:02Z",  # at the trigger's coverage bound
        "2026-11-23T11:00:02+01:00",  # the same moment with an offset
        "2026-11-23T10:00:05.5Z",
        "2026-11-23T10:00:30Z",  # after the request too
    ],
)
def test_server_error_then_a_covering_execution_is_started(created_at: str) -> None:
    """A plain start: a run created since the trigger's coverage bound covers it, nothing starts again."""
    action = act()
    client = (
        StubClient()
        .will_start(SERVER_ERROR)
        .will_list([{"id": COVERING, "status": "running", "created_at": created_at}])
    )
    outcome = perform(client, action)
    assert summary(outcome) == ("started", COVERING, START_FOUND, False)
    assert client.calls == [start(action, action.dedup_key), listing(action)]


@pytest.mark.parametrize(
    "executions",
    [
        pytest.param([], id="none"),
        pytest.param(
            [{"id": COVERING, "status": "completed", "created_at": "2026-11-23T10:00:01.999Z"}], id="before-the-bound"
        ),
        pytest.param(
            [{"id": COVERING, "status": "running", "created_at": "2026-11-23T10:00:00Z"}], id="at-the-trigger"
        ),
        pytest.param([{"id": COVERING, "status": "completed"}], id="no-time"),
        pytest.param([{"id": COVERING, "created_at": "yesterday"}], id="bad-time"),
        pytest.param([{"status": "running", "created_at": "2026-11-23T10:00:05Z"}], id="no-id"),
        pytest.param([{"id": 7, "status": "running", "created_at": "2026-11-23T10:00:05Z"}], id="odd-id"),
        pytest.param(["odd"], id="not-an-object"),
    ],
)
def test_server_error_without_a_covering_execution_retries_once_with_a_derived_key(executions: list[Any]) -> None:
    """A run of the trigger's own second may have begun before the file landed: it does not cover it."""
    action = act()
    client = StubClient().will_start(SERVER_ERROR, Execution(id=EXECUTION, status="created")).will_list(executions)
    dedup = MemoryDedup()
    outcome = perform(client, action, dedup)
    assert summary(outcome) == ("started", EXECUTION, None, False)
    key = action.dedup_key
    assert client.calls == [start(action, key), listing(action), start(action, f"{key}-r1")]
    assert dedup.attempts == {key: 1}


def test_each_delivery_after_a_replayed_server_error_tries_a_new_key() -> None:
    """Polytomic replays a 500 for a key: every later retry needs a key it has not seen."""
    dedup, action = MemoryDedup(), act()
    client = StubClient().will_start(SERVER_ERROR, SERVER_ERROR, SERVER_ERROR)
    first = perform(client, action, dedup)
    second = perform(client, action, dedup, at=SENT + 60)
    assert summary(first) == (
        "failed",
        None,
        retried(f"{reason(SERVER_ERROR)}; a fresh attempt failed too: {reason(SERVER_ERROR)}"),
        True,
    )
    assert summary(second) == ("started", EXECUTION, None, False)
    key = action.dedup_key
    assert client.calls == [
        start(action, key),
        listing(action),
        start(action, f"{key}-r1"),
        start(action, key),
        listing(action),
        start(action, f"{key}-r2"),
    ]
    assert dedup.attempts == {key: 2}
    assert dedup.sent == {key: SENT}


def test_fresh_keys_and_the_first_request_are_counted_per_key_given_not_per_action() -> None:
    """A queued message calls with its own id: its fresh keys derive from that id and are counted under
    it, so two messages of one action each get their own -r1."""
    action, dedup = act(), MemoryDedup()
    first_message, second_message = "a" * 64, "b" * 64
    client = StubClient().will_start(SERVER_ERROR, Execution(id=EXECUTION, status="created"), SERVER_ERROR)
    assert call(client, action, dedup, key=first_message) == Outcome.of(action, "started", execution_id=EXECUTION)
    assert call(client, action, dedup, key=second_message, at=SENT + 900) == Outcome.of(
        action, "started", execution_id=EXECUTION
    )
    assert client.start_keys == [first_message, f"{first_message}-r1", second_message, f"{second_message}-r1"]
    assert dedup.attempts == {first_message: 1, second_message: 1}
    assert dedup.sent == {first_message: SENT, second_message: SENT + 900}
    assert action.dedup_key not in dedup.attempts


def test_server_error_then_the_fresh_attempt_finds_a_run_in_progress() -> None:
    """Running, as for any 409: the caller decides (defer, or `already_running`)."""
    running = AlreadyRunning("POST ...: Polytomic answered 409: already running", status=409)
    client = StubClient().will_start(SERVER_ERROR, running)
    action = act()
    result = call(client, action)
    assert result == Running(reason(running))
    assert client.start_keys == [action.dedup_key, f"{action.dedup_key}-r1"]


@pytest.mark.parametrize(
    "again",
    [
        ServerError("POST ...: Polytomic answered 500: still broken", status=500),
        Transient("POST ...: Polytomic answered 503: unavailable", status=503),
        KeyInFlight("POST ...: Polytomic answered 409: Idempotency-Key in flight", status=409),
        UnreadableAnswer("POST ...: Polytomic answered 201 without an execution id"),
    ],
)
def test_server_error_then_the_fresh_attempt_fails_too(again: Exception) -> None:
    dedup = MemoryDedup()
    outcome = perform(StubClient().will_start(SERVER_ERROR, again), act(), dedup)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == f"{reason(SERVER_ERROR)}; a fresh attempt failed too: {retried(again)}"
    assert dedup.records == {}


@pytest.mark.parametrize(
    "lookup",
    [
        Transient("GET ...: no answer from Polytomic (ReadTimeoutError)"),
        ServerError("GET ...: Polytomic answered 500: boom", status=500),
    ],
)
def test_server_error_then_the_status_check_fails(lookup: Exception) -> None:
    client = StubClient().will_start(SERVER_ERROR).will_list(lookup)
    outcome = perform(client, act())
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == (
        f"{reason(SERVER_ERROR)}; then looking for a run since the trigger failed: {retried(lookup)}"
    )
    assert client.operations == ["start", "executions"]  # no blind second start


@pytest.mark.parametrize(
    ("lookup", "retryable"),
    [
        (Rejected("GET ...: Polytomic answered 404: not found", status=404), False),
        (AlreadyRunning("GET ...: Polytomic answered 409: running", status=409), False),
        (Unauthorized("GET ...: Polytomic answered 401: bad key", status=401), True),
        (CredentialsError("cannot read the Polytomic secret 'p' from Secrets Manager: AccessDeniedException"), True),
    ],
)
def test_server_error_then_any_status_check_failure_is_an_outcome_not_a_crash(
    lookup: Exception, retryable: bool
) -> None:
    client = StubClient().will_start(SERVER_ERROR).will_list(lookup)
    outcome = perform(client, act())
    why = f"{reason(SERVER_ERROR)}; then looking for a run since the trigger failed: {reason(lookup)}"
    assert (outcome.status, outcome.retryable) == ("failed", retryable)
    assert outcome.reason == (retried(why) if retryable else why)
    assert client.operations == ["start", "executions"]  # no blind retry


@pytest.mark.parametrize(
    ("again", "retryable"),
    [
        (Rejected("POST ...: Polytomic answered 403: forbidden", status=403), False),
        (Unauthorized("POST ...: Polytomic answered 401: bad key", status=401), True),
        (CredentialsError("cannot read the Polytomic secret 'p' from Secrets Manager: Throttling"), True),
    ],
)
def test_server_error_then_any_fresh_attempt_failure_is_an_outcome_not_a_crash(
    again: Exception, retryable: bool
) -> None:
    outcome = perform(StubClient().will_start(SERVER_ERROR, again), act())
    why = f"{reason(SERVER_ERROR)}; a fresh attempt failed too: {reason(again)}"
    assert (outcome.status, outcome.retryable) == ("failed", retryable)
    assert outcome.reason == (retried(why) if retryable else why)


def test_server_error_when_the_retry_counter_cannot_be_kept_calls_nothing_more() -> None:
    class CounterDown(MemoryDedup):
        def next_attempt(self, key: str) -> int:
            raise DedupUnavailable("ProvisionedThroughputExceededException")

    client = StubClient().will_start(SERVER_ERROR)
    outcome = perform(client, act(), CounterDown())
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == (
        f"{reason(SERVER_ERROR)}; then the retry counter could not be kept: "
        "ProvisionedThroughputExceededException; the event will be retried"
    )
    assert client.operations == ["start", "executions"]


# -- a 500 on start: which runs count (the first request's time) ---------------------------------


def test_after_a_500_a_plain_start_takes_a_run_created_since_the_trigger() -> None:
    """Review finding 5: a start any run covers is covered by a run created since the trigger's bound,
    even one created before its own request went out (its bound is the earlier of the two)."""
    action, dedup = act(), MemoryDedup()
    assert action.sync.coverable
    client = StubClient().will_start(SERVER_ERROR)
    client.ran(COVERING, SINCE)  # after the trigger, 7 s before the request
    outcome = perform(client, action, dedup)
    assert summary(outcome) == ("started", COVERING, START_FOUND, False)
    assert client.calls == [start(action, action.dedup_key), listing(action)]
    assert dedup.sent == {action.dedup_key: SENT}
    assert dedup.attempts == {}


@pytest.mark.parametrize(
    ("created", "found"),
    [
        pytest.param(SINCE - 0.5, True, id="at-the-request"),
        pytest.param(SINCE - 0.3, True, id="after-the-request-before-the-bound"),
        pytest.param(SINCE - 0.501, False, id="before-the-request"),
    ],
)
def test_after_a_500_a_plain_start_sent_before_the_trigger_bound_takes_a_run_since_its_request(
    created: float, found: bool
) -> None:
    """Review finding 5: the trigger's bound has a skew allowance, so a request may go out before it:
    a run created since the request may be the one it made, and counts (min(since, first sent))."""
    action, dedup = act(), MemoryDedup()
    sent = SINCE - 0.5
    assert sent < SINCE
    client = StubClient().will_start(SERVER_ERROR)
    client.ran(COVERING, created)
    outcome = perform(client, action, dedup, at=sent)
    key = action.dedup_key
    if found:
        assert summary(outcome) == ("started", COVERING, START_FOUND, False)
        assert client.calls == [start(action, key), listing(action)]
    else:
        assert summary(outcome) == ("started", EXECUTION, None, False)
        assert client.calls == [start(action, key), listing(action), start(action, f"{key}-r1")]
    assert dedup.sent == {key: sent}


@pytest.mark.parametrize("options", UNCOVERABLE)
def test_after_a_500_a_resync_is_not_taken_for_a_run_created_before_its_request(
    options: tuple[tuple[str, Any], ...],
) -> None:
    """Review finding 5: a resync / test / full fetch / identities start counts only runs created since
    its own request was first sent: a plain run created since the trigger is not the resync having
    started, so a fresh attempt goes out."""
    action, dedup = act(options=options), MemoryDedup()
    assert not action.sync.coverable
    client = StubClient().will_start(SERVER_ERROR)
    client.ran(OTHER, SINCE)  # since the trigger
    client.ran(COVERING, SENT - 0.001)  # just before the request
    outcome = perform(client, action, dedup)
    assert summary(outcome) == ("started", EXECUTION, None, False)
    key = action.dedup_key
    assert client.calls == [start(action, key), listing(action), start(action, f"{key}-r1")]
    assert client.calls[2].body == action.sync.body() != {}
    assert dedup.sent == {key: SENT}
    assert dedup.attempts == {key: 1}


@pytest.mark.parametrize("after", [0.0, 0.25, 12.0])
@pytest.mark.parametrize("options", UNCOVERABLE)
def test_after_a_500_a_resync_takes_a_run_created_since_its_request_as_its_own(
    options: tuple[tuple[str, Any], ...], after: float
) -> None:
    """Review finding 5: only the first request with the key can have made a run; one created while
    that request can have been in flight is taken as the start, so the resync does not run twice."""
    action, dedup = act(options=options), MemoryDedup()
    client = StubClient().will_start(SERVER_ERROR)
    client.ran(COVERING, SENT + after)
    client.ran(OTHER, SENT + after + 1)  # the newest counts
    outcome = perform(client, action, dedup)
    assert summary(outcome) == ("started", OTHER, START_FOUND, False)
    assert client.calls == [start(action, action.dedup_key), listing(action)]
    assert dedup.attempts == {}


@pytest.mark.parametrize("options", UNCOVERABLE)
def test_after_a_500_a_resync_is_not_taken_for_a_run_created_after_its_request_was_over(
    options: tuple[tuple[str, Any], ...],
) -> None:
    """Found by `make reliability`: a plain run another file started a while after the resync's
    request was taken for the resync, which then never ran. A run our request made was created while
    it was in flight (its timeouts, plus a second of skew), not later."""
    action, dedup = act(options=options), MemoryDedup()
    client = StubClient().will_start(SERVER_ERROR)
    client.ran(OTHER, SENT + REQUEST_SECONDS + 0.001)
    outcome = perform(client, action, dedup)
    assert summary(outcome) == ("started", EXECUTION, None, False)
    key = action.dedup_key
    assert client.calls == [start(action, key), listing(action), start(action, f"{key}-r1")]


def test_the_first_request_of_a_key_bounds_every_later_delivery() -> None:
    """Review finding 5: the first request's time is kept (the earliest given): a later delivery, whose
    request only gets the replayed 500, still counts runs since the first request, such as one an
    earlier fresh attempt made although it answered 500. Nothing starts a third time."""
    action, dedup = act(options=(("resync", True),)), MemoryDedup()
    key = action.dedup_key
    client = StubClient().will_start(SERVER_ERROR, SERVER_ERROR, SERVER_ERROR)
    first = perform(client, action, dedup)
    assert summary(first) == (
        "failed",
        None,
        retried(f"{reason(SERVER_ERROR)}; a fresh attempt failed too: {reason(SERVER_ERROR)}"),
        True,
    )
    client.ran(COVERING, SENT + 1)  # the -r1 request made the run after all
    second = perform(client, action, dedup, at=SENT + 300)
    assert summary(second) == ("started", COVERING, START_FOUND, False)
    assert client.calls == [
        start(action, key),
        listing(action),
        start(action, f"{key}-r1"),
        start(action, key),
        listing(action),
    ]
    assert dedup.sent == {key: SENT}
    assert dedup.attempts == {key: 1}


def test_the_time_of_a_request_is_read_before_it_is_sent() -> None:
    """Review finding 5: the bound is when the request went out, not when its 500 came back: a run a
    slow request made while it was out counts."""
    clock = Clock(SENT)
    client = SlowStart(clock, seconds=30)
    client.will_start(SERVER_ERROR)
    client.ran(COVERING, SENT + 1)
    action, dedup = act(options=(("resync", True),)), MemoryDedup()
    starts = Calls(client, dedup, clock)
    result = starts.call(action, action.dedup_key, DEADLINE, SINCE)
    assert result == Outcome.of(action, "started", execution_id=COVERING, reason=START_FOUND)
    assert client.calls == [start(action, action.dedup_key), listing(action)]
    assert (dedup.sent, clock.now) == ({action.dedup_key: SENT}, SENT + 30)


def test_server_error_when_the_time_of_the_first_request_cannot_be_kept_calls_nothing_more() -> None:
    """Review finding 5: without the first request's time no run can be told to be ours: no look, no
    fresh attempt; retried."""

    class SentDown(MemoryDedup):
        def first_sent(self, key: str, sent: float) -> float:
            raise DedupUnavailable("ProvisionedThroughputExceededException")

    action, dedup = act(), SentDown()
    client = StubClient().will_start(SERVER_ERROR)
    client.ran(COVERING, SENT + 1)
    outcome = perform(client, action, dedup)
    why = (
        f"{reason(SERVER_ERROR)}; then the time of the first request could not be kept: "
        "ProvisionedThroughputExceededException"
    )
    assert summary(outcome) == ("failed", None, retried(why), True)
    assert client.calls == [start(action, action.dedup_key)]
    assert (dedup.records, dedup.attempts) == ({}, {})


# -- covering: a run since a moment -------------------------------------------------------------


def test_covering_is_the_newest_execution_created_since_the_moment() -> None:
    newest_first: list[Any] = [
        {"id": COVERING, "status": "created", "created_at": "2026-11-23T10:05:00Z"},
        {"id": EXECUTION, "status": "running", "created_at": "2026-11-23T10:00:02Z"},  # at SINCE
        {"id": OTHER, "status": "completed", "created_at": "2026-11-23T10:00:01.999999Z"},
    ]
    client = StubClient().will_list(newest_first, newest_first[1:], newest_first[2:])
    starts = Calls(client, MemoryDedup(), Clock(SENT))
    action = act("start", "bulk")
    assert [starts.covering(action, SINCE, DEADLINE) for _ in range(3)] == [COVERING, EXECUTION, None]
    assert client.calls == [Call("executions", "bulk", SYNC, DEADLINE)] * 3


def test_covering_takes_epoch_seconds_with_fractions() -> None:
    client = StubClient()
    client.ran(COVERING, SINCE + 0.25)
    starts = Calls(client, MemoryDedup(), Clock(SENT))
    assert [starts.covering(act(), moment, None) for moment in (SINCE + 0.25, SINCE + 0.250001)] == [COVERING, None]


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (Rejected("GET ...: Polytomic answered 404: not found", status=404), Refused),
        (AlreadyRunning("GET ...: Polytomic answered 409: running", status=409), Refused),
        (Transient("GET ...: Polytomic answered 503: unavailable", status=503), RetryLater),
        (ServerError("GET ...: Polytomic answered 500: boom", status=500), RetryLater),
        (Unauthorized("GET ...: Polytomic answered 401: bad key", status=401), RetryLater),
    ],
)
def test_covering_fails_as_the_policy_rules(error: PolytomicError, raised: type[Exception]) -> None:
    starts = Calls(StubClient().will_list(error), MemoryDedup(), Clock(SENT))
    with pytest.raises(raised) as failure:
        starts.covering(act(), SINCE, None)
    assert str(failure.value) == f"looking for a run since the trigger failed: {error.reason}"


# -- dedup --------------------------------------------------------------------------------------


def test_a_remembered_action_comes_back_as_duplicate_and_calls_nothing() -> None:
    client, dedup = StubClient(), MemoryDedup()
    first = perform(client, act(), dedup)
    again = perform(client, act(), dedup)
    assert (first.status, again.status) == ("started", "duplicate")
    assert (again.execution_id, again.reason) == (EXECUTION, "already started for this trigger")
    assert client.operations == ["start"]


def test_another_delivery_in_progress_is_retryable_and_calls_nothing() -> None:
    client, dedup, action = StubClient(), MemoryDedup(), act()
    during: list[Outcome] = []

    def other_delivery() -> Outcome:  # this trigger's action is being done while a second delivery asks
        during.append(perform(client, action, dedup))
        return Outcome.of(action, "started", execution_id=EXECUTION)

    dedup.once(action.dedup_key, other_delivery)
    [outcome] = during
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert (
        outcome.reason == "another delivery of this trigger is doing this action right now; the event will be retried"
    )
    assert client.calls == []


def test_a_broken_dedup_table_is_retryable_and_calls_nothing() -> None:
    """Review finding 18: a table that fails before the call says nothing was called (and nothing was)."""
    client, dedup = StubClient(), MemoryDedup()
    dedup.unavailable = "Failed to save in progress record to idempotency store"
    outcome = perform(client, act(), dedup)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == (
        "the dedup table cannot be used, so nothing was called: "
        "Failed to save in progress record to idempotency store; the event will be retried"
    )
    assert client.calls == []


@pytest.mark.parametrize(
    ("called", "why", "calls"),
    [
        pytest.param(
            False,
            "the dedup table cannot be used, so nothing was called: "
            "Failed to save in progress record to idempotency store",
            0,
            id="before-the-call",
        ),
        pytest.param(
            True,
            "the call was made but its outcome could not be saved in the dedup table: "
            "Failed to update record state to success in idempotency store; the retry sends the same "
            "Idempotency-Key, so Polytomic answers it with the same run",
            1,
            id="saving-its-outcome",
        ),
    ],
)
def test_a_broken_dedup_table_says_whether_the_call_was_made(called: bool, why: str, calls: int) -> None:
    """Review finding 18: `DedupUnavailable.called` tells the two apart: a table that failed saving the
    outcome of a call that was made must not claim that nothing was called."""
    client, dedup, action = StubClient(), Unsaved(called=called), act()
    outcome = perform(client, action, dedup)
    assert summary(outcome) == ("failed", None, retried(why), True)
    assert client.calls == [start(action, action.dedup_key)] * calls
    assert dedup.seen == [action.dedup_key]


def test_after_an_unsaved_outcome_the_retry_sends_the_same_idempotency_key() -> None:
    """Review finding 18: what the reason promises: the retry, with the table working again, sends the
    same Idempotency-Key, and Polytomic's (replayed) answer names the same run; nothing starts twice."""
    action = act()
    client = StubClient().will_start(
        Execution(id=EXECUTION, status="created"), Execution(id=EXECUTION, status="created")
    )
    unsaved = perform(client, action, Unsaved(called=True))
    assert (unsaved.status, unsaved.retryable) == ("failed", True)
    dedup = MemoryDedup()
    again = perform(client, action, dedup)
    assert summary(again) == ("started", EXECUTION, None, False)
    assert client.calls == [start(action, action.dedup_key), start(action, action.dedup_key)]
    assert list(dedup.records) == [action.dedup_key]


def test_after_an_unsaved_outcome_of_a_fresh_attempt_the_retry_finds_its_run() -> None:
    """Review finding 18: when the call was a fresh attempt after a 500, the retry's own request gets the
    replayed 500, and the run that attempt made (since the first request) is found: no third start."""
    action = act(options=(("resync", True),))
    key = action.dedup_key
    dedup = Unsaved(called=True)
    client = StubClient().will_start(SERVER_ERROR, Execution(id=COVERING, status="created"), SERVER_ERROR)
    unsaved = perform(client, action, dedup)
    assert (unsaved.status, unsaved.retryable) == ("failed", True)
    client.ran(COVERING, SENT + 1)  # what the -r1 request made
    working = MemoryDedup()
    working.sent, working.attempts = dedup.sent, dedup.attempts  # the counters' record survived
    again = perform(client, action, working, at=SENT + 120)
    assert summary(again) == ("started", COVERING, START_FOUND, False)
    assert client.calls == [
        start(action, key),
        listing(action),
        start(action, f"{key}-r1"),
        start(action, key),
        listing(action),
    ]
    assert working.sent == {key: SENT}


def test_successful_outcomes_are_remembered_and_failures_are_not() -> None:
    client = StubClient().will_start(Execution(id=EXECUTION, status="created"), Rejected("400", status=400))
    dedup = MemoryDedup()
    first, second = act(), act(sync_id=OTHER)
    assert [perform(client, a, dedup).status for a in (first, second)] == ["started", "failed"]
    assert dedup.seen == [first.dedup_key, second.dedup_key]
    assert list(dedup.records) == [first.dedup_key]


# -- a refusal replayed to a re-drive -------------------------------------------------------------

REFUSED = Rejected("POST /api/syncs/x/executions: Polytomic answered 422: sync is misconfigured", status=422)


@pytest.mark.parametrize("kind", ["start", "activate", "deactivate"])
def test_a_refusal_replayed_to_a_redrive_is_asked_again_under_a_fresh_key(kind: ActionKind) -> None:
    """Polytomic replays a 4xx for the same Idempotency-Key for a day: a parked action, re-driven after
    the cause was fixed, got the stored refusal back and was parked again, whatever was fixed."""
    client, dedup, action = StubClient(), MemoryDedup(), act(kind)
    client.will_start(REFUSED, REFUSED).will_set_active(REFUSED, REFUSED)

    first = perform(client, action, dedup)  # the first refusal of the key is the answer
    assert (first.status, first.retryable, first.reason) == ("failed", False, REFUSED.reason)
    again = perform(client, action, dedup)  # re-driven: the same key gets the stored refusal, then a fresh key

    assert again.status == ("started" if kind == "start" else f"{kind}d")
    assert [call.key for call in client.calls] == [action.dedup_key, action.dedup_key, f"{action.dedup_key}-r2"]
    assert list(dedup.records) == [action.dedup_key]


def test_a_refusal_that_stands_under_the_fresh_key_is_refused_again_and_the_next_redrive_tries_anew() -> None:
    client, dedup, action = StubClient(), MemoryDedup(), act()
    client.will_start(*[REFUSED] * 5)

    outcomes = [perform(client, action, dedup) for _ in range(3)]

    assert [(o.status, o.retryable) for o in outcomes] == [("failed", False)] * 3
    assert outcomes[1].reason == f"{REFUSED.reason} (asked again under a fresh key)"
    key = action.dedup_key
    assert [call.key for call in client.calls] == [key, key, f"{key}-r2", key, f"{key}-r3"]


def test_a_refusal_whose_counter_cannot_be_kept_is_retried_later() -> None:
    client, dedup, action = StubClient().will_start(REFUSED), MemoryDedup(), act()
    starts = Calls(client, dedup)
    dedup_down = MemoryDedup()
    dedup_down.unavailable = "ProvisionedThroughputExceededException"
    starts.dedup = dedup_down

    with pytest.raises(RetryLater, match="then the retry counter could not be kept"):
        starts.call(action, action.dedup_key, DEADLINE, WHEN.timestamp())


def test_a_start_no_other_run_can_stand_for_notes_when_it_was_first_sent_before_sending() -> None:
    """A resync whose first request timed out behind a stored 500: the retry's replayed 500 must still count
    the run that first request made, so the time of the first request is kept before it goes out."""
    client, dedup = StubClient(), MemoryDedup()
    resync = act(options=(("resync", True),))
    plain = act()
    clock = iter([100.0, 200.0, 300.0])
    starts = Calls(client, dedup, clock=lambda: next(clock))

    starts.call(resync, resync.dedup_key, DEADLINE, 50.0)
    starts.call(plain, plain.dedup_key, DEADLINE, 50.0)

    assert dedup.sent == {resync.dedup_key: 100.0}  # a plain start writes nothing more
    dedup.unavailable = "ResourceNotFoundException"
    with pytest.raises(RetryLater, match="so nothing was called"):
        starts.call(resync, "f" * 64, DEADLINE, 50.0)
    assert len(client.calls) == 2
