"""Joins against the local stack: a route that starts C once A and B have both completed, once per set.

End to end, signed webhook deliveries reach the webhook handler, the joined start travels the
dispatch queue (moto) and the dispatcher starts it on the fake Polytomic. The reliability checks
drive the chained starts themselves (`QueuedChains` over DynamoDB Local) with a queue that
records what it is sent: duplicates, reordering, two invocations at once and a crash between any
two writes must all come to exactly one start per set (the dispatcher does each message id once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.support import CUSTOMERS_MODEL, ORDERS_MODEL, WAREHOUSE_BULK, Invoker, starts

WEBHOOK_SECRET = "whsec-local-joins-0123456789"
A, B, C = ORDERS_MODEL, CUSTOMERS_MODEL, WAREHOUSE_BULK
DAY = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)

JOIN_ROUTES = f"""\
routes:
  - name: warehouse-after-orders-and-customers
    polytomic: {{syncs: [{A}, {B}], events: [completed], within: 12h}}
    syncs: [{{id: {C}, type: bulk}}]
"""


# -- end to end: webhook → join → dispatch queue → dispatcher → Polytomic ------------------------


@pytest.fixture
def joined(polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[tuple[Invoker, Any]]:
    """`polytrigger` with the join routes, the webhook secret and the dispatch queues; yields it and the queues."""
    from local.stack.dispatch_pump import DispatchQueue
    from polytrigger import bootstrap

    queues = DispatchQueue.create(polytrigger.stack.client("sqs"))
    secrets = polytrigger.stack.secrets_client()
    arn = secrets.create_secret(Name=f"polytomic-webhook-{uuid.uuid4().hex[:8]}", SecretString=WEBHOOK_SECRET)["ARN"]
    polytrigger.guard.secrets.add(WEBHOOK_SECRET)
    routes = tmp_path / "routes.yaml"
    routes.write_text(JOIN_ROUTES, encoding="utf-8")
    for name, value in {**queues.env(), "ROUTES_FILE": str(routes), "POLYTOMIC_WEBHOOK_SECRET_ID": arn}.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    try:
        yield polytrigger, queues
    finally:
        bootstrap.reset()
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        queues.delete()


def deliver(polytrigger: Invoker, sync: str, execution: str, status: str = "completed") -> None:
    body = {
        "id": str(uuid.uuid4()),
        "type": f"sync.{status}",
        "organization_id": "5d5c8f3e-0a1b-4c2d-8e3f-4a5b6c7d8e9f",
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "event": {"execution_id": execution, "sync_id": sync, "status": status},
    }
    raw = json.dumps(body).encode()
    signature = hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    request = {
        "version": "2.0",
        "rawPath": "/",
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "headers": {"content-type": "application/json", "polytomic-signature": signature},
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }
    assert polytrigger.webhook(request)["statusCode"] == 200


def dispatch(polytrigger: Invoker, queues: Any) -> list[tuple[str, str]]:
    """Drain the dispatch queue through the dispatcher: (route, status) of each outcome."""
    from local.stack.dispatch_pump import pump

    answers = pump(queues.sqs, queues.url, lambda event, _: polytrigger.dispatcher(event), timeout=30)
    return [(o["route"], o["status"]) for answer in answers for o in answer.get("outcomes", [])]


def warehouse_starts(polytrigger: Invoker) -> int:
    return sum(1 for call in starts(polytrigger.stack.fake) if C in call.path)


@pytest.mark.parametrize("order", [(A, B), (B, A)], ids=["orders-first", "customers-first"])
def test_two_upstream_syncs_completing_in_either_order_start_the_joined_sync_once(
    joined: tuple[Invoker, Any], order: tuple[str, str]
) -> None:
    polytrigger, queues = joined
    first, second = order
    deliver(polytrigger, first, f"{first[:4]}-run-1")
    assert dispatch(polytrigger, queues) == []  # one upstream alone starts nothing
    deliver(polytrigger, first, f"{first[:4]}-run-1")  # the same ending again
    deliver(polytrigger, second, f"{second[:4]}-run-1")
    deliver(polytrigger, second, f"{second[:4]}-run-1")

    assert dispatch(polytrigger, queues) == [("warehouse-after-orders-and-customers", "started")]
    assert warehouse_starts(polytrigger) == 1
    (line,) = [ln for ln in polytrigger.log_lines() if ln.get("status") == "started"]
    assert line["trigger"] == (f"sync {A} run {A[:4]}-run-1, sync {B} run {B[:4]}-run-1 ended (completed last)")


def test_an_upstream_completing_twice_before_the_other_is_one_start_and_a_new_pair_is_one_more(
    joined: tuple[Invoker, Any],
) -> None:
    polytrigger, queues = joined
    deliver(polytrigger, A, "orders-monday-1")
    deliver(polytrigger, A, "orders-monday-2")
    deliver(polytrigger, B, "customers-monday")
    deliver(polytrigger, A, "orders-monday-3")  # the other has not completed again: nothing new to start
    assert dispatch(polytrigger, queues) == [("warehouse-after-orders-and-customers", "started")]

    deliver(polytrigger, B, "customers-tuesday")
    deliver(polytrigger, A, "orders-tuesday")  # … but orders-monday-3 had paired with it already

    assert dispatch(polytrigger, queues) == [("warehouse-after-orders-and-customers", "started")]
    assert warehouse_starts(polytrigger) == 2


def test_an_ending_of_a_status_the_join_does_not_follow_does_not_count(joined: tuple[Invoker, Any]) -> None:
    polytrigger, queues = joined
    deliver(polytrigger, A, "orders-1", "failed")
    deliver(polytrigger, B, "customers-1")
    assert dispatch(polytrigger, queues) == []
    deliver(polytrigger, A, "orders-2")
    assert dispatch(polytrigger, queues) == [("warehouse-after-orders-and-customers", "started")]


# -- reliability: the join itself over DynamoDB Local, its queue recorded ------------------------


@dataclass
class Recorded:
    """A dispatch queue that keeps what it is sent (and can die before a send, as a crashed Lambda)."""

    sent: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    crash: Crash | None = None

    def send(self, message: Any, delay_seconds: int) -> None:
        if self.crash is not None:
            self.crash.step("send")
        with self.lock:
            self.sent.append(message)

    def park(self, message: Any, reason: str) -> None:  # pragma: no cover - a join never parks
        raise AssertionError(f"parked: {reason}")

    def sets(self) -> list[Any]:
        """The distinct starts (dedup keys) sent: what the dispatcher would do."""
        keys: dict[str, str] = {}
        for message in self.sent:
            assert keys.setdefault(message.action.dedup_key, message.id) == message.id  # one id per start
        return sorted(keys)

    def afters(self) -> list[tuple[tuple[str, str], ...]]:
        return sorted({message.action.trigger.after for message in self.sent})


class Crashed(Exception):
    """The process died here."""


@dataclass
class Crash:
    """Dies at the `at`-th write (a DynamoDB write or a queue send), counting from 0; `at` None: never."""

    at: int | None = None
    steps: list[str] = field(default_factory=list)

    def step(self, what: str) -> None:
        if self.at is not None and len(self.steps) == self.at:
            self.at = None  # a process dies once
            raise Crashed(what)
        self.steps.append(what)


class CrashingClient:
    """A DynamoDB client whose writes go through `crash` first (reads do not: they change nothing)."""

    def __init__(self, client: Any, crash: Crash) -> None:
        self.client, self.crash = client, crash

    def update_item(self, **request: Any) -> Any:
        self.crash.step("update_item")
        return self.client.update_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def routes(within: str = "12h") -> Any:
    from polytrigger.routing import parse_routes

    return parse_routes(
        {
            "routes": [
                {
                    "name": "c-after-a-and-b",
                    "polytomic": {"syncs": [A, B], "events": ["completed"], "within": within},
                    "syncs": [{"id": C, "type": "bulk"}],
                }
            ]
        }
    )


def ending(sync: str, execution: str, at: datetime, status: str = "completed") -> Any:
    from polytrigger.runs.endings import RunEvent

    return RunEvent(f"{execution}:{status}", "model", status, execution, sync, at)


def chains(stack: Any, queue: Recorded, within: str = "12h", client: Any = None) -> Any:
    from polytrigger.runs.joins import DynamoJoins
    from polytrigger.runs.set_off import QueuedChains

    return QueuedChains(routes(within), queue, DynamoJoins(client or stack.dynamodb_client(), stack.table_name))


def owed(stack: Any) -> list[str]:
    """The join items still owing starts (none once every set's start is queued)."""
    items = stack.dynamodb_client().scan(TableName=stack.table_name)["Items"]
    return [item["id"]["S"] for item in items if "owed" in item]


@pytest.fixture
def stack(clean: Any) -> Iterator[Any]:
    """The local stack, emptied before and after: a join's items must not reach the next test."""
    yield clean
    clean.reset()


PAIR = [ending(A, "a-1", DAY), ending(B, "b-1", DAY + timedelta(hours=3))]


@pytest.mark.parametrize(
    "arrivals",
    [*sorted(set(itertools.permutations([0, 0, 1, 1]))), (1, 0), (0, 1, 0, 1, 1, 0)],
    ids=lambda arrivals: "-".join("ab"[i] for i in arrivals),
)
def test_duplicated_and_reordered_endings_start_the_join_once(stack: Any, arrivals: tuple[int, ...]) -> None:
    queue = Recorded()
    follow = chains(stack, queue)
    for index in arrivals:
        follow.start(PAIR[index])
    assert len(queue.sets()) == 1
    assert queue.afters() == [((A, "a-1"), (B, "b-1"))]
    assert owed(stack) == []


def test_both_endings_handled_at_once_by_two_invocations_start_the_join_once_per_set(stack: Any) -> None:
    queue = Recorded()
    rounds = 15
    for day in range(rounds):
        pair = [
            ending(A, f"a-{day}", DAY + timedelta(days=day)),
            ending(B, f"b-{day}", DAY + timedelta(days=day, minutes=5)),
            ending(A, f"a-{day}", DAY + timedelta(days=day)),  # and a duplicate of each, at the same time
            ending(B, f"b-{day}", DAY + timedelta(days=day, minutes=5)),
        ]
        gate = threading.Barrier(len(pair))
        failures: list[BaseException] = []

        def invoke(event: Any, gate: threading.Barrier = gate, failures: list[BaseException] = failures) -> None:
            follow = chains(stack, queue)  # an invocation of its own: its own client
            try:
                gate.wait()
                follow.start(event)
            except BaseException as error:  # reported by the main thread
                failures.append(error)

        threads = [threading.Thread(target=invoke, args=(event,)) for event in pair]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(queue.sets()) == day + 1, f"day {day}: {queue.afters()}"
    assert queue.afters() == sorted(((A, f"a-{day}"), (B, f"b-{day}")) for day in range(rounds))
    assert owed(stack) == []


class FiringTogether:
    """A DynamoDB client whose firing write waits until `parties` invocations are about to fire: each has read
    the whole set before any has recorded it."""

    def __init__(self, client: Any, gate: threading.Barrier, tried: list[bool]) -> None:
        self.client, self.gate, self.tried = client, gate, tried

    def update_item(self, **request: Any) -> Any:
        if request["UpdateExpression"].startswith("SET fired"):
            self.gate.wait(timeout=20)
            try:
                answer = self.client.update_item(**request)
            except Exception:
                self.tried.append(False)
                raise
            self.tried.append(True)
            return answer
        return self.client.update_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_two_invocations_that_both_see_the_whole_set_fire_it_once(stack: Any) -> None:
    queue = Recorded()
    gate, tried = threading.Barrier(2), list[bool]()
    recorded = chains(stack, queue)
    for event in PAIR:  # both endings are in, but a first delivery of each died before firing
        recorded.joins.record(recorded.routes.routes[0], event)
    failures: list[BaseException] = []

    def invoke(event: Any) -> None:
        try:
            chains(stack, queue, client=FiringTogether(stack.dynamodb_client(), gate, tried)).start(event)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=invoke, args=(event,)) for event in PAIR]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert sorted(tried) == [False, True]  # both fired; one write won
    assert len(queue.sets()) == 1
    assert owed(stack) == []


