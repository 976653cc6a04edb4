"""Freshness promises: a route's `freshness: 30m` says each trigger's data is in a completed run by then.

When a promise falls due, the sync's recent executions say whether it was kept: a run created after
the trigger (so it has the data, whoever started it) that completed by the due time. If not, it is
reported once, with what happened instead: never started, still running, or how the run ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from polytrigger.core.runs import TERMINAL, MalformedRunEvent, status_of, timestamp
from polytrigger.runs.ports import Promise, PromiseBook, RunReads


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
