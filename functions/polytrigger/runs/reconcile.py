"""Runs with no ending heard: Polytomic's events are at most once, so ask the execution itself.

A run open for longer than `after` is looked up by its execution status (oldest first, each at most
once per `after`, for as long as the poll has time: the ledger reads only the runs due, so nothing
waits behind a fixed number a minute); a terminal status settles it like any event would. A run
older than Polytomic keeps its events and unknown to it is forgotten, with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from polytrigger.polytomic.contract import RunReads
from polytrigger.runs.endings import from_execution
from polytrigger.runs.ledger import Ended, RunLedger, settle

EVENTS_KEPT = timedelta(hours=48)


@dataclass(slots=True)
class Reconciled:
    looked_up: int = 0
    ended: list[Ended] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # "execution <id> of <type> sync <id>: why"


def reconcile(
    reads: RunReads, ledger: RunLedger, now: datetime, after: timedelta, more: Callable[[], bool] = lambda: True
) -> Reconciled:
    """Look up the runs due, while `more()` says the poll has time; what it leaves is due at the next poll."""
    done = Reconciled()
    for run in ledger.open_runs(now - after):
        if not more():
            break
        done.looked_up += 1
        data = reads.execution(run.sync_type, run.sync_id, run.execution_id)
        event = from_execution("bulk" if run.sync_type == "bulk" else "model", run.sync_id, data) if data else None
        if event is not None and event.terminal:
            ended = settle([event], ledger, "reconciliation")
            if not ended:  # settled already meanwhile: it is no longer open
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
