"""What the handlers share: the App, one answer for a direct invocation, one for an SQS batch."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.core.outcomes import Outcome, Report
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.ports import CredentialsError
from polytrigger.events import UnsupportedEvent
from polytrigger.events.correlation import MAX_ID, correlation_id
from polytrigger.routing import RoutesError
from polytrigger.runtime import app as runtime
from polytrigger.runtime.config import ConfigError
from polytrigger.runtime.observability import logger, record_configuration_error, record_ignored

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

Parser = Callable[[Any], list[Trigger]]


class ActionsFailed(RuntimeError):
    """Raised so AWS retries the event (or returns the SQS record); only the failed actions run again."""

    def __init__(self, report: Report) -> None:
        message = f"{len(report.retryable)} action(s) failed and will be retried: {_reasons(report.retryable)}"
        if report.to_park:  # done again by the retry, and parked with the event if they still fail
            message += f"; and {len(report.to_park)} refused: {_reasons(report.to_park)}"
        super().__init__(message)
        self.report = report


class NoTimeLeft(RuntimeError):
    """Too little of the invocation is left for one more Polytomic call: the record goes back untried."""


def _reasons(outcomes: list[Outcome]) -> str:
    return "; ".join(f"{o.action} {o.sync_id} ({o.route}): {o.reason}" for o in outcomes)


def get_app(event: Any, context: LambdaContext | None, *, dispatcher: bool = False) -> runtime.App:
    logger.set_correlation_id(correlation_id(event))
    try:
        app = runtime.get(dispatcher=dispatcher)
    except (ConfigError, RoutesError, CredentialsError) as error:
        record_configuration_error(str(error))
        raise
    app.dedup.register(context)
    return app


def remaining_ms(context: LambdaContext | None) -> int | None:
    return context.get_remaining_time_in_millis() if context is not None else None


def take_in_time(app: runtime.App, context: LambdaContext | None) -> None:
    """Refuse to start a record that one more call could not finish: hand it back before Lambda cuts us off."""
    left = remaining_ms(context)
    if left is not None and left < app.call_budget_ms:
        raise NoTimeLeft(f"not tried: {left} ms of the invocation left, one call may take {app.call_budget_ms} ms")


def handle_payload(app: runtime.App, parse: Parser, payload: Any, context: LambdaContext | None) -> Report:
    """Parse one payload and perform its actions.

    What a retry cannot fix (a shape nobody supports, an action Polytomic refused) is parked in the
    dead-letter queue with the reason before the payload is acknowledged; if parking fails, the
    payload fails, so AWS delivers it again.
    """
    try:
        triggers = parse(payload)
    except UnsupportedEvent as error:
        app.park_event(_as_event(payload), str(error), context, unsupported=True)
        return Report()
    if not triggers:
        record_ignored("no trigger in the event (e.g. s3:TestEvent)")
        return Report()
    report = app.handle(triggers, remaining_ms(context))
    if not report.outcomes:
        record_ignored(f"no route matches {', '.join(t.describe() for t in triggers)}")
    if report.to_park and not report.retryable:
        app.park_event(_as_event(payload), f"refused: {_reasons(report.to_park)}", context, unsupported=False)
        refused = report.to_park
        report = report.parked_in(runtime.DEAD_LETTERS, lambda outcome: outcome in refused)
    return report


def _as_event(payload: Any) -> Any:
    """The payload as the function would be invoked with it: an SQS record's body is its JSON."""
    if not isinstance(payload, str):
        return payload
    try:
        return json.loads(payload)
    except ValueError:
        return {"unreadable_sqs_body": payload[:100_000]}


def answer(app: runtime.App, parse: Parser, event: Any, context: LambdaContext | None) -> dict[str, Any]:
    """A direct (asynchronous) invocation: any retryable failure fails it, so AWS retries it."""
    report = handle_payload(app, parse, event, context)
    if report.retryable:
        raise ActionsFailed(report)
    return report.summary()


def answer_batch(
    event: dict[str, Any], context: LambdaContext | None, handle_record: Callable[[SQSRecord], Report]
) -> dict[str, Any]:
    """An SQS batch: each record on its own, and only the records with a retryable failure go back."""
    # Imported here: only the SQS paths need them, and every other cold start skips their import.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    combined = Report()

    def record_handler(record: SQSRecord) -> None:
        logger.append_keys(message_id=str(record.message_id)[:MAX_ID])
        report = handle_record(record)
        combined.extend(report)
        if report.retryable:
            raise ActionsFailed(report)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    logger.remove_keys(["message_id"])
    return {**response, **combined.summary()}
