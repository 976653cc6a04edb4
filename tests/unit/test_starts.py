"""Calls: one action's Polytomic call under its key. The verdict table, from client errors to
outcomes; recovery from a 500 (a start looks for a run since its bound, then tries a fresh key; an
activation sets it again under a fresh key); and the dedup boundary (`DispatchPolicy.once`), against
the fake Polytomic in process (the real client; failures from the fake's fault injection) and the
in-memory dedup table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import pytest

from local.memory import MemoryDedup, MemoryQueue, MemoryWindows
from polytrigger.core.actions import Action, ActionKind, SyncType
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.calls import (
    FAILURES,
    REQUEST_SECONDS,
    VERDICTS,
    Calls,
    Paused,
    Running,
    Throttle,
    Verdict,
    verdict,
)
from polytrigger.dispatch.deferrals import Deferrals, coverage_since
from polytrigger.dispatch.policy import DispatchPolicy
from polytrigger.dispatch.ports import DedupUnavailable, Refused, RetryLater
from polytrigger.polytomic.contract import (
    AlreadyRunning,
    CredentialsError,
    KeyInFlight,
    PolytomicError,
    Rejected,
    ServerError,
    Throttled,
    Transient,
    Unauthorized,
    UnreadableAnswer,
)
from tests.unit.dispatch_support import (
    ATTEMPTS,
    COVERING,
    DEADLINE,
    OTHER,
    RUNNING,
    SYNC,
    UNREADABLE_SECRET,
    WHEN,
    Call,
    Polytomic,
    act,
)

# Times, epoch seconds. The trigger (WHEN, 10:00:00, a whole second) reached us 2 s later; its
# coverage bound is then 10:00:03 (the end of its second, or its arrival, plus the skew allowance).
# The start's first request went out at 10:00:10 (a deferred or debounced start goes out later still).
TRIGGERED = WHEN.timestamp()
RECEIVED = TRIGGERED + 2
SINCE = coverage_since(WHEN, RECEIVED)
SENT = TRIGGERED + 10
START_FOUND = "Polytomic answered 500, but this execution was created since the trigger or the request"
GONE = "3e1f5c7a-9b2d-4c6e-8f0a-1b3c5d7e9f20"  # a sync Polytomic does not know

# What the fake answers, as an outcome's reason shows it (without the request line).
BROKEN = "Polytomic answered 500: internal server error"
STILL_BROKEN = "Polytomic answered 500: still broken"
REFUSED = "Polytomic answered 422: sync is misconfigured"
NOT_FOUND = "Polytomic answered 404: sync not found"

# Starts no plain run (scheduled, or another route's) does: after a 500 only runs since the request count.
UNCOVERABLE = [
    pytest.param("model", (("resync", True),), id="resync"),
    pytest.param("model", (("test", True),), id="test"),
    pytest.param("bulk", (("fetch_mode", "full"),), id="full-fetch"),
    pytest.param("model", (("identities", ("a@example.com",)),), id="identities"),
    pytest.param("bulk", (("resync_mode", "rebuild"),), id="resync-mode"),
]

# -- how Polytomic (or the secret) fails a call, arranged on the fake's side ---------------------

Target = Literal["start", "activate", "deactivate", "executions"]
_WHERE: dict[Target, tuple[str, str]] = {  # (method, path_contains) of the requests a target makes
    "start": ("POST", "/executions"),
    "activate": ("POST", "/activate"),
    "deactivate": ("POST", "/activate"),
    "executions": ("GET", "/executions"),
}


def fail(api: Polytomic, failure: str, target: Target, key: str | None = None, *, read: int = 1) -> str:
    """Make the next call to `target` (with Idempotency-Key `key`) fail as `failure` says; the reason
    an outcome shows for it. `read`: which read of the secret fails, for "secret unreadable"."""
    method, path = _WHERE[target]
    if failure == "unavailable":  # 503 to every attempt of the client's call
        api.fake.inject(
            503, times=ATTEMPTS, response_body={"message": "unavailable"}, method=method, path_contains=path
        )
        return "Polytomic answered 503: unavailable"
    if failure == "no answer":  # the connection drops, every attempt
        api.fake.inject(drop=True, times=ATTEMPTS, method=method, path_contains=path)
        return "no answer from Polytomic (ProtocolError)"
    if failure == "key in flight":  # another request with the key is being processed meanwhile
        assert key is not None
        api.fake.hold_key(key)
        return "Polytomic answered 409: a request with this Idempotency-Key is in progress (being processed)"
    if failure == "unreadable":  # Polytomic did it, but what came back says nothing readable
        if target == "start":
            api.fake.inject(
                201, in_transit=True, response_body={"data": {"status": "created"}}, method=method, path_contains=path
            )
            return 'Polytomic answered 201 but the execution has no "id": nothing is recorded as started'
        asked = target == "activate"
        api.fake.inject(
            200,
            in_transit=True,
            response_body={"data": {"id": SYNC, "active": not asked}},
            method=method,
            path_contains=path,
        )
        done = "activated" if asked else "paused"
        return f'Polytomic answered 200 but "active" is {str(not asked).lower()}, not {str(asked).lower()} as asked: nothing is recorded as {done}'
    if failure == "secret unreadable":
        api.secret.fail_from(read)
        return UNREADABLE_SECRET
    if failure == "unauthorized":  # the key is refused, and again after the client re-read the secret
        api.fake.inject(401, times=2, method=method, path_contains=path)
        return "Polytomic answered 401: unauthorized (still after re-reading the secret)"
    if failure == "running":  # 409: a run of the sync is in progress
        if target == "start":
            api.busy()  # since long before the trigger: it covers nothing
        else:  # not documented for anything but a start; were one to come
            api.fake.inject(409, method=method, path_contains=path)
        return RUNNING
    statuses = {"not found": 404, "forbidden": 403, "refused": 422, "server error": 500, "still broken": 500}
    messages = {
        "not found": "sync not found",
        "refused": "sync is misconfigured",
        "server error": "internal server error",
    }
    status = statuses[failure]
    message = messages.get(failure, failure)
    api.fake.inject(status, response_body={"message": message}, method=method, path_contains=path)
    return f"Polytomic answered {status}: {message}"


def retried(why: str) -> str:
    return f"{why}; the event will be retried"


def call(
    api: Polytomic,
    action: Action,
    dedup: MemoryDedup | None = None,
    *,
    key: str | None = None,
    at: float = SENT,
    since: float = SINCE,
) -> Outcome | Running | Throttle | Paused:
    """`Calls.call` with the clock at `at` (when the request goes out), without the dedup boundary."""
    api.knows(action)
    api.clock.now = at
    starts = Calls(api.client, dedup if dedup is not None else MemoryDedup(), api.clock)
    return starts.call(action, action.dedup_key if key is None else key, DEADLINE, since)


def perform(
    api: Polytomic, action: Action, dedup: MemoryDedup | None = None, *, at: float = SENT, since: float = SINCE
) -> Outcome:
    """The call under dedup with the action's own key, as a policy makes it; a 409 here is a test failure."""
    api.knows(action)
    api.clock.now = at
    starts = Calls(api.client, dedup if dedup is not None else MemoryDedup(), api.clock)
    policy = DispatchPolicy(starts, Deferrals(MemoryQueue(), MemoryWindows(), max_age=3600))

    def attempt() -> Outcome:
        result = starts.call(action, action.dedup_key, DEADLINE, since)
        assert not isinstance(result, Running | Throttle | Paused), result
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


