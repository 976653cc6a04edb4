"""S3 object events in every shape AWS delivers them (direct, EventBridge, SQS, SNS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.core.outcomes import Report
from polytrigger.events import is_sqs_batch, s3_triggers, sqs_body_triggers
from polytrigger.handlers.answer import answer, answer_batch, get_app, handle_payload, take_in_time
from polytrigger.runtime.app import App
from polytrigger.runtime.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = get_app(event, context)
    if is_sqs_batch(event):
        return answer_batch(event, context, lambda record: _record(app, record, context))
    return answer(app, s3_triggers, event, context)


def _record(app: App, record: SQSRecord, context: LambdaContext) -> Report:
    take_in_time(app, context)
    # .get: a record without a body is garbage to park, not a failure to hand back to the queue
    return handle_payload(app, sqs_body_triggers, record.get("body"), context)
