"""What to do with one action of a trigger: debounce it, or call Polytomic, and decide what a 409 means."""

from __future__ import annotations

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.deferred import Deferrals, coverage_since
from polytrigger.dispatch.errors import RetryLater
from polytrigger.dispatch.starts import Running, Starts, Throttle


class ActionPolicy:
    """With a dispatch queue (`deferrals`), a start that meets a running run waits for it and a debouncing
    route gathers its files into one window; without one, a 409 is the final word (`already_running`)."""

    def __init__(self, starts: Starts, deferrals: Deferrals | None) -> None:
        self.starts = starts
        self.deferrals = deferrals

    def perform(self, action: Action, deadline: float | None, received: float | None = None) -> Outcome:
        """`received`: when the trigger reached us (epoch seconds; default now); with the trigger's
        own time it bounds which runs cover it (`coverage_since`)."""
        if received is None:
            received = self.starts.clock()
        return self.starts.once(action, action.dedup_key, lambda: self._perform(action, deadline, received))

    def _perform(self, action: Action, deadline: float | None, received: float) -> Outcome:
        if self.deferrals is not None and action.kind == "start" and action.debounce:
            return self.deferrals.debounce(action)
        since = coverage_since(action.trigger.time, received)
        result = self.starts.call(action, action.dedup_key, deadline, since)
        if isinstance(result, Throttle):  # 429: wait on the dispatch queue rather than hold this invocation
            if self.deferrals is None:
                raise RetryLater(result.reason)
            return self.deferrals.defer(action, since=since, reason=result.reason, at_least=result.wait)
        if not isinstance(result, Running):
            return result
        if self.deferrals is not None and action.kind == "start":
            return self.deferrals.defer(action, since=since, reason=result.reason)
        return Outcome.of(action, "already_running", reason=result.reason)
