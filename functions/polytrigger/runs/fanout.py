"""What every Polytomic event received sets off, once, whichever way (webhook, poller) it came.

- **Hand it on** to a bus (RUN_EVENT_BUS_NAME), so others can follow Polytomic although an
  organisation has one webhook.
- **Chain**: a run's ending starts the syncs of the routes that follow that sync (`polytomic:`
  routes). The start goes through the dispatch queue under the ending's identity (execution and
  status), so it happens once however often the ending arrives.

At least once: the effects happen, then the event is remembered; a crash in between does them
again (the bus's consumers de-duplicate by the event's `id`; a chained start is de-duplicated by
the dispatcher). An event with nothing to set off costs nothing: no read, no write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from polytrigger.core.runs import MalformedRunEvent, RunEvent, run_event


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
