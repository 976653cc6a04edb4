"""Dispatcher: the error policy, from client errors to outcomes, with a stub client and a stub dedup."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from polytrigger.actions import Action, ActionKind, Outcome, SyncTarget, SyncType
from polytrigger.credentials import CredentialsError
from polytrigger.dedup import NotRemembered
from polytrigger.dispatch import ActionsFailed, Dispatcher, Report
from polytrigger.polytomic import (
    AlreadyRunning,
    Execution,
    KeyInFlight,
    PolytomicError,
    Rejected,
    ServerError,
    Transient,
    Unauthorized,
)
from polytrigger.triggers import Trigger

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
OTHER = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
EXECUTION = "9b2e1c4d-5f6a-4b7c-8d9e-0f1a2b3c4d5e"
COVERING = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
WHEN = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
TRIGGER = Trigger.s3(bucket="acme-landing", key="orders/a.csv", event="created", sequencer="0055AED6DCD9", time=WHEN)
DEADLINE = 12345.0


class StubClient:
    """Scripted answers per operation: an Execution/bool/dict to return, or an exception to raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.script: dict[str, deque[Any]] = {"start": deque(), "set_active": deque(), "executions": deque()}

    def will(self, operation: str, *answers: Any) -> StubClient:
        self.script[operation].extend(answers)
        return self

    def _answer(self, operation: str, default: Any) -> Any:
        answer = self.script[operation].popleft() if self.script[operation] else default
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def start(
        self, sync_type: str, sync_id: str, body: dict[str, Any], *, idempotency_key: str, deadline: float | None = None
    ) -> Execution:
        self.calls.append(("start", sync_type, sync_id, body, idempotency_key, deadline))
        return self._answer("start", Execution(id=EXECUTION, status="created"))

    def set_active(
        self,
        sync_type: str,
        sync_id: str,
        active: bool,
        *,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> bool:
        self.calls.append(("set_active", sync_type, sync_id, active, idempotency_key, deadline))
        return self._answer("set_active", active)

    def executions(self, sync_type: str, sync_id: str, *, deadline: float | None = None) -> list[Any]:
        self.calls.append(("executions", sync_type, sync_id, deadline))
        return self._answer("executions", [])


class StubDedup:
    """Like Dedup.once without DynamoDB: failed outcomes are not remembered, exceptions propagate."""

    def __init__(self, raise_instead: BaseException | None = None) -> None:
        self.seen: list[str] = []
        self.remembered: list[str] = []
        self.raise_instead = raise_instead
        self.attempts: dict[str, int] = {}

    def next_attempt(self, dedup_key: str) -> int:
        self.attempts[dedup_key] = self.attempts.get(dedup_key, 0) + 1
        return self.attempts[dedup_key]

    def once_key(self, key: str, perform: Callable[[], Outcome]) -> Outcome:
        self.seen.append(key)
        if self.raise_instead is not None:
            raise self.raise_instead
        try:
            outcome = perform()
            if outcome.status == "failed":
                raise NotRemembered(outcome)
        except NotRemembered as signal:
            return signal.outcome
        self.remembered.append(key)
        return outcome


def reason(error: Exception) -> str:
    """What an outcome shows of an error: Polytomic's answer without the request line."""
    return error.reason if isinstance(error, PolytomicError) else str(error)


def act(kind: ActionKind = "start", sync_type: SyncType = "model", *, sync_id: str = SYNC, **sync: Any) -> Action:
    options = tuple(sync.pop("options", ()))
    return Action(
        route="orders-landing",
        kind=kind,
        sync=SyncTarget(id=sync_id, type=sync_type, options=options, **sync),
        trigger=TRIGGER,
    )


def run(client: StubClient, *actions: Action, dedup: StubDedup | None = None) -> tuple[Report, list[Any]]:
    seen: list[tuple[Action, Outcome]] = []
    dispatcher = Dispatcher(client, dedup or StubDedup(), lambda a, o, _key: seen.append((a, o)))  # type: ignore[arg-type]
    report = dispatcher.run(list(actions), deadline=DEADLINE)
    assert [o for _, o in seen] == report.outcomes  # on_outcome: once per action, in order
    assert [a for a, _ in seen] == list(actions)
    return report, [o.to_dict() for o in report.outcomes]


def one(client: StubClient, action: Action) -> Outcome:
    report, _ = run(client, action)
    [outcome] = report.outcomes
    assert report.retryable == ([outcome] if outcome.retryable else [])
    return outcome


# -- successes ----------------------------------------------------------------------------------


def test_start_sends_body_dedup_key_and_deadline() -> None:
    client = StubClient()
    action = act("start", "bulk", options=(("fetch_mode", "incremental"), ("schemas", ("public.a",))))
    outcome = one(client, action)
    assert outcome.to_dict() == {
        "route": "orders-landing",
        "sync_id": SYNC,
        "sync_type": "bulk",
        "action": "start",
        "status": "started",
        "execution_id": EXECUTION,
    }
    assert client.calls == [
        ("start", "bulk", SYNC, {"fetch_mode": "incremental", "schemas": ["public.a"]}, action.dedup_key, DEADLINE)
    ]


def test_start_accepted_without_an_execution_id() -> None:
    outcome = one(StubClient().will("start", Execution(id="", status="")), act())
    assert (outcome.status, outcome.execution_id) == ("started", None)
    assert outcome.reason == "Polytomic accepted the start without an execution id"


@pytest.mark.parametrize(
    ("kind", "active", "status"), [("activate", True, "activated"), ("deactivate", False, "deactivated")]
)
def test_activate_and_deactivate(kind: ActionKind, active: bool, status: str) -> None:
    client = StubClient()
    action = act(kind, "bulk")
    outcome = one(client, action)
    assert (outcome.status, outcome.retryable, outcome.reason, outcome.execution_id) == (status, False, None, None)
    assert client.calls == [("set_active", "bulk", SYNC, active, action.dedup_key, DEADLINE)]


# -- error mapping ------------------------------------------------------------------------------


def test_already_running_is_an_outcome_not_a_failure() -> None:
    error = AlreadyRunning("POST /api/syncs/x/executions: Polytomic answered 409: already running", status=409)
    outcome = one(StubClient().will("start", error), act())
    assert outcome.status == "already_running"
    assert outcome.reason == "Polytomic answered 409: already running"
    assert not outcome.retryable


@pytest.mark.parametrize("kind", ["start", "activate", "deactivate"])
def test_rejected_fails_without_retry(kind: ActionKind) -> None:
    error = Rejected("POST /api/syncs/x: Polytomic answered 404: sync not found", status=404)
    client = StubClient().will("start", error).will("set_active", error)
    outcome = one(client, act(kind))
    assert (outcome.status, outcome.retryable) == ("failed", False)
    assert outcome.reason == "Polytomic answered 404: sync not found"  # without the request line
    assert len(client.calls) == 1


def test_unauthorized_fails_and_is_retried_so_the_event_is_parked_not_dropped() -> None:
    error = Unauthorized("POST /api/syncs/x/executions: Polytomic answered 401: bad key", status=401)
    outcome = one(StubClient().will("start", error), act())
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == f"{reason(error)}; the event will be retried"


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
def test_transient_failures_are_retryable(error: Exception, kind: ActionKind) -> None:
    dedup = StubDedup()
    report, _ = run(StubClient().will("start", error).will("set_active", error), act(kind), dedup=dedup)
    [outcome] = report.outcomes
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == f"{reason(error)}; the event will be retried"
    assert report.retryable == [outcome]
    assert dedup.remembered == []


def test_server_error_on_activate_is_retryable() -> None:
    error = ServerError("POST /api/syncs/x/activate: Polytomic answered 500: oops", status=500)
    client = StubClient().will("set_active", error)
    outcome = one(client, act("activate"))
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == f"{reason(error)}; the event will be retried"
    assert [call[0] for call in client.calls] == ["set_active"]


# -- a 500 on start: look before trying again --------------------------------------------------

SERVER_ERROR = ServerError("POST /api/syncs/x/executions: Polytomic answered 500: internal error", status=500)


@pytest.mark.parametrize(
    "created_at",
    ["2026-11-23T10:00:05Z", "2026-11-23T10:00:00Z", "2026-11-23T11:30:00+01:00"],
)
def test_server_error_then_a_covering_execution_is_started(created_at: str) -> None:
    """Created at or after the trigger: it covers the trigger, nothing starts again."""
    client = (
        StubClient()
        .will("start", SERVER_ERROR)
        .will("executions", [{"id": COVERING, "status": "running", "created_at": created_at}])
    )
    outcome = one(client, act())
    assert (outcome.status, outcome.execution_id, outcome.retryable) == ("started", COVERING, False)
    assert outcome.reason == "Polytomic answered 500, but this execution was created since the trigger"
    assert [call[0] for call in client.calls] == ["start", "executions"]
    assert client.calls[1] == ("executions", "model", SYNC, DEADLINE)


@pytest.mark.parametrize(
    "status",
    [
        [],
        [{"id": COVERING, "status": "completed", "created_at": "2026-11-23T09:59:59Z"}],
        [{"id": COVERING, "status": "completed"}],
        [{"id": COVERING, "created_at": "yesterday"}],
        [{"status": "running", "created_at": "2026-11-23T10:00:05Z"}],
        ["odd"],
    ],
)
def test_server_error_without_a_covering_execution_retries_once_with_a_derived_key(status: list[Any]) -> None:
    action = act("start", "bulk", options=(("fetch_mode", "full"),))
    fresh = Execution(id=EXECUTION, status="created")
    client = StubClient().will("start", SERVER_ERROR, fresh).will("executions", status)
    outcome = one(client, action)
    assert (outcome.status, outcome.execution_id, outcome.retryable) == ("started", EXECUTION, False)
    assert [call[0] for call in client.calls] == ["start", "executions", "start"]
    assert [call[4] for call in client.calls if call[0] == "start"] == [action.dedup_key, f"{action.dedup_key}-r1"]
    assert client.calls[2][3] == {"fetch_mode": "full"}


def test_server_error_then_the_fresh_attempt_finds_a_run_in_progress() -> None:
    running = AlreadyRunning("POST ...: Polytomic answered 409: already running", status=409)
    client = StubClient().will("start", SERVER_ERROR, running)
    outcome = one(client, act())
    assert (outcome.status, outcome.reason) == ("already_running", reason(running))


@pytest.mark.parametrize(
    "again",
    [
        ServerError("POST ...: Polytomic answered 500: still broken", status=500),
        Transient("POST ...: Polytomic answered 503: unavailable", status=503),
        KeyInFlight("POST ...: Polytomic answered 409: Idempotency-Key in flight", status=409),
    ],
)
def test_server_error_then_the_fresh_attempt_fails_too(again: Exception) -> None:
    outcome = one(StubClient().will("start", SERVER_ERROR, again), act())
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert (
        outcome.reason
        == f"{reason(SERVER_ERROR)}; a fresh attempt failed too: {reason(again)}; the event will be retried"
    )


@pytest.mark.parametrize(
    "lookup",
    [
        Transient("GET ...: no answer from Polytomic (ReadTimeoutError)"),
        ServerError("GET ...: Polytomic answered 500: boom", status=500),
    ],
)
def test_server_error_then_the_status_check_fails(lookup: Exception) -> None:
    client = StubClient().will("start", SERVER_ERROR).will("executions", lookup)
    outcome = one(client, act())
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert (
        outcome.reason
        == f"{reason(SERVER_ERROR)}; then looking for a run since the trigger failed: {reason(lookup)}; the event will be retried"
    )
    assert [call[0] for call in client.calls] == ["start", "executions"]  # no blind second start


@pytest.mark.parametrize(
    ("lookup", "retryable"),
    [
        (Rejected("GET ...: Polytomic answered 404: not found", status=404), False),
        (Unauthorized("GET ...: Polytomic answered 401: bad key", status=401), True),
        (CredentialsError("cannot read the Polytomic secret 'p' from Secrets Manager: AccessDeniedException"), True),
    ],
)
def test_server_error_then_any_status_check_failure_is_an_outcome_not_a_crash(
    lookup: Exception, retryable: bool
) -> None:
    client = StubClient().will("start", SERVER_ERROR).will("executions", lookup)
    report, _ = run(client, act(), act(sync_id=OTHER))
    first, second = report.outcomes
    assert (first.status, first.retryable) == ("failed", retryable)
    assert (first.reason or "").startswith(
        f"{reason(SERVER_ERROR)}; then looking for a run since the trigger failed: {reason(lookup)}"
    )
    assert [call[0] for call in client.calls] == ["start", "executions", "start"]  # no blind retry; next action runs
    assert second.status == "started"


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
    client = StubClient().will("start", SERVER_ERROR, again)
    report, _ = run(client, act(), act("deactivate", sync_id=OTHER))
    first, second = report.outcomes
    assert (first.status, first.retryable) == ("failed", retryable)
    assert (first.reason or "").startswith(f"{reason(SERVER_ERROR)}; a fresh attempt failed too: {reason(again)}")
    assert second.status == "deactivated"


# -- activate_first -----------------------------------------------------------------------------


def test_activate_first_activates_then_starts() -> None:
    client = StubClient()
    activate, start = act("activate", activate_first=True), act("start", activate_first=True)
    _, summary = run(client, activate, start)
    assert [o["status"] for o in summary] == ["activated", "started"]
    assert [call[0] for call in client.calls] == ["set_active", "start"]


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (Rejected("POST ...: Polytomic answered 404: not found", status=404), False),
        (Transient("POST ...: Polytomic answered 503: unavailable", status=503), True),
    ],
)
def test_a_failed_activate_skips_its_start(error: Exception, retryable: bool) -> None:
    client = StubClient().will("set_active", error)
    dedup = StubDedup()
    other = act("start", sync_id=OTHER)
    report, summary = run(
        client, act("activate", activate_first=True), act("start", activate_first=True), other, dedup=dedup
    )
    assert [(o["action"], o["sync_id"], o["status"]) for o in summary] == [
        ("activate", SYNC, "failed"),
        ("start", SYNC, "failed"),
        ("start", OTHER, "started"),
    ]
    assert summary[1]["reason"] == "not started: activating the sync first failed"
    assert report.outcomes[0].retryable is retryable
    assert [call[0] for call in client.calls] == ["set_active", "start"]
    assert [call[2] for call in client.calls] == [SYNC, OTHER]
    assert len(dedup.seen) == 2  # the skipped start never reached dedup: a retry will do it


