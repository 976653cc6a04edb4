"""Raw events → Triggers: every sample file, key decoding, identities across shapes, and unsupported shapes."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import S3Event, S3EventBridgeNotificationEvent

from polytrigger.core.triggers import Trigger
from polytrigger.events import UnsupportedEvent, is_sqs_batch, s3_triggers, schedule_trigger, sqs_body_triggers

EVENTS = Path(__file__).resolve().parents[2] / "events"
BUCKET = "acme-landing"
TRICKY_KEY = "exports/customers/Q4 report+final 100% münchen.csv"


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def parse(event: Any) -> list[Trigger]:
    """As the handlers do: schedules to the schedule parser, SQS batches record by record, the rest whole."""
    if isinstance(event, dict) and ("schedule" in event or event.get("detail-type") == "Scheduled Event"):
        return [schedule_trigger(event)]
    if is_sqs_batch(event):
        return [trigger for record in event["Records"] for trigger in sqs_body_triggers(record["body"])]
    return s3_triggers(event)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def s3(key: str, event: str, sequencer: str, time: str) -> Trigger:
    return Trigger.s3(bucket=BUCKET, key=key, event=event, sequencer=sequencer, time=at(time))  # type: ignore[arg-type]


def scheduled(name: str, time: str) -> Trigger:
    return Trigger.scheduled(schedule=name, time=at(time))


NIGHTLY = [scheduled("nightly", "2026-11-23T02:00:00")]
EXPECTED: dict[str, list[Trigger]] = {
    "s3-notification-created.json": [
        s3("orders/2026/11/23/orders-0001.csv", "created", "0067419A3C5B7E2D10", "2026-11-23T09:15:42.318")
    ],
    "s3-notification-deleted.json": [
        s3("snapshots/2026-11-22.parquet", "deleted", "006741A2F09C3B4E55", "2026-11-23T09:20:07.904")
    ],
    "s3-notification-tricky-key.json": [s3(TRICKY_KEY, "created", "006741B17D2E8F9A03", "2026-11-23T10:02:11.052")],
    "s3-notification-multi.json": [
        s3("orders/2026/11/23/orders-0002.csv", "created", "006741C0A1B2C3D4E5", "2026-11-23T11:00:01.117"),
        s3(
            "exports/customers/customers 2026-11-23 (final).csv",
            "created",
            "006741C0A1B2C3D4F0",
            "2026-11-23T11:00:02.489",
        ),
        s3("orders/2026/11/23/orders-0003+fix.csv", "created", "006741C0A1B2C3D501", "2026-11-23T11:00:03.902"),
    ],
    "eventbridge-object-created.json": [
        s3("orders/2026/11/23/orders-0001.csv", "created", "0067419A3C5B7E2D10", "2026-11-23T09:15:42")
    ],
    "eventbridge-object-deleted.json": [
        s3("snapshots/2026-11-22.parquet", "deleted", "006741A2F09C3B4E55", "2026-11-23T09:20:07")
    ],
    "eventbridge-object-created-tricky-key.json": [
        s3(TRICKY_KEY, "created", "006741B17D2E8F9A03", "2026-11-23T10:02:11")
    ],
    "sqs-s3-notifications.json": [
        s3("orders/2026/11/23/orders-0004.csv", "created", "006741D3B8C2A5E7F1", "2026-11-23T12:30:00.250"),
        s3("exports/customers/customers 2026-11-23.csv", "created", "006741D3BC91F0A2D4", "2026-11-23T12:30:04"),
        s3("snapshots/2026-11-21.parquet", "deleted", "006741D3C17E5B9A08", "2026-11-23T12:30:09.731"),
    ],
    "sns-s3-notification.json": [
        s3("orders/2026/11/24/orders-0007.csv", "created", "006742DA4F8E1C3B27", "2026-11-24T07:45:12.604")
    ],
    "sqs-sns-s3-notification.json": [
        s3("exports/customers/customers 2026-11-24.csv", "created", "006742E0B5D3A9C710", "2026-11-24T08:10:33.018")
    ],
    "s3-test-event.json": [],
    "sqs-s3-test-event.json": [],
    "scheduler-input-nightly.json": NIGHTLY,
    "scheduler-input-freeze.json": [scheduled("freeze", "2026-11-27T18:00:00")],
    "scheduler-input-thaw.json": [scheduled("thaw", "2026-11-30T06:00:00")],
    "eventbridge-scheduled-event.json": NIGHTLY,
    "scheduler-scheduled-event.json": NIGHTLY,
}


# ---------------------------------------------------------------- the sample files


def test_every_sample_file_is_covered() -> None:
    assert {path.name for path in EVENTS.glob("*.json")} == {*EXPECTED, "unsupported-event.json"}


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items(), ids=list(EXPECTED))
def test_sample_file_parses_to_expected_triggers(name: str, expected: list[Trigger]) -> None:
    triggers = parse(load(name))
    assert triggers == expected
    for trigger in triggers:
        assert trigger.time.tzinfo is not None
        assert trigger.identity  # computable for every trigger


def test_unsupported_sample_names_its_shape() -> None:
    with pytest.raises(UnsupportedEvent, match=r"Records with eventSource \['aws:dynamodb'\]"):
        parse(load("unsupported-event.json"))


@pytest.mark.parametrize("name", sorted(path.name for path in EVENTS.glob("*.json")))
def test_sequencers_in_samples_look_like_s3s(name: str) -> None:
    for trigger in parse(load(name)) if name != "unsupported-event.json" else []:
        if trigger.kind == "s3":
            assert 16 <= len(trigger.sequencer) <= 18
            int(trigger.sequencer, 16)


# ---------------------------------------------------------------- key decoding


def test_tricky_key_decodes_exactly_once_in_both_s3_shapes() -> None:
    [notified] = s3_triggers(load("s3-notification-tricky-key.json"))
    [bridged] = s3_triggers(load("eventbridge-object-created-tricky-key.json"))
    assert notified.key == TRICKY_KEY
    assert bridged.key == TRICKY_KEY
    assert notified.identity == bridged.identity


def test_powertools_traps_that_the_parser_avoids() -> None:
    """Why raw keys are read: Powertools decodes EventBridge keys (wrongly) and only the first notification record."""
    bridge = S3EventBridgeNotificationEvent(load("eventbridge-object-created-tricky-key.json"))
    assert bridge.detail.object.key == "exports/customers/Q4 report final 100% münchen.csv"  # '+' lost
    multi = S3Event(load("s3-notification-multi.json"))
    assert [record.s3.get_object.key for record in multi.records][1] == (
        "exports/customers/customers+2026-11-23+%28final%29.csv"  # raw: decoding is ours to do
    )


def test_each_record_is_decoded_on_its_own() -> None:
    event = load("s3-notification-created.json")
    first, second = copy.deepcopy(event["Records"][0]), copy.deepcopy(event["Records"][0])
    first["s3"]["object"]["key"] = "in/a+b%2Bc.csv"
    second["s3"]["object"]["key"] = "in/a%2Bb+c%25.csv"
    second["s3"]["object"]["sequencer"] = "0067419A3C5B7E2D11"
    keys = [trigger.key for trigger in s3_triggers({"Records": [first, second]})]
    assert keys == ["in/a b+c.csv", "in/a+b c%.csv"]


def test_multi_record_sample_has_differently_encoded_keys() -> None:
    raw = [record["s3"]["object"]["key"] for record in load("s3-notification-multi.json")["Records"]]
    assert raw[1] == "exports/customers/customers+2026-11-23+%28final%29.csv"
    assert raw[2] == "orders/2026/11/23/orders-0003%2Bfix.csv"
    assert [t.key for t in s3_triggers(load("s3-notification-multi.json"))][1:] == [
        "exports/customers/customers 2026-11-23 (final).csv",
        "orders/2026/11/23/orders-0003+fix.csv",
    ]


def test_eventbridge_key_is_never_decoded() -> None:
    event = load("eventbridge-object-created.json")
    event["detail"]["object"]["key"] = "in/a%2Bb+c%20d.csv"
    [trigger] = s3_triggers(event)
    assert trigger.key == "in/a%2Bb+c%20d.csv"


# ---------------------------------------------------------------- identity across shapes


@pytest.mark.parametrize(
    ("notification", "bridge"),
    [
        ("s3-notification-created.json", "eventbridge-object-created.json"),
        ("s3-notification-deleted.json", "eventbridge-object-deleted.json"),
        ("s3-notification-tricky-key.json", "eventbridge-object-created-tricky-key.json"),
    ],
)
def test_same_upload_has_one_identity_in_both_shapes(notification: str, bridge: str) -> None:
    [a] = s3_triggers(load(notification))
    [b] = s3_triggers(load(bridge))
    assert a.time != b.time  # the shapes differ in precision...
    assert a.identity == b.identity  # ...and the identity does not care


def sns_event(message: Any) -> dict[str, Any]:
    sample: dict[str, Any] = load("sns-s3-notification.json")
    sample["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return sample


def sns_json(message: Any) -> str:
    body = json.loads(load("sqs-sns-s3-notification.json")["Records"][0]["body"])
    body["Message"] = json.dumps(message)
    return json.dumps(body)


def test_same_upload_has_one_identity_whatever_carried_it() -> None:
    notification = load("s3-notification-created.json")
    identities = {
        trigger.identity
        for triggers in (
            s3_triggers(notification),
            s3_triggers(load("eventbridge-object-created.json")),
            sqs_body_triggers(json.dumps(notification)),
            sqs_body_triggers(json.dumps(load("eventbridge-object-created.json"))),
            s3_triggers(sns_event(notification)),
            sqs_body_triggers(sns_json(notification)),
            s3_triggers(json.loads(sns_json(notification))),
        )
        for trigger in triggers
    }
    assert len(identities) == 1


def test_redelivery_keeps_identity_and_new_upload_of_same_key_changes_it() -> None:
    event = load("s3-notification-created.json")
    [first] = s3_triggers(event)
    assert s3_triggers(copy.deepcopy(event))[0].identity == first.identity
    event["Records"][0]["s3"]["object"]["sequencer"] = "0067419A3C5B7E2D99"
    [again] = s3_triggers(event)
    assert (again.key, again.event) == (first.key, first.event)
    assert again.identity != first.identity


def test_created_and_deleted_of_one_key_differ() -> None:
    event = load("s3-notification-created.json")
    [created] = s3_triggers(event)
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    [deleted] = s3_triggers(event)
    assert deleted.event == "deleted"
    assert created.identity != deleted.identity


def test_schedule_identity_is_the_same_in_all_three_shapes() -> None:
    triggers = [
        schedule_trigger(load(name))
        for name in (
            "scheduler-input-nightly.json",
            "eventbridge-scheduled-event.json",
            "scheduler-scheduled-event.json",
        )
    ]
    assert {t.identity for t in triggers} == {json.dumps(["schedule", "nightly", "2026-11-23T02:00:00Z"])}


def test_schedule_time_offsets_are_normalised() -> None:
    local = schedule_trigger({"schedule": "nightly", "time": "2026-11-23T03:00:00+01:00"})
    assert local.time == at("2026-11-23T02:00:00")
    assert local.time.utcoffset() == UTC.utcoffset(None)
    assert local.identity == schedule_trigger(load("scheduler-input-nightly.json")).identity


def test_schedule_name_is_the_last_arn_segment_also_on_a_custom_bus() -> None:
    event = load("eventbridge-scheduled-event.json")
    event["resources"] = ["arn:aws:events:us-east-1:123456789012:rule/acme-bus/freeze"]
    assert schedule_trigger(event).schedule == "freeze"


# ---------------------------------------------------------------- event kinds, test events, skipped records


@pytest.mark.parametrize(
    ("event_name", "kind"),
    [
        ("ObjectCreated:Put", "created"),
        ("ObjectCreated:Post", "created"),
        ("ObjectCreated:Copy", "created"),
        ("ObjectCreated:CompleteMultipartUpload", "created"),
        ("ObjectRemoved:Delete", "deleted"),
        ("ObjectRemoved:DeleteMarkerCreated", "deleted"),
        ("LifecycleExpiration:Delete", "deleted"),
        ("LifecycleExpiration:DeleteMarkerCreated", "deleted"),
        ("s3:ObjectCreated:Put", "created"),
    ],
)
def test_notification_event_names(event_name: str, kind: str) -> None:
    event = load("s3-notification-created.json")
    event["Records"][0]["eventName"] = event_name
    assert [t.event for t in s3_triggers(event)] == [kind]


def test_test_event_is_ignored_in_every_wrapping() -> None:
    test_event = load("s3-test-event.json")
    assert s3_triggers(test_event) == []
    assert sqs_body_triggers(json.dumps(test_event)) == []
    assert s3_triggers(sns_event(test_event)) == []
    assert sqs_body_triggers(sns_json(test_event)) == []


def test_records_of_other_event_types_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    event = load("s3-notification-multi.json")
    event["Records"][0]["eventName"] = "ObjectRestore:Completed"
    event["Records"][2]["eventName"] = "Replication:OperationReplicatedAfterThreshold"
    with caplog.at_level(logging.INFO, logger="polytrigger.events"):
        triggers = s3_triggers(event)
    assert [t.key for t in triggers] == ["exports/customers/customers 2026-11-23 (final).csv"]
    assert "ObjectRestore:Completed" in caplog.text


def test_only_other_event_types_is_unsupported() -> None:
    event = load("s3-notification-created.json")
    event["Records"][0]["eventName"] = "ObjectTagging:Put"
    with pytest.raises(UnsupportedEvent, match=r"no object created/removed record.*ObjectTagging:Put"):
        s3_triggers(event)


def test_missing_sequencer_falls_back_to_the_event_time() -> None:
    event = load("s3-notification-created.json")
    del event["Records"][0]["s3"]["object"]["sequencer"]
    [trigger] = s3_triggers(event)
    assert trigger.sequencer == ""
    assert "2026-11-23T09:15:42Z" in trigger.identity


def test_is_sqs_batch() -> None:
    assert is_sqs_batch(load("sqs-s3-notifications.json"))
    assert is_sqs_batch(load("sqs-sns-s3-notification.json"))
    assert not is_sqs_batch(load("s3-notification-created.json"))
    assert not is_sqs_batch(load("sns-s3-notification.json"))
    assert not is_sqs_batch({"Records": []})
    assert not is_sqs_batch([{"eventSource": "aws:sqs"}])
    mixed = load("sqs-s3-notifications.json")
    mixed["Records"].append(load("s3-notification-created.json")["Records"][0])
    assert not is_sqs_batch(mixed)


# ---------------------------------------------------------------- unsupported shapes


def with_change(name: str, path: tuple[str | int, ...], value: Any = KeyError) -> Any:
    """A sample with one field replaced (or removed when value is KeyError)."""
    event = load(name)
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    if value is KeyError:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return event


API_GATEWAY = {
    "resource": "/",
    "path": "/",
    "httpMethod": "POST",
    "headers": {"Authorization": "Bearer pk_live_0123456789abcdef"},
    "body": '{"api_key": "pk_live_0123456789abcdef"}',
}

S3_UNSUPPORTED: list[tuple[Any, str]] = [
    ({"foo": 1, "bar": 2}, r"unsupported event shape: object with keys \[bar, foo\]"),
    ([1, 2], "unsupported event shape: a JSON array"),
    ("s3", "unsupported event shape: a JSON string"),
    (None, "unsupported event shape: a JSON null"),
    ({"Records": []}, "Records is empty"),
    ({"Records": {"a": 1}}, "Records is an object"),
    ({"Records": [1]}, r"Records with eventSource \[\(none\)\]"),
    (
        {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}},
        "EventBridge event from source 'aws.ec2' detail-type 'EC2 Instance State-change Notification'",
    ),
    (
        with_change("eventbridge-object-created.json", ("detail-type",), "Object Restore Completed"),
        "EventBridge event from source 'aws.s3' detail-type 'Object Restore Completed'",
    ),
    (load("eventbridge-scheduled-event.json"), "source 'aws.events' detail-type 'Scheduled Event'"),
    (load("sqs-s3-notifications.json"), "an SQS batch"),
    (
        with_change("s3-notification-created.json", ("Records", 0, "s3", "bucket", "name")),
        "S3 notification record 1: field s3.bucket.name is missing",
    ),
    (
        with_change("s3-notification-created.json", ("Records", 0, "s3", "object", "key")),
        "S3 notification record 1: field s3.object.key is missing",
    ),
    (
        with_change("s3-notification-created.json", ("Records", 0, "s3", "object", "key"), ""),
        "field s3.object.key must be a non-empty string",
    ),
    (
        with_change("s3-notification-created.json", ("Records", 0, "s3")),
        "field s3.bucket.name is missing",
    ),
    (
        with_change("s3-notification-created.json", ("Records", 0, "eventName")),
        "field eventName is missing",
    ),
    (
        with_change("s3-notification-created.json", ("Records", 0, "eventTime"), "yesterday"),
        "field eventTime is not an ISO-8601 time: 'yesterday'",
    ),
    (
        with_change("s3-notification-created.json", ("Records", 0, "s3", "object", "sequencer"), 42),
        "field s3.object.sequencer must be a string, got a JSON number",
    ),
    (
        with_change("eventbridge-object-created.json", ("detail", "object", "key")),
        "EventBridge Object Created event: field detail.object.key is missing",
    ),
    (
        with_change("eventbridge-object-created.json", ("detail",), "{}"),
        "field detail.bucket.name is missing",
    ),
    (
        with_change("eventbridge-object-created.json", ("time",)),
        "field time is missing",
    ),
    (
        sns_event({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
        "SNS record 1 message: an SQS batch",
    ),
    (sns_event(load("sns-s3-notification.json")), "SNS record 1 message: .*Records with eventSource \\['aws:sns'\\]"),
    (
        with_change("sns-s3-notification.json", ("Records", 0, "Sns", "Message"), "not json"),
        "SNS record 1 Sns.Message is not JSON",
    ),
    ({**json.loads(sns_json({})), "Type": "SubscriptionConfirmation"}, "SNS 'SubscriptionConfirmation' message"),
    (load("unsupported-event.json"), r"Records with eventSource \['aws:dynamodb'\]"),
    (API_GATEWAY, r"object with keys \[body, headers, httpMethod, path, resource\]"),
]


@pytest.mark.parametrize(("payload", "message"), S3_UNSUPPORTED)
def test_unsupported_s3_payloads_name_their_shape(payload: Any, message: str) -> None:
    with pytest.raises(UnsupportedEvent, match=message) as raised:
        s3_triggers(payload)
    assert "pk_live" not in str(raised.value)


SQS_UNSUPPORTED: list[tuple[str, str]] = [
    ("not json", r"SQS record body is not JSON \(8 characters\)"),
    ("", "SQS record body is not JSON"),
    ("[1, 2]", "SQS record body: unsupported event shape: a JSON array"),
    ('{"foo": 1}', r"SQS record body: unsupported event shape: object with keys \[foo\]"),
    (json.dumps(API_GATEWAY), "SQS record body: unsupported event shape"),
    (sns_json("{"), "SQS record body: SNS notification message: unsupported event shape: a JSON string"),
    (sns_json({}).replace('"{}"', '"{"', 1), r"SQS record body: SNS notification Message is not JSON \(1 characters\)"),
    (sns_json({"Type": "Notification", "TopicArn": "x", "Message": "{}"}), "SNS message inside another SNS message"),
    ("[" * 100_000, "SQS record body is not JSON"),
]


@pytest.mark.parametrize(("body", "message"), SQS_UNSUPPORTED)
def test_unsupported_sqs_bodies_name_their_shape(body: str, message: str) -> None:
    with pytest.raises(UnsupportedEvent, match=message) as raised:
        sqs_body_triggers(body)
    assert "pk_live" not in str(raised.value)
    assert len(str(raised.value)) < 300


def test_sqs_body_that_is_not_a_string() -> None:
    with pytest.raises(UnsupportedEvent, match="SQS record body is not a string but an object"):
        sqs_body_triggers({"Records": []})  # type: ignore[arg-type]


SCHEDULE_UNSUPPORTED: list[tuple[Any, str]] = [
    ({"foo": 1}, r"unsupported event shape: object with keys \[foo\]"),
    ([], "unsupported event shape: a JSON array"),
    ({"schedule": "nightly"}, "Scheduler input: field time is missing"),
    ({"schedule": "", "time": "2026-11-23T02:00:00Z"}, "field schedule must be a non-empty string"),
    ({"schedule": 7, "time": "2026-11-23T02:00:00Z"}, "field schedule must be a non-empty string, got a JSON number"),
    ({"schedule": "nightly run!", "time": "2026-11-23T02:00:00Z"}, "schedule has no valid schedule name"),
    ({"schedule": "nightly\n", "time": "2026-11-23T02:00:00Z"}, "schedule has no valid schedule name"),
    ({"schedule": "x" * 65, "time": "2026-11-23T02:00:00Z"}, "schedule has no valid schedule name"),
    (
        {"schedule": "nightly", "time": "<aws.scheduler.scheduled-time>"},
        "field time is not an ISO-8601 time: '<aws.scheduler.scheduled-time>'",
    ),
    ({"schedule": "nightly", "time": "0001-01-01T00:00:00+01:00"}, "field time is not an ISO-8601 time"),
    (load("eventbridge-object-created.json"), "EventBridge event from source 'aws.s3' detail-type 'Object Created'"),
    (
        with_change("eventbridge-scheduled-event.json", ("source",), "acme.cron"),
        "EventBridge event from source 'acme.cron' detail-type 'Scheduled Event'",
    ),
    (with_change("eventbridge-scheduled-event.json", ("resources",), []), "field resources must name .*got empty"),
    (with_change("eventbridge-scheduled-event.json", ("resources",)), "field resources is missing"),
    (
        with_change("scheduler-scheduled-event.json", ("resources",), ["nightly"]),
        "Scheduled Event from aws.scheduler: resources\\[0\\] is not a rule or schedule ARN: 'nightly'",
    ),
    (
        with_change("eventbridge-scheduled-event.json", ("resources",), ["arn:aws:events:us-east-1:1:rule/"]),
        "resources\\[0\\] has no valid schedule name",
    ),
    (with_change("eventbridge-scheduled-event.json", ("time",), "soon"), "field time is not an ISO-8601 time"),
    (load("s3-notification-created.json"), r"unsupported event shape: object with keys \[Records\]"),
]


@pytest.mark.parametrize(("event", "message"), SCHEDULE_UNSUPPORTED)
def test_unsupported_schedule_events_say_what_is_wrong(event: Any, message: str) -> None:
    with pytest.raises(UnsupportedEvent, match=message):
        schedule_trigger(event)


def test_messages_are_short_even_for_huge_payloads() -> None:
    huge = "x" * 1_000_000
    attempts: list[Callable[[], object]] = [
        lambda: s3_triggers({"source": huge, "detail-type": huge}),
        lambda: s3_triggers({f"{huge}{i}": i for i in range(50)}),
        lambda: s3_triggers(with_change("s3-notification-created.json", ("Records", 0, "eventTime"), huge)),
        lambda: schedule_trigger({"schedule": huge, "time": "2026-11-23T02:00:00Z"}),
        lambda: sqs_body_triggers(huge),
    ]
    for attempt in attempts:
        with pytest.raises(UnsupportedEvent) as raised:
            attempt()
        assert len(str(raised.value)) < 400
