"""How a handler answers Lambda: a direct invocation, and an SQS batch with partial batch failures.

A report with a failure a retry can fix fails the answer (`ActionsFailed`), so AWS delivers the
event again (a direct invocation) or only that record goes back to its queue (a batch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from polytrigger.core.outcomes import ActionsFailed, Report
from polytrigger.events.describe import MAX_ID
from polytrigger.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext


def answer(report: Report) -> dict[str, Any]:
    """A direct (asynchronous) invocation: any retryable failure fails it, so AWS retries it."""
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
