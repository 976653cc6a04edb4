"""Properties of the event parsers: keys survive S3's encoding, and no input escapes as anything but UnsupportedEvent."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polytrigger.core.triggers import Trigger
from polytrigger.events import UnsupportedEvent, is_sqs_batch, s3_triggers, schedule_trigger, sqs_body_triggers
from tests.strategies import json_values as shared_json_values
from tests.strategies import paths, replaced

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES: dict[str, Any] = {
    path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(EVENTS.glob("*.json"))
}
NOTIFICATION = SAMPLES["s3-notification-created.json"]
BRIDGE = SAMPLES["eventbridge-object-created.json"]

# Keys as text of any kind: control characters, '%', '+', spaces, slashes, any unicode (no lone surrogates:
# S3 keys are UTF-8).
keys = st.text(min_size=1, max_size=200) | st.text(alphabet="%+ /2Bab\x00\n\t€ü😀", min_size=1, max_size=40)

json_values = shared_json_values()  # random JSON, leaning on the words of AWS events


def notification_with_key(raw_key: str) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(NOTIFICATION)
    event["Records"][0]["s3"]["object"]["key"] = raw_key
    return event


@given(key=keys)
def test_notification_key_decodes_back_to_the_real_key(key: str) -> None:
    for encoded in (quote_plus(key), quote_plus(key, safe="/")):  # strict form encoding, and S3's ('/' kept)
        [trigger] = s3_triggers(notification_with_key(encoded))
        assert trigger.key == key


@given(key=keys)
def test_the_same_key_has_one_identity_in_both_s3_shapes(key: str) -> None:
    bridge = copy.deepcopy(BRIDGE)
    bridge["detail"]["object"]["key"] = key
    [notified] = s3_triggers(notification_with_key(quote_plus(key, safe="/")))
    [bridged] = s3_triggers(bridge)
    assert bridged.key == key
    assert notified.identity == bridged.identity


@given(key=keys)
def test_the_same_key_through_sqs_and_sns_keeps_its_identity(key: str) -> None:
    event = notification_with_key(quote_plus(key, safe="/"))
    direct = s3_triggers(event)
    assert sqs_body_triggers(json.dumps(event)) == direct
    sns = json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": json.dumps(event)})
    assert sqs_body_triggers(sns) == direct


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", min_size=1, max_size=64)


@given(name=names, seconds=st.integers(min_value=0, max_value=10**9))
def test_schedule_shapes_agree_on_any_valid_name(name: str, seconds: int) -> None:
    from datetime import UTC, datetime

    time = datetime.fromtimestamp(1_700_000_000 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    envelope = copy.deepcopy(SAMPLES["scheduler-scheduled-event.json"])
    envelope["resources"] = [f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{name}"]
    envelope["time"] = time
    direct = schedule_trigger({"schedule": name, "time": time})
    assert direct.schedule == name
    assert schedule_trigger(envelope) == direct


def check(triggers: list[Trigger]) -> None:
    """A parse that succeeds gives triggers that the rest of the pipeline can use."""
    for trigger in triggers:
        assert isinstance(trigger, Trigger)
        assert trigger.time.tzinfo is not None
        trigger.identity  # noqa: B018 - computable, never raises
        trigger.describe()
        if trigger.kind == "s3":
            assert trigger.bucket
            assert trigger.key
            assert trigger.event in ("created", "deleted")


def only_unsupported(parse: Any, value: Any) -> None:
    try:
        result = parse(value)
    except UnsupportedEvent as error:
        message = str(error)
    else:
        check(result if isinstance(result, list) else [result])
        return
    assert 0 < len(message) < 500


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_random_json_either_parses_or_is_unsupported(value: Any) -> None:
    is_sqs_batch(value)
    only_unsupported(s3_triggers, value)
    only_unsupported(schedule_trigger, value)
    only_unsupported(sqs_body_triggers, json.dumps(value))


@given(body=st.text(max_size=200))
def test_random_sqs_body_text_either_parses_or_is_unsupported(body: str) -> None:
    only_unsupported(sqs_body_triggers, body)


def near_miss(sample: Any, data: st.DataObject) -> Any:
    """A real sample with one field replaced by random JSON or removed; SQS bodies and SNS messages too."""
    path = data.draw(st.sampled_from(paths(sample)))
    broken = replaced(sample, path, data.draw(json_values), delete=bool(path) and data.draw(st.booleans()))
    if data.draw(st.booleans()):  # break inside the JSON strings as well
        for string_path in paths(broken):
            inner = _at(broken, string_path)
            if string_path and string_path[-1] in ("body", "Message") and isinstance(inner, str):
                try:
                    decoded = json.loads(inner)
                except ValueError:
                    continue
                inner_path = data.draw(st.sampled_from(paths(decoded)))
                decoded = replaced(decoded, inner_path, data.draw(json_values), delete=False)
                broken = replaced(broken, string_path, json.dumps(decoded), delete=False)
                break
    return broken


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_broken_samples_either_parse_or_are_unsupported(name: str, data: st.DataObject) -> None:
    event = near_miss(SAMPLES[name], data)
    is_sqs_batch(event)
    only_unsupported(s3_triggers, event)
    only_unsupported(schedule_trigger, event)
    only_unsupported(sqs_body_triggers, json.dumps(event))
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        for record in event["Records"]:
            if isinstance(record, dict):
                only_unsupported(sqs_body_triggers, record.get("body"))
