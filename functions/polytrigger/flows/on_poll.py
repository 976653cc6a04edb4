"""What happens on every poll (the poller's schedule, each minute): Polytomic's events since the cursor,
then the runs with no ending heard, by their status; then the freshness promises that fell due.

1. The events API is read from the cursor, page by page (`runs.event_log`: every event, from the
   oldest up, de-duplicated); the runs a page ends are settled, once whoever brings the ending,
   and told;
2. what each of its events sets off happens once (`runs.set_off`: handed on to the bus, chained
   starts); only then does the cursor move past the page.
3. Runs open too long with no ending heard are looked up by their execution status and settled
   (`runs.reconcile`); one older than Polytomic keeps its events is forgotten, with a reason.
4. Promises that fell due are checked against the sync's executions (`runs.freshness`); a broken one
   is reported once.
5. Every ending, breach and lost run is told: one line and one metric each.

The poller catches whatever the webhook missed (Polytomic delivers at most once); idle, it costs one
Polytomic call and no DynamoDB write. A failure raises: the cursor has not moved past the page that
failed, so the next poll (or Lambda's retry) reads it again; settling twice does nothing, and what
was set off already is not set off again. Every poll says how far behind now its cursor is
(`cursor_age_seconds`: 0 once it read up to now).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from polytrigger.observability import count, logger, record_problem
from polytrigger.polytomic.contract import RunReads
from polytrigger.runs.bus import RunEventBus
from polytrigger.runs.event_log import Page, poll
from polytrigger.runs.freshness import PromiseBook, check
from polytrigger.runs.ledger import RunLedger
from polytrigger.runs.reconcile import reconcile
from polytrigger.runs.set_off import QueuedChains, SetOff, set_off
from polytrigger.runs.telling import record_breach, record_run_ended


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class PollFlow:
    reads: RunReads
    ledger: RunLedger
    reconcile_after: timedelta
    promises: PromiseBook | None = None  # the routes' freshness promises
    bus: RunEventBus | None = None
    chains: QueuedChains | None = None
    clock: Callable[[], datetime] = _now

    def poll(self) -> dict[str, Any]:
        now = self.clock()
        effects = SetOff()

        def handle(page: Page) -> None:
            """One page, before the cursor moves past it: its endings told, what its events set off done."""
            nonlocal effects
            for ended in page.ended:
                record_run_ended(ended, "poller")
            for problem in page.malformed:
                record_problem(f"poller: an event polytrigger cannot read: {problem}", "unsupported_event")
            done = set_off(page.received, self.ledger, self.bus.publish if self.bus else None, self.chains)
            effects = SetOff(effects.published + done.published, effects.chained + done.chained)

        polled = poll(self.reads, self.ledger, now, handle)
        for unread in polled.unread:
            record_problem(f"poller: {unread}", "events_unread")
        age = polled.age(now)
        count("cursor_age_seconds", age, seconds=True)
        done = reconcile(self.reads, self.ledger, now, self.reconcile_after)
        kept, breaches = check(self.promises, self.reads, now) if self.promises is not None else (0, [])
        for breach in breaches:
            record_breach(breach)
        for ended in done.ended:
            record_run_ended(ended, "reconciliation")
        for lost in done.forgotten:
            record_problem(f"run outcome unknown: {lost}", "run_outcome_unknown")
        summary = {
            "events": polled.events,
            "ended": len(polled.ended) + len(done.ended),
            "looked_up": done.looked_up,
            "handed_on": effects.published,
            "promises_kept": kept,
            "freshness_breaches": len(breaches),
            "chained": effects.chained,
            "polytomic_calls": polled.calls + done.looked_up,
            "cursor": polled.cursor.isoformat() if polled.cursor else None,
            "cursor_age_seconds": round(age, 3),
        }
        logger.debug("poll done", extra=summary)
        return summary