CRASH_POINTS = 5  # the writes (DynamoDB writes and queue sends) of a pair when nothing goes wrong


def test_the_crash_points_are_every_write(stack: Any) -> None:
    crash = Crash()
    queue = Recorded(crash=crash)
    follow = chains(stack, queue, client=CrashingClient(stack.dynamodb_client(), crash))
    for event in PAIR:
        follow.start(event)
    # a: record · b: record, fire (the set and its owed start), send, sent (the owed start forgotten)
    assert crash.steps == ["update_item", "update_item", "update_item", "send", "update_item"]
    assert len(crash.steps) == CRASH_POINTS


@pytest.mark.parametrize("at", range(CRASH_POINTS))
@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["a-first", "b-first"])
def test_a_crash_between_any_two_writes_still_starts_the_join_exactly_once(
    stack: Any, at: int, order: tuple[int, int]
) -> None:
    crash = Crash(at)
    queue = Recorded(crash=crash)
    dying = chains(stack, queue, client=CrashingClient(stack.dynamodb_client(), crash))
    for index in order:
        try:
            dying.start(PAIR[index])
        except Crashed:
            break  # the invocation died: its ending was not remembered as handed on
    queue.crash = None
    again = chains(stack, queue)
    for index in order:  # each ending comes again (a webhook retry, the poller) until one handles it whole
        again.start(PAIR[index])

    assert len(queue.sets()) == 1
    assert queue.afters() == [((A, "a-1"), (B, "b-1"))]
    assert owed(stack) == []


