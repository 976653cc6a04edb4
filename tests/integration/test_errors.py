"""Bad input and broken dependencies: one clear error, no call to Polytomic, nothing lost or leaked."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from local.polytomic import DEFAULT_API_KEY
from polytrigger.core.outcomes import ActionsFailed
from polytrigger.routing import RoutesError
from polytrigger.settings import ConfigError
from tests.integration.support import CUSTOMERS_MODEL, ORDERS_MODEL, Invoker, load_event, posts


def errors(polytrigger: Invoker) -> list[dict[str, object]]:
    return [line for line in polytrigger.log_lines() if line["level"] == "ERROR"]


def test_missing_variable_fails_with_one_line_naming_it(polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDEMPOTENCY_TABLE")

    with pytest.raises(ConfigError, match=r"^IDEMPOTENCY_TABLE is required but not set$"):
        polytrigger.s3(load_event("s3-notification-created.json"))

    [line] = errors(polytrigger)
    assert line["message"] == "polytrigger cannot start: IDEMPOTENCY_TABLE is required but not set"
    assert polytrigger.stack.fake.calls == []


@pytest.mark.parametrize("function", ["dispatcher", "s3"])
def test_a_function_that_starts_syncs_without_the_dispatch_queue_fails_at_start_naming_the_variable(
    polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch, function: str
) -> None:
    """The template always deploys the dispatch queue: a start that meets a running run waits there."""
    monkeypatch.delenv("DISPATCH_QUEUE_URL", raising=False)
    record = {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": "{}",
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:polytrigger-dispatch",
        "awsRegion": "us-east-1",
    }

    invoke = {"dispatcher": lambda: polytrigger.dispatcher({"Records": [record]})}.get(
        function, lambda: polytrigger.s3(load_event("s3-notification-created.json"))
    )
    with pytest.raises(ConfigError, match=r"^DISPATCH_QUEUE_URL is required but not set$"):
        invoke()

    [line] = errors(polytrigger)
    assert line["message"] == "polytrigger cannot start: DISPATCH_QUEUE_URL is required but not set"
    assert polytrigger.stack.fake.calls == []


def test_bad_routes_file_fails_naming_route_and_field(
    polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "routes:\n"
        "  - name: orders\n"
        "    s3: {bucket: acme-landing, key: 'orders/*.csv'}\n"
        "    syncs: [{id: 248df4b7-aa70-47b8-a036-33ac447e668d, type: bulk, fetch_mode: fast}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ROUTES_FILE", str(routes))

    with pytest.raises(RoutesError) as raised:
        polytrigger.schedule(load_event("scheduler-input-nightly.json"))

    assert "route 'orders': syncs[0].fetch_mode: must be one of none, incremental, full (got 'fast')" in str(
        raised.value
    )
    [line] = errors(polytrigger)
    assert "syncs[0].fetch_mode" in str(line["message"])
    assert polytrigger.stack.fake.calls == []


def test_unsupported_event_is_logged_once_parked_and_not_retried(
    polytrigger: Invoker, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("unsupported-event.json")
    summary = polytrigger.s3(event)

    assert summary == {"outcomes": []}
    [line] = errors(polytrigger)
    assert "aws:dynamodb" in str(line["message"])
    assert str(line["message"]).endswith("; parked in the dead-letter queue")
    assert (line["status"], line["parked_in"]) == ("unsupported_event", "the dead-letter queue")
    assert polytrigger.stack.fake.calls == []
    metrics = [json.loads(out) for out in capsys.readouterr().out.splitlines() if out.startswith('{"_aws"')]
    assert any(metric.get("unsupported_event") == [1.0] and metric.get("parked") == [1.0] for metric in metrics)
    # parked as Lambda parks a failed invocation, so `polytrigger redrive` sends it back to its function
    [record] = polytrigger.stack.parked_events()
    assert record["requestPayload"] == event
    assert record["requestContext"]["functionArn"].endswith(":function:polytrigger-s3")
    assert record["responsePayload"]["errorMessage"].startswith("unsupported event: ")
    assert "aws:dynamodb" in record["responsePayload"]["errorMessage"]


def test_an_unsubstituted_scheduler_time_is_parked_not_dropped(polytrigger: Invoker) -> None:
    """A schedule whose Input kept the literal placeholder is parked with the event, not just logged."""
    event = {"schedule": "nightly", "time": "<aws.scheduler.scheduled-time>"}
    summary = polytrigger.schedule(event)

    assert summary == {"outcomes": []}
    assert len(errors(polytrigger)) == 1
    [record] = polytrigger.stack.parked_events()
    assert record["requestPayload"] == event
    assert "time" in record["responsePayload"]["errorMessage"]
    assert polytrigger.stack.fake.calls == []


def test_unsupported_schedule_event_is_logged_once_and_parked(polytrigger: Invoker) -> None:
    summary = polytrigger.schedule(load_event("s3-notification-created.json"))

    assert summary == {"outcomes": []}
    assert len(errors(polytrigger)) == 1
    assert len(polytrigger.stack.parked_events()) == 1
    assert polytrigger.stack.fake.calls == []


def test_unsupported_sqs_record_is_parked_not_returned_to_the_queue(polytrigger: Invoker) -> None:
    event = load_event("sqs-s3-notifications.json")
    event["Records"][0]["body"] = "not json {"

    result = polytrigger.s3(event)

    assert result["batchItemFailures"] == []
    assert len(result["outcomes"]) >= 1  # the other records still ran
    assert len(errors(polytrigger)) == 1
    [record] = polytrigger.stack.parked_events()
    assert record["requestPayload"] == {"unreadable_sqs_body": "not json {"}


def test_an_event_that_cannot_be_parked_fails_so_aws_retries_it(
    polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acknowledged only when parked: without a dead-letter queue the invocation fails (and AWS retries it)."""
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "")
    from polytrigger.dispatch.ports import QueueUnavailable

    with pytest.raises(QueueUnavailable, match="DEAD_LETTER_QUEUE_URL is not set"):
        polytrigger.s3(load_event("unsupported-event.json"))


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_an_action_polytomic_refuses_parks_the_event_with_the_reason(polytrigger: Invoker, status: int) -> None:
    """A refusal (400/403/404/422) is `failed` and its event parked with the reason: the invocation succeeds,
    so nothing else would keep it."""
    fake = polytrigger.stack.fake
    fake.inject(
        status,
        path_contains=CUSTOMERS_MODEL,
        method="POST",
        response_body={"status": status, "message": "the sync is misconfigured"},
    )
    event = load_event("eventbridge-object-created.json")
    event["detail"]["object"]["key"] = "exports/customers/customers 2026-11-23.csv"

    summary = polytrigger.s3(event)

    [outcome] = summary["outcomes"]
    assert (outcome["status"], outcome["parked"]) == ("failed", True)
    assert outcome["reason"] == (
        f"Polytomic answered {status}: the sync is misconfigured; parked in the dead-letter queue"
    )
    [record] = polytrigger.stack.parked_events()
    assert record["requestPayload"] == event
    assert record["responsePayload"]["errorMessage"] == (
        f"refused: start {CUSTOMERS_MODEL} (customer-exports): Polytomic answered {status}: the sync is misconfigured"
    )
    parked_line = [line for line in polytrigger.log_lines() if line.get("status") == "parked"]
    assert len(parked_line) == 1
    # once the cause is fixed, the re-driven event starts the sync: the refusal was not remembered
    again = polytrigger.s3(record["requestPayload"])
    assert [o["status"] for o in again["outcomes"]] == ["started"]


