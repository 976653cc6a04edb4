"""The dispatch queue's consumer: deferred starts and debounce windows, with partial batch failures."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.dispatch import ActionsFailed, Report
from polytrigger.handlers.common import get_app
from polytrigger.observability import logger, metrics, record_unsupported, tracer


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = get_app(event, context)
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    report = Report()

    def record_handler(record: SQSRecord) -> None:
        logger.append_keys(message_id=str(record.message_id)[:128])
        try:
            message = json.loads(record.body)
            dispatch = message["kind"] in ("deferred", "window")
        except (ValueError, TypeError, KeyError):
            dispatch = False
        if not dispatch:
            record_unsupported("dispatch queue message that polytrigger did not write")
            return
        try:
            _, outcome = app.dispatch(message, context.get_remaining_time_in_millis())
        except (KeyError, TypeError, ValueError) as error:
            record_unsupported(f"dispatch queue message with a malformed action ({type(error).__name__})")
            return
        report.outcomes.append(outcome)
        if outcome.retryable:
            report.retryable.append(outcome)
            raise ActionsFailed(Report([outcome], [outcome]))

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    logger.remove_keys(["message_id"])
    return {**response, **report.summary()}
