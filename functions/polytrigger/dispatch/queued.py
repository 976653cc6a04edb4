"""A message from the dispatch queue: a deferred start, or a debounce window to flush, done once per message."""

from __future__ import annotations

from datetime import UTC, datetime

from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.deferred import Deferrals
from polytrigger.dispatch.messages import DeferredStart, Message, WindowFlush
from polytrigger.dispatch.starts import Running, Starts


class QueuedStarts:
    def __init__(self, starts: Starts, deferrals: Deferrals) -> None:
        self.starts = starts
        self.deferrals = deferrals

    def perform(self, message: Message, deadline: float | None) -> Outcome:
        """Once per message id (also its Idempotency-Key): a redelivered message comes back `duplicate`."""
        if isinstance(message, WindowFlush):
            return self.starts.once(message.action, message.id, lambda: self._flush(message, deadline))
        return self.starts.once(message.action, message.id, lambda: self._retry(message, deadline))

    def _retry(self, message: DeferredStart, deadline: float | None) -> Outcome:
        """Covered by a run since the trigger, or started now, or deferred again."""
        action = message.action
        if action.sync.coverable:
            covering = self.starts.covering(action, datetime.fromtimestamp(message.since, UTC), deadline)
            if covering:
                return Outcome.of(
                    action, "covered", execution_id=covering, reason="a run created since the trigger has it"
                )
        first_at = message.first_at
        if message.parked_because is not None:  # moved back from the dead-letter queue by a person: a fresh wait
            first_at = self.deferrals.clock()  # (attempts keep counting: each message id is used once)
        result = self.starts.call(action, message.id, deadline)
        if isinstance(result, Running):
            return self.deferrals.defer(
                action, since=message.since, reason=result.reason, attempt=message.attempt + 1, first_at=first_at
            )
        return result

    def _flush(self, message: WindowFlush, deadline: float | None) -> Outcome:
        """Wait for quiet (never past max_wait), or close the window and start once for all it gathered."""
        action = message.action
        ready = self.deferrals.flush(message)
        if isinstance(ready, Outcome):
            return ready
        result = self.starts.call(action, message.id, deadline)
        if isinstance(result, Running):
            return self.deferrals.defer(action, since=ready.since, reason=result.reason, attempt=1, first_at=ready.now)
        if ready.arrivals and result.status == "started":
            return Outcome.of(
                action, "started", execution_id=result.execution_id, reason=f"one start for {ready.arrivals} trigger(s)"
            )
        return result
