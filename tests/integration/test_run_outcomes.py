"""Run outcomes against the local stack: a run started by a trigger, its ending by webhook, poller or lookup.

The ledger is the real one (DynamoDB Local), the webhook secret is in moto's Secrets Manager, and
the deliveries are signed as Polytomic signs them; each test checks what was recorded, what was
logged and which calls reached Polytomic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.support import ORDERS_MODEL, WAREHOUSE_BULK, Invoker, load_event, starts

WEBHOOK_SECRET = "whsec-local-0123456789"


@pytest.fixture
def outcomes(polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoker]:
    """`polytrigger` with the webhook secret stored, the dispatch queues (as deployed: chained routes
    need them) and a fresh outcome container."""
    from local.stack.dispatch_pump import DispatchQueue
    from polytrigger import bootstrap

    queues = DispatchQueue.create(polytrigger.stack.client("sqs"))
    for name, value in queues.env().items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()

    secrets = polytrigger.stack.secrets_client()
    name = f"polytomic-webhook-{uuid.uuid4().hex[:8]}"
    arn = secrets.create_secret(Name=name, SecretString=WEBHOOK_SECRET)["ARN"]
    polytrigger.guard.secrets.add(WEBHOOK_SECRET)
    monkeypatch.setenv("POLYTOMIC_WEBHOOK_SECRET_ID", arn)
    monkeypatch.setenv("RUN_RECONCILE_AFTER_SECONDS", "60")
    bootstrap.reset()
    yield polytrigger
    bootstrap.reset()
    secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    queues.delete()


def started_runs(polytrigger: Invoker) -> dict[str, str]:
    """Upload the sample file: its two starts (model, bulk); execution id by sync id."""
    polytrigger.s3(load_event("s3-notification-created.json"))
    return {call.path.split("/")[-2]: call.response["data"]["id"] for call in starts(polytrigger.stack.fake)}


def delivery(
    body: dict[str, Any], *, secret: str = WEBHOOK_SECRET, encoding: str = "hex", header: str = "polytomic-signature"
) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).digest()
    signature = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    return {
        "version": "2.0",
        "rawPath": "/",
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "headers": {"content-type": "application/json", header: signature},
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }


def run_event(status: str, execution: str, sync: str = ORDERS_MODEL, *, bulk: bool = False) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": f"{'bulk_sync' if bulk else 'sync'}.{status}",
        "organization_id": str(uuid.uuid4()),
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "event": {"execution_id": execution, "sync_id": sync, "status": status},
    }


def ledger(polytrigger: Invoker) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in polytrigger.runs()}


def open_runs(polytrigger: Invoker) -> set[str]:
    """The runs the poller will look up: in the ledger's `due` index as open."""
    return {
        item["id"].removeprefix("run#") for item in polytrigger.runs() if item.get("due_in", "").startswith("open#")
    }


def untold(polytrigger: Invoker) -> set[str]:
    """The endings settled and not yet told: in the ledger's `due` index as `tell#`."""
    return {
        item["id"].removeprefix("run#") for item in polytrigger.runs() if item.get("due_in", "").startswith("tell#")
    }


def test_a_started_run_is_recorded_with_its_route_and_trigger_and_watched(outcomes: Invoker) -> None:
    executions = started_runs(outcomes)

    items = ledger(outcomes)
    model = items[f"run#{executions[ORDERS_MODEL]}"]
    assert model["sync_id"] == ORDERS_MODEL
    assert model["sync_type"] == "model"
    assert set(model["routes"]) == {"orders-landing"}
    assert model["first_trigger"].startswith("s3://acme-landing/orders/")
    assert model["sync_key"] == f"model#{ORDERS_MODEL}"  # found by sync and what it covers (`by_sync`)
    assert model["covers_from"] >= model["first_trigger_at"]  # created after the file landed: it has it
    assert "triggers" not in model  # no list of files in a run: coverage says which it has
    assert "status" not in model
    assert open_runs(outcomes) == set(executions.values())


