"""S3 object events in every shape AWS delivers them (direct, EventBridge, SQS, SNS): `flows.on_triggers`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger import bootstrap
from polytrigger.events import is_sqs_batch, s3_triggers, sqs_body_triggers
from polytrigger.events.describe import correlation_id
from polytrigger.handlers.answers import answer, answer_batch
from polytrigger.observability import logger, metrics, tracer


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(correlation_id(event))
    flow = bootstrap.triggers()
    flow.register(context)
    if is_sqs_batch(event):
        # .get: a record without a body is garbage to park, not a failure to hand back to the queue
        return answer_batch(
            event, context, lambda record: flow.sqs_record(record.get("body"), sqs_body_triggers, context)
        )
    return answer(flow.payload(event, s3_triggers, context))
