"""What both handlers share: getting the App, turning reports into answers, SQS partial batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger import app as runtime
from polytrigger.config import ConfigError
from polytrigger.credentials import CredentialsError
from polytrigger.dispatch import ActionsFailed, Report
from polytrigger.events import UnsupportedEvent
from polytrigger.observability import (
    correlation_id,
    logger,
    record_configuration_error,
    record_ignored,
    record_unsupported,
)
from polytrigger.routes import RoutesError
from polytrigger.triggers import Trigger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

Parser = Callable[[Any], list[Trigger]]
_MAX_ID = 128  # an id from the event goes into every log line: never a payload's worth of it


def get_app(event: Any, context: LambdaContext | None) -> runtime.App:
    delivery = correlation_id(event)  # from the event, so clipped: it goes into every log line
    logger.set_correlation_id(delivery[:_MAX_ID] if delivery is not None else None)
    try:
        app = runtime.get()
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
    summary = report.summary()
    if not report.outcomes and isinstance(event, dict):
        summary["outcomes"] = []
    return summary


def answer_batch(
    app: runtime.App, parse_body: Parser, event: dict[str, Any], context: LambdaContext | None
) -> dict[str, Any]:
    """An SQS batch: each record on its own, and only the failed records go back to the queue."""
    # Imported here: only the SQS path needs them, and every other cold start skips their import.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    combined = Report()

    def record_handler(record: SQSRecord) -> None:
        logger.append_keys(message_id=record.message_id[:_MAX_ID])
        # .get: a record without a body is garbage to log once, not a failure to hand back to the queue
        report = handle_payload(app, parse_body, record.get("body"), context)
        combined.extend(report)
        if report.retryable:
            raise ActionsFailed(report)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    logger.remove_keys(["message_id"])
    return {**response, **combined.summary()}
