"""Handing every Polytomic event received on to a bus, once, whichever way (webhook, poller) it came.

At least once: the event is published, then remembered as handed on; a crash in between hands it
on again, and consumers de-duplicate by its `id`. Events that come again (the poller's overlap, the
webhook and the poller both) are not published again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol


class Bus(Protocol):
    def publish(self, event: Mapping[str, Any]) -> None: ...


class HandedOn(Protocol):
    def handed_on(self, event_id: str) -> bool: ...

    def hand_on(self, event_id: str) -> None: ...


def fan_out(events: Iterable[Mapping[str, Any]], ledger: HandedOn, bus: Bus) -> int:
    """Publish each event not handed on yet; how many were published."""
    published = 0
    for event in events:
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id or ledger.handed_on(event_id):
            continue
        bus.publish(event)
        ledger.hand_on(event_id)
        published += 1
    return published
