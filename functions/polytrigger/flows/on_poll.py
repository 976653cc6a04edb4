"""What happens on every poll (the poller's schedule, each minute): Polytomic's events since the cursor,
then the runs with no ending heard, by their status; then the freshness promises that fell due.

1. The events API is read from the cursor (`runs.event_log`: overlapping windows, de-duplicated); the
   runs they end are settled, once whoever brings the ending, and the cursor moves only after that.
2. What each event sets off happens once (`runs.set_off`: handed on to the bus, chained starts).
3. Runs open too long with no ending heard are looked up by their execution status and settled
   (`runs.reconcile`); one older than Polytomic keeps its events is forgotten, with a reason.
4. Endings settled and never told (their settler died between the two) are told now (`untold`).
5. Promises that fell due are checked against the sync's executions (`runs.freshness`); a broken one
   is told, then closed, so a poll that dies in between tells it again rather than never.
6. Every ending, breach and lost run is told: one line and one metric each (`runs.telling`).

Steps 3-5 read only what is due (the ledger's `due` index) and go on while the invocation has time
(`RESERVE_SECONDS` kept back): what is left is due at the next poll, so a backlog drains as fast as
the poller can work, not at a fixed number a minute. The poller catches whatever the webhook missed
(Polytomic delivers at most once); idle, it costs one Polytomic call, a few index reads and no
DynamoDB write. A failure raises: the cursor has not moved, so the next poll reads the same events
again, and settling twice does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from polytrigger.observability import logger, record_problem
from polytrigger.polytomic.contract import RunReads
from polytrigger.runs.bus import RunEventBus
from polytrigger.runs.event_log import poll
from polytrigger.runs.freshness import PromiseBook, check
from polytrigger.runs.ledger import RunLedger
from polytrigger.runs.reconcile import reconcile
from polytrigger.runs.set_off import QueuedChains, set_off
from polytrigger.runs.telling import record_breach, tell

RESERVE_SECONDS = 10.0  # of the invocation's time, kept for a last Polytomic call and the answer


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

    def poll(self, seconds_left: Callable[[], float] | None = None) -> dict[str, Any]:
        now = self.clock()

        def more() -> bool:
            return seconds_left is None or seconds_left() > RESERVE_SECONDS

        polled = poll(self.reads, self.ledger, now)
        for ended in polled.ended:
            tell(ended, self.ledger, self.chains)
        for problem in polled.malformed:
            record_problem(f"poller: an event polytrigger cannot read: {problem}", "unsupported_event")
        effects = set_off(polled.received, self.ledger, self.bus.publish if self.bus else None, self.chains)
        done = reconcile(self.reads, self.ledger, now, self.reconcile_after, more)
        for ended in done.ended:
            tell(ended, self.ledger, self.chains)
        for lost in done.forgotten:
            record_problem(f"run outcome unknown: {lost}", "run_outcome_unknown")
        late = 0
        for untold in self.ledger.untold(now):
            if not more():
                break
            tell(untold, self.ledger, self.chains, late=True)
            late += 1
        kept = breaches = 0
        for promise, breach in check(self.promises, self.reads, now, more) if self.promises is not None else ():
            if breach is None:
                kept += 1
            else:
                record_breach(breach)
                breaches += 1
            self.promises.close(promise.key)  # type: ignore[union-attr]
        summary = {
            "events": polled.events,
            "ended": len(polled.ended) + len(done.ended),
            "told_late": late,
            "looked_up": done.looked_up,
            "handed_on": effects.published,
            "promises_kept": kept,
            "freshness_breaches": breaches,
            "chained": effects.chained,
            "polytomic_calls": polled.calls + done.looked_up,
            "cursor": polled.cursor.isoformat() if polled.cursor else None,
        }
        logger.debug("poll done", extra=summary)
        return summary
