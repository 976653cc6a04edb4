"""Starts: one action's Polytomic call under dedup. The error policy table, from client errors to
outcomes; recovery from a 500; and the dedup boundary, with a stub client and the in-memory dedup table."""

from __future__ import annotations

from typing import Any

import pytest

from local.memory import MemoryDedup
from polytrigger.core.actions import Action, ActionKind
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.errors import Refused, RetryLater
from polytrigger.dispatch.ports import (
    AlreadyRunning,
    CredentialsError,
    DedupUnavailable,
    Execution,
    KeyInFlight,
    PolytomicError,
    Rejected,
    ServerError,
    Transient,
    Unauthorized,
)
from polytrigger.dispatch.starts import FAILURES, POLICY, Running, Starts, Verdict, verdict
from tests.unit.dispatch_stubs import COVERING, DEADLINE, EXECUTION, OTHER, SYNC, WHEN, Call, StubClient, act

SERVER_ERROR = ServerError("POST /api/syncs/x/executions: Polytomic answered 500: internal error", status=500)
RUNNING = AlreadyRunning("POST /api/syncs/x/executions: Polytomic answered 409: already running", status=409)


def reason(error: Exception) -> str:
    """What an outcome shows of an error: Polytomic's answer without the request line."""
    return error.reason if isinstance(error, PolytomicError) else str(error)


def perform(client: StubClient, action: Action, dedup: MemoryDedup | None = None) -> Outcome:
    """The call under dedup with the action's own key, as a policy makes it; a 409 here is a test failure."""
    starts = Starts(client, dedup or MemoryDedup())

    def call() -> Outcome:
        result = starts.call(action, action.dedup_key, DEADLINE)
        assert not isinstance(result, Running), result
        return result

    return starts.once(action, action.dedup_key, call)


def retried(error: Exception) -> str:
    return f"{reason(error)}; the event will be retried"


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


def test_start_accepted_without_an_execution_id() -> None:
    outcome = perform(StubClient().will_start(Execution(id="", status="")), act())
    assert (outcome.status, outcome.execution_id) == ("started", None)
    assert outcome.reason == "Polytomic accepted the start without an execution id"


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
    result = Starts(client, MemoryDedup()).call(act(kind), message_id, None)
    assert isinstance(result, Outcome)
    assert [(call.key, call.deadline) for call in client.calls] == [(message_id, None)]


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
        (CredentialsError("cannot read the secret"), "retry"),
    ],
)
def test_the_policy_rules_on_each_failure(error: Exception, expected: Verdict) -> None:
    assert verdict(error) == expected


def test_the_policy_covers_every_polytomic_error_and_nothing_else() -> None:
    """An error the table does not name is a bug: it must propagate, not become an outcome."""
    assert set(PolytomicError.__subclasses__()) | {CredentialsError} == set(FAILURES)
    assert len(POLICY) == len(FAILURES) == len(set(FAILURES))
    assert not issubclass(ValueError, FAILURES)


def test_a_run_in_progress_is_running_for_the_caller_to_decide() -> None:
    """Starts neither defers nor reports a 409: the caller (ActionPolicy, QueuedStarts) does."""
    client = StubClient().will_start(RUNNING)
    result = Starts(client, MemoryDedup()).call(act(), act().dedup_key, DEADLINE)
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
        CredentialsError("cannot read the Polytomic secret 'p' from Secrets Manager: AccessDeniedException"),
    ],
)
@pytest.mark.parametrize("kind", ["start", "activate"])
def test_transient_failures_are_retryable_and_not_remembered(error: Exception, kind: ActionKind) -> None:
    dedup = MemoryDedup()
    action = act(kind)
    outcome = perform(StubClient().will_start(error).will_set_active(error), action, dedup)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == retried(error)
    assert dedup.seen == [action.dedup_key]
    assert dedup.records == {}


def test_server_error_on_activate_is_retryable() -> None:
    error = ServerError("POST /api/syncs/x/activate: Polytomic answered 500: oops", status=500)
    client = StubClient().will_set_active(error)
    outcome = perform(client, act("activate"))
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == retried(error)
    assert client.operations == ["set_active"]  # no recovery for activate: no look, no fresh key


def test_an_error_the_policy_does_not_name_propagates_and_is_not_remembered() -> None:
    dedup = MemoryDedup()
    with pytest.raises(ZeroDivisionError):
        perform(StubClient().will_start(ZeroDivisionError("a bug")), act(), dedup)
    assert dedup.records == {}


# -- a 500 on start: look before trying again --------------------------------------------------


@pytest.mark.parametrize(
    "created_at",
    ["2026-11-23T10:00:05Z", "2026-11-23T10:00:00Z", "2026-11-23T11:30:00+01:00"],
)
def test_server_error_then_a_covering_execution_is_started(created_at: str) -> None:
    """Created at or after the trigger: it covers the trigger, nothing starts again."""
    client = (
        StubClient()
        .will_start(SERVER_ERROR)
        .will_list([{"id": COVERING, "status": "running", "created_at": created_at}])
    )
    outcome = perform(client, act())
    assert (outcome.status, outcome.execution_id, outcome.retryable) == ("started", COVERING, False)
    assert outcome.reason == "Polytomic answered 500, but this execution was created since the trigger"
    assert client.operations == ["start", "executions"]
    assert client.calls[1] == Call("executions", "model", SYNC, DEADLINE)


