"""One logic for every way an outcome arrives: a terminal event settles its run once, whoever brings it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from polytrigger.runs.endings import RunEvent
from polytrigger.runs.ledger import Run, RunLedger


@dataclass(frozen=True, slots=True)
class Ended:
    """A run that has just ended (this event settled it; no other delivery of it will)."""

    run: Run  # as settled: its status and finished_at are the event's
    event: RunEvent


def settle(events: Iterable[RunEvent], ledger: RunLedger) -> list[Ended]:
    """The runs these events end, each once: a running event, or an ending already settled, does nothing.

    Order does not matter: an ending that arrives before its running event settles the run, and the
    running event after it changes nothing. The same event from the webhook and the poller settles once
    (the ledger's write is conditional on the run not having ended).
    """
    ended: list[Ended] = []
    for event in events:
        if not event.terminal:
            continue
        run = ledger.settle(event)
        if run is not None:
            ended.append(Ended(replace(run, status=event.status, finished_at=event.created_at), event))
    return ended
