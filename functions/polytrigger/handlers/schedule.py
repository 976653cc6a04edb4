"""Schedules: EventBridge Scheduler Input and "Scheduled Event" envelopes: `flows.on_triggers`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger import bootstrap
from polytrigger.core.triggers import Trigger
from polytrigger.events import schedule_trigger
from polytrigger.events.describe import correlation_id
from polytrigger.handlers.answers import answer
from polytrigger.observability import logger, metrics, tracer


def _triggers(event: Any) -> list[Trigger]:
    return [schedule_trigger(event)]


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(correlation_id(event))
    flow = bootstrap.triggers()
    flow.register(context)
    return answer(flow.payload(event, _triggers, context))
