"""What every Polytomic event received sets off, once, whichever way (webhook, poller) it came.

- **Hand it on** to a bus (RUN_EVENT_BUS_NAME), so others can follow Polytomic although an
  organisation has one webhook.
- **Chain**: a run's ending starts the syncs of the routes that follow that sync (`polytomic:`
  routes). The start goes through the dispatch queue (`QueuedChains`) under the ending's identity
  (execution and status), so the dispatcher does it once however often the ending arrives. A route
  that joins several upstreams (`syncs: [A, B]`) counts the ending towards its set instead, and
  starts once the set is complete (`runs.joins`).

At least once: the effects happen, then the event is remembered; a crash in between does them
again (the bus's consumers de-duplicate by the event's `id`; a chained start is de-duplicated by
the dispatcher). An event with nothing to set off costs nothing: no read, no write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.deferrals import SKEW_SECONDS
from polytrigger.dispatch.messages import deferred_start
from polytrigger.dispatch.ports import Queue
from polytrigger.routing import Route, Routes
from polytrigger.runs.endings import MalformedRunEvent, RunEvent, run_event
from polytrigger.runs.joins import DynamoJoins, join

CHAINED_ATTEMPT = 1  # a chained start's first message, as a deferral's: a 409 then defers it as 2, 3, ...


class HandedOn(Protocol):
    def handed_on(self, event_id: str) -> bool: ...

    def hand_on(self, event_id: str) -> None: ...


class Chains(Protocol):
    def follows(self, event: RunEvent) -> bool:
        """Some route starts syncs on this ending."""
        ...

    def start(self, event: RunEvent) -> int:
        """Queue the chained starts of this ending; how many."""
        ...


@dataclass(frozen=True, slots=True)
class SetOff:
    published: int = 0
    chained: int = 0


def set_off(
    received: Iterable[Mapping[str, Any]],
    ledger: HandedOn,
    publish: Callable[[Mapping[str, Any]], None] | None,
    chains: Chains | None,
) -> SetOff:
    published = chained = 0
    for raw in received:
        event_id = raw.get("id")
        if not isinstance(event_id, str) or not event_id:
            continue
        try:
            event = run_event(raw)
        except MalformedRunEvent:
            event = None
        chain = chains is not None and event is not None and event.terminal and chains.follows(event)
        if (publish is None and not chain) or ledger.handed_on(event_id):
            continue
        if publish is not None:
            publish(raw)
            published += 1
        if chain and chains is not None and event is not None:
            chained += chains.start(event)
        ledger.hand_on(event_id)
    return SetOff(published, chained)


class QueuedChains:
    """The chained routes at run time: a run's ending, as the routes follow it, queued as starts."""

    def __init__(self, routes: Routes, queue: Queue, joins: DynamoJoins | None = None) -> None:
        self.routes = routes
        self.queue = queue
        self.joins = joins  # where joins keep their endings (None: joins are not followed)

    def trigger(self, event: RunEvent) -> Trigger:
        return Trigger.polytomic(
            sync_id=event.sync_id, execution=event.execution_id, status=event.status, time=event.created_at
        )

    def follows(self, event: RunEvent) -> bool:
        return bool(self.routes.matching(self.trigger(event))) or bool(self._joins(event))

    def _joins(self, event: RunEvent) -> list[Route]:
        return self.routes.joins_waiting_for(event.sync_id, event.status) if self.joins is not None else []

    def start(self, event: RunEvent) -> int:
        """One message per chained action, deterministic: the dispatcher performs each once.

        A run of the chained sync created after the upstream run ended (with a margin) has the data
        already, so it covers the start. A join the ending belongs to queues its starts only when the
        ending completes a set (or a crash left a set's starts owed).
        """
        actions = self.routes.actions_for([self.trigger(event)])
        since = event.created_at.timestamp() + SKEW_SECONDS
        for action in actions:
            message = deferred_start(
                action, since=since, attempt=CHAINED_ATTEMPT, first_at=event.created_at.timestamp()
            )
            self.queue.send(message, 0)
        joins = self.joins
        joined = sum(join(joins, self.queue, route, event) for route in self._joins(event)) if joins else 0
        return len(actions) + joined
