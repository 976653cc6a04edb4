"""A delivery read as it came, without parsing it into triggers: the id AWS gave it, for every log line of
its invocation, and a one-line description of a parked event for a person (bucket and key, or schedule;
never its payload), so that even an event no handler supports (it may be why it was parked) gets one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

MAX_ID = 128  # an id from the event goes into every log line: never a payload's worth of it


def one_line(text: object, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe_event(event: Mapping[str, Any]) -> str:
    """A short description of an event - bucket and key, or schedule - never its payload."""
    if "schedule" in event:
        return one_line(f"schedule {event.get('schedule')} @ {event.get('time', '?')}")
    detail = event.get("detail")
    if event.get("detail-type") == "Scheduled Event":
        resources = event.get("resources") or ["?"]
        name = str(resources[0]).rsplit("/", 1)[-1]
        return one_line(f"scheduled event {name} @ {event.get('time', '?')} (from {event.get('source')})")
    if isinstance(detail, dict) and isinstance(detail.get("bucket"), dict) and isinstance(detail.get("object"), dict):
        return one_line(
            f"s3://{detail['bucket'].get('name')}/{detail['object'].get('key')} ({event.get('detail-type')})"
        )
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0]
        more = f" (+{len(records) - 1} more)" if len(records) > 1 else ""
        if isinstance(first.get("s3"), dict):
            s3 = first["s3"]
            key = unquote_plus(str((s3.get("object") or {}).get("key", "?")))
            return one_line(f"s3://{(s3.get('bucket') or {}).get('name')}/{key} ({first.get('eventName')}){more}")
        source = first.get("eventSource") or first.get("EventSource") or "?"
        return f"{source} batch of {len(records)} record(s)"
    return one_line(f"event with keys {', '.join(sorted(map(str, event))[:6]) or '(none)'}")


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
