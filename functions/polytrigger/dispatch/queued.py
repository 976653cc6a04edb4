"""A message from the dispatch queue: a deferred start, or a debounce window to flush, done once per message."""

from __future__ import annotations

from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.deferred import Deferrals
from polytrigger.dispatch.errors import retryable
from polytrigger.dispatch.messages import DeferredStart, Message, WindowFlush
from polytrigger.dispatch.ports import QueueUnavailable
from polytrigger.dispatch.starts import Running, Starts, Throttle


class QueuedStarts:
    def __init__(self, starts: Starts, deferrals: Deferrals) -> None:
        self.starts = starts
        self.deferrals = deferrals

    def perform(self, message: Message, deadline: float | None) -> Outcome:
        """Once per message id (also its Idempotency-Key): a redelivered message comes back `duplicate`.

        A failure a retry cannot fix is parked with its reason before the message is acknowledged.
        """
        if isinstance(message, WindowFlush):
            outcome = self.starts.once(message.action, message.id, lambda: self._flush(message, deadline))
        else:
            outcome = self.starts.once(message.action, message.id, lambda: self._retry(message, deadline))
        if outcome.status != "failed" or outcome.retryable or outcome.parked:
            return outcome
        try:
            self.deferrals.queue.park(message, outcome.reason or "failed")
        except QueueUnavailable as error:
            return retryable(message.action, f"{outcome.reason}; parking it failed: {error}")
        return outcome.as_parked("the dispatch dead-letter queue")

    def _retry(self, message: DeferredStart, deadline: float | None) -> Outcome:
        """Covered by a run since the trigger, or started now, or deferred again."""
        action = message.action
        if action.sync.coverable:
            covering = self.starts.covering(action, message.since, deadline)
            if covering:
                return Outcome.of(
                    action, "covered", execution_id=covering, reason="a run created since the trigger has it"
                )
        first_at = message.first_at
        if message.parked_because is not None:  # moved back from the dead-letter queue by a person: a fresh wait
            first_at = self.deferrals.clock()  # (attempts keep counting: each message id is used once)
        result = self.starts.call(action, message.id, deadline, message.since)
        if isinstance(result, Running | Throttle):
            return self.deferrals.defer(
                action,
                since=message.since,
                reason=result.reason,
                attempt=message.attempt + 1,
                first_at=first_at,
                at_least=result.wait if isinstance(result, Throttle) else 0.0,
            )
        return result

    def _flush(self, message: WindowFlush, deadline: float | None) -> Outcome:
        """Wait for quiet (never past max_wait), or close the window and start once for all it gathered."""
        action = message.action
        ready = self.deferrals.flush(message)
        if isinstance(ready, Outcome):
            return ready
        result = self.starts.call(action, message.id, deadline, ready.since)
        if isinstance(result, Running | Throttle):
            wait = result.wait if isinstance(result, Throttle) else 0.0
            return self.deferrals.defer(
                action, since=ready.since, reason=result.reason, attempt=1, first_at=ready.now, at_least=wait
            )
        if ready.arrivals and result.status == "started":
            return Outcome.of(
                action, "started", execution_id=result.execution_id, reason=f"one start for {ready.arrivals} trigger(s)"
            )
        return result
