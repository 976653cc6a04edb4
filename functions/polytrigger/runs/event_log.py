"""Reading Polytomic's events API from a cursor: overlapping windows, de-duplicated, never skipping ahead.

`starting_after` is a timestamp ("created strictly after"), not an id, and events may be recorded a
little late, so every poll reads again the last OVERLAP before the cursor; what it has seen already
is dropped by event id, and settling a run twice does nothing anyway (a read, no write). The cursor
moves only after the events were settled: a crash in between reads them again. After a burst of
more than MAX_PAGES pages, the cursor moves to the newest event read and the next polls catch up
from there without the overlap (which could hold more than a poll reads), then take it up again;
a late event missed meanwhile is still found by reconciliation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from polytrigger.polytomic.contract import RunReads
from polytrigger.runs.endings import MalformedRunEvent, RunEvent, run_event
from polytrigger.runs.ledger import Ended, RunLedger, settle

OVERLAP = timedelta(minutes=5)
PAGE = 100  # the events API's largest page
MAX_PAGES = 20  # 2,000 events a minute; more wait for the next poll
_TICK = timedelta(microseconds=1)


@dataclass(slots=True)
class Polled:
    events: int = 0  # run events read (new ones, de-duplicated)
    ended: list[Ended] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    calls: int = 0
    cursor: datetime | None = None  # where the next poll starts (before its overlap)
    received: list[Mapping[str, Any]] = field(default_factory=list)  # every event read, once (for the bus)


def poll(reads: RunReads, ledger: RunLedger, now: datetime) -> Polled:
    """Read every event since the cursor (less the overlap), settle the runs they end, move the cursor."""
    before, behind = ledger.cursor()
    low, high = (before - _TICK if behind and before else (before or now) - OVERLAP), None
    seen: dict[str, RunEvent] = {}
    received: set[str] = set()
    polled = Polled(cursor=before)
    truncated = False
    for page_number in range(MAX_PAGES):
        page = reads.events(low, high, PAGE)
        polled.calls += 1
        parsed: list[RunEvent] = []
        for raw in page:
            if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) and raw["id"] not in received:
                received.add(raw["id"])
                polled.received.append(raw)
            try:
                event = run_event(raw)
            except MalformedRunEvent as error:
                polled.malformed.append(str(error))
                continue
            if event is not None:
                parsed.append(event)
        fresh = [event for event in parsed if event.event_id not in seen]
        seen.update((event.event_id, event) for event in fresh)
        polled.ended.extend(settle(sorted(fresh, key=lambda e: e.created_at), ledger, "poller"))
        if len(page) < PAGE or not fresh:
            break
        truncated = page_number == MAX_PAGES - 1
        times = [event.created_at for event in parsed]
        if times[0] <= times[-1]:  # oldest first: read on after the newest of this page
            low = max(times) - _TICK
        else:  # newest first: read on before the oldest of this page
            high = min(times) + _TICK
    polled.events = len(seen)
    newest = max((event.created_at for event in seen.values()), default=None)
    if newest is not None and (before is None or newest > before):
        if ledger.advance(before, newest, behind=truncated):
            polled.cursor = newest
    elif behind and before is not None:
        ledger.advance(before, before)  # caught up: the overlap again from the next poll
    elif before is None:
        ledger.advance(None, low + OVERLAP)  # the first poll: start here, not at the beginning of time
        polled.cursor = low + OVERLAP
    return polled
