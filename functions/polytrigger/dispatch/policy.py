"""What to do with an action, whoever performs it: a trigger's action, or a message from the dispatch queue.

Each is done at most once per key under the dedup table (an action's dedup key, or a queued message's
id, which is also its Idempotency-Key). A debouncing start joins its window; every other action calls
Polytomic (`calls`). What stops a call for now is decided here, in one place (`_then`): a start that
meets a running run (409) or is still throttled (429) waits on the dispatch queue (`deferrals`); an
activation or pause that meets a running run is `already_running`, the final word.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.calls import Calls, Paused, Running, Throttle
from polytrigger.dispatch.deferrals import Deferrals, coverage_since
from polytrigger.dispatch.holds import DynamoHolds, HoldsUnavailable
from polytrigger.dispatch.messages import DeferredStart, Message, WindowFlush
from polytrigger.dispatch.ports import (
    DISPATCH_DEAD_LETTERS,
    DedupBusy,
    DedupUnavailable,
    QueueUnavailable,
    Refused,
    RetryLater,
    retryable,
)

SAFETY_MARGIN_SECONDS = 3.0  # stop retrying this long before Lambda would cut the invocation off


class NoTimeLeft(RuntimeError):
    """Too little of the invocation is left for one more Polytomic call: the record goes back untried."""


def deadline(remaining_ms: int | None) -> float | None:
    """When to stop retrying (monotonic clock), from the invocation's remaining time; None: no limit."""
    if remaining_ms is None:
        return None
    return time.monotonic() + remaining_ms / 1000 - SAFETY_MARGIN_SECONDS


def take_in_time(remaining_ms: int | None, call_budget_ms: int) -> None:
    """Refuse to start a record that one more call could not finish: hand it back before Lambda cuts us off."""
    if remaining_ms is not None and remaining_ms < call_budget_ms:
        raise NoTimeLeft(f"not tried: {remaining_ms} ms of the invocation left, one call may take {call_budget_ms} ms")


def call_budget_ms(connect_timeout: float, read_timeout: float) -> int:
    """The longest one Polytomic call can take: no record is taken with less of the invocation left."""
    return int((connect_timeout + read_timeout + SAFETY_MARGIN_SECONDS) * 1000)