def listed(api: Polytomic, executions: list[Any]) -> None:
    """Polytomic's next execution list holds exactly this, whatever JSON it is (scripted through a fault:
    the fake itself writes only well-formed executions)."""
    body = {"data": executions, "pagination": {"next_page_token": None}}
    api.fake.inject(200, method="GET", path_contains="/executions", response_body=body)


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


class CounterDown(MemoryDedup):
    def next_attempt(self, key: str) -> int:
        raise DedupUnavailable("ProvisionedThroughputExceededException")


def test_the_times_the_tests_use() -> None:
    """The coverage bound falls between the trigger and the first request: both bounds can be told apart."""
    assert (SINCE - TRIGGERED, SENT - TRIGGERED) == (2.0, 10.0)


# -- successes ----------------------------------------------------------------------------------


def test_start_sends_body_dedup_key_and_deadline() -> None:
    api = Polytomic()
    action = act("start", "bulk", options=(("fetch_mode", "incremental"), ("schemas", ("public.a",))))
    outcome = perform(api, action)
    assert outcome.to_dict() == {
        "route": "orders-landing",
        "sync_id": SYNC,
        "sync_type": "bulk",
        "action": "start",
        "status": "started",
        "execution_id": api.started_id,
    }
    body = {"fetch_mode": "incremental", "schemas": ["public.a"]}
    assert api.calls == [Call("start", "bulk", SYNC, DEADLINE, key=action.dedup_key, body=body)]
    [sent] = api.fake.calls  # on the wire
    assert (sent.path, sent.body, sent.headers["idempotency-key"]) == (
        f"/api/bulk/syncs/{SYNC}/executions",
        body,
        action.dedup_key,
    )
    assert api.fake.executions(SYNC)[0].options == body


@pytest.mark.parametrize(
    ("kind", "active", "status"), [("activate", True, "activated"), ("deactivate", False, "deactivated")]
)
def test_activate_and_deactivate(kind: ActionKind, active: bool, status: str) -> None:
    api = Polytomic()
    action = act(kind, "bulk")
    api.knows(action)
    api.fake.set_active(SYNC, not active)
    outcome = perform(api, action)
    assert (outcome.status, outcome.retryable, outcome.reason, outcome.execution_id) == (status, False, None, None)
    assert api.calls == [Call("set_active", "bulk", SYNC, DEADLINE, key=action.dedup_key, active=active)]
    assert api.fake.sync(SYNC).active is active


@pytest.mark.parametrize("kind", ["start", "activate"])
def test_the_key_given_is_the_idempotency_key_sent(kind: ActionKind) -> None:
    """A queued message calls with its own id, not the action's dedup key."""
    api = Polytomic()
    message_id = "f" * 64
    result = Calls(api.client, MemoryDedup(), api.clock).call(act(kind), message_id, None, SINCE)
    assert isinstance(result, Outcome)
    assert [(call.key, call.deadline) for call in api.calls] == [(message_id, None)]
    assert [call.headers["idempotency-key"] for call in api.fake.calls] == [message_id]


