"""Hostile and malformed events against the real handlers on the local stack.

Random JSON, real samples with fields replaced or removed, oversized payloads, keys with control
characters, `..`, `%`, `+` and 2,000 unicode characters, schedule names and times of any kind, and SQS
batches mixing valid and garbage bodies. For every input the handler returns (it never raises for input
a retry cannot fix); input that matches no route makes no Polytomic call, and input that does calls only
the paths of the syncs its routes name; a shape nobody supports logs exactly one short ERROR line that
names the shape without echoing the payload.

What the handler should do is worked out with the parsers and the bundled routes (the oracle); their own
properties are in tests/unit/test_events_properties.py and tests/unit/test_routes_properties.py.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from hypothesis import HealthCheck, currently_in_test_context, event, example, given, settings
from hypothesis import strategies as st

from polytrigger.core.actions import Action
from polytrigger.core.triggers import Trigger
from polytrigger.events import UnsupportedEvent, is_sqs_batch, s3_triggers, schedule_trigger, sqs_body_triggers
from polytrigger.routing import load_routes
from tests.integration.support import CUSTOMERS_MODEL, ORDERS_MODEL, ROUTES, WAREHOUSE_BULK, Invoker, load_event
from tests.strategies import json_values as shared_json_values
from tests.strategies import paths, replaced

BUNDLED = load_routes(ROUTES)
SYNCS = (ORDERS_MODEL, WAREHOUSE_BULK, CUSTOMERS_MODEL)
BASES = {"model": "/api/syncs", "bulk": "/api/bulk/syncs"}
# Every path a bundled route can ever call: anything else reaching the fake is a bug.
ROUTE_PATHS = {
    f"{BASES[sync.type]}/{sync.id}/{tail}"
    for route in BUNDLED.routes
    for sync in route.syncs
    for tail in ("executions", "activate", "status")
}
S3_SAMPLES = [
    "s3-notification-created.json", "s3-notification-deleted.json", "s3-notification-tricky-key.json",
    "s3-notification-multi.json", "eventbridge-object-created.json", "eventbridge-object-deleted.json",
    "sqs-s3-notifications.json", "sns-s3-notification.json", "sqs-sns-s3-notification.json", "s3-test-event.json",
    "unsupported-event.json",
]  # fmt: skip
SCHEDULE_SAMPLES = [
    "scheduler-input-nightly.json", "scheduler-input-freeze.json", "scheduler-input-thaw.json",
    "eventbridge-scheduled-event.json", "scheduler-scheduled-event.json",
]  # fmt: skip
NOTIFICATION = load_event("s3-notification-created.json")
BRIDGE = load_event("eventbridge-object-created.json")
SQS_RECORD = load_event("sqs-s3-notifications.json")["Records"][0]
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
sequencers = itertools.count(0x1000000)  # a fresh upload per example, so dedup does not hide the calls


# -- strategies ----------------------------------------------------------------------------------

json_values = shared_json_values()  # random JSON, leaning on the words of AWS events

ODD_KEYS = [
    "..", "../..", "orders/../../../etc/passwd.csv", "orders/..%2F..%2Fx.csv", "orders/%2e%2e/x.csv", "orders/a+b.csv",
    "orders/100%.csv", "orders/100%25.csv", "orders/%zz.csv", "orders/a%00b.csv", "orders/\x00.csv", "orders/\n.csv",
    "orders/\r\nX-Injected: 1.csv", "exports/customers/Q4 report+final 100% münchen.csv", "exports/customers/../x",
    "snapshots/+.parquet", "orders//x.csv", "/orders/x.csv", "orders/x.CSV", "orders/x.csv/", " orders/x.csv",
]  # fmt: skip


def long_key(prefix: str, unit: str, suffix: str) -> str:
    """A 2,000-character key under a route's folder (or not), built from one (possibly astral) character."""
    body = (unit * 2000)[: 2000 - len(prefix) - len(suffix)]
    return prefix + body + suffix