@pytest.mark.parametrize(
    "executions",
    [
        [],
        [{"id": COVERING, "status": "completed", "created_at": "2026-11-23T09:59:59Z"}],
        [{"id": COVERING, "status": "completed"}],
        [{"id": COVERING, "created_at": "yesterday"}],
        [{"status": "running", "created_at": "2026-11-23T10:00:05Z"}],
        ["odd"],
    ],
)
def test_server_error_without_a_covering_execution_retries_once_with_a_derived_key(executions: list[Any]) -> None:
    action = act("start", "bulk", options=(("fetch_mode", "full"),))
    client = StubClient().will_start(SERVER_ERROR, Execution(id=EXECUTION, status="created")).will_list(executions)
    outcome = perform(client, action)
    assert (outcome.status, outcome.execution_id, outcome.retryable) == ("started", EXECUTION, False)
    assert client.operations == ["start", "executions", "start"]
    assert client.start_keys == [action.dedup_key, f"{action.dedup_key}-r1"]
    assert client.calls[2].body == {"fetch_mode": "full"}


def test_each_delivery_after_a_replayed_server_error_tries_a_new_key() -> None:
    """Polytomic replays a 500 for a key: every later retry needs a key it has not seen."""
    dedup, action = MemoryDedup(), act()
    client = StubClient().will_start(SERVER_ERROR, SERVER_ERROR, SERVER_ERROR, Execution(id=EXECUTION, status=""))
    first = perform(client, action, dedup)
    second = perform(client, action, dedup)
    assert (first.status, first.retryable, second.status) == ("failed", True, "started")
    assert client.start_keys == [action.dedup_key, f"{action.dedup_key}-r1", action.dedup_key, f"{action.dedup_key}-r2"]
    assert dedup.attempts[action.dedup_key] == 2


def test_server_error_then_a_fresh_attempt_accepted_without_an_execution_id() -> None:
    client = StubClient().will_start(SERVER_ERROR, Execution(id="", status=""))
    outcome = perform(client, act())
    assert (outcome.status, outcome.execution_id, outcome.retryable) == ("started", None, False)


def test_server_error_then_the_fresh_attempt_finds_a_run_in_progress() -> None:
    """Running, as for any 409: the caller decides (defer, or `already_running`)."""
    running = AlreadyRunning("POST ...: Polytomic answered 409: already running", status=409)
    client = StubClient().will_start(SERVER_ERROR, running)
    action = act()
    result = Starts(client, MemoryDedup()).call(action, action.dedup_key, DEADLINE)
    assert result == Running(reason(running))
    assert client.start_keys == [action.dedup_key, f"{action.dedup_key}-r1"]


@pytest.mark.parametrize(
    "again",
    [
        ServerError("POST ...: Polytomic answered 500: still broken", status=500),
        Transient("POST ...: Polytomic answered 503: unavailable", status=503),
        KeyInFlight("POST ...: Polytomic answered 409: Idempotency-Key in flight", status=409),
    ],
)
def test_server_error_then_the_fresh_attempt_fails_too(again: Exception) -> None:
    outcome = perform(StubClient().will_start(SERVER_ERROR, again), act())
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == f"{reason(SERVER_ERROR)}; a fresh attempt failed too: {retried(again)}"


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
    assert (outcome.status, outcome.retryable) == ("failed", retryable)
    assert (outcome.reason or "").startswith(
        f"{reason(SERVER_ERROR)}; then looking for a run since the trigger failed: {reason(lookup)}"
    )
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
    assert (outcome.status, outcome.retryable) == ("failed", retryable)
    assert (outcome.reason or "").startswith(f"{reason(SERVER_ERROR)}; a fresh attempt failed too: {reason(again)}")


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


# -- covering: a run since the trigger ----------------------------------------------------------


def test_covering_is_the_newest_execution_created_since_the_moment() -> None:
    newest_first: list[Any] = [
        {"id": COVERING, "status": "created", "created_at": "2026-11-23T10:05:00Z"},
        {"id": EXECUTION, "status": "running", "created_at": "2026-11-23T10:01:00Z"},
        {"id": OTHER, "status": "completed", "created_at": "2026-11-23T09:00:00Z"},
    ]
    client = StubClient().will_list(newest_first, newest_first[1:], newest_first[2:])
    starts = Starts(client, MemoryDedup())
    action = act("start", "bulk")
    assert [starts.covering(action, WHEN, DEADLINE) for _ in range(3)] == [COVERING, EXECUTION, None]
    assert set(client.calls) == {Call("executions", "bulk", SYNC, DEADLINE)}


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
    starts = Starts(StubClient().will_list(error), MemoryDedup())
    with pytest.raises(raised) as failure:
        starts.covering(act(), WHEN, None)
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
    client, dedup = StubClient(), MemoryDedup()
    dedup.unavailable = "Failed to save in progress record to idempotency store"
    outcome = perform(client, act(), dedup)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == (
        "the dedup table cannot be used, so nothing was called: "
        "Failed to save in progress record to idempotency store; the event will be retried"
    )
    assert client.calls == []


def test_successful_outcomes_are_remembered_and_failures_are_not() -> None:
    client = StubClient().will_start(Execution(id=EXECUTION, status="created"), Rejected("400", status=400))
    dedup = MemoryDedup()
    first, second = act(), act(sync_id=OTHER)
    assert [perform(client, a, dedup).status for a in (first, second)] == ["started", "failed"]
    assert dedup.seen == [first.dedup_key, second.dedup_key]
    assert list(dedup.records) == [first.dedup_key]
