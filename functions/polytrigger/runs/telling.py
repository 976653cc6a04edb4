"""How a run's ending is told: one structured line, a count per status by route, and its freshness."""

from __future__ import annotations

from polytrigger.observability import count, count_by_route, logger
from polytrigger.runs.endings import BAD_ENDINGS
from polytrigger.runs.freshness import Breach
from polytrigger.runs.settle import Ended


def record_run_ended(ended: Ended, how: str) -> None:
    """`how`: the way the ending arrived (webhook, poller, reconciliation): the on-call engineer asks."""
    run, event = ended.run, ended.event
    routes = ", ".join(run.routes) or "-"
    freshness = run.freshness_seconds
    fields = {"status": f"run_{event.status}", **run.to_dict(), "outcome_from": how}
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
