"""What the webhook refuses before it acts, against the local stack: bad signatures (and what they
cost), bodies too large to hand on, stale or future-dated events.

The receiver is the real handler, its secret in moto's Secrets Manager, its ledger DynamoDB Local,
its bus a moto EventBridge bus with a queue behind it, its chained starts the dispatch queue, its
time an injected clock (`bootstrap.use_clock`). Every delivery is signed as Polytomic signs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from tests.integration.support import ORDERS_MODEL, WAREHOUSE_BULK, Invoker

SECRET = "whsec-guards-0123456789"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # the injected clock starts here
CHAIN_ROUTES = f"""\
routes:
  - name: orders-landing
    s3: {{bucket: acme-landing, key: "orders/**/*.csv"}}
    syncs: [{{id: {ORDERS_MODEL}}}]
  - name: enrich-after-orders
    polytomic: {{sync: {ORDERS_MODEL}, events: [completed]}}
    syncs: [{{id: {WAREHOUSE_BULK}, type: bulk}}]
"""


@dataclass
class Clock:
    seconds: float = NOW.timestamp()

    def now(self) -> float:
        return self.seconds

    def sleep(self, seconds: float) -> None:
        self.seconds += seconds

    def advance(self, by: timedelta) -> None:
        self.seconds += by.total_seconds()


@dataclass
class Webhook:
    """The webhook receiver as deployed with a bus and a chained route, and what it set off."""

    invoker: Invoker
    clock: Clock
    bus_queue: str  # every event the bus took lands here
    dispatch_queue: str  # the chained starts
    secret_arn: str
    calls: list[str]  # every AWS operation the functions sent (GetSecretValue, PutEvents, ...)

    def reads(self) -> int:
        """How many times the secret was read from Secrets Manager."""
        return self.calls.count("GetSecretValue")

    def deliver(self, request: dict[str, Any]) -> tuple[int, str]:
        answer = self.invoker.webhook(request)
        return answer["statusCode"], json.loads(answer["body"])["message"]

    def on_the_bus(self) -> list[dict[str, Any]]:
        return [json.loads(body)["detail"] for body in self.invoker.stack.take(self.bus_queue)]

    def chained(self) -> list[str]:
        return self.invoker.stack.take(self.dispatch_queue)

    def warnings(self, status: str) -> list[dict[str, Any]]:
        return [line for line in self.invoker.log_lines() if line.get("status") == status]

    def rotate(self, secret: str) -> None:
        """A new current version of the webhook's secret, as an operator (or a rotation) stores it."""
        self.invoker.stack.secrets_client().put_secret_value(SecretId=self.secret_arn, SecretString=secret)
        self.invoker.guard.secrets.add(secret)


@pytest.fixture
def webhook(polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Webhook]:
    from local.stack.dispatch_pump import DispatchQueue
    from polytrigger import bootstrap

    stack = polytrigger.stack
    secrets, events, sqs = stack.secrets_client(), stack.client("events"), stack.client("sqs")
    name = f"guards-{uuid.uuid4().hex[:8]}"
    arn = secrets.create_secret(Name=name, SecretString=SECRET)["ARN"]
    polytrigger.guard.secrets.add(SECRET)
    events.create_event_bus(Name=name)
    bus_queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=bus_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=name, EventPattern=json.dumps({"source": ["polytrigger.polytomic"]}))
    events.put_targets(Rule=name, EventBusName=name, Targets=[{"Id": "q", "Arn": queue_arn}])
    queues = DispatchQueue.create(sqs)
    routes = tmp_path / "routes.yaml"
    routes.write_text(CHAIN_ROUTES, encoding="utf-8")
    environment = {
        **queues.env(),
        "ROUTES_FILE": str(routes),
        "POLYTOMIC_WEBHOOK_SECRET_ID": arn,
        "RUN_EVENT_BUS_NAME": name,
    }
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    calls: list[str] = []
    counted: Any = BaseClient.__dict__["_make_api_call"]  # private: what every boto3 call goes through

    def counting(client: Any, operation: str, parameters: Any) -> Any:
        calls.append(operation)
        return counted(client, operation, parameters)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)  # counted; still sent to moto
    clock = Clock()
    bootstrap.use_clock(clock.now, clock.sleep)
    try:
        yield Webhook(polytrigger, clock, bus_queue, queues.url, arn, calls)
    finally:
        bootstrap.use_clock()
        queues.delete()
        sqs.delete_queue(QueueUrl=bus_queue)
        events.remove_targets(Rule=name, EventBusName=name, Ids=["q"])
        events.delete_rule(Name=name, EventBusName=name)
        events.delete_event_bus(Name=name)
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def ending(at: datetime, *, status: str = "completed", sync: str = ORDERS_MODEL) -> dict[str, Any]:
    """Polytomic's event of a run's ending, dated `at`."""
    return {
        "id": str(uuid.uuid4()),
        "type": f"sync.{status}",
        "organization_id": str(uuid.uuid4()),
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "event": {"execution_id": str(uuid.uuid4()), "sync_id": sync, "status": status},
    }


