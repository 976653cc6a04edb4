"""Runs with no ending heard: Polytomic's events are at most once, so ask the execution itself.

A run open for longer than `after` is looked up by its execution status (at most `limit` a poll,
oldest first, each at most once per `after`); a terminal status settles it like any event would. A
run older than Polytomic keeps its events and unknown to it is forgotten, with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from polytrigger.polytomic.contract import RunReads
from polytrigger.runs.endings import from_execution
from polytrigger.runs.ledger import RunLedger
from polytrigger.runs.settle import Ended, settle

EVENTS_KEPT = timedelta(hours=48)


@dataclass(slots=True)
class Reconciled:
    looked_up: int = 0
    ended: list[Ended] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # "execution <id> of <type> sync <id>: why"


def reconcile(reads: RunReads, ledger: RunLedger, now: datetime, after: timedelta, limit: int = 20) -> Reconciled:
    done = Reconciled()
    for run in sorted(ledger.open_runs(), key=lambda r: r.started_at):
        if now - run.started_at < after or (run.checked_at is not None and now - run.checked_at < after):
            continue
        if done.looked_up >= limit:
            break
        done.looked_up += 1
        data = reads.execution(run.sync_type, run.sync_id, run.execution_id)
        event = from_execution("bulk" if run.sync_type == "bulk" else "model", run.sync_id, data) if data else None
        if event is not None and event.terminal:
            ended = settle([event], ledger)
            if not ended:  # settled already (a crash came between settling it and closing it): close it now
                ledger.forget(run.execution_id)
            done.ended.extend(ended)
            continue
        if now - run.started_at > EVENTS_KEPT:
            why = "Polytomic does not know it" if data is None else f"still {event.status if event else 'unreadable'}"
            done.forgotten.append(
                f"execution {run.execution_id} of {run.sync_type} sync {run.sync_id}: {why} after"
                f" {EVENTS_KEPT.total_seconds() / 3600:.0f} h; its outcome is no longer watched"
            )
            ledger.forget(run.execution_id)
            continue
        ledger.checked(run.execution_id, now)
    return done