class DispatchPolicy:
    def __init__(
        self,
        calls: Calls,
        deferrals: Deferrals,
        holds: DynamoHolds | None = None,
        hold_limit: Callable[[str], int] = lambda route: 7 * 86400,
    ) -> None:
        self.calls = calls
        self.deferrals = deferrals
        self.holds = holds  # where a start that meets a paused sync waits (None: it fails, and is parked)
        self.hold_limit = hold_limit  # a route's `hold`: how long, in seconds

    def perform(
        self, action: Action, deadline: float | None, received: float | None = None, *, debounce: bool = True
    ) -> Outcome:
        """A trigger's action, once. `received`: when the trigger reached us (epoch seconds; default now);
        with the trigger's own time it bounds which runs cover it (`coverage_since`). `debounce=False`: a
        start made now even on a debouncing route (a replay's start stands for all the files it gathered;
        the action keeps its route's debounce, so a deferral of it is still one the routes make)."""
        if received is None:
            received = self.calls.clock()
        return self.once(action, action.dedup_key, lambda: self._perform(action, deadline, received, debounce))

    def perform_message(self, message: Message, deadline: float | None) -> Outcome:
        """A dispatch queue message, once per message id: a redelivered message comes back `duplicate`.

        A failure a retry cannot fix is parked with its reason before the message is acknowledged.
        """
        if isinstance(message, WindowFlush):
            outcome = self.once(message.action, message.id, lambda: self._flush(message, deadline))
        else:
            outcome = self.once(message.action, message.id, lambda: self._retry(message, deadline))
        if outcome.status != "failed" or outcome.retryable or outcome.parked:
            return outcome
        try:
            self.deferrals.queue.park(message, outcome.reason or "failed")
        except QueueUnavailable as error:
            return retryable(message.action, f"{outcome.reason}; parking it failed: {error}")
        return outcome.as_parked(DISPATCH_DEAD_LETTERS)

    # -- the one decision: what a call's answer means for the action ------------------------------

    def _then(
        self,
        action: Action,
        result: Outcome | Running | Throttle | Paused,
        *,
        since: float,
        attempt: int = 1,
        first_at: float = 0.0,
    ) -> Outcome:
        """A start that cannot run now waits on the dispatch queue (after a 429, at least its Retry-After);
        one that meets a paused sync is held until the sync is active again; an activation or pause
        that meets a running run has nothing to wait for."""
        if isinstance(result, Outcome):
            return replace(result, since=since) if result.execution_id else result
        if isinstance(result, Paused):
            return self._hold(action, result.reason, since)
        if action.kind != "start":
            return Outcome.of(action, "already_running", reason=result.reason)
        wait = result.wait if isinstance(result, Throttle) else 0.0
        return self.deferrals.defer(
            action, since=since, reason=result.reason, attempt=attempt, first_at=first_at, at_least=wait
        )

    def _hold(self, action: Action, why: str, since: float) -> Outcome:
        if self.holds is None:
            raise Refused(why)
        limit = self.hold_limit(action.route)
        try:
            hold = self.holds.hold(action, since, limit, why)
        except HoldsUnavailable as error:
            raise RetryLater(f"{why}; the sync is paused, and holding the start failed: {error}") from None
        until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(hold.deadline))
        return Outcome.of(
            action,
            "held",
            reason=f"the sync is paused ({why}): held with {hold.count - 1} other(s) until it is active again,"
            f" parked if still paused at {until}",
        )

    # -- a trigger's action, a deferred start, a window's flush ------------------------------------

    def _perform(self, action: Action, deadline: float | None, received: float, debounce: bool = True) -> Outcome:
        if action.kind == "start" and action.debounce and debounce:
            return self.deferrals.debounce(action)
        since = coverage_since(action.trigger.time, received)
        return self._then(action, self.calls.call(action, action.dedup_key, deadline, since), since=since)

    def _retry(self, message: DeferredStart, deadline: float | None) -> Outcome:
        """Covered by a run since the trigger, or started now, or deferred again."""
        action = message.action
        if action.kind == "start" and action.sync.coverable:
            covering = self.calls.covering(action, message.since, deadline)
            if covering:
                return Outcome.of(
                    action,
                    "covered",
                    execution_id=covering,
                    reason="a run created since the trigger has it",
                    since=message.since,
                )
        first_at = message.first_at
        if message.parked_because is not None:  # moved back from the dead-letter queue by a person: a fresh wait
            first_at = self.deferrals.clock()  # (attempts keep counting: each message id is used once)
        result = self.calls.call(action, message.id, deadline, message.since)
        if (
            isinstance(result, Running)
            and self.holds is not None
            and self.calls.paused(action, result.reason, deadline)
        ):
            result = Paused(result.reason)  # a paused sync may answer 409 too (unconfirmed): a retry asks the sync
        return self._then(action, result, since=message.since, attempt=message.attempt + 1, first_at=first_at)

    def _flush(self, message: WindowFlush, deadline: float | None) -> Outcome:
        """Wait for quiet (never past max_wait), or close the window and start once for all it gathered."""
        action = message.action
        ready = self.deferrals.flush(message)
        if isinstance(ready, Outcome):
            return ready
        result = self.calls.call(action, message.id, deadline, ready.since)
        if ready.arrivals and isinstance(result, Outcome) and result.status == "started":
            return Outcome.of(
                action,
                "started",
                execution_id=result.execution_id,
                reason=f"one start for {ready.arrivals} trigger(s)",
                since=ready.since,
            )
        return self._then(action, result, since=ready.since, first_at=ready.now)

    # -- the dedup boundary: failures become outcomes -------------------------------------------

    def once(self, action: Action, key: str, perform: Callable[[], Outcome]) -> Outcome:
        """`perform` at most once per key; what it raised (or the table's trouble) as a `failed` outcome."""
        try:
            return self.calls.dedup.once(key, perform)
        except RetryLater as error:
            return retryable(action, str(error))
        except Refused as error:
            return Outcome.of(action, "failed", reason=str(error))
        except DedupBusy:
            return retryable(action, "another delivery of this trigger is doing this action right now")
        except DedupUnavailable as error:
            if error.called:
                return retryable(
                    action,
                    f"the call was made but its outcome could not be saved in the dedup table: {error}; the retry"
                    " sends the same Idempotency-Key, so Polytomic answers it with the same run",
                )
            return retryable(action, f"the dedup table cannot be used, so nothing was called: {error}")