def test_rotated_key_is_refetched_once_and_the_run_continues(polytrigger: Invoker) -> None:
    stack, fake = polytrigger.stack, polytrigger.stack.fake
    polytrigger.schedule(load_event("scheduler-input-freeze.json"))  # warms the container's secret cache
    fake.reset_calls()
    fake.set_api_keys(["rotated-key-0002"])
    stack.put_secret("rotated-key-0002")

    summary = polytrigger.schedule(load_event("scheduler-input-thaw.json"))

    assert [o["status"] for o in summary["outcomes"]] == ["activated", "activated"]
    calls = [(c.path, c.status, c.headers["authorization"]) for c in posts(fake)]
    refused = [call for call in calls if call[1] == 401]
    # The two syncs are called in parallel: one or both calls may be in flight with the old key.
    assert 1 <= len(refused) <= 2
    assert all(authorization == f"Bearer {DEFAULT_API_KEY}" for _, _, authorization in refused)
    accepted = [(path, authorization) for path, status, authorization in calls if status == 200]
    assert sorted(accepted) == sorted({(path, "Bearer rotated-key-0002") for path, _, _ in calls})


def test_rotated_key_one_by_one_costs_exactly_one_refused_call(
    polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polytrigger import bootstrap

    monkeypatch.setenv("POLYTOMIC_CONCURRENCY", "1")
    bootstrap.reset()
    stack, fake = polytrigger.stack, polytrigger.stack.fake
    polytrigger.schedule(load_event("scheduler-input-freeze.json"))
    fake.reset_calls()
    fake.set_api_keys(["rotated-key-0002"])
    stack.put_secret("rotated-key-0002")

    polytrigger.schedule(load_event("scheduler-input-thaw.json"))

    assert [(c.status, c.headers["authorization"]) for c in posts(fake)] == [
        (401, f"Bearer {DEFAULT_API_KEY}"),
        (200, "Bearer rotated-key-0002"),
        (200, "Bearer rotated-key-0002"),
    ]


def test_a_key_that_stays_wrong_fails_fast_and_is_parked_not_dropped(polytrigger: Invoker) -> None:
    fake = polytrigger.stack.fake
    fake.set_api_keys(["some-other-key"])

    with pytest.raises(ActionsFailed) as raised:
        polytrigger.schedule(load_event("scheduler-input-thaw.json"))

    reasons = [o.reason or "" for o in raised.value.report.outcomes]
    assert len(reasons) == 2
    for reason in reasons:  # each action: refused after the re-read, or not sent with the refused key
        assert (
            reason.startswith("Polytomic answered 401: unauthorized")
            or "not calling until the secret changes" in reason
        )
    assert any("(still after re-reading the secret)" in reason for reason in reasons)
    assert 2 <= len(posts(fake)) <= 4  # at most one try and one after re-reading the secret per action
    assert len(errors(polytrigger)) == 2
    fake.reset_calls()

    with pytest.raises(ActionsFailed):  # AWS's retry, in the same warm container
        polytrigger.schedule(load_event("scheduler-input-freeze.json"))

    assert posts(fake) == []  # Polytomic is not hammered with a key it refused
    assert polytrigger.records() == []  # nothing is recorded as done: a re-drive will do it


def test_unknown_sync_is_a_failure_naming_route_and_sync(polytrigger: Invoker) -> None:
    polytrigger.stack.fake.reset()  # Polytomic knows none of the routes' syncs

    summary = polytrigger.schedule(load_event("scheduler-input-freeze.json"))

    assert [o["status"] for o in summary["outcomes"]] == ["failed", "failed"]
    first = errors(polytrigger)[0]
    assert first["route"] == "weekend-freeze"
    assert first["sync_id"] == ORDERS_MODEL
    assert "404" in str(first["reason"])


def test_missing_table_makes_no_call_and_fails_the_invocation(
    polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polytrigger import bootstrap

    monkeypatch.setenv("IDEMPOTENCY_TABLE", "no-such-table")
    bootstrap.reset()

    with pytest.raises(ActionsFailed, match="dedup table cannot be used"):
        polytrigger.s3(load_event("s3-notification-created.json"))

    assert polytrigger.stack.fake.calls == []


def test_unreadable_secret_fails_the_invocation_and_records_nothing(
    polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polytrigger import bootstrap

    monkeypatch.setenv("POLYTOMIC_SECRET_ID", "no/such/secret")
    bootstrap.reset()

    with pytest.raises(ActionsFailed, match=r"cannot read the Polytomic secret 'no/such/secret'.*ResourceNotFound"):
        polytrigger.s3(load_event("s3-notification-created.json"))

    assert polytrigger.stack.fake.calls == []
    assert polytrigger.records() == []


def test_secrets_never_reach_logs_outcomes_or_errors(polytrigger: Invoker, capsys: pytest.CaptureFixture[str]) -> None:
    from polytrigger import bootstrap
    from polytrigger.observability import logger

    stack, fake = polytrigger.stack, polytrigger.stack.fake
    organization = "0b5c5f6e-6a47-4bc4-9d0a-3b8f4e2a1c9d"
    deployment_key = "deployment-secret-9876"
    secrets = [DEFAULT_API_KEY, deployment_key, "rotated-secret-4321"]
    seen: list[str] = []
    logger.setLevel("DEBUG")
    try:
        seen.append(json.dumps(polytrigger.s3(load_event("s3-notification-created.json"))))
        fake.set_api_keys(["rotated-secret-4321"])  # 401, refetch, still wrong -> failed, retried
        with pytest.raises(ActionsFailed) as refused:
            polytrigger.schedule(load_event("scheduler-input-thaw.json"))
        seen.append(str(refused.value))
        bootstrap.reset()  # a new container: the last one still refuses the rotated key for a while
        fake.set_deployment_keys([(organization, deployment_key)])
        stack.put_secret(json.dumps({"deployment_key": deployment_key, "organization_id": organization}))
        fake.inject(503, times=3, path_contains=ORDERS_MODEL)
        with pytest.raises(ActionsFailed) as raised:
            polytrigger.schedule(load_event("scheduler-input-freeze.json"))
        seen.append(str(raised.value))
    finally:
        logger.setLevel("INFO")
    seen.append(polytrigger.log_text())
    seen.append(capsys.readouterr().out)
    everything = "\n".join(seen)
    assert "DEBUG" in everything or "INFO" in everything
    for secret in secrets:
        assert secret not in everything
        assert base64.b64encode(secret.encode()).decode() not in everything
    assert base64.b64encode(f"{organization}:{deployment_key}".encode()).decode() not in everything


def test_unreachable_table_makes_no_call_and_fails_clearly(
    polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from polytrigger import bootstrap

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{closed}")
    bootstrap.reset()

    with pytest.raises(ActionsFailed, match="the dedup table cannot be used, so nothing was called"):
        polytrigger.schedule(load_event("scheduler-input-freeze.json"))

    assert polytrigger.stack.fake.calls == []


def test_an_oversized_unsupported_event_is_still_parked_in_what_a_message_holds(polytrigger: Invoker) -> None:
    event = {"unknown": "x" * 300_000}

    polytrigger.s3(event)

    [record] = polytrigger.stack.parked_events()
    assert set(record["requestPayload"]) == {"oversized_event"}
    assert record["requestPayload"]["oversized_event"].startswith('{"unknown": "xxx')