# Keys under each route's folder and with its suffix come up often, so matching keys make real calls.
ROUTE_FOLDERS = [("orders/", ".csv"), ("orders/2026/", ".csv"), ("exports/customers/", ""), ("snapshots/", ".parquet")]
in_route_folders = st.builds(
    lambda folder, middle: folder[0] + middle + folder[1],
    st.sampled_from(ROUTE_FOLDERS),
    st.text(alphabet="%+ ./\x00\x01\x1f\x7f\n\t\u2028\u202eüé😀2BFab", max_size=30),
)
keys = (
    st.sampled_from(ODD_KEYS)
    | st.text(min_size=1, max_size=60)
    | in_route_folders
    | in_route_folders
    | st.builds(
        lambda prefix, middle, suffix: prefix + middle + suffix,
        st.sampled_from(["orders/", "exports/customers/", "snapshots/", "", "other/", "orders/../"]),
        st.text(max_size=30),
        st.sampled_from([".csv", ".parquet", "", "/", ".csv\n"]),
    )
    | st.builds(
        lambda folder, unit: long_key(folder[0], unit, folder[1]),
        st.sampled_from([*ROUTE_FOLDERS, ("x/", ".csv")]),
        st.characters(codec="utf-8"),
    )
)
other_buckets = st.sampled_from(["other-bucket", "ACME-LANDING", "acme-landing ", "acme-landing/..", ""]) | st.text(
    max_size=20
)
buckets = st.one_of(st.just("acme-landing"), st.just("acme-landing"), other_buckets)


@st.composite
def oversized(draw: st.DrawFn) -> str:
    """A 20-200 KB string of a random marker: it must never be echoed by an error line."""
    marker = draw(st.text(alphabet="abcxyzü😀%+\n\x00", min_size=4, max_size=8))
    return marker * draw(st.integers(min_value=5_000, max_value=25_000))


