"""S3 object events in every shape AWS delivers them, normalised to `Trigger`s.

Shapes: S3 event notifications (`Records[].eventSource == "aws:s3"`), S3 → EventBridge "Object Created" /
"Object Deleted", SNS wrapping S3 notifications (the Lambda SNS event, or the SNS JSON an SQS queue
receives without raw delivery), and SQS record bodies holding any of those. `s3:TestEvent` yields nothing.

Keys are decoded exactly once: notification keys are form-encoded (`unquote_plus`, per record), EventBridge
keys arrive as they are. Two Powertools traps avoided on purpose: `S3Event.object_key` decodes the *first*
record only, and `S3EventBridgeNotificationObject.key` runs `unquote_plus` on an already plain key (turning
a real `+` into a space), so raw `["key"]` values are read instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, S3EventBridgeNotificationEvent, SNSEvent
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.data_classes.sns_event import SNSEventRecord, SNSMessage

from polytrigger.core.triggers import S3EventKind, Trigger
from polytrigger.events.readers import (
    UnsupportedEvent,
    clip,
    load_json,
    moment,
    optional_size,
    optional_text,
    read,
    text,
    unsupported_shape,
)

_log = logging.getLogger(__name__)

# Lifecycle expirations count as deletions: S3 → EventBridge reports them as "Object Deleted" too,
# so both shapes agree on what "deleted" means.
_CREATED = ("ObjectCreated:",)
_DELETED = ("ObjectRemoved:", "LifecycleExpiration:")
_EVENTBRIDGE_KINDS: dict[str, S3EventKind] = {"Object Created": "created", "Object Deleted": "deleted"}
_TEST_EVENT = "s3:TestEvent"


def is_sqs_batch(event: object) -> bool:
    """True for an SQS batch (every record from `aws:sqs`, with the `messageId` a partial batch answer names):
    the handler then parses each body on its own."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(
            isinstance(record, Mapping)
            and record.get("eventSource") == "aws:sqs"
            and isinstance(record.get("messageId"), str)
            for record in records
        )
    )


def s3_triggers(payload: Mapping[str, Any]) -> list[Trigger]:
    """Triggers of one non-SQS payload; [] for `s3:TestEvent`; `UnsupportedEvent` for anything else."""
    return _payload(payload, allow_sns=True)


def sqs_body_triggers(body: str) -> list[Trigger]:
    """Triggers of one SQS record body: JSON of any shape `s3_triggers` accepts."""
    return _nested(load_json(body, "SQS record body"), "SQS record body", allow_sns=True)


def _payload(payload: object, *, allow_sns: bool) -> list[Trigger]:
    if not isinstance(payload, Mapping):
        raise unsupported_shape(payload)
    if payload.get("Event") == _TEST_EVENT:
        return []
    if "Records" in payload:
        return _records(payload, allow_sns=allow_sns)
    if isinstance(payload.get("TopicArn"), str) and "Type" in payload:
        if not allow_sns:
            raise UnsupportedEvent("SNS message inside another SNS message")
        return _sns_notification(payload)
    if "source" in payload or "detail-type" in payload:
        return _eventbridge(payload)
    raise unsupported_shape(payload)


def _nested(document: object, where: str, *, allow_sns: bool) -> list[Trigger]:
    """A payload carried inside another one; its errors say where it was found."""
    try:
        return _payload(document, allow_sns=allow_sns)
    except UnsupportedEvent as error:
        raise UnsupportedEvent(f"{where}: {error}") from None


def _records(payload: Mapping[str, Any], *, allow_sns: bool) -> list[Trigger]:
    records = payload["Records"]
    if not isinstance(records, list) or not records:
        raise UnsupportedEvent(f"unsupported event shape: Records is {'empty' if records == [] else clip(records)}")
    sources = {_record_source(record) for record in records}
    if sources == {"aws:s3"}:
        return _notification(payload)
    if sources == {"aws:sns"} and allow_sns:
        return _sns_records(payload)
    if sources == {"aws:sqs"}:
        raise UnsupportedEvent("an SQS batch where one S3 payload was expected (parse each record body)")
    shown = ", ".join(clip(source, 30) if source else "(none)" for source in sorted(sources)[:5])
    raise UnsupportedEvent(f"unsupported event shape: Records with eventSource [{shown}]")


def _record_source(record: object) -> str:
    """`eventSource` (`EventSource` for SNS) of one record; "" when there is none to read."""
    if not isinstance(record, Mapping):
        return ""
    source = record.get("eventSource", record.get("EventSource"))
    return source if isinstance(source, str) else ""


def _mapping(payload: Mapping[str, Any]) -> dict[str, Any]:
    return payload if isinstance(payload, dict) else dict(payload)