def signed(body: bytes | dict[str, Any], *, secret: str = SECRET, signature: str | None = None) -> dict[str, Any]:
    """A Function URL request carrying `body`, signed with `secret` (HMAC-SHA256, hex) unless `signature` is given."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if signature is None:
        signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {
        "version": "2.0",
        "rawPath": "/",
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "headers": {"content-type": "application/json", "polytomic-signature": signature},
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }


# --------------------------------------------------------------------------- what a bad signature costs


def forged(n: int) -> dict[str, Any]:
    """A delivery signed with a guessed secret: a signature of the right shape that does not verify."""
    return signed(ending(NOW, status="failed"), secret=f"guess-{n}")


def test_fifty_forged_signatures_cost_at_most_one_secret_read(webhook: Webhook) -> None:
    assert webhook.deliver(signed(ending(NOW)))[0] == 200  # the container is warm: the secret is cached
    webhook.calls.clear()

    answers = {webhook.deliver(forged(n)) for n in range(50)}

    assert answers == {(401, "unauthorized")}
    assert webhook.reads() <= 1
    assert len(webhook.warnings("unauthorized")) == 50


@pytest.mark.parametrize(
    "signature",
    ["", "abc", "0" * 63, "0" * 65, "g" * 64, "sha256=" + "0" * 63, "=" * 44, "A" * 44, "x" * 4096],
    ids=["empty", "short", "hex-63", "hex-65", "not-hex", "prefixed-63", "padding-only", "unpadded-44", "huge"],
)
def test_a_signature_of_no_possible_shape_is_refused_without_reading_the_secret(
    webhook: Webhook, signature: str
) -> None:
    """A cold container too: no Secrets Manager read, no HMAC, for a header that cannot be a signature."""
    assert webhook.deliver(signed(ending(NOW), signature=signature)) == (401, "unauthorized")
    assert webhook.reads() == 0


def test_a_rotated_secret_is_read_again_at_most_every_few_minutes_and_the_previous_one_kept_a_while(
    webhook: Webhook,
) -> None:
    assert webhook.deliver(signed(ending(NOW)))[0] == 200
    assert webhook.deliver(forged(0))[0] == 401  # a mismatch: the secret is read again (the same)
    webhook.rotate("whsec-rotated-9876543210")
    webhook.calls.clear()

    refused = webhook.deliver(signed(ending(NOW), secret="whsec-rotated-9876543210"))
    webhook.clock.advance(timedelta(minutes=3))
    taken = webhook.deliver(signed(ending(NOW), secret="whsec-rotated-9876543210"))
    previous = webhook.deliver(signed(ending(NOW)))  # a retry Polytomic signed before the rotation
    webhook.clock.advance(timedelta(hours=2))
    gone = webhook.deliver(signed(ending(NOW + timedelta(hours=2))))

    assert refused[0] == 401  # the last re-read was under a minute ago: not read again yet
    assert taken[0] == 200
    assert previous[0] == 200
    assert gone[0] == 401
    assert webhook.reads() == 2  # the re-read that found the new secret, and the one the stale secret forced


# --------------------------------------------------------------------------- how large a body may be


def large(size: int, *, char: str = "x") -> dict[str, Any]:
    """An ending whose event carries `size` characters more (a long error list, say)."""
    event = ending(NOW)
    event["event"]["errors"] = [char * 1000] * (size // 1000)
    return event


def test_a_signed_body_too_large_for_the_bus_is_parked_with_its_reason_and_answered_200(webhook: Webhook) -> None:
    """Over what EventBridge (and SQS) take: neither settled nor handed on here, and never retried by Polytomic."""
    event = large(300 * 1024)

    assert webhook.deliver(signed(event)) == (200, "parked: too large")

    (record,) = webhook.invoker.stack.parked_events()
    reason = record["responsePayload"]["errorMessage"]
    assert event["id"] in reason
    assert "bytes" in reason
    assert "GET /api/events" in reason
    assert "PutEvents" not in webhook.calls
    assert webhook.chained() == []
    (line,) = [line for line in webhook.invoker.log_lines() if line.get("status") == "parked"]
    assert line["level"] == "ERROR"


def test_a_signed_large_body_sent_again_long_after_is_ignored_not_parked_again(webhook: Webhook) -> None:
    event = large(300 * 1024)
    event["created_at"] = (NOW - timedelta(days=400)).isoformat().replace("+00:00", "Z")

    assert webhook.deliver(signed(event)) == (200, "ignored: too old")
    assert webhook.invoker.stack.parked_events() == []


def test_an_unsigned_large_body_is_refused_401_and_not_parked(webhook: Webhook) -> None:
    """The signature is checked first: an unsigned body is never parked, whatever its size."""
    assert webhook.deliver(signed(large(300 * 1024), secret="guess")) == (401, "unauthorized")
    assert webhook.invoker.stack.parked_events() == []


def test_a_body_over_the_hard_cap_is_refused_before_its_signature_is_checked(webhook: Webhook) -> None:
    """No HMAC of megabytes for anyone: answered 413, no secret read, nothing parked."""
    assert webhook.deliver(signed(large(1100 * 1024))) == (413, "too large")
    assert webhook.reads() == 0
    assert webhook.invoker.stack.parked_events() == []


def test_an_event_too_large_for_the_bus_is_told_once_and_not_sent_its_chained_start_still_made(
    webhook: Webhook,
) -> None:
    """A body under 256 KiB whose bus entry is over it (each é becomes 6 bytes of JSON escape).

    EventBridge refuses such an entry, every time: were it tried, the webhook would answer 503 and
    every poll would fail on it again. It is told once, remembered as handed on (the poll after
    does not try again), and what else it sets off happens.
    """
    event = large(60 * 1024, char="é")
    body = json.dumps(event, ensure_ascii=False).encode()
    assert len(body) < 256 * 1024 < len(json.dumps(event).encode())

    first = webhook.deliver(signed(body))
    again = webhook.deliver(signed(body))  # Polytomic's duplicate, or the poller reading it

    assert first == again == (200, "nothing to settle")
    assert "PutEvents" not in webhook.calls
    assert webhook.on_the_bus() == []
    assert len(webhook.chained()) == 1
    (line,) = [line for line in webhook.invoker.log_lines() if line.get("status") == "run_event_too_large"]
    assert event["id"] in line["message"]
    assert line["level"] == "ERROR"


# --------------------------------------------------------------------------- how old an event may be


def test_a_signed_delivery_older_than_its_hand_on_marker_is_ignored_not_published_nor_chained(
    webhook: Webhook,
) -> None:
    """A replay of a delivery captured long ago: its `event#` marker has expired, so only its date stops it."""
    status, word = webhook.deliver(signed(ending(NOW - timedelta(days=400))))

    assert (status, word) == (200, "ignored: too old")
    assert webhook.on_the_bus() == []
    assert webhook.chained() == []
    (line,) = webhook.warnings("webhook_out_of_window")
    assert line["level"] == "WARNING"
    assert "too old" in line["message"]


def test_a_delivery_dated_past_the_clock_skew_margin_is_ignored(webhook: Webhook) -> None:
    status, word = webhook.deliver(signed(ending(NOW + timedelta(hours=1))))

    assert (status, word) == (200, "ignored: dated in the future")
    assert webhook.on_the_bus() == []
    assert webhook.chained() == []
    assert len(webhook.warnings("webhook_out_of_window")) == 1


@pytest.mark.parametrize("age", [timedelta(days=2), timedelta(seconds=0), -timedelta(minutes=2)])
def test_a_delivery_inside_the_window_is_handed_on_and_chained(webhook: Webhook, age: timedelta) -> None:
    """Within the marker's lifetime (the marker then stops a replay) or a few minutes ahead (clock skew)."""
    event = ending(NOW - age)

    assert webhook.deliver(signed(event))[0] == 200

    assert [detail["id"] for detail in webhook.on_the_bus()] == [event["id"]]
    assert len(webhook.chained()) == 1
    assert webhook.warnings("webhook_out_of_window") == []


def test_an_undated_event_of_another_type_is_ignored(webhook: Webhook) -> None:
    """Its age cannot be told, so neither can a replay: it is not handed on (the poller reads it dated)."""
    status, word = webhook.deliver(signed({"id": str(uuid.uuid4()), "type": "connection.updated", "event": {}}))

    assert (status, word) == (200, "ignored: undated")
    assert webhook.on_the_bus() == []
