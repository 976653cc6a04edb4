"""S3 object events in every shape AWS delivers them (direct, EventBridge, SQS, SNS)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.events import is_sqs_batch, s3_triggers, sqs_body_triggers
from polytrigger.handlers.answer import answer, answer_batch, get_app, handle_payload
from polytrigger.runtime.observability import logger, metrics, tracer


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = get_app(event, context)
    if is_sqs_batch(event):
        return answer_batch(event, context, lambda body: handle_payload(app, sqs_body_triggers, body, context))
    return answer(app, s3_triggers, event, context)