def test_the_clock_is_the_wall_clock_unless_given() -> None:
    api, dedup = Polytomic(), MemoryDedup()
    assert Calls(api.client, dedup).clock is time.time
    assert Calls(api.client, dedup, api.clock).clock is api.clock


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
    api = Polytomic()
    api.busy()
    result = call(api, act())
    assert result == Running(RUNNING)
    assert api.operations == ["start"]


@pytest.mark.parametrize("kind", ["start", "activate", "deactivate"])
def test_rejected_fails_without_retry(kind: ActionKind) -> None:
    api = Polytomic()
    outcome = perform(api, act(kind, sync_id=GONE))  # a sync Polytomic does not know
    assert (outcome.status, outcome.retryable) == ("failed", False)
    assert outcome.reason == NOT_FOUND  # without the request line
    assert len(api.calls) == 1
    asked = ["GET"] if kind == "start" else []  # a refused start asks the sync whether it is paused: 404 too
    assert [call.method for call in api.fake.calls] == ["POST", *asked]


def test_unauthorized_fails_and_is_retried_so_the_event_is_parked_not_dropped() -> None:
    api = Polytomic()
    api.fake.set_api_keys(["a-rotated-key"])  # the secret still holds the old one
    outcome = perform(api, act())
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == retried("Polytomic answered 401: unauthorized (still after re-reading the secret)")
    assert (api.secret.reads, len(api.fake.calls)) == (2, 2)  # read again once, asked again once


@pytest.mark.parametrize("failure", ["unavailable", "no answer", "key in flight", "unreadable", "secret unreadable"])
@pytest.mark.parametrize("kind", ["start", "activate"])
def test_transient_failures_are_retryable_and_not_remembered(failure: str, kind: ActionKind) -> None:
    api, dedup, action = Polytomic(), MemoryDedup(), act(kind)
    why = fail(api, failure, kind, action.dedup_key)
    outcome = perform(api, action, dedup)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == retried(why)
    assert [call.key for call in api.calls] == [action.dedup_key]  # no fresh key, no look: only a 500 has those
    assert dedup.seen == [action.dedup_key]
    assert dedup.records == {}
    assert (dedup.sent, dedup.attempts) == ({}, {})


def test_a_start_answered_without_an_execution_id_is_retried_under_the_same_key_and_not_remembered() -> None:
    """A 2xx always names its execution now (the client raises `UnreadableAnswer` otherwise): never a
    `started` without an id; the retry asks again with the same key, and Polytomic replays its answer."""
    api, action, dedup = Polytomic(), act(), MemoryDedup()
    why = fail(api, "unreadable", "start")  # the run started; the answer that came back named none
    first = perform(api, action, dedup)
    assert summary(first) == ("failed", None, retried(why), True)
    assert dedup.records == {}
    again = perform(api, action, dedup)
    assert summary(again) == ("started", api.started_id, None, False)  # the one run, named at last
    assert api.calls == [start(action, action.dedup_key), start(action, action.dedup_key)]
    assert list(dedup.records) == [action.dedup_key]


def test_an_error_the_policy_does_not_name_propagates_and_is_not_remembered() -> None:
    api, dedup = Polytomic(), MemoryDedup()
    api.secret.fail_from(1, ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        perform(api, act(), dedup)
    assert dedup.records == {}


# -- a 500 on activate / deactivate: set it again under a fresh key ------------------------------


@pytest.mark.parametrize(("kind", "status"), [("activate", "activated"), ("deactivate", "deactivated")])
def test_server_error_on_activate_or_deactivate_sets_it_again_at_once_under_a_fresh_key(
    kind: ActionKind, status: str
) -> None:
    """Polytomic replays a 500 for its key for 24 h, so a retry under the same key could not freeze or
    thaw the sync that day; setting the state is idempotent, so it is set again at once under
    `<key>-r1`, without looking at runs."""
    api, action, dedup = Polytomic(), act(kind), MemoryDedup()
    fail(api, "server error", kind)
    outcome = perform(api, action, dedup)
    assert summary(outcome) == (status, None, None, False)
    key = action.dedup_key
    assert api.calls == [set_active(action, key), set_active(action, f"{key}-r1")]
    stored = api.fake.stored_response(key)
    assert stored is not None
    assert stored.status == 500  # what a retry under the same key would get
    assert dedup.attempts == {key: 1}
    assert dedup.sent == {}  # no look for runs, so no bound to keep
    assert list(dedup.records) == [key]


@pytest.mark.parametrize("kind", ["activate", "deactivate"])
def test_a_second_server_error_on_activate_is_retryable_and_each_delivery_uses_a_new_key(kind: ActionKind) -> None:
    """A second 500 is retried (not remembered), and every later delivery, whose first request gets the
    replayed 500, sets it again under a key Polytomic has not seen: -r2, -r3."""
    api, action, dedup = Polytomic(), act(kind), MemoryDedup()
    broken = fail(api, "server error", kind)  # the first key: stored, replayed to every delivery
    method, path = _WHERE[kind]
    api.fake.inject(500, times=2, response_body={"message": "still broken"}, method=method, path_contains=path)
    first, second, third = (perform(api, action, dedup) for _ in range(3))
    failed_twice = f"{broken}; a fresh attempt failed too: {retried(STILL_BROKEN)}"
    assert summary(first) == summary(second) == ("failed", None, failed_twice, True)
    assert summary(third) == ("activated" if kind == "activate" else "deactivated", None, None, False)
    key = action.dedup_key
    assert api.calls == [
        set_active(action, key),
        set_active(action, f"{key}-r1"),
        set_active(action, key),
        set_active(action, f"{key}-r2"),
        set_active(action, key),
        set_active(action, f"{key}-r3"),
    ]
    assert [call.replayed for call in api.fake.calls_to("/activate")] == [False, False, True, False, True, False]
    assert dedup.attempts == {key: 3}
    assert list(dedup.records) == [key]


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        ("not found", False),
        ("unavailable", True),
        ("key in flight", True),
        ("unauthorized", True),
        ("unreadable", True),
        ("secret unreadable", True),
    ],
)
def test_server_error_on_deactivate_then_the_fresh_attempt_fails_as_the_policy_rules(
    failure: str, retryable: bool
) -> None:
    """The second error's verdict decides, and the reason names both errors."""
    api, action, dedup = Polytomic(), act("deactivate"), MemoryDedup()
    broken = fail(api, "server error", "deactivate")
    again = fail(api, failure, "deactivate", f"{action.dedup_key}-r1", read=2)
    outcome = perform(api, action, dedup)
    why = f"{broken}; a fresh attempt failed too: {again}"
    assert summary(outcome) == ("failed", None, retried(why) if retryable else why, retryable)
    assert api.calls == [set_active(action, action.dedup_key), set_active(action, f"{action.dedup_key}-r1")]
    assert dedup.records == {}


