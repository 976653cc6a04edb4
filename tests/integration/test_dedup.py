"""Exactly once per (trigger, sync): replays, partial failures, SQS partial batches, 409 and 500."""

from __future__ import annotations

import json
import threading
import time

import pytest
import urllib3

from local.polytomic import DEFAULT_API_KEY
from polytrigger.core.outcomes import ActionsFailed
from polytrigger.tools.cli import explain
from tests.integration.support import (
    CUSTOMERS_MODEL,
    ORDERS_MODEL,
    ROUTES,
    WAREHOUSE_BULK,
    Invoker,
    load_event,
    starts,
)


def test_replay_is_a_duplicate_and_calls_nothing(polytrigger: Invoker) -> None:
    fake = polytrigger.stack.fake
    event = load_event("s3-notification-created.json")

    first = polytrigger.s3(event)
    calls_after_first = len(fake.calls)
    replay = polytrigger.s3(event)

    assert len(fake.calls) == calls_after_first == 2
    assert [o["status"] for o in replay["outcomes"]] == ["duplicate", "duplicate"]
    assert [o["execution_id"] for o in replay["outcomes"]] == [o["execution_id"] for o in first["outcomes"]]
    assert all(o["reason"] == "already started for this trigger" for o in replay["outcomes"])


def test_each_action_has_one_completed_record_keyed_like_the_idempotency_key(polytrigger: Invoker) -> None:
    polytrigger.s3(load_event("s3-notification-created.json"))

    keys = sorted(call.headers["idempotency-key"] for call in starts(polytrigger.stack.fake))
    records = polytrigger.records()
    assert sorted(record["id"] for record in records) == sorted(f"polytrigger#{key}" for key in keys)
    assert {record["status"] for record in records} == {"COMPLETED"}
    now = time.time()
    for record in records:  # remembered for IDEMPOTENCY_TTL_SECONDS (default one day)
        assert 86400 - 120 < int(record["expiration"]) - now <= 86400 + 5
        assert json.loads(record["data"])["status"] == "started"


def test_a_retry_after_a_partial_failure_redoes_only_the_failed_action(polytrigger: Invoker) -> None:
    fake = polytrigger.stack.fake
    event = load_event("s3-notification-multi.json")  # three syncs
    fake.inject(503, times=3, path_contains=CUSTOMERS_MODEL)  # outlasts the client's three attempts

    with pytest.raises(ActionsFailed, match=r"1 action\(s\) failed and will be retried.*503"):
        polytrigger.s3(event)

    assert {c.path for c in starts(fake) if c.status == 200} == {
        f"/api/syncs/{ORDERS_MODEL}/executions",
        f"/api/bulk/syncs/{WAREHOUSE_BULK}/executions",
    }
    failed_key = {c.headers["idempotency-key"] for c in starts(fake) if CUSTOMERS_MODEL in c.path}
    assert len(failed_key) == 1
    fake.reset_calls()

    retry = polytrigger.s3(event)  # what AWS does with a failed asynchronous invocation

    assert [(c.path, c.headers["idempotency-key"]) for c in fake.calls] == [
        (f"/api/syncs/{CUSTOMERS_MODEL}/executions", failed_key.pop())
    ]
    assert sorted(o["status"] for o in retry["outcomes"]) == ["duplicate", "duplicate", "started"]
    assert len(fake.executions(CUSTOMERS_MODEL)) == 1
    assert len(fake.executions(ORDERS_MODEL)) == 1


def test_sqs_batch_returns_only_the_failed_record(polytrigger: Invoker) -> None:
    fake = polytrigger.stack.fake
    event = load_event("sqs-s3-notifications.json")
    failing = next(r["messageId"] for r in event["Records"] if "customers" in r["body"])
    fake.inject(503, times=3, path_contains=CUSTOMERS_MODEL)

    result = polytrigger.s3(event)

    assert result["batchItemFailures"] == [{"itemIdentifier": failing}]
    assert len(fake.executions(CUSTOMERS_MODEL)) == 0
    fake.reset_calls()

    redelivered = {"Records": [r for r in event["Records"] if r["messageId"] == failing]}
    again = polytrigger.s3(redelivered)

    assert again["batchItemFailures"] == []
    assert [o["status"] for o in again["outcomes"]] == ["started"]
    assert len(fake.executions(CUSTOMERS_MODEL)) == 1


