"""The run ledger: the runs polytrigger started (or found covering a trigger), open until their ending is heard.

The port the run-outcome logic writes through (`dynamo_ledger` keeps it in the dedup table), and
what it learns at a start (`StartedRuns`: the run, and the route's freshness promise).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.deferrals import SKEW_SECONDS
from polytrigger.dispatch.holds import DynamoHolds, HoldsUnavailable, hold_ids, release
from polytrigger.dispatch.landings import DynamoLandings, LandingsUnavailable
from polytrigger.dispatch.ports import Queue
from polytrigger.observability import count, record_ledger_problem
from polytrigger.routing import Routes
from polytrigger.runs.endings import RunEvent
from polytrigger.runs.freshness import PromiseBook, note_promise

RECORDED = frozenset({"started", "covered"})  # an execution now stands for the trigger


class LedgerUnavailable(Exception):
    """The ledger could not be read or written (a retry may work); nothing was recorded."""


@dataclass(frozen=True, slots=True)
class Run:
    """One execution as the ledger knows it: what polytrigger started it for, and how it ended."""

    execution_id: str
    sync_id: str
    sync_type: str
    status: str = ""
    routes: tuple[str, ...] = ()
    first_trigger: str = ""  # what it was first started for, as `Trigger.describe()` says it
    trigger_count: int = 0
    first_trigger_at: datetime | None = None  # the earliest trigger it covers: freshness counts from there
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def freshness_seconds(self) -> float | None:
        """From the earliest trigger it covers landing (or firing) to the run ending; None until both are known."""
        if self.finished_at is None or self.first_trigger_at is None:
            return None
        return max(0.0, (self.finished_at - self.first_trigger_at).total_seconds())

    def to_dict(self) -> dict[str, Any]:
        """The run as a log line's fields and `polytrigger status --json` show it."""
        freshness = self.freshness_seconds
        return {
            "execution_id": self.execution_id,
            "sync_id": self.sync_id,
            "sync_type": self.sync_type,
            "routes": list(self.routes),
            "first_trigger": self.first_trigger,
            "trigger_count": self.trigger_count,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "freshness_seconds": round(freshness, 3) if freshness is not None else None,
        }


@dataclass(frozen=True, slots=True)
class OpenRun:
    """A run polytrigger started and has heard no end of yet."""

    execution_id: str
    sync_id: str
    sync_type: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Ended:
    """A run that has just ended (this event settled it; no other delivery of it will), or one settled
    and not yet told (`RunLedger.untold`: its settler died between the two)."""

    run: Run  # as settled: its status and finished_at are the event's
    event: RunEvent
    how: str  # the way the ending arrived: webhook, poller, reconciliation


class RunLedger(Protocol):
    def record(self, run: Run, route: str, trigger: str, trigger_at: datetime, covers_from: datetime) -> None:
        """A run polytrigger started (or found covering) for a trigger of a route; open until it ends.

        `covers_from`: the run was created at or after it (a file that landed by then is in the run)."""
        ...

    def settle(self, event: RunEvent, how: str) -> Run | None:
        """Mark the run ended by `event`, once: the run as settled, or None when it had ended already.

        The settled run is untold (`untold`) until `told`: a crash between the two loses no ending.
        """
        ...

    def told(self, execution_id: str) -> None:
        """The ending was told: line, metric and chains."""
        ...

    def untold(self, now: datetime) -> Iterator[Ended]:
        """Endings settled a while ago and not yet told (their settler did not live to tell them)."""
        ...

    def open_runs(self, looked_up_before: datetime) -> Iterator[OpenRun]:
        """The runs with no ending heard, started or last looked up before then (only those are read)."""
        ...

    def checked(self, execution_id: str, at: datetime) -> None:
        """Its execution status was looked up and it has not ended yet."""
        ...

    def forget(self, execution_id: str) -> None:
        """Stop watching a run whose outcome can no longer be learnt (older than Polytomic keeps events)."""
        ...

    def cursor(self) -> tuple[datetime | None, bool]:
        """Where the events were read up to, and whether the last poll stopped short of the newest (behind)."""
        ...

    def advance(self, before: datetime | None, after: datetime, *, behind: bool = False) -> bool:
        """Move the events cursor from `before` to `after`; False if someone else moved it meanwhile."""
        ...

    def handed_on(self, event_id: str) -> bool:
        """True once what the event sets off (`set_off`) has happened."""
        ...

    def hand_on(self, event_id: str) -> None:
        """Record that what the event sets off has happened."""
        ...


