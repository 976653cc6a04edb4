"""How a run's ending is told: one structured line, a count per status by route, and its freshness."""

from __future__ import annotations

import os

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from polytrigger.core.runs import BAD_ENDINGS
from polytrigger.runs.freshness import Breach
from polytrigger.runs.settle import Ended
from polytrigger.runtime.observability import SERVICE, logger, metrics


def record_run_ended(ended: Ended, how: str) -> None:
    """`how`: the way the ending arrived (webhook, poller, reconciliation): the on-call engineer asks."""
    run, event = ended.run, ended.event
    routes = ", ".join(run.routes) or "-"
    freshness = ended.freshness_seconds
    fields = {
        "status": f"run_{event.status}",
        "execution_id": run.execution_id,
        "sync_id": run.sync_id,
        "sync_type": run.sync_type,
        "routes": list(run.routes),
        "triggers": list(run.triggers),
        "trigger_count": run.trigger_count,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": event.created_at.isoformat(),
        "freshness_seconds": round(freshness, 3) if freshness is not None else None,
        "outcome_from": how,
    }
    message = (
        f"run {event.status}: {run.sync_type} sync {run.sync_id} execution {run.execution_id}"
        f" (routes {routes}; {run.trigger_count} trigger(s))"
    )
    (logger.error if event.status in BAD_ENDINGS else logger.info)(message, extra=fields)
    metrics.add_metric(name=f"run_{event.status}", unit=MetricUnit.Count, value=1)
    namespace = metrics.namespace
    if os.getenv("POWERTOOLS_METRICS_DISABLED", "").strip().lower() in ("1", "true", "yes", "on"):
        return  # single_metric does not heed Powertools' switch (the demo and tests turn metrics off)
    for route in run.routes:
        with single_metric(name=f"run_{event.status}", unit=MetricUnit.Count, value=1, namespace=namespace) as by_route:
            by_route.add_dimension(name="service", value=SERVICE)
            by_route.add_dimension(name="route", value=route)
        if freshness is not None and event.status == "completed":
            with single_metric(
                name="freshness_seconds", unit=MetricUnit.Seconds, value=freshness, namespace=namespace
            ) as fresh:
                fresh.add_dimension(name="service", value=SERVICE)
                fresh.add_dimension(name="route", value=route)


def record_ledger_problem(problem: str) -> None:
    """The ledger could not be written: the run happened, but its outcome is not watched."""
    logger.error(f"run ledger: {problem}", extra={"status": "ledger_unavailable"})
    metrics.add_metric(name="ledger_unavailable", unit=MetricUnit.Count, value=1)


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
    metrics.add_metric(name="freshness_breach", unit=MetricUnit.Count, value=1)