def test_an_outcome_by_webhook_only_settles_the_run_logs_it_and_stops_watching(outcomes: Invoker) -> None:
    executions = started_runs(outcomes)
    calls_before = len(outcomes.stack.fake.calls)

    answer = outcomes.webhook(
        delivery(run_event("completed_with_error", executions[WAREHOUSE_BULK], WAREHOUSE_BULK, bulk=True))
    )

    assert answer["statusCode"] == 200
    run = ledger(outcomes)[f"run#{executions[WAREHOUSE_BULK]}"]
    assert run["status"] == "completed_with_errors"  # bulk's singular spelling, read into one vocabulary
    assert open_runs(outcomes) == {executions[ORDERS_MODEL]}
    (line,) = [line for line in outcomes.log_lines() if line.get("status") == "run_completed_with_errors"]
    assert line["level"] == "ERROR"
    assert line["routes"] == ["orders-landing"]
    assert line["outcome_from"] == "webhook"
    assert line["freshness_seconds"] is not None
    assert len(outcomes.stack.fake.calls) == calls_before  # the webhook never calls Polytomic


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_both_signature_encodings_are_accepted_and_the_header_is_found_whatever_its_case(
    outcomes: Invoker, encoding: str
) -> None:
    executions = started_runs(outcomes)
    body = run_event("completed", executions[ORDERS_MODEL])
    assert outcomes.webhook(delivery(body, encoding=encoding, header="Polytomic-Signature"))["statusCode"] == 200
    assert ledger(outcomes)[f"run#{executions[ORDERS_MODEL]}"]["status"] == "completed"


@pytest.mark.parametrize("forgery", ["wrong secret", "no signature", "body changed"])
def test_a_bad_signature_is_401_and_nothing_is_recorded(outcomes: Invoker, forgery: str) -> None:
    executions = started_runs(outcomes)
    request = delivery(
        run_event("failed", executions[ORDERS_MODEL]),
        secret="not-the-secret" if forgery == "wrong secret" else WEBHOOK_SECRET,
    )
    if forgery == "no signature":
        del request["headers"]["polytomic-signature"]
    if forgery == "body changed":
        raw = json.loads(base64.b64decode(request["body"]))
        raw["event"]["status"] = "completed"
        request["body"] = base64.b64encode(json.dumps(raw).encode()).decode()

    answer = outcomes.webhook(request)

    assert answer["statusCode"] == 401
    assert "status" not in ledger(outcomes)[f"run#{executions[ORDERS_MODEL]}"]
    assert executions[ORDERS_MODEL] in open_runs(outcomes)
    assert not [line for line in outcomes.log_lines() if str(line.get("status", "")).startswith("run_")]


def test_unordered_deliveries_completed_before_running_settle_once(outcomes: Invoker) -> None:
    executions = started_runs(outcomes)
    done = run_event("completed", executions[ORDERS_MODEL])

    for body in (done, run_event("running", executions[ORDERS_MODEL]), done):
        assert outcomes.webhook(delivery(body))["statusCode"] == 200

    assert ledger(outcomes)[f"run#{executions[ORDERS_MODEL]}"]["status"] == "completed"
    assert len([line for line in outcomes.log_lines() if line.get("status") == "run_completed"]) == 1


def test_an_event_of_another_type_is_200_and_ignored_and_a_broken_run_event_is_parked(outcomes: Invoker) -> None:
    other = outcomes.webhook(delivery({"id": "1", "type": "user.created", "event": {}}))
    broken = run_event("completed", "x")
    del broken["event"]["sync_id"]

    parked = outcomes.webhook(delivery(broken))

    assert other["statusCode"] == 200
    assert parked["statusCode"] == 200
    (message,) = outcomes.stack.parked_events()
    assert "webhook delivery polytrigger cannot read" in json.dumps(message)


def endings(polytrigger: Invoker) -> list[dict[str, Any]]:
    return [line for line in polytrigger.log_lines() if str(line.get("status", "")).startswith("run_")]


def test_an_outcome_by_poller_only_settles_each_run_once(outcomes: Invoker) -> None:
    executions = started_runs(outcomes)  # the fake's runs end at once, with their events

    summary = outcomes.poller()

    assert summary["ended"] == 2
    assert summary["polytomic_calls"] == 1  # one page of events; nothing open to look up
    assert {ledger(outcomes)[f"run#{e}"]["status"] for e in executions.values()} == {"completed"}
    assert {line["outcome_from"] for line in endings(outcomes)} == {"poller"}
    assert outcomes.poller()["ended"] == 0  # the overlap is read again: settled already