def test_server_error_on_activate_then_the_fresh_attempt_finds_a_run_in_progress() -> None:
    """A 409 to the fresh attempt is `Running`, as for any 409: the caller decides."""
    api, action = Polytomic(), act("activate")
    broken = fail(api, "server error", "activate")
    running = fail(api, "running", "activate")
    result = call(api, action)
    assert result == Running(f"{broken}; a fresh attempt failed too: {running}")
    assert api.calls == [set_active(action, action.dedup_key), set_active(action, f"{action.dedup_key}-r1")]


def test_server_error_on_activate_when_the_retry_counter_cannot_be_kept_calls_nothing_more() -> None:
    """Without a counted fresh key there is no second request (no key to reuse)."""
    api, action = Polytomic(), act("activate")
    broken = fail(api, "server error", "activate")
    outcome = perform(api, action, CounterDown())
    why = f"{broken}; then the retry counter could not be kept: ProvisionedThroughputExceededException"
    assert summary(outcome) == ("failed", None, retried(why), True)
    assert api.calls == [set_active(action, action.dedup_key)]


# -- a 500 on start: look before trying again --------------------------------------------------


@pytest.mark.parametrize(
    "created",
    [
        pytest.param(SINCE, id="at-the-trigger-bound"),
        pytest.param(SINCE + 3.5, id="after-it"),
        pytest.param(SENT + 20, id="after-the-request-too"),
    ],
)
def test_server_error_then_a_covering_execution_is_started(created: float) -> None:
    """A plain start: a run created since the trigger's coverage bound covers it, nothing starts again."""
    api, action = Polytomic(), act()
    fail(api, "server error", "start")
    api.ran(COVERING, created)
    outcome = perform(api, action)
    assert summary(outcome) == ("started", COVERING, START_FOUND, False)
    assert api.calls == [start(action, action.dedup_key), listing(action)]


def test_server_error_then_a_run_dated_with_an_offset_covers_as_its_utc_moment() -> None:
    """Polytomic may date a run with an offset rather than Z: the same moment covers the same."""
    api, action = Polytomic(), act()
    fail(api, "server error", "start")
    listed(api, [{"id": COVERING, "status": "running", "created_at": "2026-11-23T11:00:02+01:00"}])  # at SINCE
    outcome = perform(api, action)
    assert summary(outcome) == ("started", COVERING, START_FOUND, False)
    assert api.calls == [start(action, action.dedup_key), listing(action)]


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
    """A run of the trigger's own second may have begun before the file landed: it does not cover it;
    nor does anything Polytomic lists that does not say when it was created, or which run it is."""
    api, action, dedup = Polytomic(), act(), MemoryDedup()
    fail(api, "server error", "start")
    listed(api, executions)
    outcome = perform(api, action, dedup)
    assert summary(outcome) == ("started", api.started_id, None, False)
    key = action.dedup_key
    assert api.calls == [start(action, key), listing(action), start(action, f"{key}-r1")]
    assert dedup.attempts == {key: 1}


def test_each_delivery_after_a_replayed_server_error_tries_a_new_key() -> None:
    """Polytomic replays a 500 for a key: every later retry needs a key it has not seen."""
    api, dedup, action = Polytomic(), MemoryDedup(), act()
    api.fake.inject(500, times=2, method="POST")  # the first key and -r1; the first key is replayed after
    first = perform(api, action, dedup)
    second = perform(api, action, dedup, at=SENT + 60)
    assert summary(first) == ("failed", None, retried(f"{BROKEN}; a fresh attempt failed too: {BROKEN}"), True)
    assert summary(second) == ("started", api.started_id, None, False)
    key = action.dedup_key
    assert api.calls == [
        start(action, key),
        listing(action),
        start(action, f"{key}-r1"),
        start(action, key),
        listing(action),
        start(action, f"{key}-r2"),
    ]
    assert [call.replayed for call in api.fake.calls_to("/executions", "POST")] == [False, False, True, False]
    assert dedup.attempts == {key: 2}
    assert dedup.sent == {key: SENT}