def test_a_start_that_meets_a_run_in_progress_waits_on_the_dispatch_queue_not_a_failure(
    polytrigger: Invoker,
) -> None:
    fake = polytrigger.stack.fake
    fake.add_sync(WAREHOUSE_BULK, kind="bulk", run_seconds=600)  # a long ELT run
    first = polytrigger.s3(load_event("s3-notification-created.json"))
    second = polytrigger.s3(load_event("sns-s3-notification.json"))  # another upload, same routes

    assert [o["status"] for o in first["outcomes"]] == ["started", "started"]
    assert [(o["sync_type"], o["status"]) for o in second["outcomes"]] == [
        ("model", "started"),
        ("bulk", "deferred"),
    ]
    assert "already running" in second["outcomes"][1]["reason"]
    assert len(fake.executions(WAREHOUSE_BULK)) == 1
    queue = polytrigger.stack.client("sqs").get_queue_attributes(
        QueueUrl=polytrigger.stack.dispatch_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )
    assert queue["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"  # the start, waiting its turn


def test_same_key_in_flight_is_retried_not_reported(polytrigger: Invoker) -> None:
    """Another delivery holds the same Idempotency-Key at Polytomic: 409 "in progress", then the replay."""
    fake = polytrigger.stack.fake
    event = load_event("s3-notification-created.json")
    key = next(row["idempotency_key"] for row in explain(event, ROUTES) if row["sync_id"] == ORDERS_MODEL)
    hold = fake.inject(hold=True, path_contains=ORDERS_MODEL)
    headers = {
        "Authorization": f"Bearer {DEFAULT_API_KEY}",
        "X-Polytomic-Version": "2025-09-18",
        "Idempotency-Key": key,
        "Content-Type": "application/json",
    }
    url = f"{fake.url}/api/syncs/{ORDERS_MODEL}/executions"
    other = threading.Thread(target=lambda: urllib3.request("POST", url, body=b"{}", headers=headers, timeout=10))
    other.start()
    assert hold.reached.wait(5)

    def release_after_the_first_conflict() -> None:
        for _ in range(500):
            if any(call.status == 409 for call in fake.calls):
                break
            time.sleep(0.01)
        hold.release()

    releaser = threading.Thread(target=release_after_the_first_conflict)
    releaser.start()
    summary = polytrigger.s3(event)
    releaser.join()
    other.join()

    assert [o["status"] for o in summary["outcomes"]] == ["started", "started"]
    ours = [c for c in starts(fake) if ORDERS_MODEL in c.path and c.status != 0]
    assert 409 in [c.status for c in ours]
    assert "Idempotency-Key" in next(c.response["message"] for c in ours if c.status == 409)
    [execution] = fake.executions(ORDERS_MODEL)  # the held request's run, reported to us by the replay
    assert summary["outcomes"][0]["execution_id"] == execution.id


def test_a_500_is_not_retried_blindly_and_does_not_start_twice(polytrigger: Invoker) -> None:
    fake = polytrigger.stack.fake
    fake.inject(500, path_contains=f"syncs/{ORDERS_MODEL}/executions")  # stored under the key by Polytomic

    summary = polytrigger.s3(load_event("s3-notification-created.json"))

    orders = [c for c in fake.calls if ORDERS_MODEL in c.path]
    key = orders[0].headers["idempotency-key"]
    assert [(c.method, c.path.rsplit("/", 1)[-1], c.status) for c in orders] == [
        ("POST", "executions", 500),
        ("GET", "executions", 200),
        ("POST", "executions", 200),
    ]
    assert orders[2].headers["idempotency-key"] == f"{key}-r1"
    assert summary["outcomes"][0]["status"] == "started"
    assert len(fake.executions(ORDERS_MODEL)) == 1


def test_a_500_after_the_run_was_created_reports_that_run(polytrigger: Invoker) -> None:
    fake = polytrigger.stack.fake
    event = load_event("eventbridge-object-created.json")
    event["time"] = "2020-01-01T00:00:00Z"  # the trigger is older than any execution the fake creates
    fake.inject(500, path_contains=f"syncs/{ORDERS_MODEL}/executions", side_effects=True)

    summary = polytrigger.s3(event)

    [execution] = fake.executions(ORDERS_MODEL)
    assert summary["outcomes"][0]["status"] == "started"
    assert summary["outcomes"][0]["execution_id"] == execution.id
    assert [c.method for c in fake.calls if ORDERS_MODEL in c.path] == ["POST", "GET"]  # no second start


def _in_progress_record(polytrigger: Invoker, key: str, *, expires_in_ms: int) -> None:
    """What an invocation leaves behind when Lambda cuts it off mid-call."""
    now = time.time()
    polytrigger.stack.dynamodb_client().put_item(
        TableName=polytrigger.stack.table_name,
        Item={
            "id": {"S": f"polytrigger#{key}"},
            "status": {"S": "INPROGRESS"},
            "expiration": {"N": str(int(now) + 86400)},
            "in_progress_expiration": {"N": str(int(now * 1000) + expires_in_ms)},
        },
    )


def test_a_timed_out_invocation_does_not_block_its_retry(polytrigger: Invoker) -> None:
    event = load_event("scheduler-input-freeze.json")
    [first, second] = [row["idempotency_key"] for row in explain(event, ROUTES)]
    _in_progress_record(polytrigger, first, expires_in_ms=-1000)  # its invocation's time ran out

    summary = polytrigger.schedule(event)

    assert [o["status"] for o in summary["outcomes"]] == ["deactivated", "deactivated"]
    assert sorted(c.headers["idempotency-key"] for c in polytrigger.stack.fake.calls) == sorted([first, second])


def test_an_invocation_still_running_elsewhere_makes_this_one_retry(polytrigger: Invoker) -> None:
    event = load_event("scheduler-input-freeze.json")
    [first, second] = [row["idempotency_key"] for row in explain(event, ROUTES)]
    _in_progress_record(polytrigger, first, expires_in_ms=60_000)

    with pytest.raises(ActionsFailed, match="another delivery of this trigger is doing this action right now"):
        polytrigger.schedule(event)

    assert [c.headers["idempotency-key"] for c in polytrigger.stack.fake.calls] == [second]


def test_in_progress_records_expire_with_the_invocation(polytrigger: Invoker) -> None:
    """register_lambda_context: the in-progress window is the invocation's remaining time, not an hour."""
    fake = polytrigger.stack.fake
    seen: list[dict[str, str]] = []
    hold = fake.inject(hold=True, path_contains=WAREHOUSE_BULK)  # look at the record while the call is made

    def look_then_release() -> None:
        assert hold.reached.wait(10)
        seen.extend(polytrigger.records())
        hold.release()

    event = load_event("s3-notification-created.json")
    held = next(row["idempotency_key"] for row in explain(event, ROUTES) if row["sync_id"] == WAREHOUSE_BULK)
    looker = threading.Thread(target=look_then_release)
    looker.start()
    polytrigger.s3(event, timeout_seconds=30.0)
    looker.join()

    # the other sync is called in parallel, so its record may be in progress too: pick the held one
    [record] = [r for r in seen if r["id"] == f"polytrigger#{held}"]
    assert record["status"] == "INPROGRESS"
    window_ms = int(record["in_progress_expiration"]) - int(time.time() * 1000)
    assert 0 < window_ms <= 30_000


def test_a_replayed_500_never_leaves_the_sync_unstarted(polytrigger: Invoker) -> None:
    """Each retry after a 500 uses a fresh derived key, so Polytomic's 24-hour replay cannot block it."""
    fake = polytrigger.stack.fake
    event = load_event("scheduler-input-nightly.json")  # activate, then start the orders model sync
    start_path = f"syncs/{ORDERS_MODEL}/executions"
    fake.inject(500, times=2, method="POST", path_contains=start_path)  # the first try and its -r1 retry

    with pytest.raises(ActionsFailed, match="a fresh attempt failed too"):
        polytrigger.schedule(event)
    retry = polytrigger.schedule(event)  # AWS retries the invocation
    again = polytrigger.schedule(event)  # a late redelivery

    posts_to_start = [c for c in fake.calls if c.method == "POST" and start_path in c.path]
    key = posts_to_start[0].headers["idempotency-key"]
    assert [(c.headers["idempotency-key"].removeprefix(key), c.status, c.replayed) for c in posts_to_start] == [
        ("", 500, False),
        ("-r1", 500, False),
        ("", 500, True),  # Polytomic replays the stored 500 for the original key ...
        ("-r2", 200, False),  # ... so the next fresh key starts it
    ]
    assert [o["status"] for o in retry["outcomes"]] == ["duplicate", "started"]
    assert [o["status"] for o in again["outcomes"]] == ["duplicate", "duplicate"]
    [execution] = fake.executions(ORDERS_MODEL)
    assert again["outcomes"][1]["execution_id"] == execution.id
