"""Freshness promises: a route's `freshness: 30m` says each trigger's data is in a completed run by then.

When a promise falls due, the sync's recent executions say whether it was kept: a run created after
the trigger (so it has the data, whoever started it) that completed by the due time. If not, it is
reported once, with what happened instead: never started, still running, or how the run ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from polytrigger.core.actions import Action
from polytrigger.core.keys import digest
from polytrigger.core.outcomes import Outcome
from polytrigger.polytomic.contract import RunReads
from polytrigger.runs.endings import TERMINAL, MalformedRunEvent, status_of, timestamp


@dataclass(frozen=True, slots=True)
class Promise:
    """A route's freshness promise for one trigger and one sync: its data in a completed run by `due`."""

    key: str  # the same for every delivery of the trigger: written once, reported once
    route: str
    sync_id: str
    sync_type: str
    trigger: str  # as `Trigger.describe()` says it
    at: datetime  # when the object landed (or the schedule fired)
    due: datetime


class PromiseBook(Protocol):
    def promise(self, promise: Promise) -> None:
        """Note the promise (again: nothing changes)."""
        ...

    def due(self, now: datetime) -> list[Promise]: ...

    def close(self, key: str) -> bool:
        """Take the promise off the book; False if it was gone already (another poll reported it)."""
        ...


def note_promise(book: PromiseBook, action: Action, outcome: Outcome, freshness: int) -> bool:
    """A route's freshness promise for this trigger and sync, noted when the trigger is first handled."""
    if not freshness or action.kind != "start" or outcome.status == "duplicate":
        return False
    trigger = action.trigger
    key = digest(["promise", action.route, action.sync.type, action.sync.id, trigger.identity])
    book.promise(
        Promise(
            key=key,
            route=action.route,
            sync_id=action.sync.id,
            sync_type=action.sync.type,
            trigger=trigger.describe(),
            at=trigger.time,
            due=trigger.time + timedelta(seconds=freshness),
        )
    )
    return True


@dataclass(frozen=True, slots=True)
class Breach:
    promise: Promise
    what: str  # never started / still running / failed / ...
    execution_id: str = ""


def check(book: PromiseBook, reads: RunReads, now: datetime, limit: int = 20) -> tuple[int, list[Breach]]:
    """(promises kept, breaches) of the promises due now, at most `limit` (one Polytomic call each)."""
    kept, breaches = 0, []
    for promise in sorted(book.due(now), key=lambda p: p.due)[:limit]:
        verdict = _verdict(promise, reads.executions(promise.sync_type, promise.sync_id))
        if not book.close(promise.key):
            continue  # another poll took it
        if verdict is None:
            kept += 1
        else:
            breaches.append(verdict)
    return kept, breaches


def _verdict(promise: Promise, executions: list[dict[str, Any]]) -> Breach | None:
    """None when a run created after the trigger completed by the due time; else the breach."""
    later: list[tuple[datetime, dict[str, Any]]] = []
    for execution in executions:
        try:
            created = timestamp(execution.get("created_at"), "created_at")
        except MalformedRunEvent:
            continue
        if created >= promise.at:
            later.append((created, execution))
    for _, execution in sorted(later, key=lambda pair: pair[0]):
        status = status_of(execution.get("status"))
        if status == "completed" and not execution.get("errors"):
            try:
                done = timestamp(execution.get("completed_at"), "completed_at")
            except MalformedRunEvent:
                continue
            if done <= promise.due:
                return None
    if not later:
        return Breach(promise, "never started")
    created, first = sorted(later, key=lambda pair: pair[0])[0]
    status = status_of(first.get("status"))
    if status == "completed" and not first.get("errors"):
        what = "the run completed after the promise was due"
    else:
        what = f"the run ended {status}" if status in TERMINAL else "still running" if status else "status unknown"
    return Breach(promise, what, str(first.get("id", "")))
