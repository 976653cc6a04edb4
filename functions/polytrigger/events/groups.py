"""An event's triggers, grouped as the deployed functions handle them: per SQS record, else per event."""

from __future__ import annotations

from typing import Any

from polytrigger.core.triggers import Trigger
from polytrigger.events.s3_objects import is_sqs_batch, s3_triggers, sqs_body_triggers
from polytrigger.events.schedule_firings import schedule_trigger


def is_schedule_event(event: object) -> bool:
    """A schedule function's event (Scheduler Input or a "Scheduled Event" envelope), not an S3 one."""
    return isinstance(event, dict) and ("schedule" in event or event.get("detail-type") == "Scheduled Event")


def trigger_groups(event: Any) -> list[list[Trigger]]:
    """One group per unit of work: one SQS record, or the whole event. `UnsupportedEvent` for other shapes."""
    if is_schedule_event(event):
        return [[schedule_trigger(event)]]
    if is_sqs_batch(event):
        return [sqs_body_triggers(record.get("body", "")) for record in event["Records"]]
    return [s3_triggers(event)]
