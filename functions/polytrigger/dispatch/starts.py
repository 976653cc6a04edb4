"""One action's Polytomic call under dedup: the error policy as one table, and recovery from a 500.

The call answers with an outcome, or `Running` when Polytomic says a run is in progress (409):
whether that defers the start or is the final word is the caller's decision, not this module's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome
from polytrigger.core.triggers import parse_time
from polytrigger.dispatch.errors import Refused, RetryLater, failed, retryable
from polytrigger.dispatch.ports import (
    AlreadyRunning,
    CredentialsError,
    DedupBusy,
    DedupStore,
    DedupUnavailable,
    KeyInFlight,
    PolytomicApi,
    PolytomicError,
    Rejected,
    ServerError,
    Transient,
    Unauthorized,
    UnreadableAnswer,
)

Verdict = Literal["running", "server_error", "refused", "retry"]

# The error policy: what each failure of a Polytomic call means for the action (first match wins).
POLICY: tuple[tuple[type[Exception], Verdict], ...] = (
    (AlreadyRunning, "running"),  # 409, a run in progress: not an error; the caller defers or reports it
    (ServerError, "server_error"),  # 500, replayed for the same key: look for a covering run, then a fresh key
    (Rejected, "refused"),  # other 4xx: configuration is wrong; a retry cannot help
    (Unauthorized, "retry"),  # 401 after re-reading the secret: it may be fixed by the time AWS retries
    (KeyInFlight, "retry"),  # 409, the same Idempotency-Key still in flight
    (Transient, "retry"),  # 429/502/503/504, timeouts, no answer: after bounded in-call retries
    (UnreadableAnswer, "retry"),  # a 2xx that does not say what was done: ask again, same key
    (CredentialsError, "retry"),  # the secret cannot be read
)
FAILURES = tuple(kind for kind, _ in POLICY)


def verdict(error: Exception) -> Verdict:
    return next(ruling for kind, ruling in POLICY if isinstance(error, kind))


def reason(error: Exception) -> str:
    return error.reason if isinstance(error, PolytomicError) else str(error)


@dataclass(frozen=True, slots=True)
class Running:
    """Polytomic answered 409: a run of the sync is in progress."""

    reason: str


class Starts:
    def __init__(self, api: PolytomicApi, dedup: DedupStore) -> None:
        self.api = api
        self.dedup = dedup

    def once(self, action: Action, key: str, perform: Callable[[], Outcome]) -> Outcome:
        """`perform` at most once per key (an action's dedup key, or a queued message's id); failures as outcomes."""
        try:
            return self.dedup.once(key, perform)
        except (RetryLater, Refused) as error:
            return failed(action, error)
        except DedupBusy:
            return retryable(action, "another delivery of this trigger is doing this action right now")
        except DedupUnavailable as error:
            return retryable(action, f"the dedup table cannot be used, so nothing was called: {error}")

    def call(self, action: Action, key: str, deadline: float | None) -> Outcome | Running:
        """Start, activate or pause the sync, sending `key` as the Idempotency-Key."""
        sync = action.sync
        try:
            if action.kind == "start":
                execution = self.api.start(sync.type, sync.id, sync.body(), idempotency_key=key, deadline=deadline)
                if not execution.id:
                    return Outcome.of(action, "started", reason="Polytomic accepted the start without an execution id")
                return Outcome.of(action, "started", execution_id=execution.id)
            active = action.kind == "activate"
            self.api.set_active(sync.type, sync.id, active, idempotency_key=key, deadline=deadline)
            return Outcome.of(action, "activated" if active else "deactivated")
        except FAILURES as error:
            ruling = verdict(error)
            if ruling == "server_error" and action.kind == "start":
                return self._after_server_error(action, reason(error), deadline)
            return _ruled(ruling, reason(error))

    def covering(self, action: Action, since: datetime, deadline: float | None, *, after: str = "") -> str | None:
        """The newest execution created at or after `since`, if any: it has seen what the trigger saw.

        No clock-skew allowance: one would let a run that began just before the file landed pass
        for covering it. The cost is a possible second start when Polytomic's clock runs behind
        by more than the event's delivery delay, which is the safer way to be wrong.
        """
        try:
            found = self.api.executions(action.sync.type, action.sync.id, deadline=deadline)
        except FAILURES as error:
            why = f"{after}looking for a run since the trigger failed: {reason(error)}"
            if verdict(error) in ("running", "refused"):
                raise Refused(why) from None
            raise RetryLater(why) from None
        return _newest_since(found, since)

    def _after_server_error(self, action: Action, what: str, deadline: float | None) -> Outcome | Running:
        """Polytomic replays a 500 for the same key for 24 hours: look first, then retry under a fresh key.

        An execution created since the trigger covers it, whoever started it (and it is how a 500
        that did start a run shows up), so nothing starts twice. Otherwise a fresh attempt goes out
        as `<key>-r<n>`, n counted in the dedup table, so every later retry (by AWS, or a re-drive)
        is new to Polytomic too and the sync is never left unstarted behind a replayed 500.
        """
        covering = self.covering(action, action.trigger.time, deadline, after=f"{what}; then ")
        if covering:
            return Outcome.of(
                action,
                "started",
                execution_id=covering,
                reason="Polytomic answered 500, but this execution was created since the trigger",
            )
        try:
            key = f"{action.dedup_key}-r{self.dedup.next_attempt(action.dedup_key)}"
        except DedupUnavailable as counter:
            raise RetryLater(f"{what}; then the retry counter could not be kept: {counter}") from None
        sync = action.sync
        try:
            execution = self.api.start(sync.type, sync.id, sync.body(), idempotency_key=key, deadline=deadline)
        except FAILURES as again:
            ruling = verdict(again)
            if ruling == "running":
                return Running(reason(again))
            return _ruled(
                "retry" if ruling == "server_error" else ruling, f"{what}; a fresh attempt failed too: {reason(again)}"
            )
        return Outcome.of(action, "started", execution_id=execution.id or None)


def _ruled(ruling: Verdict, why: str) -> Running:
    """Apply a verdict that is not a success: `Running`, or raise what the action's outcome will say."""
    if ruling == "running":
        return Running(why)
    if ruling == "refused":
        raise Refused(why)
    raise RetryLater(why)  # a retry, or a 500 on a call that has no recovery (activate / pause)


def _newest_since(found: list[Any], since: datetime) -> str | None:
    for execution in found:  # newest first
        if not isinstance(execution, dict):
            continue
        try:
            created = parse_time(execution.get("created_at"))
        except ValueError:
            continue
        if created >= since and isinstance(execution.get("id"), str):
            return str(execution["id"])
    return None
