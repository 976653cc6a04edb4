"""The dispatch queue's consumer: deferred starts and debounce windows, with partial batch failures.

Every message is acknowledged only when it is done or parked in the dispatch dead-letter queue
with a reason: one that is not a message polytrigger wrote, or whose action the routes do not
make, is parked at once; any other failure returns it to the queue, and on its last receive it
is parked with the failure as its reason (rather than moved there by SQS with none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.core.outcomes import Report
from polytrigger.dispatch.messages import UnsupportedMessage, decode_body
from polytrigger.handlers.answer import ActionsFailed, answer_batch, get_app, remaining_ms, take_in_time
from polytrigger.runtime.app import DISPATCH_DEAD_LETTERS, App
from polytrigger.runtime.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

# DispatchQueue's redrive policy (template.yaml, maxReceiveCount): on its last receive a message
# that fails is parked by the dispatcher itself, with the reason, instead of moved there without one.
MAX_RECEIVES = 5


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = get_app(event, context, dispatcher=True)
    return answer_batch(event, context, lambda record: _record(app, record, context))


def _record(app: App, record: SQSRecord, context: LambdaContext | None) -> Report:
    body = record.get("body")
    receives = _receives(record)
    last = receives >= MAX_RECEIVES
    try:
        take_in_time(app, context)
        report = _message(app, body, context)
    except Exception as error:
        if not last or not isinstance(body, str):
            raise
        _park_last(app, body, receives, f"{type(error).__name__}: {str(error)[:800]}")
        return Report()
    if report.retryable and last and isinstance(body, str):  # a retryable failure that has no retry left
        _park_last(app, body, receives, str(ActionsFailed(report))[:800])
        return report.parked_in(DISPATCH_DEAD_LETTERS, lambda outcome: outcome.retryable)
    return report


def _park_last(app: App, body: str, receives: int, why: str) -> None:
    app.park_message(body, f"failed on its last receive ({receives} of {MAX_RECEIVES}): {why}", unsupported=False)


def _message(app: App, body: Any, context: LambdaContext | None) -> Report:
    report = Report()
    try:
        message = decode_body(body)
    except UnsupportedMessage as error:
        why = f"dispatch queue message that polytrigger did not write: {error}"
        app.park_message(body if isinstance(body, str) else repr(body), why, unsupported=True)
        return report
    report.add(app.handle_message(message, remaining_ms(context)))
    return report


def _receives(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count)
    except (TypeError, ValueError, KeyError):
        return 1  # unknown: never park early
