"""Freshness promises: a route's `freshness: 30m` says each trigger's data is in a completed run by then.

When a promise falls due, the sync's executions say whether it was kept: a run created after the
trigger (by the rule a start's coverage uses: so it has the data, whoever started it) that completed
by the due time. If not, it is reported once, with what happened instead: never started, still
running, or how the run ended. The promises due are checked a batch at a time, one read of a sync's
executions (every page back to the earliest trigger) for all of that sync's promises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Protocol

from polytrigger.core.actions import Action
from polytrigger.core.keys import digest
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.deferrals import coverage_since
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

    def due(self, now: datetime) -> Iterator[Promise]:
        """The promises due by `now`, read as they are used (only those due are read)."""
        ...

    def close(self, key: str, verdict: str = "kept") -> bool:
        """Take the promise off the book, keeping its verdict (`kept`, or what broke it) for `status`;
        False if it was closed already (another poll reported it)."""
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


Verdict = tuple[Promise, Breach | None]
BATCH = 500  # promises read before the batch's syncs are asked: one read per sync, not per promise


def check(
    book: PromiseBook, reads: RunReads, now: datetime, more: Callable[[], bool] = lambda: True
) -> Iterator[Verdict]:
    """Each promise due now, with its breach (None: kept), while `more()` says the poll has time.

    The caller tells a breach and then closes the promise (`PromiseBook.close`): a poll that dies in
    between checks it again, so no breach is lost.
    """
    due = book.due(now)
    while more():
        batch = list(islice(due, BATCH))
        if not batch:
            return
        by_sync: dict[tuple[str, str], list[Promise]] = {}
        for promise in batch:
            by_sync.setdefault((promise.sync_type, promise.sync_id), []).append(promise)
        for (sync_type, sync_id), promises in by_sync.items():
            if not more():
                return
            executions = reads.executions(sync_type, sync_id, min(p.at for p in promises))
            for promise in promises:
                yield promise, _verdict(promise, executions)


def _verdict(promise: Promise, executions: list[dict[str, Any]]) -> Breach | None:
    """None when a run created after the trigger completed by the due time; else the breach."""
    later: list[tuple[datetime, dict[str, Any]]] = []
    for execution in executions:
        try:
            created = timestamp(execution.get("created_at"), "created_at")
        except MalformedRunEvent:
            continue
        if created.timestamp() >= coverage_since(promise.at, math.inf):
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
