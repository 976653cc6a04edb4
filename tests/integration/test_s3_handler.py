"""The S3 handler, every shape, against the local stack: what reached Polytomic, and how."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any
from urllib.parse import quote_plus

import pytest

from local.polytomic import DEFAULT_API_KEY
from tests.integration.support import (
    CUSTOMERS_MODEL,
    ORDERS_MODEL,
    WAREHOUSE_BULK,
    Invoker,
    load_event,
    per_sync,
    posts,
    starts,
)

ORDERS_START: tuple[str, dict[str, Any]] = ("/api/syncs/" + ORDERS_MODEL + "/executions", {})
WAREHOUSE_INCREMENTAL = ("/api/bulk/syncs/" + WAREHOUSE_BULK + "/executions", {"fetch_mode": "incremental"})
WAREHOUSE_RESYNC = (
    "/api/bulk/syncs/" + WAREHOUSE_BULK + "/executions",
    {"resync_mode": "resync", "schemas": ["public.snapshots"]},
)
CUSTOMERS_START = ("/api/syncs/" + CUSTOMERS_MODEL + "/executions", {"identities": ["customer-export"]})
TRICKY_KEY = "exports/customers/Q4 report+final 100% münchen.csv"

# Each sample event, and the (path, body) of every POST it must make with the example routes.
EXPECTED: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "s3-notification-created.json": [ORDERS_START, WAREHOUSE_INCREMENTAL],
    "eventbridge-object-created.json": [ORDERS_START, WAREHOUSE_INCREMENTAL],
    "s3-notification-deleted.json": [WAREHOUSE_RESYNC],
    "eventbridge-object-deleted.json": [WAREHOUSE_RESYNC],
    "s3-notification-tricky-key.json": [CUSTOMERS_START],
    "eventbridge-object-created-tricky-key.json": [CUSTOMERS_START],
    "sns-s3-notification.json": [ORDERS_START, WAREHOUSE_INCREMENTAL],
    "s3-notification-multi.json": [ORDERS_START, WAREHOUSE_INCREMENTAL, CUSTOMERS_START],
    "s3-test-event.json": [],
    "sqs-s3-test-event.json": [],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_event_reaches_the_right_syncs(polytrigger: Invoker, name: str) -> None:
    fake = polytrigger.stack.fake
    summary = polytrigger.s3(load_event(name))

    calls = posts(fake)
    assert per_sync([(call.path, call.body or {}) for call in calls]) == per_sync(EXPECTED[name])
    for call in calls:
        assert call.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
        assert call.headers["x-polytomic-version"] == "2025-09-18"
        assert call.headers["user-agent"].startswith("polytrigger/")
        assert call.headers["content-type"] == "application/json"
        assert call.status == 200
    keys = [call.headers["idempotency-key"] for call in calls]
    assert len(set(keys)) == len(keys)
    outcomes = summary.get("outcomes", [])
    assert [outcome["status"] for outcome in outcomes] == ["started"] * len(calls)
    executions = {execution.id for execution in fake.executions()}
    assert {outcome["execution_id"] for outcome in outcomes} == executions


def test_every_record_of_an_sqs_batch_is_handled(polytrigger: Invoker) -> None:
    event = load_event("sqs-s3-notifications.json")
    summary = polytrigger.s3(event)

    assert summary["batchItemFailures"] == []
    started = {(outcome["route"], outcome["sync_id"]) for outcome in summary["outcomes"]}
    assert started  # the sample batch matches routes
    assert all(outcome["status"] == "started" for outcome in summary["outcomes"])
    assert len(starts(polytrigger.stack.fake)) == len(summary["outcomes"])


def test_sns_through_sqs_is_unwrapped(polytrigger: Invoker) -> None:
    summary = polytrigger.s3(load_event("sqs-sns-s3-notification.json"))

    assert summary["batchItemFailures"] == []
    assert [(call.path, call.body or {}) for call in posts(polytrigger.stack.fake)] == [CUSTOMERS_START]


def test_multi_record_notification_starts_each_sync_once(polytrigger: Invoker) -> None:
    summary = polytrigger.s3(load_event("s3-notification-multi.json"))

    paths = [call.path for call in posts(polytrigger.stack.fake)]
    assert len(paths) == len(set(paths)), "the same sync is started once per event"
    assert {outcome["status"] for outcome in summary["outcomes"]} == {"started"}


@pytest.mark.parametrize(
    "key",
    [TRICKY_KEY, "exports/customers/a b+c%d.csv", "exports/customers/日本語 ファイル.csv", "exports/customers/%2B.csv"],
)
def test_awkward_keys_match_in_both_shapes(polytrigger: Invoker, key: str) -> None:
    notification = load_event("s3-notification-tricky-key.json")
    notification["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")
    eventbridge = load_event("eventbridge-object-created-tricky-key.json")
    eventbridge["detail"]["object"]["key"] = key

    first = polytrigger.s3(notification)
    second = polytrigger.s3(eventbridge)

    assert [o["route"] for o in first["outcomes"]] == ["customer-exports"]
    assert [o["sync_id"] for o in first["outcomes"]] == [CUSTOMERS_MODEL]
    # Same upload (same sequencer) through the other shape: the same identity, so no second start.
    assert [o["status"] for o in second["outcomes"]] == ["duplicate"]
    assert len(starts(polytrigger.stack.fake)) == 1


def test_keys_are_decoded_per_record(polytrigger: Invoker) -> None:
    event = load_event("s3-notification-tricky-key.json")
    record = event["Records"][0]
    plain = copy.deepcopy(record)
    plain["s3"]["object"]["key"] = "orders/2026/11/23/plain+name.csv"  # '+' means a space here
    plain["s3"]["object"]["sequencer"] = "0065A1B2C3D4E5F6FF"
    event["Records"].append(plain)

    summary = polytrigger.s3(event)

    assert {o["route"] for o in summary["outcomes"]} == {"customer-exports", "orders-landing"}
    logged = {line.get("trigger") for line in polytrigger.log_lines() if "trigger" in line}
    assert "s3://acme-landing/orders/2026/11/23/plain name.csv (created)" in logged
    assert f"s3://acme-landing/{TRICKY_KEY} (created)" in logged


def test_a_key_no_route_matches_calls_nothing(polytrigger: Invoker) -> None:
    event = load_event("eventbridge-object-created.json")
    event["detail"]["object"]["key"] = "elsewhere/file.csv"

    assert polytrigger.s3(event) == {"outcomes": []}
    assert polytrigger.stack.fake.calls == []
    assert any("no route matches" in line["message"] for line in polytrigger.log_lines())


def test_on_premises_deployment_key_is_sent_as_basic(polytrigger: Invoker) -> None:
    stack = polytrigger.stack
    organization = "0b5c5f6e-6a47-4bc4-9d0a-3b8f4e2a1c9d"
    stack.fake.set_deployment_keys([(organization, "deploy-key-123")])
    stack.put_secret(json.dumps({"deployment_key": "deploy-key-123", "organization_id": organization}))

    summary = polytrigger.s3(load_event("s3-notification-created.json"))

    assert [o["status"] for o in summary["outcomes"]] == ["started", "started"]
    expected = "Basic " + base64.b64encode(f"{organization}:deploy-key-123".encode()).decode()
    assert {call.headers["authorization"] for call in posts(stack.fake)} == {expected}


def test_api_version_2024_sends_the_boolean_resync(polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch) -> None:
    from polytrigger import bootstrap

    monkeypatch.setenv("POLYTOMIC_API_VERSION", "2024-02-08")
    bootstrap.reset()

    polytrigger.s3(load_event("s3-notification-deleted.json"))

    [call] = posts(polytrigger.stack.fake)
    assert call.headers["x-polytomic-version"] == "2024-02-08"
    assert call.body == {"resync": True, "schemas": ["public.snapshots"]}
    assert call.status == 200