def settle(events: Iterable[RunEvent], ledger: RunLedger, how: str) -> list[Ended]:
    """The runs these events end, each once: a running event, or an ending already settled, does nothing.

    One logic for every way an outcome arrives. Order does not matter: an ending that arrives before
    its running event settles the run, and the running event after it changes nothing. The same event
    from the webhook and the poller settles once (the ledger's write is conditional on the run not
    having ended).
    """
    ended: list[Ended] = []
    for event in events:
        if not event.terminal:
            continue
        run = ledger.settle(event, how)
        if run is not None:
            ended.append(Ended(replace(run, status=event.status, finished_at=event.created_at), event, how))
    return ended


def note_run(ledger: RunLedger, action: Action, outcome: Outcome) -> bool:
    """Record the run a start's outcome names, for its route and trigger; False when there is none to record."""
    if action.kind != "start" or outcome.status not in RECORDED or not outcome.execution_id:
        return False
    run = Run(execution_id=outcome.execution_id, sync_id=action.sync.id, sync_type=action.sync.type)
    since = datetime.fromtimestamp(outcome.since, UTC) if outcome.since is not None else action.trigger.time
    ledger.record(run, action.route, action.trigger.describe(), action.trigger.time, since)
    return True


class StartedRuns:
    """What an outcome leaves behind, on the action's own thread: the run a start names (for its route
    and trigger) and the route's freshness promise; a start refused for good, noted under its sync so
    its files can say they were parked (`dispatch.landings`); and after polytrigger's own `activate`
    of a sync, the starts held while it was paused, released (`dispatch.holds`). A table that cannot
    be written loses the note, not the outcome: one ERROR line (`ledger_unavailable`), and it stands."""

    def __init__(
        self,
        ledger: RunLedger,
        promises: PromiseBook | None,
        routes: Routes,
        *,
        landings: DynamoLandings | None = None,
        holds: tuple[DynamoHolds, Queue] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.promises = promises
        self.routes = routes
        self.landings = landings
        self.holds = holds
        self.clock = clock

    def note(self, action: Action, outcome: Outcome) -> Outcome:
        try:
            note_run(self.ledger, action, outcome)
            if self.promises is not None:
                route = self.routes.named(action.route)
                note_promise(self.promises, action, outcome, route.freshness if route else 0)
        except LedgerUnavailable as error:
            record_ledger_problem(f"{error}: the outcome of {action.route}'s {outcome.status} start is not watched")
        if self.landings is not None and outcome.status == "failed" and not outcome.retryable:
            where = "the dispatch dead-letter queue" if outcome.parked else "the dead-letter queue"
            try:
                since = self.clock() + SKEW_SECONDS  # it was for every file that had reached us by now
                self.landings.parked(action, since, outcome.reason or "failed", where)
            except LandingsUnavailable as error:
                record_ledger_problem(f"{error}: {action.route}'s parked {action.kind} is not noted for its files")
        if self.holds is not None and outcome.status == "activated":
            self._release(action)
        return outcome

    def _release(self, action: Action) -> None:
        """The sync is active again by our own hand: its held starts go now, not at the next poll."""
        store, queue = self.holds  # type: ignore[misc]
        try:
            for hid in hold_ids(self.routes, action.sync.type, action.sync.id):
                hold = store.get(hid)
                if hold is not None:
                    release(store, queue, hold)
                    count("hold_released")
        except HoldsUnavailable as error:  # the poller releases it within its period
            record_ledger_problem(f"{error}: the starts held for {action.sync.id} wait for the poller")
