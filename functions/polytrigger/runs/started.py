"""What the ledger learns when polytrigger starts a run, or finds one covering a trigger."""

from __future__ import annotations

from datetime import timedelta

from polytrigger.core.actions import Action
from polytrigger.core.keys import digest
from polytrigger.core.outcomes import Outcome
from polytrigger.runs.ports import Promise, PromiseBook, Run, RunLedger

RECORDED = frozenset({"started", "covered"})  # an execution now stands for this trigger


def note_run(ledger: RunLedger, action: Action, outcome: Outcome) -> bool:
    """Record the run a start's outcome names, for its route and trigger; False when there is none to record."""
    if action.kind != "start" or outcome.status not in RECORDED or not outcome.execution_id:
        return False
    run = Run(execution_id=outcome.execution_id, sync_id=action.sync.id, sync_type=action.sync.type)
    ledger.record(run, action.route, action.trigger.describe(), action.trigger.time)
    return True


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
