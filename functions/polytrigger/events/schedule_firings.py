"""Schedules, normalised to `Trigger`s: EventBridge Scheduler Input and "Scheduled Event" envelopes.

The name is what routes match on and the scheduled time is half of the identity, so both are checked
here: a wrong name or an unsubstituted time template fails loudly instead of silently matching nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from polytrigger.core.triggers import SCHEDULE_NAME, Trigger
from polytrigger.events.readers import UnsupportedEvent, clip, json_type, moment, read, text, unsupported_shape

_SOURCES = ("aws.events", "aws.scheduler")


def schedule_trigger(event: Mapping[str, Any]) -> Trigger:
    """The one schedule occurrence an event describes, or `UnsupportedEvent` naming what is wrong."""
    if not isinstance(event, Mapping):
        raise unsupported_shape(event)
    if "schedule" in event:
        where = "Scheduler input"
        return Trigger.scheduled(
            schedule=_name(text(lambda: event["schedule"], where, "schedule"), where, "schedule"),
            time=moment(lambda: event["time"], where, "time"),
        )
    if "source" in event or "detail-type" in event:
        return _envelope(EventBridgeEvent(event if isinstance(event, dict) else dict(event)))
    raise unsupported_shape(event)


def _envelope(envelope: EventBridgeEvent) -> Trigger:
    """A "Scheduled Event": the name is the last path segment of `resources[0]`, the time the envelope's."""
    source, detail_type = envelope.get("source"), envelope.get("detail-type")
    if source not in _SOURCES or detail_type != "Scheduled Event":
        raise UnsupportedEvent(f"EventBridge event from source {clip(source, 40)} detail-type {clip(detail_type, 40)}")
    where = f"Scheduled Event from {source}"
    resources = read(lambda: envelope.resources, where, "resources")
    if not isinstance(resources, list) or not resources:
        shown = "empty" if resources == [] else json_type(resources)
        raise UnsupportedEvent(f"{where}: field resources must name the rule or schedule, got {shown}")
    arn = text(lambda: resources[0], where, "resources[0]")
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or "/" not in parts[5]:
        raise UnsupportedEvent(f"{where}: resources[0] is not a rule or schedule ARN: {clip(arn)}")
    return Trigger.scheduled(
        schedule=_name(parts[5].rsplit("/", 1)[1], where, "resources[0]"),
        time=moment(lambda: envelope.time, where, "time"),
    )


def _name(value: str, where: str, field: str) -> str:
    if not SCHEDULE_NAME.fullmatch(value):
        raise UnsupportedEvent(
            f"{where}: {field} has no valid schedule name (1-64 letters, digits, '.', '-' or '_'): {clip(value)}"
        )
    return value
