"""How a run's ending is told: one structured line, a count per status by route, and its freshness.

Telling is part of the ending's state: `settle` puts the run in the ledger's outbox and `tell` takes
it out only after the line, the metric and (for an ending reconciliation found, which no event will
chain) the chained starts; a settler that dies in between leaves it to the poller (`untold`).
"""

from __future__ import annotations

from typing import Protocol

from polytrigger.observability import count, count_by_route, logger
from polytrigger.runs.endings import BAD_ENDINGS
from polytrigger.runs.freshness import Breach
from polytrigger.runs.ledger import Ended
from polytrigger.runs.set_off import Chains


class Told(Protocol):
    def told(self, execution_id: str) -> None: ...


def tell(ended: Ended, ledger: Told, chains: Chains | None, *, late: bool = False) -> None:
    """Tell a settled ending, then take it out of the outbox: a crash before `told` tells it again later.

    An ending found by reconciliation has no Polytomic event behind it to set off its chains, so
    they are set off here; the dispatcher starts each chained action once, whoever queues it.
    """
    if ended.how == "reconciliation" and chains is not None and chains.follows(ended.event):
        chains.start(ended.event)
    record_run_ended(ended, late=late)
    ledger.told(ended.run.execution_id)


def record_run_ended(ended: Ended, *, late: bool = False) -> None:
    """`outcome_from`: the way the ending arrived (webhook, poller, reconciliation): the on-call engineer asks."""
    run, event = ended.run, ended.event
    routes = ", ".join(run.routes) or "-"
    freshness = run.freshness_seconds
    fields = {"status": f"run_{event.status}", **run.to_dict(), "outcome_from": ended.how}
    if late:
        fields["told_late"] = True  # its settler did not live to tell it: the poller did
    message = (
        f"run {event.status}: {run.sync_type} sync {run.sync_id} execution {run.execution_id}"
        f" (routes {routes}; {run.trigger_count} trigger(s))"
    )
    (logger.error if event.status in BAD_ENDINGS else logger.info)(message, extra=fields)
    count(f"run_{event.status}")
    for route in run.routes:
        count_by_route(f"run_{event.status}", route)
        if freshness is not None and event.status == "completed":
            count_by_route("freshness_seconds", route, freshness, seconds=True)


def record_breach(breach: Breach) -> None:
    """A freshness promise not kept: once, naming the object (or firing), the route, the sync and what happened."""
    promise = breach.promise
    late = (promise.due - promise.at).total_seconds()
    logger.error(
        f"freshness breach: {promise.trigger} not in a completed run of {promise.sync_type} sync {promise.sync_id}"
        f" within {late:.0f} s (route {promise.route}): {breach.what}",
        extra={
            "status": "freshness_breach",
            "route": promise.route,
            "sync_id": promise.sync_id,
            "trigger": promise.trigger,
            "due": promise.due.isoformat(),
            "what": breach.what,
            "execution_id": breach.execution_id or None,
        },
    )
    count("freshness_breach")
