"""What the handlers share: the App, one answer for a direct invocation, one for an SQS batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.core.outcomes import Report
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.ports import CredentialsError
from polytrigger.events import UnsupportedEvent
from polytrigger.events.correlation import MAX_ID, correlation_id
from polytrigger.routing import RoutesError
from polytrigger.runtime import app as runtime
from polytrigger.runtime.config import ConfigError
from polytrigger.runtime.observability import logger, record_configuration_error, record_ignored, record_unsupported

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

Parser = Callable[[Any], list[Trigger]]


class ActionsFailed(RuntimeError):
    """Raised so AWS retries the event (or returns the SQS record); only the failed actions run again."""

    def __init__(self, report: Report) -> None:
        reasons = "; ".join(f"{o.action} {o.sync_id} ({o.route}): {o.reason}" for o in report.retryable)
        super().__init__(f"{len(report.retryable)} action(s) failed and will be retried: {reasons}")
        self.report = report


def get_app(event: Any, context: LambdaContext | None, *, with_routes: bool = True) -> runtime.App:
    logger.set_correlation_id(correlation_id(event))
    try:
        app = runtime.get(with_routes=with_routes)
    except (ConfigError, RoutesError, CredentialsError) as error:
        record_configuration_error(str(error))
        raise
    app.dedup.register(context)
    return app


def remaining_ms(context: LambdaContext | None) -> int | None:
    return context.get_remaining_time_in_millis() if context is not None else None


def handle_payload(app: runtime.App, parse: Parser, payload: Any, context: LambdaContext | None) -> Report:
    """Parse one payload and perform its actions; a shape nobody supports is logged, never retried."""
    try:
        triggers = parse(payload)
    except UnsupportedEvent as error:
        record_unsupported(str(error))
        return Report()
    if not triggers:
        record_ignored("no trigger in the event (e.g. s3:TestEvent)")
        return Report()
    report = app.handle(triggers, remaining_ms(context))
    if not report.outcomes:
        record_ignored(f"no route matches {', '.join(t.describe() for t in triggers)}")
    return report


def answer(app: runtime.App, parse: Parser, event: Any, context: LambdaContext | None) -> dict[str, Any]:
    """A direct (asynchronous) invocation: any retryable failure fails it, so AWS retries it."""
    report = handle_payload(app, parse, event, context)
    if report.retryable:
        raise ActionsFailed(report)
    return report.summary()


def answer_batch(
    event: dict[str, Any], context: LambdaContext | None, handle_body: Callable[[Any], Report]
) -> dict[str, Any]:
    """An SQS batch: each record's body on its own, and only the records with a retryable failure go back."""
    # Imported here: only the SQS paths need them, and every other cold start skips their import.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    combined = Report()

    def record_handler(record: SQSRecord) -> None:
        logger.append_keys(message_id=str(record.message_id)[:MAX_ID])
        # .get: a record without a body is garbage to log once, not a failure to hand back to the queue
        report = handle_body(record.get("body"))
        combined.extend(report)
        if report.retryable:
            raise ActionsFailed(report)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    logger.remove_keys(["message_id"])
    return {**response, **combined.summary()}
