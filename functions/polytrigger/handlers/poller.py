"""Every minute: Polytomic's events since the cursor, then the runs with no ending heard, by their status.

The poller catches whatever the webhook missed (Polytomic delivers at most once); idle, it costs one
Polytomic call and no DynamoDB write. A failure raises: the cursor has not moved, so the next poll
(or Lambda's retry) reads the same events again, and settling twice does nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.runs.fanout import set_off
from polytrigger.runs.freshness import check
from polytrigger.runs.poll import poll
from polytrigger.runs.reconcile import reconcile
from polytrigger.runtime import outcomes
from polytrigger.runtime.observability import logger, metrics, tracer
from polytrigger.runtime.run_outcomes import record_breach, record_run_ended


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = outcomes.get()
    assert app.reads is not None
    now = datetime.now(UTC)
    polled = poll(app.reads, app.ledger, now)
    for ended in polled.ended:
        record_run_ended(ended, "poller")
    for problem in polled.malformed:
        logger.error(f"poller: an event polytrigger cannot read: {problem}", extra={"status": "unsupported_event"})
        metrics.add_metric(name="unsupported_event", unit=MetricUnit.Count, value=1)
    effects = set_off(polled.received, app.ledger, app.bus.publish if app.bus else None, app.chains)
    done = reconcile(app.reads, app.ledger, now, app.reconcile_after)
    kept, breaches = check(app.promises, app.reads, now) if app.promises is not None else (0, [])
    for breach in breaches:
        record_breach(breach)
    for ended in done.ended:
        record_run_ended(ended, "reconciliation")
    for lost in done.forgotten:
        logger.error(f"run outcome unknown: {lost}", extra={"status": "run_outcome_unknown"})
        metrics.add_metric(name="run_outcome_unknown", unit=MetricUnit.Count, value=1)
    summary = {
        "events": polled.events,
        "ended": len(polled.ended) + len(done.ended),
        "looked_up": done.looked_up,
        "handed_on": effects.published,
        "promises_kept": kept,
        "freshness_breaches": len(breaches),
        "chained": effects.chained,
        "polytomic_calls": polled.calls + done.looked_up,
        "cursor": polled.cursor.isoformat() if polled.cursor else None,
    }
    logger.debug("poll done", extra=summary)
    return summary
