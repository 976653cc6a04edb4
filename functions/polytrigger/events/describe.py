"""A parked event, described in one line for a person: bucket and key, or schedule; never its payload.

It reads the event as it came, without parsing it into triggers, so that even an event no
handler supports (it may be why it was parked) gets a description.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus


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