def test_every_poll_says_how_far_behind_now_its_cursor_is(
    outcomes: Invoker, capsys: pytest.CaptureFixture[str]
) -> None:
    """The metric the cursor's age alarm watches, from every poll (0: it read up to now)."""
    started_runs(outcomes)
    capsys.readouterr()

    summaries = [outcomes.poller(), outcomes.poller()]

    metrics = [json.loads(out) for out in capsys.readouterr().out.splitlines() if out.startswith('{"_aws"')]
    ages = [metric["cursor_age_seconds"] for metric in metrics if "cursor_age_seconds" in metric]
    assert ages == [[0.0], [0.0]]
    for metric in metrics:
        if "cursor_age_seconds" in metric:
            (declared,) = metric["_aws"]["CloudWatchMetrics"]
            assert (declared["Namespace"], declared["Dimensions"]) == ("Polytrigger", [["service"]])
            assert {"Name": "cursor_age_seconds", "Unit": "Seconds"} in declared["Metrics"]
    assert [summary["cursor_age_seconds"] for summary in summaries] == [0, 0]


def test_an_outcome_by_both_ways_has_one_effect(outcomes: Invoker) -> None:
    from local.stack.function_url import FunctionUrl
    from polytrigger.handlers import webhook

    fake = outcomes.stack.fake
    fake.set_outcome(ORDERS_MODEL, "failed")
    with FunctionUrl(webhook.handler) as url:
        fake.subscribe_webhook(url.url, WEBHOOK_SECRET)
        executions = started_runs(outcomes)
        report = fake.deliver_webhooks()
        polled = outcomes.poller()

    assert len(report.delivered) >= 4  # running and an ending, for each run
    assert set(url.answers) == {200}
    assert polled["ended"] == 0  # the webhook had settled both
    assert sorted((line["status"], line["outcome_from"]) for line in endings(outcomes)) == [
        ("run_completed", "webhook"),
        ("run_failed", "webhook"),
    ]
    assert ledger(outcomes)[f"run#{executions[ORDERS_MODEL]}"]["status"] == "failed"


def test_an_outcome_by_neither_way_is_found_by_reconciliation(outcomes: Invoker) -> None:
    """The webhook drops every delivery and the events are gone (kept 48 h): the execution is asked."""
    from local.stack.function_url import FunctionUrl
    from polytrigger.handlers import webhook

    fake = outcomes.stack.fake
    fake.add_sync(ORDERS_MODEL, kind="model", run_seconds=3600, outcome="canceled")
    fake.add_sync(WAREHOUSE_BULK, kind="bulk", run_seconds=3600, outcome="completed_with_errors")
    with FunctionUrl(webhook.handler) as url:
        fake.subscribe_webhook(url.url, WEBHOOK_SECRET)
        fake.configure_webhooks(drop=1.0, seed=1)
        executions = started_runs(outcomes)
        fake.advance_clock(49 * 3600)  # every run has ended, and its events have aged out
        fake.deliver_webhooks()
    assert url.answers == []
    assert fake.events() == []
    _age_open_runs(outcomes, timedelta(minutes=5))

    summary = outcomes.poller()

    assert summary["looked_up"] == 2
    lookups = [c.path for c in fake.calls if c.method == "GET" and "/executions/" in c.path]
    assert sorted(lookups) == sorted(
        [
            f"/api/syncs/{ORDERS_MODEL}/executions/{executions[ORDERS_MODEL]}",
            f"/api/bulk/syncs/{WAREHOUSE_BULK}/executions/{executions[WAREHOUSE_BULK]}",
        ]
    )
    assert ledger(outcomes)[f"run#{executions[ORDERS_MODEL]}"]["status"] == "canceled"
    assert ledger(outcomes)[f"run#{executions[WAREHOUSE_BULK]}"]["status"] == "completed_with_errors"
    assert {line["outcome_from"] for line in endings(outcomes)} == {"reconciliation"}
    assert open_runs(outcomes) == set()


def _age_open_runs(polytrigger: Invoker, age: timedelta) -> None:
    """As if the runs had started `age` ago (the reconciliation delay is at least a minute)."""
    _set_due(polytrigger, "open#", datetime.now(UTC) - age)