def _notification(payload: Mapping[str, Any]) -> list[Trigger]:
    """S3 event notification: usable records become triggers; records of other event types are skipped."""
    triggers: list[Trigger] = []
    skipped: list[str] = []
    for index, record in enumerate(S3Event(_mapping(payload)).records, start=1):
        trigger = _notification_record(record, f"S3 notification record {index}")
        if isinstance(trigger, Trigger):
            triggers.append(trigger)
        else:
            skipped.append(trigger)
    if skipped and not triggers:
        names = ", ".join(clip(name, 40) for name in skipped[:5])
        raise UnsupportedEvent(f"S3 notification with no object created/removed record (eventName {names})")
    if skipped:
        _log.info("skipped S3 notification records of other event types: %s", ", ".join(skipped[:10]))
    return triggers


def _notification_record(record: S3EventRecord, where: str) -> Trigger | str:
    """One record as a Trigger, or its eventName when it is not a creation or a deletion."""
    name = text(lambda: record.event_name, where, "eventName")
    kind = _notification_kind(name.removeprefix("s3:"))
    if kind is None:
        return name
    return Trigger.s3(
        bucket=text(lambda: record.s3.bucket.name, where, "s3.bucket.name"),
        # raw ["key"], decoded here exactly once (S3Object.key is raw today; this does not depend on it)
        key=unquote_plus(text(lambda: record.s3.get_object["key"], where, "s3.object.key")),
        event=kind,
        sequencer=optional_text(lambda: record.s3.get_object.sequencer, where, "s3.object.sequencer"),
        time=moment(lambda: record.event_time, where, "eventTime"),
        size=optional_size(lambda: record.s3.get_object["size"]),
        etag=_etag(lambda: record.s3.get_object["eTag"]),
    )


def _notification_kind(name: str) -> S3EventKind | None:
    if name.startswith(_CREATED):
        return "created"
    if name.startswith(_DELETED):
        return "deleted"
    return None


def _eventbridge(payload: Mapping[str, Any]) -> list[Trigger]:
    """S3 → EventBridge: one object per event; the key is used as it comes (it is not encoded)."""
    event = S3EventBridgeNotificationEvent(_mapping(payload))
    source, detail_type = event.get("source"), event.get("detail-type")
    kind = _EVENTBRIDGE_KINDS.get(detail_type) if source == "aws.s3" and isinstance(detail_type, str) else None
    if kind is None:
        raise UnsupportedEvent(f"EventBridge event from source {clip(source, 40)} detail-type {clip(detail_type, 40)}")
    where = f"EventBridge {detail_type} event"
    return [
        Trigger.s3(
            bucket=text(lambda: event.detail.bucket.name, where, "detail.bucket.name"),
            key=text(lambda: event.detail.object["key"], where, "detail.object.key"),  # not .key: it unquotes
            event=kind,
            sequencer=optional_text(lambda: event.detail.object.sequencer, where, "detail.object.sequencer"),
            time=moment(lambda: event.time, where, "time"),
            size=optional_size(lambda: event.detail.object["size"]),
            etag=_etag(lambda: event.detail.object["etag"]),
        )
    ]


def _etag(getter: Callable[[], Any]) -> str:
    """An object's ETag without the quotes some shapes keep ("" when absent or not text: it only informs)."""
    try:
        value = getter()
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
    return value.strip('"')[:100] if isinstance(value, str) else ""


def _sns_records(payload: Mapping[str, Any]) -> list[Trigger]:
    """The Lambda SNS event: each record's `Sns.Message` is an S3 notification (or EventBridge event) as JSON."""
    triggers: list[Trigger] = []
    for index, record in enumerate(SNSEvent(_mapping(payload)).records, start=1):
        triggers.extend(_sns_record(record, f"SNS record {index}"))
    return triggers


def _sns_record(record: SNSEventRecord, where: str) -> list[Trigger]:
    message = read(lambda: record.sns.message, where, "Sns.Message")
    return _nested(load_json(message, f"{where} Sns.Message"), f"{where} message", allow_sns=False)


def _sns_notification(payload: Mapping[str, Any]) -> list[Trigger]:
    """SNS JSON as an SQS queue receives it without raw message delivery."""
    envelope = SNSMessage(_mapping(payload))
    kind = envelope.get("Type")
    if kind != "Notification":
        raise UnsupportedEvent(f"SNS {clip(kind, 40)} message (only a Notification carries an S3 event)")
    message = read(lambda: envelope.message, "SNS notification", "Message")
    return _nested(load_json(message, "SNS notification Message"), "SNS notification message", allow_sns=False)
