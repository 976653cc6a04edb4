"""Schedules: EventBridge Scheduler Input and "Scheduled Event" envelopes."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.core.triggers import Trigger
from polytrigger.events import schedule_trigger
from polytrigger.handlers.answer import answer, get_app
from polytrigger.runtime.observability import logger, metrics, tracer


def _triggers(event: Any) -> list[Trigger]:
    return [schedule_trigger(event)]


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return answer(get_app(event, context), _triggers, event, context)
