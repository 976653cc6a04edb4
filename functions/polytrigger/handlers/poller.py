"""Every minute: Polytomic's events since the cursor, the silent runs, the due promises: `flows.on_poll`;
and at a route's deadline, its Scheduler firing `{"deadline": route}`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger import bootstrap
from polytrigger.observability import logger, metrics, tracer


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and isinstance(event.get("deadline"), str):  # a deadline's Scheduler firing
        return bootstrap.poller().deadline(event["deadline"])
    return bootstrap.poller().poll(lambda: context.get_remaining_time_in_millis() / 1000)
