"""What the ledger learns when polytrigger starts a run, or finds one covering a trigger."""

from __future__ import annotations

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome
from polytrigger.runs.ports import Run, RunLedger

RECORDED = frozenset({"started", "covered"})  # an execution now stands for this trigger


def note_run(ledger: RunLedger, action: Action, outcome: Outcome) -> bool:
    """Record the run a start's outcome names, for its route and trigger; False when there is none to record."""
    if action.kind != "start" or outcome.status not in RECORDED or not outcome.execution_id:
        return False
    run = Run(execution_id=outcome.execution_id, sync_id=action.sync.id, sync_type=action.sync.type)
    ledger.record(run, action.route, action.trigger.describe(), action.trigger.time)
    return True