def test_fresh_keys_and_the_first_request_are_counted_per_key_given_not_per_action() -> None:
    """A queued message calls with its own id: its fresh keys derive from that id and are counted under
    it, so two messages of one action each get their own -r1."""
    api, action, dedup = Polytomic(), act(options=(("resync", True),)), MemoryDedup()
    first_message, second_message = "a" * 64, "b" * 64
    fail(api, "server error", "start")
    first = call(api, action, dedup, key=first_message)
    fail(api, "server error", "start")
    second = call(api, action, dedup, key=second_message, at=SENT + 900)  # the first run is over by then
    assert [first, second] == [Outcome.of(action, "started", execution_id=run) for run in api.started_ids]
    assert api.start_keys == [first_message, f"{first_message}-r1", second_message, f"{second_message}-r1"]
    assert dedup.attempts == {first_message: 1, second_message: 1}
    assert dedup.sent == {first_message: SENT, second_message: SENT + 900}
    assert action.dedup_key not in dedup.attempts


def test_server_error_then_the_fresh_attempt_finds_a_run_in_progress() -> None:
    """Running, as for any 409: the caller decides (defer, or `already_running`)."""
    api, action = Polytomic(), act()
    fail(api, "server error", "start")
    running = fail(api, "running", "start")
    result = call(api, action)
    assert result == Running(running)
    assert api.start_keys == [action.dedup_key, f"{action.dedup_key}-r1"]


@pytest.mark.parametrize("failure", ["still broken", "unavailable", "key in flight", "unreadable"])
def test_server_error_then_the_fresh_attempt_fails_too(failure: str) -> None:
    api, dedup, action = Polytomic(), MemoryDedup(), act()
    fail(api, "server error", "start")
    again = fail(api, failure, "start", f"{action.dedup_key}-r1")
    outcome = perform(api, action, dedup)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == f"{BROKEN}; a fresh attempt failed too: {retried(again)}"
    assert dedup.records == {}


@pytest.mark.parametrize("failure", ["no answer", "server error"])
def test_server_error_then_the_status_check_fails(failure: str) -> None:
    api = Polytomic()
    api.fake.inject(500, method="POST")
    lookup = fail(api, failure, "executions")
    outcome = perform(api, act())
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == f"{BROKEN}; then looking for a run since the trigger failed: {retried(lookup)}"
    assert api.operations == ["start", "executions"]  # no blind second start


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [("not found", False), ("running", False), ("unauthorized", True), ("secret unreadable", True)],
)
def test_server_error_then_any_status_check_failure_is_an_outcome_not_a_crash(failure: str, retryable: bool) -> None:
    api = Polytomic()
    fail(api, "server error", "start")
    lookup = fail(api, failure, "executions", read=2)
    outcome = perform(api, act())
    why = f"{BROKEN}; then looking for a run since the trigger failed: {lookup}"
    assert (outcome.status, outcome.retryable) == ("failed", retryable)
    assert outcome.reason == (retried(why) if retryable else why)
    assert api.operations == ["start", "executions"]  # no blind retry


@pytest.mark.parametrize(
    ("failure", "retryable"), [("forbidden", False), ("unauthorized", True), ("secret unreadable", True)]
)
def test_server_error_then_any_fresh_attempt_failure_is_an_outcome_not_a_crash(failure: str, retryable: bool) -> None:
    api, action = Polytomic(), act()
    fail(api, "server error", "start")
    again = fail(api, failure, "start", read=3)  # the start, the look for runs, then the fresh attempt
    outcome = perform(api, action)
    why = f"{BROKEN}; a fresh attempt failed too: {again}"
    assert (outcome.status, outcome.retryable) == ("failed", retryable)
    assert outcome.reason == (retried(why) if retryable else why)


def test_server_error_when_the_retry_counter_cannot_be_kept_calls_nothing_more() -> None:
    api = Polytomic()
    fail(api, "server error", "start")
    outcome = perform(api, act(), CounterDown())
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == retried(
        f"{BROKEN}; then the retry counter could not be kept: ProvisionedThroughputExceededException"
    )
    assert api.operations == ["start", "executions"]


# -- a 500 on start: which runs count (the first request's time) ---------------------------------


def test_after_a_500_a_plain_start_takes_a_run_created_since_the_trigger() -> None:
    """A start any run covers is covered by a run created since the trigger's bound, even one created
    before its own request went out (its bound is the earlier of the two)."""
    api, action, dedup = Polytomic(), act(), MemoryDedup()
    assert action.sync.coverable
    fail(api, "server error", "start")
    api.ran(COVERING, SINCE)  # after the trigger, 7 s before the request
    outcome = perform(api, action, dedup)
    assert summary(outcome) == ("started", COVERING, START_FOUND, False)
    assert api.calls == [start(action, action.dedup_key), listing(action)]
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
    """The trigger's bound has a skew allowance, so a request may go out before it: a run created since
    the request may be the one it made, and counts (min(since, first sent))."""
    api, action, dedup = Polytomic(), act(), MemoryDedup()
    sent = SINCE - 0.5
    assert sent < SINCE
    fail(api, "server error", "start")
    api.ran(COVERING, created)
    outcome = perform(api, action, dedup, at=sent)
    key = action.dedup_key
    if found:
        assert summary(outcome) == ("started", COVERING, START_FOUND, False)
        assert api.calls == [start(action, key), listing(action)]
    else:
        assert summary(outcome) == ("started", api.started_id, None, False)
        assert api.calls == [start(action, key), listing(action), start(action, f"{key}-r1")]
    assert dedup.sent == {key: sent}