def test_a_failed_activate_does_not_skip_starts_without_activate_first() -> None:
    client = StubClient().will("set_active", Rejected("404", status=404))
    _, summary = run(client, act("activate"), act("start"))
    assert [o["status"] for o in summary] == ["failed", "started"]


# -- dedup --------------------------------------------------------------------------------------


def test_a_remembered_action_comes_back_as_duplicate() -> None:
    class Remembering(StubDedup):
        def once_key(self, key: str, perform: Callable[[], Outcome]) -> Outcome:
            return Outcome.of(act(), "duplicate", reason="already started for this trigger")

    client = StubClient()
    _, summary = run(client, act(), dedup=Remembering())
    assert summary[0]["status"] == "duplicate"
    assert client.calls == []


def test_another_delivery_in_progress_is_retryable_and_calls_nothing() -> None:
    client = StubClient()
    report, _ = run(client, act(), dedup=StubDedup(IdempotencyAlreadyInProgressError("in progress")))
    [outcome] = report.outcomes
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert (
        outcome.reason == "another delivery of this trigger is doing this action right now; the event will be retried"
    )
    assert client.calls == []


def test_a_broken_dedup_table_is_retryable_and_calls_nothing() -> None:
    client = StubClient()
    error = IdempotencyPersistenceLayerError("Failed to save in progress record to idempotency store\nsecond line")
    report, _ = run(client, act(), dedup=StubDedup(error))
    [outcome] = report.outcomes
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason is not None
    assert outcome.reason.startswith("the dedup table cannot be used, so nothing was called: ")
    assert "second line" not in outcome.reason
    assert client.calls == []


