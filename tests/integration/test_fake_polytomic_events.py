"""The fake Polytomic's events, execution status and signed webhook deliveries, over real HTTP.

Checked three ways: the documented behaviour (transitions, filters, 48 h
retention, at-most-once delivery with retries), the official SDK parsing what
the fake answers and sends, and a loopback receiver verifying each signature.
Time moves with the fake's clock (``advance_clock``), never by sleeping.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import polytomic
import pytest
import urllib3
from polytomic import types as sdk_types
from polytomic.core.pydantic_utilities import parse_obj_as

from local.polytomic import FakePolytomic

API_KEY = "events-test-key-0001"
VERSION = "2025-09-18"
SECRET = "whsec-test-0001"
HOUR = 3600.0
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")

#: The SDK's payload type for each event type.
SDK_PAYLOADS: dict[str, Any] = {
    "sync.running": sdk_types.EventingSyncRunningEvent,
    "sync.completed": sdk_types.EventingSyncCompletedEvent,
    "sync.completed_with_errors": sdk_types.EventingSyncCompletedWithErrorsEvent,
    "sync.failed": sdk_types.EventingSyncFailedEvent,
    "sync.canceled": sdk_types.EventingSyncCanceledEvent,
    "bulk_sync.running": sdk_types.EventingBulkSyncRunningEvent,
    "bulk_sync.completed": sdk_types.EventingBulkSyncCompletedEvent,
    "bulk_sync.completed_with_error": sdk_types.EventingBulkSyncCompletedWithErrorEvent,
    "bulk_sync.failed": sdk_types.EventingBulkSyncFailedEvent,
    "bulk_sync.canceled": sdk_types.EventingBulkSyncCanceledEvent,
}


class Receiver:
    """A webhook endpoint on loopback: records every POST; answers ``statuses`` in turn, then ``then``."""

    def __init__(self, statuses: Iterable[int] = (), then: int = 200) -> None:
        self.statuses, self.then = list(statuses), then
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.then
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/polytomic/events"

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(body) for _, body in self.received]

    def ids(self) -> list[str]:
        return [e["id"] for e in self.events()]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def server() -> Iterator[FakePolytomic]:
    with FakePolytomic(api_keys=[API_KEY]) as fake:
        yield fake


@pytest.fixture
def api(server: FakePolytomic) -> FakePolytomic:
    server.reset()
    return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def pool() -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5.0, read=30.0))
    yield manager
    manager.clear()


@pytest.fixture
def sdk(api: FakePolytomic) -> polytomic.Polytomic:
    return polytomic.Polytomic(base_url=api.url, token=API_KEY, version=VERSION, max_retries=0, timeout=30)


def call(pool: urllib3.PoolManager, fake: FakePolytomic, method: str, path: str, body: Any = None) -> Any:
    """(status, parsed body or None) of one authenticated request."""
    headers = {"Authorization": f"Bearer {API_KEY}", "X-Polytomic-Version": VERSION}
    payload = None if body is None else json.dumps(body).encode()
    response = pool.request(method, fake.url + path, body=payload, headers=headers)
    return response.status, (json.loads(response.data) if response.data else None)


def start(pool: urllib3.PoolManager, fake: FakePolytomic, sync_id: str) -> str:
    kind = fake.sync(sync_id).kind
    status, body = call(pool, fake, "POST", f"/api/{'bulk/' if kind == 'bulk' else ''}syncs/{sync_id}/executions")
    assert status == 200, body
    return str(body["data"]["id"])


def events_query(pool: urllib3.PoolManager, fake: FakePolytomic, **query: str | int) -> tuple[int, Any]:
    fields = {k: str(v) for k, v in query.items()}
    response = pool.request(
        "GET",
        fake.url + "/api/events",
        fields=fields,
        headers={"Authorization": f"Bearer {API_KEY}", "X-Polytomic-Version": VERSION},
    )
    return response.status, json.loads(response.data)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def moment(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(event["created_at"])


def verify(body: bytes, signature: str, encoding: str, secret: str = SECRET) -> bool:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    expected = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    return hmac.compare_digest(expected, signature)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- executions -> events ------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        ("model", "completed", "sync.completed", "completed"),
        ("model", "completed_with_errors", "sync.completed_with_errors", "completed"),
        ("model", "failed", "sync.failed", "failed"),
        ("model", "canceled", "sync.canceled", "canceled"),
        ("bulk", "completed", "bulk_sync.completed", "completed"),
        ("bulk", "completed_with_errors", "bulk_sync.completed_with_error", "errors"),
        ("bulk", "failed", "bulk_sync.failed", "failed"),
        ("bulk", "canceled", "bulk_sync.canceled", "canceled"),
    ],
)
def test_a_run_is_running_then_ends_with_its_outcome_event(
    api: FakePolytomic, pool: urllib3.PoolManager, case: tuple[Any, Any, str, str]
) -> None:
    kind, outcome, terminal, status = case
    sync_id = api.add_sync(kind=kind, run_seconds=HOUR, name="orders", outcome=outcome)
    execution_id = start(pool, api, sync_id)
    prefix = "sync" if kind == "model" else "bulk_sync"
    assert types(api.events()) == [f"{prefix}.running"]
    api.advance_clock(HOUR)
    running, ended = api.events()
    assert (running["type"], ended["type"]) == (f"{prefix}.running", terminal)
    for event in (running, ended):
        assert RFC3339_UTC.fullmatch(event["created_at"])
        assert event["organization_id"] == api.organization_id
        assert {k: event["event"][k] for k in ("execution_id", "sync_id", "sync_name", "organization_id")} == {
            "execution_id": execution_id,
            "sync_id": sync_id,
            "sync_name": "orders",
            "organization_id": api.organization_id,
        }
    assert (running["event"]["status"], ended["event"]["status"]) == ("running", status)
    assert moment(ended) - moment(running) == dt.timedelta(hours=1)
    assert moment(running) == api.executions(sync_id)[0].created_at
    if kind == "bulk":
        assert ended["event"]["trigger_source"] == "api"


def test_events_are_the_same_whenever_asked(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    start(pool, api, api.add_sync(run_seconds=60))
    first = api.events()
    api.advance_clock(60)
    later = api.events()
    assert later[:1] == first
    assert api.events() == later
    assert events_query(pool, api) == (200, {"data": later})


def test_set_outcome_changes_runs_in_progress_not_ended_ones(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync(run_seconds=60)
    start(pool, api, sync_id)
    api.advance_clock(60)
    start(pool, api, sync_id)
    api.set_outcome(sync_id, "failed")
    api.advance_clock(60)
    assert types(api.events()) == ["sync.running", "sync.completed", "sync.running", "sync.failed"]
    with pytest.raises(ValueError, match="outcome"):
        api.set_outcome(sync_id, "finished")  # type: ignore[arg-type]


def test_explicit_statuses_and_cancel_emit_their_events(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    model, bulk = api.add_sync(run_seconds=HOUR), api.add_sync(kind="bulk", run_seconds=HOUR)
    start(pool, api, model)
    assert api.finish_running(model, "failed") == 1
    second = start(pool, api, model)
    api.set_execution_status(second, "completed_with_errors")
    start(pool, api, model)
    assert call(pool, api, "POST", f"/api/syncs/{model}/cancel")[0] == 200
    interrupted = start(pool, api, model)
    api.set_execution_status(interrupted, "interrupted")  # no event type for it
    bulk_run = start(pool, api, bulk)
    api.set_execution_status(bulk_run, "errors")
    assert types(api.events()) == [
        *("sync.running", "sync.failed"),
        *("sync.running", "sync.completed_with_errors"),
        *("sync.running", "sync.canceled"),
        "sync.running",
        *("bulk_sync.running", "bulk_sync.completed_with_error"),
    ]
    status, body = call(pool, api, "GET", f"/api/syncs/{model}/executions/{second}")
    assert (status, body["data"]["status"], body["data"]["counts"]["error"]) == (200, "completed", 1)


# -- execution status ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["model", "bulk"])
def test_execution_status_follows_the_transitions(api: FakePolytomic, pool: urllib3.PoolManager, kind: Any) -> None:
    sync_id = api.add_sync(kind=kind, run_seconds=HOUR, outcome="failed")
    execution_id = start(pool, api, sync_id)
    path = f"/api/{'bulk/' if kind == 'bulk' else ''}syncs/{sync_id}/executions/{execution_id}"
    status, body = call(pool, api, "GET", path)
    assert status == 200
    assert (body["data"]["id"], body["data"]["status"], body["data"]["completed_at"]) == (execution_id, "running", None)
    assert body["data"]["started_at"] == body["data"]["created_at"]
    api.advance_clock(HOUR)
    ended = call(pool, api, "GET", path)[1]["data"]
    assert ended["status"] == "failed"
    assert ended["completed_at"] == api.events()[-1]["created_at"]


def test_unknown_execution_or_one_of_another_sync_is_404(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    mine, other, bulk = api.add_sync(), api.add_sync(), api.add_sync(kind="bulk")
    execution_id = start(pool, api, mine)
    unknown = "00000000-0000-4000-8000-000000000000"
    for path in (
        f"/api/syncs/{mine}/executions/{unknown}",
        f"/api/syncs/{other}/executions/{execution_id}",
        f"/api/bulk/syncs/{bulk}/executions/{execution_id}",
        f"/api/bulk/syncs/{mine}/executions/{execution_id}",
    ):
        status, body = call(pool, api, "GET", path)
        assert status == 404, path
        assert body["key"] == "not_found"
    assert call(pool, api, "GET", f"/api/syncs/{mine}/executions/{execution_id}")[0] == 200


# -- GET /api/events -----------------------------------------------------------------------


def runs(pool: urllib3.PoolManager, fake: FakePolytomic, count: int, kind: Any = "model") -> list[dict[str, Any]]:
    """``count`` runs of one sync, one minute apart by the fake's clock; their events, oldest first."""
    sync_id = fake.add_sync(kind=kind, run_seconds=30)
    for _ in range(count):
        start(pool, fake, sync_id)
        fake.advance_clock(60)
    return fake.events()