@pytest.mark.parametrize(("sync_type", "options"), UNCOVERABLE)
def test_after_a_500_a_resync_is_not_taken_for_a_run_created_before_its_request(
    sync_type: SyncType, options: tuple[tuple[str, Any], ...]
) -> None:
    """A resync / test / full fetch / identities start counts only runs created since its own request
    was first sent: a plain run created since the trigger is not the resync having started, so a fresh
    attempt goes out."""
    api, action, dedup = Polytomic(), act(sync_type=sync_type, options=options), MemoryDedup()
    assert not action.sync.coverable
    api.knows(action)
    fail(api, "server error", "start")
    api.ran(OTHER, SINCE)  # since the trigger
    api.ran(COVERING, SENT - 0.001)  # just before the request
    outcome = perform(api, action, dedup)
    assert summary(outcome) == ("started", api.started_id, None, False)
    key = action.dedup_key
    assert api.calls == [start(action, key), listing(action), start(action, f"{key}-r1")]
    assert api.calls[2].body == action.sync.body() != {}
    assert dedup.sent == {key: SENT}
    assert dedup.attempts == {key: 1}


@pytest.mark.parametrize("after", [0.0, 0.25, 12.0])
@pytest.mark.parametrize(("sync_type", "options"), UNCOVERABLE)
def test_after_a_500_a_resync_takes_a_run_created_since_its_request_as_its_own(
    sync_type: SyncType, options: tuple[tuple[str, Any], ...], after: float
) -> None:
    """Only the first request with the key can have made a run; one created while that request can have
    been in flight is taken as the start, so the resync does not run twice."""
    api, action, dedup = Polytomic(), act(sync_type=sync_type, options=options), MemoryDedup()
    api.knows(action)
    fail(api, "server error", "start")
    api.ran(COVERING, SENT + after)
    api.ran(OTHER, SENT + after + 1)  # the newest counts
    outcome = perform(api, action, dedup)
    assert summary(outcome) == ("started", OTHER, START_FOUND, False)
    assert api.calls == [start(action, action.dedup_key), listing(action)]
    assert dedup.attempts == {}


@pytest.mark.parametrize(("sync_type", "options"), UNCOVERABLE)
def test_after_a_500_a_resync_is_not_taken_for_a_run_created_after_its_request_was_over(
    sync_type: SyncType, options: tuple[tuple[str, Any], ...]
) -> None:
    """Found by `make reliability`: a plain run another file started a while after the resync's
    request was taken for the resync, which then never ran. A run our request made was created while
    it was in flight (its timeouts, plus a second of skew), not later."""
    api, action, dedup = Polytomic(), act(sync_type=sync_type, options=options), MemoryDedup()
    api.knows(action)
    fail(api, "server error", "start")
    api.ran(OTHER, SENT + REQUEST_SECONDS + 0.001)
    outcome = perform(api, action, dedup)
    assert summary(outcome) == ("started", api.started_id, None, False)
    key = action.dedup_key
    assert api.calls == [start(action, key), listing(action), start(action, f"{key}-r1")]


def test_the_first_request_of_a_key_bounds_every_later_delivery() -> None:
    """The first request's time is kept (the earliest given): a later delivery, whose request only gets
    the replayed 500, still counts runs since the first request, such as one an earlier fresh attempt
    made although it answered 500. Nothing starts a third time."""
    api, action, dedup = Polytomic(), act(options=(("resync", True),)), MemoryDedup()
    key = action.dedup_key
    api.fake.inject(500, method="POST")  # the first key: replayed to the next delivery
    api.fake.inject(500, method="POST", side_effects=True)  # -r1: it made the run, and answered 500
    first = perform(api, action, dedup)
    assert summary(first) == ("failed", None, retried(f"{BROKEN}; a fresh attempt failed too: {BROKEN}"), True)
    [made] = api.fake.executions(SYNC)
    second = perform(api, action, dedup, at=SENT + 300)
    assert summary(second) == ("started", made.id, START_FOUND, False)
    assert api.calls == [
        start(action, key),
        listing(action),
        start(action, f"{key}-r1"),
        start(action, key),
        listing(action),
    ]
    assert dedup.sent == {key: SENT}
    assert dedup.attempts == {key: 1}


def test_the_time_of_a_request_is_read_before_it_is_sent() -> None:
    """The bound is when the request went out, not when its 500 came back: a run a slow request made
    while it was out counts."""
    api, action, dedup = Polytomic(), act(options=(("resync", True),)), MemoryDedup()
    api.fake.inject(500, method="POST", delay=8)  # Polytomic takes 8 s to answer (within the read timeout)
    api.ran(COVERING, SENT + 1)
    starts = Calls(api.client, dedup, api.clock)
    result = starts.call(action, action.dedup_key, DEADLINE, SINCE)
    assert result == Outcome.of(action, "started", execution_id=COVERING, reason=START_FOUND)
    assert api.calls == [start(action, action.dedup_key), listing(action)]
    assert (dedup.sent, api.clock.now) == ({action.dedup_key: SENT}, SENT + 8)