def _set_due(polytrigger: Invoker, kind: str, moment: datetime) -> None:
    """Move every item of one kind in the `due` index to `moment`, as if its time had come."""
    client = polytrigger.stack.dynamodb_client()
    for item in client.scan(TableName=polytrigger.stack.table_name)["Items"]:
        if item.get("due_in", {}).get("S", "").startswith(kind):
            client.update_item(
                TableName=polytrigger.stack.table_name,
                Key={"id": item["id"]},
                UpdateExpression="SET due_at = :then",
                ExpressionAttributeValues={":then": {"S": moment.isoformat(timespec="microseconds")}},
            )


def test_every_polytomic_event_received_is_handed_on_to_the_bus_once(
    outcomes: Invoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Webhook and poller both receive the completed events, the poller reads its overlap again: one copy each."""
    from local.stack.function_url import FunctionUrl
    from polytrigger import bootstrap
    from polytrigger.handlers import webhook

    stack = outcomes.stack
    events, sqs = stack.client("events"), stack.client("sqs")
    bus = f"polytomic-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    queue = sqs.create_queue(QueueName=bus)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=bus, EventBusName=bus, EventPattern=json.dumps({"source": ["polytrigger.polytomic"]}))
    events.put_targets(Rule=bus, EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    monkeypatch.setenv("RUN_EVENT_BUS_NAME", bus)
    bootstrap.reset()
    fake = stack.fake
    with FunctionUrl(webhook.handler) as url:
        fake.subscribe_webhook(url.url, WEBHOOK_SECRET)
        fake.configure_webhooks(duplicate=1.0, seed=3)  # every delivery twice
        started_runs(outcomes)
        fake.deliver_webhooks()
        first = outcomes.poller()
        second = outcomes.poller()

    received: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        received += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    ids = [item["detail"]["id"] for item in received]
    assert sorted(ids) == sorted(event["id"] for event in fake.events())  # each event, once
    assert {item["source"] for item in received} == {"polytrigger.polytomic"}
    assert {item["detail-type"] for item in received} == {
        "sync.running",
        "sync.completed",
        "bulk_sync.running",
        "bulk_sync.completed",
    }
    assert (first["handed_on"], second["handed_on"]) == (0, 0)  # the webhook had handed them all on


CHAIN_ROUTES = f"""\
routes:
  - name: orders-landing
    s3: {{bucket: acme-landing, key: "orders/**/*.csv"}}
    syncs: [{{id: {ORDERS_MODEL}}}]
  - name: enrich-after-orders
    polytomic: {{sync: {ORDERS_MODEL}, events: [completed]}}
    syncs: [{{id: {WAREHOUSE_BULK}, type: bulk}}]
"""


def test_a_chained_start_happens_once_however_often_the_ending_arrives(
    outcomes: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from local.stack.dispatch_pump import DispatchQueue, pump
    from local.stack.function_url import FunctionUrl
    from polytrigger import bootstrap
    from polytrigger.handlers import webhook

    queues = DispatchQueue.create(outcomes.stack.client("sqs"))
    routes = tmp_path / "routes.yaml"
    routes.write_text(CHAIN_ROUTES, encoding="utf-8")
    for name, value in {**queues.env(), "ROUTES_FILE": str(routes)}.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    bootstrap.reset()
    fake = outcomes.stack.fake
    try:
        with FunctionUrl(webhook.handler) as url:
            fake.subscribe_webhook(url.url, WEBHOOK_SECRET)
            fake.configure_webhooks(duplicate=1.0, reorder=True, seed=5)  # every delivery twice
            outcomes.s3(load_event("s3-notification-created.json"))
            fake.deliver_webhooks()
            polled = outcomes.poller()  # reads the same ending again
            answers = pump(queues.sqs, queues.url, lambda event, _: outcomes.dispatcher(event), timeout=30)
        bulk_starts = [c for c in starts(fake) if WAREHOUSE_BULK in c.path]
        (upstream,) = [c for c in starts(fake) if ORDERS_MODEL in c.path]
        upstream_run = upstream.response["data"]["id"]

        assert len(bulk_starts) == 1  # chained once: two deliveries and a poll of the same ending
        assert polled["chained"] == 0  # the webhook had set it off already
        outcomes_seen = [o for answer in answers for o in answer.get("outcomes", [])]
        assert [(o["route"], o["status"]) for o in outcomes_seen] == [("enrich-after-orders", "started")]
        (line,) = [
            ln
            for ln in outcomes.log_lines()
            if ln.get("route") == "enrich-after-orders" and ln.get("status") == "started"
        ]
        assert line["trigger"] == f"sync {ORDERS_MODEL} run {upstream_run} completed"
    finally:
        bootstrap.reset()
        queues.delete()


FRESH_SYNC_MISSING = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"  # no such sync in the fake: Polytomic answers 404

FRESHNESS_ROUTES = f"""\
routes:
  - name: fresh-orders
    s3: {{bucket: acme-landing, key: "orders/**/*.csv"}}
    freshness: 30m
    syncs:
      - {{id: {ORDERS_MODEL}}}
      - {{id: {WAREHOUSE_BULK}, type: bulk}}
      - {{id: {FRESH_SYNC_MISSING}}}
"""


def test_a_freshness_breach_is_reported_once_with_what_happened_and_status_shows_it(
    outcomes: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from polytrigger import bootstrap
    from polytrigger.tools.cli import main

    routes = tmp_path / "routes.yaml"
    routes.write_text(FRESHNESS_ROUTES, encoding="utf-8")
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    bootstrap.reset()
    bootstrap.reset()
    fake = outcomes.stack.fake
    fake.add_sync(WAREHOUSE_BULK, kind="bulk", run_seconds=3600)  # still running when the promise falls due

    outcomes.s3(load_event("s3-notification-created.json"))  # the missing sync is refused: parked, no run
    _due_now(outcomes)

    first = outcomes.poller()
    second = outcomes.poller()

    breaches = [line for line in outcomes.log_lines() if line.get("status") == "freshness_breach"]
    assert sorted(line["what"] for line in breaches) == ["never started", "still running"]
    assert {line["sync_id"] for line in breaches} == {WAREHOUSE_BULK, FRESH_SYNC_MISSING}
    assert all(line["trigger"].startswith("s3://acme-landing/orders/") for line in breaches)
    assert all(line["route"] == "fresh-orders" for line in breaches)
    assert (first["freshness_breaches"], first["promises_kept"]) == (2, 1)
    assert second["freshness_breaches"] == 0  # reported once

    key = load_event("s3-notification-created.json")["Records"][0]["s3"]["object"]["key"]
    capsys.readouterr()
    code = main(["status", f"s3://acme-landing/{key}", "--table", outcomes.stack.table_name, "--json"])
    answer = json.loads(capsys.readouterr().out)
    verdicts = {sync["sync_id"]: (sync["state"], sync["freshness"]["verdict"]) for sync in answer["syncs"]}
    assert code == 1
    assert verdicts == {
        ORDERS_MODEL: ("started", "kept"),
        WAREHOUSE_BULK: ("started", "still running"),
        FRESH_SYNC_MISSING: ("parked", "never started"),
    }


def _due_now(polytrigger: Invoker) -> None:
    """As if the promises' time had come (the shortest promise is a minute)."""
    _set_due(polytrigger, "promise#", datetime.now(UTC))


def test_status_answers_for_a_file_per_route_and_sync_with_its_run_and_how_it_ended(
    outcomes: Invoker, capsys: pytest.CaptureFixture[str]
) -> None:
    from polytrigger.tools.cli import main

    executions = started_runs(outcomes)
    outcomes.webhook(delivery(run_event("completed", executions[ORDERS_MODEL])))
    key = load_event("s3-notification-created.json")["Records"][0]["s3"]["object"]["key"]
    table = outcomes.stack.table_name
    capsys.readouterr()

    waiting = main(["status", f"s3://acme-landing/{key}", "--table", table])
    text = capsys.readouterr().out
    outcomes.webhook(delivery(run_event("completed", executions[WAREHOUSE_BULK])))
    capsys.readouterr()  # the webhook's metrics
    synced = main(["status", f"s3://acme-landing/{key}", "--table", table, "--json"])
    answer = json.loads(capsys.readouterr().out)
    as_runs = main(["status", "--sync", WAREHOUSE_BULK, "--since", "30d", "--table", table, "--json"])
    rows = json.loads(capsys.readouterr().out)
    never = main(["status", "s3://acme-landing/orders/never.csv", "--table", table])
    never_text = capsys.readouterr().out

    assert waiting == 1  # the bulk run has not ended yet
    assert "  route orders-landing" in text
    assert f"model sync {ORDERS_MODEL}: completed — run {executions[ORDERS_MODEL]} (started by this file" in text
    assert f"bulk sync {WAREHOUSE_BULK}: running — run {executions[WAREHOUSE_BULK]}" in text
    assert synced == 0
    assert [(s["sync_id"], s["state"], s["run_status"]) for s in answer["syncs"]] == [
        (ORDERS_MODEL, "started", "completed"),
        (WAREHOUSE_BULK, "started", "completed"),
    ]
    assert (answer["seen"], answer["routes"], answer["synced"]) == (True, ["orders-landing"], True)
    assert [(r["execution_id"], r["status"]) for r in rows] == [(executions[WAREHOUSE_BULK], "completed")]
    assert as_runs == 0
    assert never == 1
    assert "never seen: no event for this object reached polytrigger" in never_text
    assert main(["status", "--table", table]) == 2


CYCLE_ROUTES = f"""\
routes:
  - name: bulk-after-orders
    polytomic: {{sync: {ORDERS_MODEL}}}
    syncs: [{{id: {WAREHOUSE_BULK}, type: bulk}}]
  - name: orders-after-bulk
    polytomic: {{sync: {WAREHOUSE_BULK}}}
    syncs: [{{id: {ORDERS_MODEL}}}]
"""


def test_a_chain_cycle_is_refused_by_validate_and_never_runs(
    outcomes: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from polytrigger import bootstrap
    from polytrigger.routing import RoutesError
    from polytrigger.tools.cli import main

    routes = tmp_path / "routes.yaml"
    routes.write_text(CYCLE_ROUTES, encoding="utf-8")
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    bootstrap.reset()
    calls_before = len(outcomes.stack.fake.calls)

    assert main(["validate", str(routes)]) == 1
    (problem,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("  - ")]
    assert problem == (
        "  - routes 'bulk-after-orders' -> 'orders-after-bulk' -> 'bulk-after-orders' chain syncs in a cycle"
        f" ({ORDERS_MODEL} -> {WAREHOUSE_BULK} -> {ORDERS_MODEL}): each run would start the next for ever; break the chain"
    )
    with pytest.raises(RoutesError, match="chain syncs in a cycle"):
        outcomes.poller()
    assert len(outcomes.stack.fake.calls) == calls_before  # nothing polled, nothing started
    (line,) = [ln for ln in outcomes.log_lines() if ln.get("status") == "configuration_error"]
    assert line["message"].startswith("polytrigger cannot start: routes file")


# -- an ending is told once, whoever dies on the way ----------------------------------------------


def _ending_lines(polytrigger: Invoker, execution: str) -> list[dict[str, Any]]:
    return [
        line
        for line in polytrigger.log_lines()
        if str(line.get("status", "")).startswith("run_") and line.get("execution_id") == execution
    ]


def test_an_ending_whose_settler_died_before_telling_it_is_told_once_by_the_poller(
    outcomes: Invoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polytrigger.runs import telling

    executions = started_runs(outcomes)
    ended = delivery(run_event("failed", executions[ORDERS_MODEL]))

    def died(*args: Any, **kwargs: Any) -> None:
        raise TimeoutError("the invocation ran out of time after the settle")

    with monkeypatch.context() as crash:
        crash.setattr(telling, "record_run_ended", died)
        with pytest.raises(TimeoutError):
            outcomes.webhook(ended)
    assert untold(outcomes) == {executions[ORDERS_MODEL]}  # settled, and the outbox still holds it
    again = outcomes.webhook(ended)  # Polytomic delivers again: settled already
    assert json.loads(again["body"])["message"] == "nothing to settle"
    assert outcomes.poller()["told_late"] == 0  # its settler may still be telling it: not yet

    _set_due(outcomes, "tell#", datetime.now(UTC) - timedelta(minutes=5))
    late = outcomes.poller()
    after = outcomes.poller()

    (line,) = _ending_lines(outcomes, executions[ORDERS_MODEL])
    assert (line["status"], line["outcome_from"], line["told_late"]) == ("run_failed", "webhook", True)
    assert (late["told_late"], after["told_late"]) == (1, 0)
    assert untold(outcomes) == set()


def test_a_poll_that_fails_on_freshness_has_told_its_reconciled_endings_and_loses_no_breach(
    outcomes: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from polytrigger import bootstrap

    routes = tmp_path / "routes.yaml"
    routes.write_text(FRESHNESS_ROUTES, encoding="utf-8")
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    bootstrap.reset()
    fake = outcomes.stack.fake
    fake.add_sync(WAREHOUSE_BULK, kind="bulk", run_seconds=3600)
    outcomes.s3(load_event("s3-notification-created.json"))
    (model_run,) = [e.id for e in fake.executions(ORDERS_MODEL)]
    fake.set_execution_status(model_run, "failed")
    fake.advance_clock(49 * 3600)  # its event has aged out: reconciliation finds the ending
    _age_open_runs(outcomes, timedelta(minutes=5))
    _due_now(outcomes)
    # one sync's listing of executions fails, retries too: only the freshness check lists that sync's runs
    fake.inject(503, times=3, path_contains=f"/syncs/{FRESH_SYNC_MISSING}/executions", method="GET")

    with pytest.raises(Exception, match="503"):
        outcomes.poller()
    (line,) = _ending_lines(outcomes, model_run)  # reconciliation's endings are told before freshness fails
    assert (line["status"], line["outcome_from"]) == ("run_failed", "reconciliation")
    fake.clear_faults()
    second = outcomes.poller()
    third = outcomes.poller()

    assert len(_ending_lines(outcomes, model_run)) == 1  # and not again
    breaches = [line for line in outcomes.log_lines() if line.get("status") == "freshness_breach"]
    assert sorted(line["what"] for line in breaches) == [  # each once, whichever poll told it
        "never started",
        "the run completed after the promise was due",  # the bulk run, two days on
        "the run ended failed",
    ]
    assert second["freshness_breaches"] >= 1  # at least the failed sync's promise waited for this poll
    assert third["freshness_breaches"] == 0


# -- promises: one item each, only the due ones read, every page of executions ----------------------


def test_a_late_check_reads_past_the_first_page_of_executions_so_a_covering_run_cannot_scroll_off(
    outcomes: Invoker,
) -> None:
    from polytrigger.runs.freshness import Promise
    from polytrigger.runs.promises import DynamoPromises

    fake = outcomes.stack.fake
    landed = fake.now() - timedelta(hours=3)
    fake.add_run(ORDERS_MODEL, landed + timedelta(minutes=2), run_seconds=60, outcome="completed")  # keeps it
    for second in range(60):  # newer runs, ended after the promise was due: they fill the first page
        fake.add_run(ORDERS_MODEL, landed + timedelta(minutes=10, seconds=second), run_seconds=7200)
    book = DynamoPromises(outcomes.stack.dynamodb_client(), outcomes.stack.table_name)
    book.promise(
        Promise(
            "late-check", "fresh", ORDERS_MODEL, "model", "s3://b/k (created)", landed, landed + timedelta(minutes=30)
        )
    )

    summary = outcomes.poller()

    assert (summary["promises_kept"], summary["freshness_breaches"]) == (1, 0)
    pages = fake.calls_to(f"/api/syncs/{ORDERS_MODEL}/executions", method="GET")
    assert len(pages) == 2  # the page with the covering run, and no more


def test_a_thousand_promises_are_an_item_each_and_a_poll_reads_only_those_due(outcomes: Invoker) -> None:
    from polytrigger.runs.freshness import Promise
    from polytrigger.runs.promises import DynamoPromises

    client = outcomes.stack.dynamodb_client()
    book = DynamoPromises(client, outcomes.stack.table_name)
    now = datetime.now(UTC)
    for n in range(1000):
        due = now - timedelta(minutes=1) if n < 100 else now + timedelta(hours=1)
        book.promise(
            Promise(f"p{n}", "fresh", ORDERS_MODEL, "model", f"s3://b/{n} (created)", due - timedelta(minutes=30), due)
        )

    read = list(book.due(now))
    items = client.scan(TableName=outcomes.stack.table_name, ReturnConsumedCapacity="TOTAL")["Items"]

    assert sorted(p.key for p in read) == sorted(f"p{n}" for n in range(100))  # the due ones, and only those
    assert len([i for i in items if i["id"]["S"].startswith("promise#")]) == 1000
    assert max(len(json.dumps(item)) for item in items) < 1024  # no item grows with the number of promises
    summary = outcomes.poller()
    assert (summary["promises_kept"] + summary["freshness_breaches"], list(book.due(now))) == (100, [])
    assert len(outcomes.stack.fake.calls_to(f"/api/syncs/{ORDERS_MODEL}/executions", method="GET")) == 1  # per sync


def test_what_is_written_for_a_trigger_or_clock_long_past_outlives_the_wall_clock(outcomes: Invoker) -> None:
    """DynamoDB's TTL deletes by the wall clock: a promise or run dated weeks back must still be readable."""
    from polytrigger.runs.dynamo_ledger import KEEP_SECONDS, DynamoLedger
    from polytrigger.runs.freshness import Promise
    from polytrigger.runs.ledger import Run
    from polytrigger.runs.promises import DynamoPromises

    client = outcomes.stack.dynamodb_client()
    table = outcomes.stack.table_name
    started = int(datetime.now(UTC).timestamp())
    weeks_ago = datetime.now(UTC) - timedelta(days=30)
    DynamoPromises(client, table).promise(
        Promise(
            "old", "fresh", ORDERS_MODEL, "model", "s3://b/old (created)", weeks_ago, weeks_ago + timedelta(hours=1)
        )
    )
    ledger = DynamoLedger(client, table, clock=weeks_ago.timestamp)
    ledger.hand_on("an-old-event")
    ledger.record(Run("old-run", ORDERS_MODEL, "model"), "fresh", "s3://b/old (created)", weeks_ago, weeks_ago)

    items = {item["id"]["S"]: item for item in client.scan(TableName=table)["Items"]}
    kept = {key: int(item["expiration"]["N"]) for key, item in items.items() if "expiration" in item}

    assert kept["promise#old"] >= started + KEEP_SECONDS
    assert kept["event#an-old-event"] > started
    assert kept["run#old-run"] >= started + KEEP_SECONDS


def test_an_ending_only_reconciliation_found_sets_off_its_chained_start_once(
    outcomes: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from local.stack.dispatch_pump import DispatchQueue, pump
    from polytrigger import bootstrap

    queues = DispatchQueue.create(outcomes.stack.client("sqs"))
    routes = tmp_path / "routes.yaml"
    routes.write_text(CHAIN_ROUTES, encoding="utf-8")
    for name, value in {**queues.env(), "ROUTES_FILE": str(routes)}.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    fake = outcomes.stack.fake
    try:
        outcomes.s3(load_event("s3-notification-created.json"))
        fake.advance_clock(49 * 3600)  # every run has ended and its events have aged out: no event will chain
        _age_open_runs(outcomes, timedelta(minutes=5))
        polled = outcomes.poller()
        again = outcomes.poller()
        answers = pump(queues.sqs, queues.url, lambda event, _: outcomes.dispatcher(event), timeout=30)

        assert (polled["ended"], again["ended"]) == (1, 0)
        assert {line["outcome_from"] for line in endings(outcomes)} == {"reconciliation"}
        outcomes_seen = [o for answer in answers for o in answer.get("outcomes", [])]
        assert [(o["route"], o["status"]) for o in outcomes_seen] == [("enrich-after-orders", "started")]
    finally:
        bootstrap.reset()
        queues.delete()


def test_a_bus_down_when_the_ending_comes_still_tells_it_once_and_the_retry_hands_it_on(
    outcomes: Invoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bus does not exist yet (an outage): 503, but the ending was settled and told; the retry hands it on."""
    from polytrigger import bootstrap

    stack = outcomes.stack
    events, sqs = stack.client("events"), stack.client("sqs")
    bus = f"polytomic-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("RUN_EVENT_BUS_NAME", bus)
    bootstrap.reset()
    executions = started_runs(outcomes)
    ended = delivery(run_event("completed", executions[ORDERS_MODEL]))

    down = outcomes.webhook(ended)
    events.create_event_bus(Name=bus)  # the bus is back
    queue = sqs.create_queue(QueueName=bus)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=bus, EventBusName=bus, EventPattern=json.dumps({"source": ["polytrigger.polytomic"]}))
    events.put_targets(Rule=bus, EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    retried = outcomes.webhook(ended)
    again = outcomes.webhook(ended)

    assert [down["statusCode"], retried["statusCode"], again["statusCode"]] == [503, 200, 200]
    (line,) = _ending_lines(outcomes, executions[ORDERS_MODEL])  # told by the delivery that settled it
    assert (line["status"], line["outcome_from"]) == ("run_completed", "webhook")
    assert untold(outcomes) == set()
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    assert len(received) == 1  # handed on once, by the retry