def test_a_start_owed_by_a_crash_after_firing_is_sent_by_the_next_ending_of_either_upstream(stack: Any) -> None:
    crash = Crash(3)  # a: record · b: record, fire · dies before the send
    queue = Recorded(crash=crash)
    dying = chains(stack, queue, client=CrashingClient(stack.dynamodb_client(), crash))
    dying.start(PAIR[0])
    with pytest.raises(Crashed, match="send"):
        dying.start(PAIR[1])
    assert queue.sent == []
    assert owed(stack) == ["polytrigger#join#c-after-a-and-b"]

    chains(stack, queue).start(ending(A, "a-2", DAY + timedelta(hours=5)))  # not a redelivery: a new run of A

    assert queue.afters() == [((A, "a-1"), (B, "b-1"))]  # what was owed; a-2 has no new b to pair with
    assert owed(stack) == []


def test_endings_further_apart_than_within_start_nothing_until_a_fresh_pair(stack: Any) -> None:
    queue = Recorded()
    follow = chains(stack, queue, within="12h")
    follow.start(ending(A, "a-1", DAY))
    follow.start(ending(B, "b-1", DAY + timedelta(hours=13)))  # 13 h apart: not a pair
    assert queue.sent == []

    follow.start(ending(A, "a-2", DAY + timedelta(hours=14)))  # an hour after b-1: a fresh pair

    assert queue.afters() == [((A, "a-2"), (B, "b-1"))]
    (message,) = queue.sent
    assert message.action.trigger.upstream == A  # the ending that completed it, whichever delivery fired
    assert message.action.trigger.time == DAY + timedelta(hours=14)


