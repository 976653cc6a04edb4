"""A route's reconciliation schedule, `{"reconcile": "<route>"}`: `flows.on_reconcile`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger import bootstrap
from polytrigger.observability import logger, metrics, tracer


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    route = event.get("reconcile") if isinstance(event, dict) else None
    if not isinstance(route, str):
        logger.error('reconciler: expected {"reconcile": "<route>"}', extra={"status": "unsupported_event"})
        return {"state": "refused", "reason": "not a reconciliation schedule's input"}
    flow = bootstrap.reconciler()
    flow.register(context)
    return flow.reconcile(route, lambda: context.get_remaining_time_in_millis() / 1000)
