"""What happens on every poll (the poller's schedule, each minute): Polytomic's events since the cursor,
then what is due: runs with no ending heard, endings never told, freshness promises.

1. The events API is read from the cursor, page by page (`runs.event_log`: every event, from the
   oldest up, de-duplicated); the runs a page ends are settled, once whoever brings the ending,
   and told (`runs.telling.tell`);
2. what each of its events sets off happens once (`runs.set_off`: handed on to the bus, chained
   starts); only then does the cursor move past the page.
3. Runs open too long with no ending heard are looked up by their execution status, settled and
   told (`runs.reconcile`); one older than Polytomic keeps its events is forgotten, with a reason.
4. Endings settled and never told (their settler died between the two) are told now (`untold`).
5. Promises that fell due are checked against the sync's executions (`runs.freshness`); a broken one
   is told, then closed, so a poll that dies in between tells it again rather than never.
6. Gates that fell due (`gating.keeper.check_due`): a partition quiet long enough completes and its
   start is queued; a start owed past its grace (its maker died) is queued; a partition incomplete
   past its `timeout` is reported once, naming what is missing.
7. Syncs that hold starts (`dispatch.holds`: files that landed while the sync was paused) are asked
   whether they are active again, each every few minutes: the hold is released as one start, or
   parked with the reason once it has waited past its route's `hold`.
8. Arrival deadlines (`deadlines.watch`), if a route has `expect`: each route's next look and each
   missed partition that is due (the `due` index's `late#…`): a miss reported once, a late arrival
   once. A Scheduler firing `{"deadline": route}` (wired from the routes file) looks at that route.

Steps 3-8 read only what is due (the ledger's `due` index) and go on while the invocation has time
(`RESERVE_SECONDS` kept back): what is left is due at the next poll, so a backlog drains as fast as
the poller can work, not at a fixed number a minute. The poller catches whatever the webhook missed
(Polytomic delivers at most once); idle, it costs one Polytomic call, a few index reads and no
DynamoDB write. A failure raises: the cursor has not moved past the page that failed, so the next
poll reads it again; settling twice does nothing, and what was set off already is not set off
again. Every poll says how far behind now its cursor is (`cursor_age_seconds`: 0 once it read up
to now).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from polytrigger.deadlines.watch import DeadlineWatch, Looked
from polytrigger.dispatch.holds import DynamoHolds, Hold, check_holds
from polytrigger.dispatch.landings import DynamoLandings
from polytrigger.dispatch.ports import Queue
from polytrigger.gating.keeper import Checked, check_due
from polytrigger.gating.store import DynamoGates
from polytrigger.observability import count, logger, record_parked, record_problem
from polytrigger.polytomic.contract import RunReads
from polytrigger.routing import Routes
from polytrigger.runs.bus import RunEventBus
from polytrigger.runs.event_log import Page, poll
from polytrigger.runs.freshness import PromiseBook, check
from polytrigger.runs.ledger import RunLedger
from polytrigger.runs.reconcile import reconcile
from polytrigger.runs.set_off import QueuedChains, SetOff, set_off
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
    holds: tuple[DynamoHolds, Queue, DynamoLandings] | None = None  # held starts, their queue, their files
    gates: tuple[DynamoGates, Queue, Routes] | None = None  # the gated routes' partitions, the queue, the routes
    deadlines: DeadlineWatch | None = None  # the routes' arrival deadlines (None: no route has `expect`)

    def poll(self, seconds_left: Callable[[], float] | None = None) -> dict[str, Any]:
        now = self.clock()

        def more() -> bool:
            return seconds_left is None or seconds_left() > RESERVE_SECONDS

        effects = SetOff()

        def handle(page: Page) -> None:
            """One page, before the cursor moves past it: its endings told, what its events set off done."""
            nonlocal effects
            for ended in page.ended:
                tell(ended, self.ledger, self.chains)
            for problem in page.malformed:
                record_problem(f"poller: an event polytrigger cannot read: {problem}", "unsupported_event")
            done = set_off(page.received, self.ledger, self.bus.publish if self.bus else None, self.chains)
            effects = SetOff(effects.published + done.published, effects.chained + done.chained)

        polled = poll(self.reads, self.ledger, now, handle)
        for unread in polled.unread:
            record_problem(f"poller: {unread}", "events_unread")
        age = polled.age(now)
        count("cursor_age_seconds", age, seconds=True)
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
            self.promises.close(promise.key, breach.what if breach else "kept")  # type: ignore[union-attr]
        gated = self._gates(more) if self.gates is not None else None
        held = self._holds(more) if self.holds is not None else None
        looked = self.deadlines.due(more) if self.deadlines is not None else Looked()
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
            "cursor_age_seconds": round(age, 3),
            "holds_released": held.released if held else 0,
            "holds_expired": held.expired if held else 0,
            "gate_starts_queued": gated.queued if gated else 0,
            "gates_timed_out": gated.timed_out if gated else 0,
            "deadlines_warned": looked.warned,
            "deadlines_missed": looked.missed,
            "arrived_late": looked.arrived_late,
        }
        logger.debug("poll done", extra=summary)
        return summary

    def _gates(self, more: Callable[[], bool]) -> Checked:
        gates, queue, routes = self.gates  # type: ignore[misc]
        return check_due(gates, routes, queue, datetime.fromtimestamp(gates.clock(), UTC), more)  # the gates' clock

    def deadline(self, route: str) -> dict[str, Any]:
        """A deadline's Scheduler firing (`{"deadline": route}`): every deadline of the route passed since
        it was last looked at."""
        if self.deadlines is None:
            logger.warning(f"deadline check: route {route}: no route of this deployment has expect")
            return {"deadline": route, "warned": 0, "missed": 0, "skipped": 0}
        looked = self.deadlines.route(route)
        return {"deadline": route, "warned": looked.warned, "missed": looked.missed, "skipped": looked.skipped}

    def _holds(self, more: Callable[[], bool]) -> Any:
        store, queue, landings = self.holds  # type: ignore[misc]

        def expired(hold: Hold, why: str) -> None:
            record_parked(f"held start parked: {why}", "the dispatch dead-letter queue", first_word=True)
            count("hold_expired")
            landings.parked(hold.message.action, hold.message.since, why, "the dispatch dead-letter queue")

        checked = check_holds(
            store, self.reads.active, queue, expired, now=store.clock(), more=more
        )  # the holds' clock
        if checked.released:
            count("hold_released", checked.released)
        return checked