def test_an_older_ending_arriving_after_a_newer_one_is_never_paired(stack: Any) -> None:
    queue = Recorded()
    follow = chains(stack, queue)
    follow.start(ending(A, "a-2", DAY + timedelta(hours=2)))
    follow.start(ending(A, "a-1", DAY))  # late: a-2 is already A's latest
    follow.start(ending(B, "b-1", DAY + timedelta(hours=3)))
    follow.start(ending(A, "a-1", DAY))  # and again after the start

    assert queue.afters() == [((A, "a-2"), (B, "b-1"))]


def test_a_joins_state_is_an_item_per_upstream_and_one_for_the_route_each_with_a_ttl(stack: Any) -> None:
    queue = Recorded()
    follow = chains(stack, queue)
    for day in range(5):
        follow.start(ending(A, f"a-{day}", DAY + timedelta(days=day)))
        follow.start(ending(B, f"b-{day}", DAY + timedelta(days=day, hours=1)))
    items = stack.dynamodb_client().scan(TableName=stack.table_name)["Items"]

    assert len(queue.sets()) == 5
    assert sorted(item["id"]["S"] for item in items) == [
        "polytrigger#join#c-after-a-and-b",
        f"polytrigger#join#c-after-a-and-b#{A}",
        f"polytrigger#join#c-after-a-and-b#{B}",
    ]
    assert all("expiration" in item for item in items)