def test_server_error_when_the_time_of_the_first_request_cannot_be_kept_calls_nothing_more() -> None:
    """Without the first request's time no run can be told to be ours: no look, no fresh attempt; retried."""

    class SentDown(MemoryDedup):
        def first_sent(self, key: str, sent: float) -> float:
            raise DedupUnavailable("ProvisionedThroughputExceededException")

    api, action, dedup = Polytomic(), act(), SentDown()
    fail(api, "server error", "start")
    api.ran(COVERING, SENT + 1)
    outcome = perform(api, action, dedup)
    why = f"{BROKEN}; then the time of the first request could not be kept: ProvisionedThroughputExceededException"
    assert summary(outcome) == ("failed", None, retried(why), True)
    assert api.calls == [start(action, action.dedup_key)]
    assert (dedup.records, dedup.attempts) == ({}, {})


# -- covering: a run since a moment -------------------------------------------------------------


def test_covering_is_the_newest_execution_created_since_the_moment() -> None:
    api, action = Polytomic(), act("start", "bulk")
    api.knows(action)
    at_the_bound, just_before = "9b2e1c4d-5f6a-4b7c-8d9e-0f1a2b3c4d5e", "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
    api.ran(just_before, SINCE - 0.000001)
    api.ran(at_the_bound, SINCE)
    api.ran(COVERING, SINCE + 298)
    starts = Calls(api.client, MemoryDedup(), api.clock)
    assert [
        starts.covering(action, SINCE, DEADLINE),  # the newest of those since
        starts.covering(action, SINCE, DEADLINE, until=SINCE + 1),  # at the moment counts
        starts.covering(action, SINCE + 0.000001, DEADLINE, until=SINCE + 1),  # before it does not
    ] == [COVERING, at_the_bound, None]
    assert api.calls == [Call("executions", "bulk", SYNC, DEADLINE)] * 3


def test_covering_takes_epoch_seconds_with_fractions() -> None:
    api = Polytomic()
    api.ran(COVERING, SINCE + 0.25)
    starts = Calls(api.client, MemoryDedup(), api.clock)
    assert [starts.covering(act(), moment, None) for moment in (SINCE + 0.25, SINCE + 0.250001)] == [COVERING, None]


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        ("not found", Refused),
        ("running", Refused),
        ("unavailable", RetryLater),
        ("server error", RetryLater),
        ("unauthorized", RetryLater),
    ],
)
def test_covering_fails_as_the_policy_rules(failure: str, raised: type[Exception]) -> None:
    api = Polytomic()
    why = fail(api, failure, "executions")
    starts = Calls(api.client, MemoryDedup(), api.clock)
    with pytest.raises(raised) as failed:
        starts.covering(act(), SINCE, None)
    assert str(failed.value) == f"looking for a run since the trigger failed: {why}"


# -- dedup --------------------------------------------------------------------------------------


def test_a_remembered_action_comes_back_as_duplicate_and_calls_nothing() -> None:
    api, dedup = Polytomic(), MemoryDedup()
    first = perform(api, act(), dedup)
    again = perform(api, act(), dedup)
    assert (first.status, again.status) == ("started", "duplicate")
    assert (again.execution_id, again.reason) == (api.started_id, "already started for this trigger")
    assert api.operations == ["start"]


def test_another_delivery_in_progress_is_retryable_and_calls_nothing() -> None:
    api, dedup, action = Polytomic(), MemoryDedup(), act()
    during: list[Outcome] = []

    def other_delivery() -> Outcome:  # this trigger's action is being done while a second delivery asks
        during.append(perform(api, action, dedup))
        return Outcome.of(action, "started", execution_id=COVERING)

    dedup.once(action.dedup_key, other_delivery)
    [outcome] = during
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert (
        outcome.reason == "another delivery of this trigger is doing this action right now; the event will be retried"
    )
    assert api.calls == []


def test_a_broken_dedup_table_is_retryable_and_calls_nothing() -> None:
    """A table that fails before the call says nothing was called (and nothing was)."""
    api, dedup = Polytomic(), MemoryDedup()
    dedup.unavailable = "Failed to save in progress record to idempotency store"
    outcome = perform(api, act(), dedup)
    assert (outcome.status, outcome.retryable) == ("failed", True)
    assert outcome.reason == (
        "the dedup table cannot be used, so nothing was called: "
        "Failed to save in progress record to idempotency store; the event will be retried"
    )
    assert api.calls == []


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
    """`DedupUnavailable.called` tells the two apart: a table that failed saving the outcome of a call
    that was made must not claim that nothing was called."""
    api, dedup, action = Polytomic(), Unsaved(called=called), act()
    outcome = perform(api, action, dedup)
    assert summary(outcome) == ("failed", None, retried(why), True)
    assert api.calls == [start(action, action.dedup_key)] * calls
    assert dedup.seen == [action.dedup_key]