def test_events_default_to_ten_oldest_first_and_filter_by_type(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    everything = runs(pool, api, 6) + runs(pool, api, 1, kind="bulk")[-2:]
    assert len(everything) == 14
    assert sorted(everything, key=moment) == everything
    assert events_query(pool, api) == (200, {"data": everything[:10]})
    assert events_query(pool, api, type="sync.completed", limit=100)[1]["data"] == everything[1:12:2]
    assert types(events_query(pool, api, type="bulk_sync.completed")[1]["data"]) == ["bulk_sync.completed"]


def test_newest_first_pages_hold_the_newest_matches(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    everything = runs(pool, api, 6)
    api.set_event_order("newest")
    assert events_query(pool, api, limit=5)[1]["data"] == everything[::-1][:5]
    window = events_query(
        pool, api, starting_after=everything[1]["created_at"], ending_before=everything[8]["created_at"]
    )
    assert window[1]["data"] == everything[7:1:-1]
    api.reset()
    assert events_query(pool, api)[1]["data"] == []
    with pytest.raises(ValueError, match="order"):
        api.set_event_order("sideways")  # type: ignore[arg-type]


def test_the_organisations_other_events_are_listed_among_the_run_events(
    api: FakePolytomic, pool: urllib3.PoolManager
) -> None:
    first = runs(pool, api, 1)
    same = moment(first[0])
    ids = [api.add_event("connection.updated", same) for _ in range(3)]
    later = api.add_event("model.created")
    listed = events_query(pool, api, limit=100)[1]["data"]
    assert len({event["id"] for event in listed}) == 6
    at_once = {e["id"] for e in listed if e["created_at"] == first[0]["created_at"] and e["type"] != "sync.running"}
    assert at_once == set(ids)  # one created_at shared by three events
    assert types(events_query(pool, api, type="model.created")[1]["data"]) == ["model.created"]
    assert listed[-1]["id"] == later
    with pytest.raises(ValueError, match="run event"):
        api.add_event("sync.completed")


def test_unknown_event_type_is_400(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    status, body = events_query(pool, api, type="bulk_sync.completed_with_errors")  # the SDK's type is singular
    assert status == 400
    assert body["metadata"] == {"field": "type"}


def test_starting_after_and_ending_before_are_strict(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    events = runs(pool, api, 3)
    pivot = events[2]["created_at"]
    after = events_query(pool, api, starting_after=pivot, limit=100)[1]["data"]
    before = events_query(pool, api, ending_before=pivot, limit=100)[1]["data"]
    assert (after, before) == (events[3:], events[:2])
    between = events_query(pool, api, starting_after=events[0]["created_at"], ending_before=events[4]["created_at"])
    assert between[1]["data"] == events[1:4]
    offset = moment(events[2]).astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    assert events_query(pool, api, starting_after=offset)[1]["data"] == events[3:]


@pytest.mark.parametrize("value", ["2025-01-02", "2025-01-02T03:04:05", "yesterday", "2025-01-02T03:04:05 02:00"])
def test_a_timestamp_that_is_not_rfc3339_is_400(api: FakePolytomic, pool: urllib3.PoolManager, value: str) -> None:
    status, body = events_query(pool, api, starting_after=value)
    assert status == 400
    assert body["metadata"] == {"field": "starting_after"}


def test_limit_100_is_accepted_and_101_is_400(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    events = runs(pool, api, 51)
    assert len(events) == 102
    assert events_query(pool, api, limit=100) == (200, {"data": events[:100]})
    assert events_query(pool, api, limit=1)[1]["data"] == events[:1]
    for bad in (101, 0, -1, "ten"):
        status, body = events_query(pool, api, limit=bad)
        assert status == 400, bad
        assert set(body) == {"status", "message", "key", "metadata"}
        assert (body["status"], body["key"], body["metadata"]) == (400, "invalid_request", {"field": "limit"})


def test_events_are_kept_48_hours(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    old = runs(pool, api, 1)
    api.advance_clock(47 * HOUR)
    recent = runs(pool, api, 1)[2:]
    assert api.events() == old + recent
    api.advance_clock(HOUR)  # the old run's events are now 48 h and a minute or more old
    assert api.events() == recent
    assert events_query(pool, api, limit=100)[1]["data"] == recent


def test_events_need_credentials(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    response = pool.request("GET", api.url + "/api/events", headers={"X-Polytomic-Version": VERSION})
    assert response.status == 401


# -- the official SDK ----------------------------------------------------------------------


def assert_sdk_payload(event: dict[str, Any]) -> None:
    """The payload parses as the SDK's type for its event type; the fake adds only ``status``/``trigger_source``."""
    payload_type = SDK_PAYLOADS[event["type"]]
    parsed = parse_obj_as(payload_type, event["event"])
    known = set(payload_type.model_fields)
    assert set(event["event"]) - known <= {"status", "trigger_source"}, event["type"]
    assert {k: getattr(parsed, k) for k in event["event"] if k in known} == {
        k: v for k, v in event["event"].items() if k in known
    }


def test_sdk_parses_events_of_every_type(api: FakePolytomic, pool: urllib3.PoolManager, sdk: Any) -> None:
    for kind in ("model", "bulk"):
        for outcome in ("completed", "completed_with_errors", "failed", "canceled"):
            start(pool, api, api.add_sync(kind=kind, outcome=outcome))
    raw = api.events()
    assert sorted(set(types(raw))) == sorted(SDK_PAYLOADS)
    envelope = sdk.events.list(limit=100)
    assert isinstance(envelope, sdk_types.EventsEnvelope)
    assert envelope.data is not None
    assert [e.id for e in envelope.data] == [e["id"] for e in raw]
    for parsed, event in zip(envelope.data, raw, strict=True):
        assert isinstance(parsed, sdk_types.Event)
        assert (parsed.type, parsed.organization_id) == (event["type"], api.organization_id)
        assert parsed.created_at == moment(event)
        assert parsed.event is not None
        assert parsed.event.execution_id == event["event"]["execution_id"]
        assert_sdk_payload(event)
    assert sdk.events.get_types().data == sorted(SDK_PAYLOADS, key=list(SDK_PAYLOADS).index)


def test_sdk_filters_events_with_datetimes(api: FakePolytomic, pool: urllib3.PoolManager, sdk: Any) -> None:
    events = runs(pool, api, 3)
    after = sdk.events.list(starting_after=moment(events[1]), type="sync.completed", limit=100).data
    assert [e.id for e in after] == [events[3]["id"], events[5]["id"]]
    before = sdk.events.list(ending_before=moment(events[1])).data
    assert [e.id for e in before] == [events[0]["id"]]


def test_sdk_reads_execution_status(api: FakePolytomic, pool: urllib3.PoolManager, sdk: Any) -> None:
    model, bulk = api.add_sync(run_seconds=HOUR), api.add_sync(kind="bulk", run_seconds=HOUR, outcome="failed")
    model_run, bulk_run = start(pool, api, model), start(pool, api, bulk)
    got = sdk.model_sync.executions.get(sync_id=model, id=model_run)
    assert isinstance(got, sdk_types.GetExecutionResponseEnvelope)
    assert got.data is not None
    assert (got.data.id, got.data.status, got.data.completed_at) == (model_run, "running", None)
    api.advance_clock(HOUR)
    ended = sdk.bulk_sync.executions.get(id=bulk, exec_id=bulk_run)
    assert isinstance(ended, sdk_types.BulkSyncExecutionEnvelope)
    assert ended.data is not None
    assert ended.data.created_at is not None
    assert (ended.data.id, ended.data.status) == (bulk_run, "failed")
    assert ended.data.completed_at == ended.data.created_at + dt.timedelta(hours=1)
    assert sdk.model_sync.executions.get(sync_id=model, id=model_run).data.status == "completed"


# -- webhooks: subscription ----------------------------------------------------------------


def test_webhook_api_create_get_list_delete(api: FakePolytomic, pool: urllib3.PoolManager, receiver: Receiver) -> None:
    status, created = call(pool, api, "POST", "/api/webhooks", {"endpoint": receiver.url, "secret": SECRET})
    assert status == 200
    webhook = created["data"]
    assert (webhook["endpoint"], webhook["organization_id"], webhook["disabled"]) == (
        receiver.url,
        api.organization_id,
        False,
    )
    assert call(pool, api, "POST", "/api/webhooks", {"endpoint": receiver.url, "secret": "x"})[0] == 409
    assert call(pool, api, "GET", f"/api/webhooks/{webhook['id']}") == (200, created)
    assert call(pool, api, "GET", "/api/webhooks") == (200, {"data": [webhook]})
    assert call(pool, api, "DELETE", f"/api/webhooks/{webhook['id']}") == (204, None)
    assert call(pool, api, "GET", f"/api/webhooks/{webhook['id']}")[0] == 404
    assert api.webhook is None


@pytest.mark.parametrize(
    "endpoint",
    ["http://example.com/hook", "http://10.0.0.1/hook", "https://127.0.0.1/hook", "http://0.0.0.0:80/", "file:///x"],
)
def test_non_loopback_endpoint_is_refused(api: FakePolytomic, pool: urllib3.PoolManager, endpoint: str) -> None:
    status, body = call(pool, api, "POST", "/api/webhooks", {"endpoint": endpoint, "secret": SECRET})
    assert (status, body["metadata"]) == (400, {"field": "endpoint"})
    with pytest.raises(ValueError, match="loopback"):
        api.subscribe_webhook(endpoint, SECRET)
    assert api.webhook is None


def test_webhook_body_is_checked(api: FakePolytomic, pool: urllib3.PoolManager, receiver: Receiver) -> None:
    assert call(pool, api, "POST", "/api/webhooks", {"endpoint": receiver.url})[0] == 400
    assert call(pool, api, "POST", "/api/webhooks", {"endpoint": receiver.url, "secret": SECRET, "x": 1})[0] == 400


def test_sdk_creates_and_deletes_the_webhook(api: FakePolytomic, receiver: Receiver, sdk: Any) -> None:
    created = sdk.webhooks.create(endpoint=receiver.url, secret=SECRET)
    assert isinstance(created, sdk_types.WebhookEnvelope)
    assert created.data is not None
    assert created.data.endpoint == receiver.url
    assert sdk.webhooks.get(id=created.data.id).data.id == created.data.id
    assert [w.id for w in sdk.webhooks.list().data] == [created.data.id]
    sdk.webhooks.delete(id=created.data.id)
    assert sdk.webhooks.list().data == []


# -- webhooks: delivery --------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_each_event_is_delivered_once_signed(
    api: FakePolytomic, pool: urllib3.PoolManager, receiver: Receiver, encoding: Any
) -> None:
    api.subscribe_webhook(receiver.url, SECRET, encoding=encoding)
    sync_id = api.add_sync(run_seconds=60)
    start(pool, api, sync_id)
    assert api.deliver_webhooks().delivered == [api.events()[0]["id"]]
    assert api.deliver_webhooks().deliveries == ()  # at most once
    api.advance_clock(60)
    report = api.deliver_webhooks()
    assert (report.delivered, report.statuses) == ([api.events()[1]["id"]], [(200,)])
    assert receiver.events() == api.events()
    for headers, body in receiver.received:
        assert headers["content-type"] == "application/json"
        assert verify(body, headers["polytomic-signature"], encoding)
        assert not verify(body, headers["polytomic-signature"], encoding, secret="another secret")
        parsed = parse_obj_as(sdk_types.Event, json.loads(body))
        assert parsed.id == json.loads(body)["id"]
        assert_sdk_payload(json.loads(body))


def test_webhook_made_through_the_api_is_signed_as_configured(
    api: FakePolytomic, pool: urllib3.PoolManager, receiver: Receiver
) -> None:
    api.configure_webhooks(encoding="base64")
    assert call(pool, api, "POST", "/api/webhooks", {"endpoint": receiver.url, "secret": SECRET})[0] == 200
    start(pool, api, api.add_sync())
    assert len(api.deliver_webhooks().delivered) == 2
    assert all(verify(body, h["polytomic-signature"], "base64") for h, body in receiver.received)


def test_only_events_after_the_subscription_are_delivered(
    api: FakePolytomic, pool: urllib3.PoolManager, receiver: Receiver
) -> None:
    sync_id = api.add_sync(run_seconds=60)
    start(pool, api, sync_id)
    api.subscribe_webhook(receiver.url, SECRET)
    api.advance_clock(60)
    api.deliver_webhooks()
    assert types(receiver.events()) == ["sync.completed"]


def test_a_500_is_retried_up_to_five_times_then_given_up(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    failing = Receiver(then=500)
    try:
        api.subscribe_webhook(failing.url, SECRET)
        api.configure_webhooks(backoff=0.001)
        start(pool, api, api.add_sync(run_seconds=HOUR))
        report = api.deliver_webhooks()
        assert report.statuses == [(500,) * 6]
        assert (report.delivered, report.failed) == ([], [api.events()[0]["id"]])
        assert len(failing.received) == 6
        assert len({body for _, body in failing.received}) == 1
        assert api.deliver_webhooks().deliveries == ()  # given up: never sent again
    finally:
        failing.close()


def test_a_retry_that_succeeds_delivers_once(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    flaky = Receiver(statuses=[500, 503])
    try:
        api.subscribe_webhook(flaky.url, SECRET)
        api.configure_webhooks(backoff=0.001)
        start(pool, api, api.add_sync(run_seconds=HOUR))
        assert api.deliver_webhooks().statuses == [(500, 503, 200)]
        assert api.webhook_deliveries()[0].delivered
    finally:
        flaky.close()


def test_retries_back_off_and_an_unreachable_endpoint_counts_as_no_answer(
    api: FakePolytomic, pool: urllib3.PoolManager
) -> None:
    closed = Receiver()
    closed.close()  # nothing listens there any more
    api.subscribe_webhook(closed.url, SECRET)
    api.configure_webhooks(max_retries=3, backoff=0.05)
    start(pool, api, api.add_sync(run_seconds=HOUR))
    began = time.monotonic()
    assert api.deliver_webhooks().statuses == [(0, 0, 0, 0)]
    assert time.monotonic() - began >= 0.05 + 0.1 + 0.2


def fault_pattern(fake: FakePolytomic, pool: urllib3.PoolManager, url: str, **knobs: Any) -> tuple[Any, ...]:
    """Deliver 40 events with the knobs; what happened, as positions in the events' order."""
    fake.reset()
    fake.subscribe_webhook(url, SECRET)
    fake.configure_webhooks(**knobs)
    runs(pool, fake, 20)
    position = {e["id"]: i for i, e in enumerate(fake.events())}
    report = fake.deliver_webhooks()
    return (
        tuple(position[d.event_id] for d in report.deliveries),
        tuple(position[i] for i in report.dropped),
        tuple(position[i] for i in report.duplicated),
    )


def test_drop_duplicate_and_reorder_are_reproducible_for_a_seed(
    api: FakePolytomic, pool: urllib3.PoolManager, receiver: Receiver
) -> None:
    plain = fault_pattern(api, pool, receiver.url)
    assert plain == (tuple(range(40)), (), ())
    knobs = {"drop": 0.2, "duplicate": 0.2, "reorder": True, "seed": 7}
    del receiver.received[:]
    sent, dropped, duplicated = fault_pattern(api, pool, receiver.url, **knobs)
    assert dropped
    assert duplicated
    assert list(sent) != sorted(sent)
    assert sorted(sent) == sorted([*(set(range(40)) - set(dropped)), *duplicated])
    position = {e["id"]: i for i, e in enumerate(api.events())}
    assert [position[i] for i in receiver.ids()] == list(sent)
    assert all(verify(body, h["polytomic-signature"], "hex") for h, body in receiver.received)
    assert fault_pattern(api, pool, receiver.url, **knobs) == (sent, dropped, duplicated)
    assert fault_pattern(api, pool, receiver.url, **{**knobs, "seed": 8}) != (sent, dropped, duplicated)


def test_a_disabled_webhook_skips_the_events_meanwhile(
    api: FakePolytomic, pool: urllib3.PoolManager, receiver: Receiver
) -> None:
    webhook = api.subscribe_webhook(receiver.url, SECRET)
    sync_id = api.add_sync(run_seconds=60)
    assert call(pool, api, "POST", f"/api/webhooks/{webhook.id}/disable")[1]["data"]["disabled"] is True
    start(pool, api, sync_id)
    assert api.deliver_webhooks().skipped == (api.events()[0]["id"],)
    assert call(pool, api, "POST", f"/api/webhooks/{webhook.id}/enable")[1]["data"]["disabled"] is False
    api.advance_clock(60)
    api.deliver_webhooks()
    assert types(receiver.events()) == ["sync.completed"]


def test_background_delivery(api: FakePolytomic, pool: urllib3.PoolManager, receiver: Receiver) -> None:
    api.subscribe_webhook(receiver.url, SECRET)
    api.auto_deliver_webhooks(0.01)
    try:
        start(pool, api, api.add_sync())
        wait_until(lambda: len(receiver.received) == 2)
    finally:
        api.auto_deliver_webhooks(None)
    assert receiver.events() == api.events()
    assert [d.statuses for d in api.webhook_deliveries()] == [(200,), (200,)]


def test_reset_forgets_the_webhook_and_the_clock(api: FakePolytomic, receiver: Receiver) -> None:
    api.subscribe_webhook(receiver.url, SECRET)
    api.advance_clock(HOUR)
    api.reset()
    assert api.webhook is None
    assert abs((api.now() - dt.datetime.now(dt.UTC)).total_seconds()) < 60
