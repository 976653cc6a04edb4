"""One action's Polytomic call under its key: the error table, recovery from a 500, a refusal replayed.

A call answers with an outcome, or with what stops it for now: `Running` (409, a run is in
progress) or `Throttle` (429, still after the in-call retries). What either means for the action
(wait on the dispatch queue, or be the final word) is `dispatch.policy`'s one decision, not this
module's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome
from polytrigger.core.triggers import parse_time
from polytrigger.dispatch.ports import DedupStore, DedupUnavailable, Refused, RetryLater
from polytrigger.polytomic.contract import (
    AlreadyRunning,
    CredentialsError,
    KeyInFlight,
    PolytomicApi,
    PolytomicError,
    Rejected,
    ServerError,
    Throttled,
    Transient,
    Unauthorized,
    UnreadableAnswer,
)

# Connect (3.05 s) and read (10 s) timeouts, and a second of clock skew: a run our request made was
# created within this long after the request went out.
REQUEST_SECONDS = 14.05

Verdict = Literal["running", "throttled", "server_error", "refused", "retry"]

# What each failure of a Polytomic call says (first match wins); `dispatch.policy` decides what
# "running" and "throttled" mean for the action.
VERDICTS: tuple[tuple[type[Exception], Verdict], ...] = (
    (AlreadyRunning, "running"),  # 409, a run in progress: not an error (dispatch.policy: a start waits)
    (ServerError, "server_error"),  # 500, replayed for the same key: look for a covering run, then a fresh key
    (Rejected, "refused"),  # other 4xx: configuration is wrong; a retry cannot help
    (Unauthorized, "retry"),  # 401 after re-reading the secret: it may be fixed by the time AWS retries
    (KeyInFlight, "retry"),  # 409, the same Idempotency-Key still in flight
    (Throttled, "throttled"),  # 429 after the in-call retries: a start waits on the dispatch queue
    (Transient, "retry"),  # 408/502/503/504, timeouts, no answer: after bounded in-call retries
    (UnreadableAnswer, "retry"),  # a 2xx that does not say what was done: ask again, same key
    (CredentialsError, "retry"),  # the secret cannot be read
)
FAILURES = tuple(kind for kind, _ in VERDICTS)


def verdict(error: Exception) -> Verdict:
    return next(ruling for kind, ruling in VERDICTS if isinstance(error, kind))


def reason(error: Exception) -> str:
    return error.reason if isinstance(error, PolytomicError) else str(error)


@dataclass(frozen=True, slots=True)
class Running:
    """Polytomic answered 409: a run of the sync is in progress."""

    reason: str


@dataclass(frozen=True, slots=True)
class Paused:
    """Polytomic refused the start, and the sync itself says it is not active: held until it is."""

    reason: str


@dataclass(frozen=True, slots=True)
class Throttle:
    """Polytomic answered 429 (still after the in-call retries): try the start again after `wait` seconds."""

    reason: str
    wait: float


class Calls:
    """Polytomic calls for actions: each under its key, each failure ruled by `VERDICTS`."""

    def __init__(
        self,
        api: PolytomicApi,
        dedup: DedupStore,
        clock: Callable[[], float] = time.time,
        *,
        request_seconds: float = REQUEST_SECONDS,
    ) -> None:
        self.api = api
        self.dedup = dedup
        self.clock = clock
        self.request_seconds = request_seconds  # the longest one request can be in flight (timeouts + skew)

    def call(
        self, action: Action, key: str, deadline: float | None, since: float
    ) -> Outcome | Running | Throttle | Paused:
        """Start, activate or pause the sync, sending `key` as the Idempotency-Key.

        `since` (epoch seconds) is the trigger's coverage bound (`coverage_since`): after a 500, a run
        created at or after it has what the trigger saw.
        """
        sent = self.clock()
        if action.kind == "start" and not action.sync.coverable:
            self._note_first_sent(key, sent)
        try:
            return self._send(action, key, deadline)
        except FAILURES as error:
            ruling = verdict(error)
            if ruling == "server_error":
                if action.kind == "start":
                    return self._after_server_error(action, key, reason(error), deadline, since=since, sent=sent)
                return self._set_again(action, key, reason(error), deadline)
            if ruling == "refused":
                if action.kind == "start" and self.paused(action, reason(error), deadline):
                    return Paused(reason(error))
                return self._after_refusal(action, key, reason(error), deadline)
            if ruling == "throttled" and action.kind == "start" and isinstance(error, Throttled):
                return Throttle(reason(error), error.retry_after or 0.0)
            return _ruled(ruling, reason(error))

    def covering(
        self, action: Action, since: float, deadline: float | None, *, after: str = "", until: float | None = None
    ) -> str | None:
        """The newest execution created at or after `since` (and by `until`; epoch seconds), if any."""
        try:
            found = self.api.executions(action.sync.type, action.sync.id, deadline=deadline)
        except FAILURES as error:
            why = f"{after}looking for a run since the trigger failed: {reason(error)}"
            if verdict(error) in ("running", "refused"):
                raise Refused(why) from None
            raise RetryLater(why) from None
        latest = datetime.fromtimestamp(until, UTC) if until is not None else None
        return _newest_since(found, datetime.fromtimestamp(since, UTC), latest)

    def _after_server_error(
        self, action: Action, key: str, what: str, deadline: float | None, *, since: float, sent: float
    ) -> Outcome | Running:
        """Polytomic replays a 500 for the same key for 24 hours: look first, then retry under a fresh key.

        Only the first request sent with `key` can have made a run (later ones get the stored 500), so
        a run created since that request was first sent may be ours, and is taken as the start: nothing
        starts twice. A start a plain run covers is also covered by any run created since the trigger
        (`since`). One it does not (a resync, a test, a full fetch) counts only a run created while its
        own first request can have been in flight: a plain run started beside it a minute later is not
        the resync having started. (One created by someone else within those seconds still passes for
        it: the execution list does not say what a run was asked to do.) Otherwise a fresh attempt goes
        out as `<key>-r<n>`, n counted in the dedup table, so every later retry (by AWS, or a re-drive)
        is new to Polytomic too.
        """
        try:
            first_sent = self.dedup.first_sent(key, sent)
        except DedupUnavailable as table:
            raise RetryLater(f"{what}; then the time of the first request could not be kept: {table}") from None
        if action.sync.coverable:
            covering = self.covering(action, min(since, first_sent), deadline, after=f"{what}; then ")
        else:
            until = first_sent + self.request_seconds
            covering = self.covering(action, first_sent, deadline, after=f"{what}; then ", until=until)
        if covering:
            return Outcome.of(
                action,
                "started",
                execution_id=covering,
                reason="Polytomic answered 500, but this execution was created since the trigger or the request",
            )
        try:
            return self._send(action, self._fresh(key, what), deadline)
        except FAILURES as again:
            ruling = verdict(again)
            if ruling == "running":
                return Running(reason(again))
            return _ruled(ruling, f"{what}; a fresh attempt failed too: {reason(again)}")

    def paused(self, action: Action, what: str, deadline: float | None) -> bool:
        """Whether a refused start met a paused sync: the sync's own `active` says so, whatever the
        refusal's wording (what Polytomic answers a start of a paused sync is unconfirmed)."""
        try:
            return self.api.active(action.sync.type, action.sync.id, deadline=deadline) is False
        except Rejected:
            return False  # the sync cannot be read either (404, 403): the refusal stands
        except FAILURES as error:
            raise RetryLater(f"{what}; then asking whether the sync is paused failed: {reason(error)}") from None

    def _note_first_sent(self, key: str, sent: float) -> None:
        """Before a start no other run can stand for: after a 500 (even one we never saw, behind a
        timeout) only a run created since this key was first sent is taken for it."""
        try:
            self.dedup.first_sent(key, sent)
        except DedupUnavailable as table:
            raise RetryLater(f"the time of the request could not be kept, so nothing was called: {table}") from None

    def _set_again(self, action: Action, key: str, what: str, deadline: float | None) -> Outcome | Running:
        """Activating or pausing is idempotent: after a (replayed) 500, set it again under a fresh key."""
        try:
            return self._send(action, self._fresh(key, what), deadline)
        except FAILURES as again:
            return _ruled(verdict(again), f"{what}; a fresh attempt failed too: {reason(again)}")

    def _after_refusal(self, action: Action, key: str, what: str, deadline: float | None) -> Outcome | Running:
        """Polytomic replays a refusal (4xx) for the same key too, for at least a day.

        The first refusal of a key is the answer: the action is refused (and parked). A later one may
        be that answer replayed to a re-drive after the cause was fixed, so it is asked again once under
        a fresh key. A refused request made no run, so asking again cannot start anything twice.
        """
        try:
            refusals = self.dedup.next_attempt(key)
        except DedupUnavailable as counter:
            raise RetryLater(f"{what}; then the retry counter could not be kept: {counter}") from None
        if refusals < 2:
            raise Refused(what)
        try:
            return self._send(action, f"{key}-r{refusals}", deadline)
        except FAILURES as again:
            return _ruled(verdict(again), f"{reason(again)} (asked again under a fresh key)")

    def _send(self, action: Action, key: str, deadline: float | None) -> Outcome:
        """Start, activate or pause the sync under `key`: the outcome, or the port's error for the caller to rule on."""
        sync = action.sync
        if action.kind == "start":
            execution = self.api.start(sync.type, sync.id, sync.body(), idempotency_key=key, deadline=deadline)
            return Outcome.of(action, "started", execution_id=execution.id)
        active = action.kind == "activate"
        self.api.set_active(sync.type, sync.id, active, idempotency_key=key, deadline=deadline)
        return Outcome.of(action, "activated" if active else "deactivated")

    def _fresh(self, key: str, what: str) -> str:
        try:
            return f"{key}-r{self.dedup.next_attempt(key)}"
        except DedupUnavailable as counter:
            raise RetryLater(f"{what}; then the retry counter could not be kept: {counter}") from None


def _ruled(ruling: Verdict, why: str) -> Running:
    """Apply a verdict that is not a success: `Running`, or raise what the action's outcome will say."""
    if ruling == "running":
        return Running(why)
    if ruling == "refused":
        raise Refused(why)
    raise RetryLater(why)  # a retry, or a 500 on a call that has no recovery (activate / pause)


def _newest_since(found: list[Any], since: datetime, until: datetime | None = None) -> str | None:
    for execution in found:  # newest first
        if not isinstance(execution, dict):
            continue
        try:
            created = parse_time(execution.get("created_at"))
        except ValueError:
            continue
        if created >= since and (until is None or created <= until) and isinstance(execution.get("id"), str):
            return str(execution["id"])
    return None
