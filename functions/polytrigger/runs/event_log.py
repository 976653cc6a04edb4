"""Reading Polytomic's events API from a cursor: every event once, from the oldest up, never skipping ahead.

The API pages by time only (`starting_after` / `ending_before`: "created strictly after/before" a
timestamp; at most PAGE events a page), its order within a page is not documented (oldest or newest
first), and it is the organisation's whole event log. So the poller pages on EVERY event, not only
the run events it settles: a page of other types, or of one instant, moves it on all the same.

- **Windows from the cursor.** A short page holds every event of its window, whatever its order. A
  full page in ascending order holds the oldest of the window: everything before its newest time is
  read, and the next page starts at that time (its events read again, dropped by id). A full page in
  any other order (newest first) only says the window holds more than a page: the window is narrowed
  until a page comes back short, then widened again. Either way the events are read from the oldest
  up, so the cursor can follow them.
- **More than a page at one instant.** No query reaches past PAGE events sharing one `created_at`.
  The poller reads the page it is given, moves on past that instant (never looping on it), and says
  how many it may have missed (`unread`); a run polytrigger started is still settled by reconciliation.
- **Handled, then moved.** Each page's endings are settled and the page is handed to `handle` (the
  flow tells the endings and sets off what the events set off) before the cursor moves past it:
  page by page, conditionally on its previous value. A failure or a timeout keeps the pages handled
  before it, and the next poll reads from the first event not handled.
- **Late events, bursts.** Events may be recorded a little late: a poll that caught up last time
  reads the last OVERLAP before the cursor again. A poll that stops short of now (MAX_PAGES requests)
  leaves the cursor at the oldest event it has not handled, marked behind: the next poll goes on from
  there without the overlap (which could hold more than a poll reads) and takes it up again once
  caught up; a late event missed meanwhile is still found by reconciliation.
- **Clock.** The cursor goes no further than SKEW past the poller's clock: an event dated in the
  future cannot carry it past the events still to come.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from polytrigger.polytomic.contract import RunReads
from polytrigger.runs.endings import MalformedRunEvent, RunEvent, run_event, timestamp
from polytrigger.runs.ledger import Ended, RunLedger, settle

OVERLAP = timedelta(minutes=5)
PAGE = 100  # the events API's largest page
MAX_PAGES = 20  # requests a poll; more events wait for the next poll
SKEW = timedelta(minutes=1)  # how far past the poller's clock the cursor may go
_TICK = timedelta(microseconds=1)  # the API's finest time: "strictly after t - _TICK" is "from t on"


@dataclass(frozen=True, slots=True)
class Page:
    """What one page brought that the poll had not seen yet: the events, the runs they ended."""

    received: list[Mapping[str, Any]]
    ended: list[Ended]
    malformed: list[str]


@dataclass(slots=True)
class Polled:
    events: int = 0  # run events read (new ones, de-duplicated)
    ended: list[Ended] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # events the API does not let anyone read past, and why
    calls: int = 0
    cursor: datetime | None = None  # every event before it is handled; the next poll starts there
    caught_up: bool = False  # read up to now: the last page was short

    def age(self, now: datetime) -> float:
        """How far behind `now` the events are handled, in seconds: 0 once a poll read up to now."""
        if self.caught_up or self.cursor is None:
            return 0.0
        return max(0.0, (now - self.cursor).total_seconds())


Handle = Callable[[Page], None]


def poll(reads: RunReads, ledger: RunLedger, now: datetime, handle: Handle | None = None) -> Polled:
    """Read the events since the cursor (less the overlap) page by page; settle and hand on each, then move."""
    return _Reading(reads, ledger, now, handle).run()


class _Reading:
    def __init__(self, reads: RunReads, ledger: RunLedger, now: datetime, handle: Handle | None) -> None:
        self.reads, self.ledger, self.handle = reads, ledger, handle
        self.limit = now + SKEW
        self.stored, self.behind = ledger.cursor()  # as the ledger holds it: each move is conditional on it
        self.moved = False
        self.cursor = min(self.stored, self.limit) if self.stored else None
        if self.behind and self.cursor:
            self.low = self.cursor - _TICK
        else:
            self.low = (self.cursor or now) - OVERLAP
        self.now = now
        self.seen: set[str] = set()
        self.polled = Polled(cursor=self.cursor)

    def run(self) -> Polled:
        high: datetime | None = None  # the window's end (events strictly before it); None: up to the newest
        while self.polled.calls < MAX_PAGES:
            page = self.reads.events(self.low, high, PAGE)
            self.polled.calls += 1
            times = sorted(when for when in map(_time, page) if when is not None)
            if len(page) < PAGE:  # every event of the window
                self.take(page)
                if high is None:
                    self.polled.caught_up = True
                    return self.finish(times[-1] if times else None)
                if not self.move(high):
                    return self.polled
                width = (high - self.low) * (4 if len(page) < PAGE // 4 else 2 if len(page) < PAGE // 2 else 1)
                self.low = high - _TICK
                high = self.low + width if self.low + width < self.limit else None
            elif not times:  # nothing to page on: stop here (the cursor's age tells it goes on)
                self.polled.unread.append(
                    f"a full page of events with no readable created_at after {self.low.isoformat()}"
                )
                break
            elif _oldest_first(page):  # the oldest of the window: every event before its newest one
                self.take(page)
                if not self.move(times[-1]):
                    return self.polled
                self.low = times[-1] - _TICK
            elif times[-1] <= self.low + _TICK:  # one instant holding more than a page: read what can be
                self.take(page)
                if self.cursor is None or times[-1] >= self.cursor:  # said once: not again in the overlap
                    self.polled.unread.append(
                        f"more than {PAGE} events at {times[-1].isoformat()}: Polytomic's events API pages by"
                        f" time only, so {len(page)} of them were read and the others may never be"
                    )
                if not self.move(times[-1] + _TICK):
                    return self.polled
                self.low, high = times[-1], None
            elif times[0] == times[-1]:  # one instant, later: first what comes before it
                high = times[0]
            else:  # the newest of the window, or no known order: a narrower window from the same start,
                # for about 70 events at the page's own pace, and at most half the window
                guess = (times[-1] - times[0]) * 7 / 10
                half = (times[-1] + _TICK - self.low) / 2
                high = self.low + max(min(times[0] - self.low, guess, half), 2 * _TICK)
        return self.finish(None)

    def take(self, page: Sequence[Any]) -> None:
        """Settle the runs the page's new events end and hand the page on: all before the cursor moves."""
        received: list[Mapping[str, Any]] = []
        events: list[RunEvent] = []
        malformed: list[str] = []
        for raw in page:
            event_id = raw.get("id") if isinstance(raw, Mapping) else None
            if isinstance(event_id, str):
                if event_id in self.seen:
                    continue
                self.seen.add(event_id)
                received.append(raw)
            try:
                event = run_event(raw)
            except MalformedRunEvent as error:
                malformed.append(str(error))
                continue
            if event is not None:
                events.append(event)
        ended = settle(sorted(events, key=lambda e: e.created_at), self.ledger, "poller")
        self.polled.events += len(events)
        self.polled.ended.extend(ended)
        self.polled.malformed.extend(malformed)
        if self.handle is not None:
            self.handle(Page(received, ended, malformed))

    def move(self, to: datetime) -> bool:
        """Every event before `to` is handled: move the cursor there (never back, never past the limit),
        marked behind until the poll reads up to now. False if another poll moved it meanwhile: stop."""
        to = min(to, self.limit)
        if self.cursor is not None and to <= self.cursor:
            return True
        return self.write(to, behind=True)

    def write(self, to: datetime, *, behind: bool) -> bool:
        if not self.ledger.advance(self.stored, to, behind=behind):
            return False
        self.stored = self.cursor = self.polled.cursor = to
        self.behind, self.moved = behind, True
        return True

    def finish(self, newest: datetime | None) -> Polled:
        """Read up to now: the cursor at the newest event, the overlap again from the next poll (once the
        cursor moved: an overlap that held more than a poll reads is not read again while nothing new
        comes). Stopped short: the cursor where the events stop being handled, behind, so the next poll
        goes on from there."""
        if self.polled.caught_up:
            if newest is not None and (self.cursor is None or min(newest, self.limit) > self.cursor):
                self.write(min(newest, self.limit), behind=False)
            elif self.cursor is None:
                self.write(self.now, behind=False)  # the first poll: start here, not at the beginning of time
            elif self.behind and self.moved:
                self.write(self.cursor, behind=False)
        elif not self.behind:
            self.write(self.cursor or self.low + _TICK, behind=True)
        return self.polled


def _time(raw: Any) -> datetime | None:
    """An event's `created_at`, or None when it has none to read (it is still handed on)."""
    try:
        return timestamp(raw.get("created_at") if isinstance(raw, Mapping) else None, "created_at")
    except MalformedRunEvent:
        return None


def _oldest_first(page: Sequence[Any]) -> bool:
    """The page is in ascending order of time, and not all at one instant."""
    known = [when for when in map(_time, page) if when is not None]
    return known[0] < known[-1] and all(a <= b for a, b in pairwise(known))