def test_successful_outcomes_are_remembered_and_failures_are_not() -> None:
    client = StubClient().will("start", Execution(id=EXECUTION, status="created"), Rejected("400"))
    dedup = StubDedup()
    first, second = act(), act(sync_id=OTHER)
    run(client, first, second, dedup=dedup)
    assert dedup.seen == [first.dedup_key, second.dedup_key]
    assert dedup.remembered == [first.dedup_key]


# -- the report ---------------------------------------------------------------------------------


def test_report_summary_and_actions_failed_message() -> None:
    client = StubClient().will("start", Transient("POST x: Polytomic answered 503: busy", status=503), Rejected("nope"))
    report, summary = run(client, act(), act(sync_id=OTHER), act("deactivate", "bulk"))
    assert report.summary() == {"outcomes": summary}
    assert [o["status"] for o in summary] == ["failed", "failed", "deactivated"]
    assert all("retryable" not in o for o in summary)
    assert [o.sync_id for o in report.retryable] == [SYNC]
    error = ActionsFailed(report)
    assert str(error) == (
        f"1 action(s) failed and will be retried: start {SYNC} (orders-landing): "
        "Polytomic answered 503: busy; the event will be retried"
    )
    assert error.report is report


def test_report_extend() -> None:
    a = Report(outcomes=[Outcome.of(act(), "started")])
    failed = Outcome.of(act(), "failed", reason="r", retryable=True)
    b = Report(outcomes=[failed], retryable=[failed])
    a.extend(b)
    assert [o.status for o in a.outcomes] == ["started", "failed"]
    assert a.retryable == [failed]


def test_no_actions_no_calls() -> None:
    client = StubClient()
    report, summary = run(client)
    assert (summary, report.retryable, client.calls) == ([], [], [])