@st.composite
def broken_samples(draw: st.DrawFn, names: list[str]) -> Any:
    """A real sample with one field replaced (random JSON, an oversized string, a wrong type) or removed;
    sometimes the JSON inside an SQS body or SNS Message is broken or truncated instead."""
    event = load_event(draw(st.sampled_from(names)))
    path = draw(st.sampled_from(paths(event)))
    how = draw(st.sampled_from(["json", "oversized", "delete", "inner", "truncate"]))
    if how in ("inner", "truncate"):
        inner = [p for p in paths(event) if p and p[-1] in ("body", "Message") and isinstance(_at(event, p), str)]
        if inner:
            where = draw(st.sampled_from(inner))
            text = _at(event, where)
            if how == "truncate":
                return replaced(event, where, text[: draw(st.integers(0, len(text)))])
            document = json.loads(text)
            deeper = draw(st.sampled_from(paths(document)))
            return replaced(event, where, json.dumps(replaced(document, deeper, draw(json_values | oversized()))))
    if how == "delete" and path:
        return replaced(event, path, None, delete=True)
    return replaced(event, path, draw(oversized() if how == "oversized" else json_values))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def notification(bucket: str, raw_key: str, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(NOTIFICATION)
    record = event["Records"][0]
    record["eventName"] = name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"]["key"] = raw_key
    record["s3"]["object"]["sequencer"] = f"{next(sequencers):018X}"
    return event


def bridge(bucket: str, key: str, detail_type: str = "Object Created") -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(BRIDGE)
    event["detail-type"] = detail_type
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["sequencer"] = f"{next(sequencers):018X}"
    return event


def sqs_record(body: Any, message_id: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(SQS_RECORD)
    record["messageId"] = message_id or f"m-{next(sequencers)}"
    if body is _MISSING:
        del record["body"]
    else:
        record["body"] = body
    return record


_MISSING = object()


# -- the oracle and the checks -------------------------------------------------------------------


@dataclass
class Expected:
    """What the handler should do with one event: how many payloads are unsupported, which actions run."""

    unsupported: int
    actions: list[Action]

    @property
    def paths(self) -> set[str]:
        return {
            f"{BASES[a.sync.type]}/{a.sync.id}/{'executions' if a.kind == 'start' else 'activate'}"
            for a in self.actions
        }


def expect(parse: Callable[[Any], list[Trigger]], payload: Any) -> Expected:
    try:
        triggers = parse(payload)
    except UnsupportedEvent:
        return Expected(1, [])
    return Expected(0, BUNDLED.actions_for(triggers))


def expect_s3(event: Any) -> Expected:
    if not is_sqs_batch(event):
        return expect(s3_triggers, event)
    total = Expected(0, [])
    for record in event["Records"]:
        one = expect(sqs_body_triggers, record.get("body"))
        total.unsupported += one.unsupported
        total.actions += one.actions
    return total


def expect_schedule(event: Any) -> Expected:
    return expect(lambda payload: [schedule_trigger(payload)], event)


def fresh(polytrigger: Invoker) -> None:
    """Between examples: no calls, no log lines, no dedup records (samples reuse their sequencers, and a
    duplicate makes no call to check), every sync active again (a freeze pauses them)."""
    polytrigger.log.seek(0)
    polytrigger.log.truncate()
    if polytrigger.stack.fake.calls:  # only actions that reached the fake leave records behind
        polytrigger.stack.clear_table()
    polytrigger.stack.fake.reset_calls()
    for sync_id in SYNCS:
        polytrigger.stack.fake.set_active(sync_id, True)


def verify(polytrigger: Invoker, result: Any, expected: Expected, *, payload_marker: str = "") -> None:
    assert isinstance(result, dict)
    assert isinstance(result.get("outcomes", []), list)
    calls = polytrigger.stack.fake.calls
    called = {call.path for call in calls}
    if currently_in_test_context():  # --hypothesis-show-statistics: how often each branch is reached
        event(f"{'unsupported' if expected.unsupported else 'parsed'}, {'calls' if calls else 'no call'}")
    if not expected.actions:
        assert calls == [], f"input that matches no route made calls: {sorted(called)}"
        assert result.get("outcomes", []) == []
    assert called <= expected.paths, f"unexpected calls {sorted(called - expected.paths)}"
    assert called <= ROUTE_PATHS
    outcomes = result.get("outcomes", [])
    wanted = {(a.route, a.sync.id, a.kind) for a in expected.actions}
    assert {(o["route"], o["sync_id"], o["action"]) for o in outcomes} <= wanted
    assert all(o["status"] in ("started", "duplicate", "activated", "deactivated") for o in outcomes), outcomes
    assert not result.get("batchItemFailures"), "garbage was handed back to the queue"

    # split on "\n" only: a log line may hold U+0085 or U+2028 (JSON leaves them as they are), not a newline
    raw_errors = [line for line in polytrigger.log_text().split("\n") if '"level":"ERROR"' in line]
    errors = [json.loads(line) for line in raw_errors]
    assert [e["level"] for e in errors] == ["ERROR"] * len(errors)
    assert len(errors) == expected.unsupported, [e["message"] for e in errors]
    for error, raw in zip(errors, raw_errors, strict=True):
        assert error["message"].startswith("unsupported event: ")
        assert error["status"] == "unsupported_event"
        assert len(raw) < 1000, f"ERROR line of {len(raw)} characters: {raw[:300]}…"
        if payload_marker:
            assert payload_marker not in raw


def marker_of(event: Any) -> str:
    """A 200-character slice of the event's longest string, if it is oversized (to look for in error lines)."""
    longest = max((s for s in _strings(event)), key=len, default="")
    return longest[1000:1200] if len(longest) > 10_000 else ""


def _strings(value: Any) -> list[str]:
    """Every string in a JSON value, looking inside SQS bodies and SNS messages (their JSON escapes differ)."""
    if isinstance(value, str):
        try:
            inner = json.loads(value)
        except (ValueError, RecursionError):
            return [value]
        return _strings(inner) if isinstance(inner, dict | list) else [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def run_s3(polytrigger: Invoker, event: Any) -> None:
    fresh(polytrigger)
    expected = expect_s3(event)
    result = polytrigger.s3(event)
    verify(polytrigger, result, expected, payload_marker=marker_of(event))


def run_schedule(polytrigger: Invoker, event: Any) -> None:
    fresh(polytrigger)
    expected = expect_schedule(event)
    result = polytrigger.schedule(event)
    verify(polytrigger, result, expected, payload_marker=marker_of(event))


# -- random JSON and broken samples --------------------------------------------------------------


@settings(max_examples=120, **SETTINGS)  # type: ignore[arg-type]
@given(event=json_values)
@example(event=None)
@example(event=[])
@example(event="s3:TestEvent")
@example(event={"Records": [{"eventSource": "aws:sqs"}]})
@example(event={"Records": "x" * 100_000})
@example(event={"x" * 100_000: 1, "Records": None})
@example(event={"source": "aws.s3", "detail-type": "Object Created" + "x" * 100_000})
def test_random_json_is_handled_or_unsupported_never_raised(polytrigger: Invoker, event: Any) -> None:
    run_s3(polytrigger, event)
    run_schedule(polytrigger, event)


@settings(max_examples=150, **SETTINGS)  # type: ignore[arg-type]
@given(event=broken_samples(S3_SAMPLES))
def test_broken_s3_samples_are_handled_or_unsupported(polytrigger: Invoker, event: Any) -> None:
    run_s3(polytrigger, event)


@settings(max_examples=100, **SETTINGS)  # type: ignore[arg-type]
@given(event=broken_samples(SCHEDULE_SAMPLES))
def test_broken_schedule_samples_are_handled_or_unsupported(polytrigger: Invoker, event: Any) -> None:
    run_schedule(polytrigger, event)


def test_oversized_identifiers_are_not_echoed_by_the_error_line(polytrigger: Invoker) -> None:
    """An unsupported event whose delivery ids are huge: the one error line stays short."""
    huge = "id-" + "x" * 200_000
    for hostile in (
        {"id": huge, "source": "aws.unknown", "detail-type": huge},
        {"Records": [{"eventSource": "aws:dynamodb", "messageId": huge}]},
        {"Records": [{"eventSource": "aws:kinesis", "responseElements": {"x-amz-request-id": huge}}]},
        {"Records": [{"eventSource": "aws:sqs", "messageId": huge, "body": huge}]},
    ):
        run_s3(polytrigger, hostile)
        run_schedule(polytrigger, hostile)


# -- hostile keys and buckets --------------------------------------------------------------------


@settings(max_examples=120, **SETTINGS)  # type: ignore[arg-type]
@given(
    bucket=buckets,
    key=keys,
    shape=st.sampled_from(["notification", "notification-raw", "eventbridge", "sns", "sqs"]),
    deleted=st.booleans(),
)
@example(bucket="acme-landing", key="../../api/webhooks", shape="notification", deleted=False)
@example(bucket="acme-landing", key="orders/" + "😀" * 1993 + ".csv", shape="eventbridge", deleted=False)
@example(bucket="other-bucket", key="orders/x.csv", shape="notification", deleted=False)
@example(bucket="acme-landing", key="orders/x.csv\n", shape="eventbridge", deleted=False)
def test_hostile_keys_call_only_the_routes_syncs(
    polytrigger: Invoker, bucket: str, key: str, shape: str, deleted: bool
) -> None:
    if shape == "eventbridge":
        event: Any = bridge(bucket, key, "Object Deleted" if deleted else "Object Created")
    else:
        # notifications carry form-encoded keys; "raw" sends the hostile key unencoded, as a forger would
        raw_key = key if shape == "notification-raw" else quote_plus(key, safe="/")
        event = notification(bucket, raw_key, "ObjectRemoved:Delete" if deleted else "ObjectCreated:Put")
        if shape == "sns":
            message = json.dumps(event)
            event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": message}}]}
        elif shape == "sqs":
            event = {"Records": [sqs_record(json.dumps(event))]}
    # the oracle uses the code under test, so check it against the routes file by hand where that is easy
    decoded = unquote_plus(key) if shape == "notification-raw" else key
    expected = expect_s3(event)
    if bucket != "acme-landing" or not decoded.startswith(("orders/", "exports/customers/", "snapshots/")):
        assert not expected.actions
    if not expected.unsupported:
        orders = bucket == "acme-landing" and not deleted and decoded.startswith("orders/") and decoded.endswith(".csv")
        assert orders == any(action.route == "orders-landing" for action in expected.actions)
    run_s3(polytrigger, event)


names = st.one_of(
    st.sampled_from(["nightly", "freeze", "thaw"]),
    st.sampled_from(["Nightly", "nightly\n", "../nightly", "nightly/..", "n%69ghtly", "nightly ", "x" * 65]),
    st.text(max_size=70),
    st.text(alphabet="abc.-_/%+\x00\n", max_size=70),
)
times = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat()),
    st.datetimes(min_value=datetime(2000, 1, 1)).map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.sampled_from(["<aws.scheduler.scheduled-time>", "", "2026-13-01T00:00:00Z", "9999-12-31T23:59:59-23:59"]),
    st.text(max_size=30),
)


@settings(max_examples=120, **SETTINGS)  # type: ignore[arg-type]
@given(name=names, time=times, shape=st.sampled_from(["input", "aws.events", "aws.scheduler"]))
@example(name="nightly", time="2026-11-23T02:00:00Z", shape="input")
@example(name="../../api/webhooks", time="2026-11-23T02:00:00Z", shape="aws.scheduler")
def test_hostile_schedule_names_and_times(polytrigger: Invoker, name: str, time: str, shape: str) -> None:
    if shape == "input":
        event: dict[str, Any] = {"schedule": name, "time": time}
    else:
        event = copy.deepcopy(load_event("scheduler-scheduled-event.json"))
        event["source"] = shape
        kind = "rule" if shape == "aws.events" else "schedule/default"
        event["resources"] = [f"arn:aws:{shape.split('.')[1]}:us-east-1:123456789012:{kind}/{name}"]
        event["time"] = time
    run_schedule(polytrigger, event)


# -- SQS batches mixing valid and garbage bodies -------------------------------------------------


@st.composite
def garbage_bodies(draw: st.DrawFn) -> Any:
    valid = json.dumps(notification("acme-landing", "orders/2026/x.csv"))
    return draw(
        st.text(max_size=50)
        | json_values.map(json.dumps)
        | st.integers(0, len(valid) - 1).map(lambda cut: valid[:cut])
        | st.sampled_from(["", "null", "[]", "{}", '{"Records": []}', '{"Event": "s3:TestEvent"}'])
        | oversized()
        | json_values  # a body that is not a string at all
        | st.just(_MISSING)
    )


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    """2-5 records; each a valid orders upload (a fresh sequencer) or garbage."""
    size = draw(st.integers(min_value=2, max_value=5))
    bodies: list[Any] = []
    for _ in range(size):
        if draw(st.booleans()):
            key = draw(st.sampled_from(["orders/a.csv", "orders/2026/11/b.csv", "exports/customers/c d+e.csv"]))
            bodies.append(json.dumps(notification("acme-landing", quote_plus(key, safe="/"))))
        else:
            bodies.append(draw(garbage_bodies()))
    return bodies


@settings(max_examples=40, **SETTINGS)  # type: ignore[arg-type]
@given(bodies=batches())
def test_sqs_batches_run_the_valid_records_and_drop_the_garbage(polytrigger: Invoker, bodies: list[Any]) -> None:
    event = {"Records": [sqs_record(body) for body in bodies]}
    fresh(polytrigger)
    expected = expect_s3(event)
    result = polytrigger.s3(event)
    verify(polytrigger, result, expected, payload_marker=marker_of(event))
    assert result["batchItemFailures"] == []
    # every valid record is its own event with its own upload: each of its actions ran once
    started = [call.path for call in polytrigger.stack.fake.calls if call.method == "POST"]
    assert sorted(started) == sorted(
        f"{BASES[a.sync.type]}/{a.sync.id}/{'executions' if a.kind == 'start' else 'activate'}"
        for a in expected.actions
    )
    assert [o["status"] for o in result["outcomes"]] == ["started"] * len(expected.actions)