def test_after_an_unsaved_outcome_the_retry_sends_the_same_idempotency_key() -> None:
    """What the reason promises: the retry, with the table working again, sends the same
    Idempotency-Key, and Polytomic's (replayed) answer names the same run; nothing starts twice."""
    api, action = Polytomic(), act()
    unsaved = perform(api, action, Unsaved(called=True))
    assert (unsaved.status, unsaved.retryable) == ("failed", True)
    dedup = MemoryDedup()
    again = perform(api, action, dedup)
    assert summary(again) == ("started", api.started_id, None, False)  # one run only
    assert api.calls == [start(action, action.dedup_key), start(action, action.dedup_key)]
    assert [call.replayed for call in api.fake.calls] == [False, True]
    assert list(dedup.records) == [action.dedup_key]


def test_after_an_unsaved_outcome_of_a_fresh_attempt_the_retry_finds_its_run() -> None:
    """When the call was a fresh attempt after a 500, the retry's own request gets the replayed 500, and
    the run that attempt made (since the first request) is found: no third start."""
    api, action = Polytomic(), act(options=(("resync", True),))
    key = action.dedup_key
    dedup = Unsaved(called=True)
    fail(api, "server error", "start")
    unsaved = perform(api, action, dedup)  # the -r1 attempt started the run; its outcome was not saved
    assert (unsaved.status, unsaved.retryable) == ("failed", True)
    working = MemoryDedup()
    working.sent, working.attempts = dedup.sent, dedup.attempts  # the counters' record survived
    again = perform(api, action, working, at=SENT + 120)
    assert summary(again) == ("started", api.started_id, START_FOUND, False)
    assert api.calls == [
        start(action, key),
        listing(action),
        start(action, f"{key}-r1"),
        start(action, key),
        listing(action),
    ]
    assert working.sent == {key: SENT}


def test_successful_outcomes_are_remembered_and_failures_are_not() -> None:
    api, dedup = Polytomic(), MemoryDedup()
    api.fake.inject(400, path_contains=OTHER)
    first, second = act(), act(sync_id=OTHER)
    assert [perform(api, a, dedup).status for a in (first, second)] == ["started", "failed"]
    assert dedup.seen == [first.dedup_key, second.dedup_key]
    assert list(dedup.records) == [first.dedup_key]


# -- a refusal replayed to a re-drive -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["start", "activate", "deactivate"])
def test_a_refusal_replayed_to_a_redrive_is_asked_again_under_a_fresh_key(kind: ActionKind) -> None:
    """Polytomic replays a 4xx for the same Idempotency-Key for a day: a parked action, re-driven after
    the cause was fixed, got the stored refusal back and was parked again, whatever was fixed."""
    api, dedup, action = Polytomic(), MemoryDedup(), act(kind)
    refused = fail(api, "refused", kind)  # once: the cause is fixed before the re-drive

    first = perform(api, action, dedup)  # the first refusal of the key is the answer
    assert (first.status, first.retryable, first.reason) == ("failed", False, refused)
    again = perform(api, action, dedup)  # re-driven: the same key gets the stored refusal, then a fresh key

    assert again.status == ("started" if kind == "start" else f"{kind}d")
    assert [call.key for call in api.calls] == [action.dedup_key, action.dedup_key, f"{action.dedup_key}-r2"]
    assert [call.replayed for call in api.fake.calls if call.method == "POST"] == [False, True, False]
    assert list(dedup.records) == [action.dedup_key]


def test_a_refusal_that_stands_under_the_fresh_key_is_refused_again_and_the_next_redrive_tries_anew() -> None:
    api, dedup, action = Polytomic(), MemoryDedup(), act()
    api.fake.inject(422, times=3, method="POST", response_body={"message": "sync is misconfigured"})  # key, -r2, -r3

    outcomes = [perform(api, action, dedup) for _ in range(3)]

    assert [(o.status, o.retryable) for o in outcomes] == [("failed", False)] * 3
    assert outcomes[1].reason == f"{REFUSED} (asked again under a fresh key)"
    key = action.dedup_key
    assert [call.key for call in api.calls] == [key, key, f"{key}-r2", key, f"{key}-r3"]


def test_a_refusal_whose_counter_cannot_be_kept_is_retried_later() -> None:
    api, dedup, action = Polytomic(), MemoryDedup(), act()
    fail(api, "refused", "start")
    starts = Calls(api.client, dedup, api.clock)
    dedup_down = MemoryDedup()
    dedup_down.unavailable = "ProvisionedThroughputExceededException"
    starts.dedup = dedup_down

    with pytest.raises(RetryLater, match="then the retry counter could not be kept"):
        starts.call(action, action.dedup_key, DEADLINE, WHEN.timestamp())


def test_a_start_no_other_run_can_stand_for_notes_when_it_was_first_sent_before_sending() -> None:
    """A resync whose first request timed out behind a stored 500: the retry's replayed 500 must still count
    the run that first request made, so the time of the first request is kept before it goes out."""
    api, dedup = Polytomic(), MemoryDedup()
    resync = act(options=(("resync", True),))
    plain = act(sync_id=OTHER)
    clock = iter([100.0, 200.0, 300.0])
    starts = Calls(api.client, dedup, clock=lambda: next(clock))

    starts.call(resync, resync.dedup_key, DEADLINE, 50.0)
    starts.call(plain, plain.dedup_key, DEADLINE, 50.0)

    assert dedup.sent == {resync.dedup_key: 100.0}  # a plain start writes nothing more
    dedup.unavailable = "ResourceNotFoundException"
    with pytest.raises(RetryLater, match="so nothing was called"):
        starts.call(resync, "f" * 64, DEADLINE, 50.0)
    assert len(api.calls) == 2
