"""Polytomic's webhook, behind a Lambda Function URL: a signed run event in, its run settled, 2xx fast.

Nothing is read before the signature is checked: a bad or missing one is answered 401 at once. An
event of a type polytrigger does not follow is answered 200 and ignored; one it follows but cannot
read is parked with the reason and answered 200 (a retry would bring the same bytes); a ledger it
cannot reach is answered 503, so Polytomic delivers again (it retries non-2xx up to 5 times), and
the poller catches what is lost anyway.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.adapters.bus import BusUnavailable
from polytrigger.core.runs import MalformedRunEvent, run_event
from polytrigger.dispatch.ports import QueueUnavailable
from polytrigger.events.webhook import NotADelivery, delivery
from polytrigger.runs.fanout import set_off
from polytrigger.runs.ports import LedgerUnavailable
from polytrigger.runs.settle import settle
from polytrigger.runtime import outcomes
from polytrigger.runtime.observability import logger, metrics, record_unsupported
from polytrigger.runtime.run_outcomes import record_run_ended


def _answer(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": message}),
    }


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        body, signature = delivery(event)
    except NotADelivery as error:
        logger.warning(f"webhook: {error}")
        return _answer(400, "bad request")
    app = outcomes.get(webhook=True)
    if not app.verified(body, signature):
        logger.warning(
            "webhook: refused a delivery with a bad or missing Polytomic-Signature", extra={"status": "unauthorized"}
        )
        metrics.add_metric(name="webhook_unauthorized", unit=MetricUnit.Count, value=1)
        return _answer(401, "unauthorized")
    try:
        document = json.loads(body)
        run = run_event(document)
    except (ValueError, MalformedRunEvent) as error:  # JSONDecodeError is a ValueError
        why = f"webhook delivery polytrigger cannot read: {str(error)[:200]}"
        app.parking.park(
            {"webhook_body": body.decode("utf-8", "replace")},
            f"unsupported event: {why}",
            function_arn=context.invoked_function_arn,
            request_id=context.aws_request_id,
        )
        record_unsupported(why, "the dead-letter queue")
        return _answer(200, "parked")
    try:
        ended = settle([run], app.ledger) if run is not None else []
        set_off([document], app.ledger, app.bus.publish if app.bus else None, app.chains)
    except (LedgerUnavailable, BusUnavailable, QueueUnavailable) as error:
        logger.error(f"webhook: {error}; answered 503 so that Polytomic delivers it again")
        return _answer(503, "try again")
    if run is None:
        return _answer(200, "ignored: not a sync run event")
    for item in ended:
        record_run_ended(item, "webhook")
    return _answer(200, "settled" if ended else "nothing to settle")
