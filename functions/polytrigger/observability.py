"""How polytrigger tells what happened: Powertools Logger, Metrics and Tracer, one line and one metric per
outcome, and an AWS error as a person reads it (never a payload)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME") or "polytrigger"


def tracing_disabled() -> bool:
    """Powertools' own rule (Tracer._is_tracer_disabled): off by POWERTOOLS_TRACE_DISABLED, or outside Lambda."""
    if os.getenv("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "y", "yes", "t", "true", "on"):
        return True
    return not os.getenv("LAMBDA_TASK_ROOT") or bool(os.getenv("AWS_SAM_LOCAL") or os.getenv("AWS_CHALICE_CLI_MODE"))


class NoTracer:
    """Stands in for the Tracer when tracing is off.

    Powertools' Tracer imports the X-Ray SDK in its constructor even when it is disabled (about a
    fifth of a second of every cold start, to record nothing); this does nothing, for free.
    """

    disabled = True

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]:
        """The handler itself, unwrapped (the same signature as Tracer.capture_lambda_handler)."""
        if lambda_handler is None:
            return lambda handler: handler
        return lambda_handler


logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE") or "Polytrigger", service=SERVICE)
tracer: Tracer | NoTracer = NoTracer() if tracing_disabled() else Tracer(service=SERVICE)


def record_outcome(action: Action, outcome: Outcome, key: str) -> None:
    """One structured line and one metric per outcome: what the on-call engineer looks for first."""
    fields = {
        **outcome.to_dict(),
        "trigger": action.trigger.describe(),
        "idempotency_key": key,
    }
    message = f"{outcome.action} {outcome.sync_type} sync {outcome.sync_id} for route {outcome.route}: {outcome.status}"
    if outcome.status == "failed":
        logger.error(message, extra=fields)
    else:
        logger.info(message, extra=fields)
    metrics.add_metric(name=outcome.status, unit=MetricUnit.Count, value=1)


def record_unsupported(shape: str, parked_in: str | None = None) -> None:
    """One ERROR line for input nobody supports (a retry cannot fix it), and where it was parked."""
    where = f"; parked in {parked_in}" if parked_in else ""
    extra = {"status": "unsupported_event", **({"parked_in": parked_in} if parked_in else {})}
    logger.error(f"unsupported event: {shape}{where}", extra=extra)
    metrics.add_metric(name="unsupported_event", unit=MetricUnit.Count, value=1)
    if parked_in:
        metrics.add_metric(name="parked", unit=MetricUnit.Count, value=1)


def record_parked(reason: str, where: str, *, first_word: bool = False) -> None:
    """Where a failure went. `first_word`: nothing was logged about it yet, so this line is the ERROR."""
    log = logger.error if first_word else logger.info
    log(f"parked in {where}: {reason}", extra={"status": "parked", "parked_in": where})
    metrics.add_metric(name="parked", unit=MetricUnit.Count, value=1)


def record_configuration_error(problem: str) -> None:
    logger.error(f"polytrigger cannot start: {problem}", extra={"status": "configuration_error"})
    metrics.add_metric(name="configuration_error", unit=MetricUnit.Count, value=1)


def record_ledger_problem(problem: str) -> None:
    """The run ledger could not be written: the run happened, but its outcome is not watched."""
    logger.error(f"run ledger: {problem}", extra={"status": "ledger_unavailable"})
    metrics.add_metric(name="ledger_unavailable", unit=MetricUnit.Count, value=1)


def record_problem(message: str, status: str, *, metric: str = "", warning: bool = False) -> None:
    """One line (ERROR, or WARNING) carrying its status, and one count of `metric` (default: the status)."""
    (logger.warning if warning else logger.error)(message, extra={"status": status})
    metrics.add_metric(name=metric or status, unit=MetricUnit.Count, value=1)


def count(name: str, value: float = 1, *, seconds: bool = False) -> None:
    """One figure of this invocation's metrics (flushed with the others at its end)."""
    metrics.add_metric(name=name, unit=MetricUnit.Seconds if seconds else MetricUnit.Count, value=value)


def count_by_route(name: str, route: str, value: float = 1, *, seconds: bool = False) -> None:
    """One figure with the route as a dimension too (its own EMF document), so an alarm can name the route."""
    if os.getenv("POWERTOOLS_METRICS_DISABLED", "").strip().lower() in ("1", "true", "yes", "on"):
        return  # single_metric does not heed Powertools' switch (the demo and tests turn metrics off)
    from aws_lambda_powertools.metrics import single_metric

    unit = MetricUnit.Seconds if seconds else MetricUnit.Count
    with single_metric(name=name, unit=unit, value=value, namespace=metrics.namespace) as by_route:
        by_route.add_dimension(name="service", value=SERVICE)
        by_route.add_dimension(name="route", value=route)


def record_found_late(url: str, landed: str, route: str) -> None:
    """An object a listing found and no event had brought: one WARNING line, and a count by route (alarmed)."""
    logger.warning(
        f"found by reconciliation, no event had arrived: {url} (landed {landed}, route {route})",
        extra={"status": "found_by_reconciliation", "route": route},
    )
    metrics.add_metric(name="found_by_reconciliation", unit=MetricUnit.Count, value=1)
    count_by_route("found_by_reconciliation", route)


def record_ignored(reason: str) -> None:
    logger.info(f"event ignored: {reason}", extra={"status": "ignored"})
    metrics.add_metric(name="ignored", unit=MetricUnit.Count, value=1)


def error_code(error: BaseException) -> str:
    """The AWS error code of a failed call (or the botocore error's name): enough to act on, never a payload."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(error).__name__


def error_line(error: BaseException) -> str:
    """An AWS error on one line, as a person reads it: its code and message, whitespace folded, 300 characters."""
    response = getattr(error, "response", None)
    message = str(response.get("Error", {}).get("Message", "")) if isinstance(response, dict) else ""
    return f"{error_code(error)}: {' '.join((message or str(error)).split())[:300]}"
