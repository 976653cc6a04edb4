"""The dispatch queue's consumer: deferred starts and debounce windows, with partial batch failures.

A message that is not one polytrigger wrote is logged and acknowledged (a retry cannot fix it);
any other failure returns the message to the queue, which parks it after its last receive.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.core.outcomes import Report
from polytrigger.dispatch.messages import UnsupportedMessage, decode_body
from polytrigger.handlers.answer import answer_batch, get_app, remaining_ms
from polytrigger.runtime import app as runtime
from polytrigger.runtime.observability import logger, metrics, record_unsupported, tracer

# DispatchQueue's redrive policy (template.yaml, maxReceiveCount): on its last receive a message
# that fails is parked by the dispatcher itself, with the reason, instead of moved there without one.
MAX_RECEIVES = 5


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = get_app(event, context, with_routes=False)
    return answer_batch(event, context, lambda body: _message(app, body, context))


def _message(app: runtime.App, body: Any, context: LambdaContext | None) -> Report:
    report = Report()
    try:
        message = decode_body(body)
    except UnsupportedMessage as error:
        record_unsupported(f"dispatch queue message that polytrigger did not write: {error}")
        return report
    report.add(app.handle_message(message, remaining_ms(context)))
    return report
