"""Chained routes at run time: a run's ending, as the routes follow it, queued as starts for the dispatcher."""

from __future__ import annotations

from polytrigger.adapters.queue import SqsQueue
from polytrigger.core.runs import RunEvent
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferred import SKEW_SECONDS
from polytrigger.dispatch.messages import deferred_start
from polytrigger.routing import Routes

CHAINED_ATTEMPT = 1  # a chained start's first message, as a deferral's: a 409 then defers it as 2, 3, ...


class QueuedChains:
    def __init__(self, routes: Routes, queue: SqsQueue) -> None:
        self.routes = routes
        self.queue = queue

    def trigger(self, event: RunEvent) -> Trigger:
        return Trigger.polytomic(
            sync_id=event.sync_id, execution=event.execution_id, status=event.status, time=event.created_at
        )

    def follows(self, event: RunEvent) -> bool:
        return bool(self.routes.matching(self.trigger(event)))

    def start(self, event: RunEvent) -> int:
        """One message per chained action, deterministic: the dispatcher performs each once.

        A run of the chained sync created after the upstream run ended (with a margin) has the data
        already, so it covers the start.
        """
        actions = self.routes.actions_for([self.trigger(event)])
        since = event.created_at.timestamp() + SKEW_SECONDS
        for action in actions:
            message = deferred_start(
                action, since=since, attempt=CHAINED_ATTEMPT, first_at=event.created_at.timestamp()
            )
            self.queue.send(message, 0)
        return len(actions)
