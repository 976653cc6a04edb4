"""The id AWS gave a delivery, for every log line of its invocation."""

from __future__ import annotations

MAX_ID = 128  # an id from the event goes into every log line: never a payload's worth of it


def correlation_id(event: object) -> str | None:
    """EventBridge `id`, S3 request id, SQS message id or SNS message id; clipped to MAX_ID characters."""
    found = _correlation_id(event)
    return found[:MAX_ID] if found is not None else None


def _correlation_id(event: object) -> str | None:
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("id"), str):
        return str(event["id"])
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0]
        elements = first.get("responseElements")
        if isinstance(elements, dict) and isinstance(elements.get("x-amz-request-id"), str):
            return str(elements["x-amz-request-id"])
        for key in ("messageId", "EventSubscriptionArn"):
            if isinstance(first.get(key), str):
                return str(first[key])
        sns = first.get("Sns")
        if isinstance(sns, dict) and isinstance(sns.get("MessageId"), str):
            return str(sns["MessageId"])
    return None
