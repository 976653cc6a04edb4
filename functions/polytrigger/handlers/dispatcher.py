"""The dispatch queue's consumer (deferred starts and debounce windows), with partial batch failures:
`flows.on_dispatch_message`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger import bootstrap
from polytrigger.events.describe import correlation_id
from polytrigger.handlers.answers import answer_batch
from polytrigger.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(correlation_id(event))
    flow = bootstrap.dispatcher()
    flow.register(context)
    return answer_batch(event, context, lambda record: flow.sqs_record(record.get("body"), _receives(record), context))


def _receives(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count)
    except (TypeError, ValueError, KeyError):
        return 1  # unknown: never park early
