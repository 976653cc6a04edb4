"""PolytomicClient against a tiny scripted HTTP server on 127.0.0.1 (not the project's fake Polytomic).

The server answers from a script and records every request; the client gets an injected `sleep`
that records pauses and an injected `clock`, so nothing here waits on backoff.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polytrigger.polytomic.client import PolytomicClient, RetryPolicy
from polytrigger.polytomic.contract import (
    AlreadyRunning,
    CredentialsError,
    Execution,
    KeyInFlight,
    Rejected,
    ServerError,
    Throttled,
    Transient,
    Unauthorized,
    UnreadableAnswer,
)
from polytrigger.polytomic.credentials import Credentials

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
KEY = "a" * 64
EXECUTION = "9b2e1c4d-5f6a-4b7c-8d9e-0f1a2b3c4d5e"
ACTIVE = {"data": {"id": SYNC, "active": True}}
CREATED = {"data": {"id": EXECUTION, "status": "created", "created_at": "2026-11-23T10:00:01Z"}}


# -- the loopback server ------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; bytes/str → as is
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (until the test ends): a read timeout
    drop: bool = False  # close the connection without an answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[Request]
    script: deque[Reply]
    release: threading.Event
    decide: Callable[[Request], Reply] | None  # instead of the script: a reply chosen per request

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a hung handler writing to a socket the client closed is expected


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(Request(self.command, self.path, dict(self.headers.items()), body))
        if self.server.decide is not None:
            reply = self.server.decide(self.server.requests[-1])
        elif self.server.script:
            reply = self.server.script.popleft()
        else:
            reply = Reply(599, {"message": "script exhausted"})
        if reply.hang:
            self.server.release.wait(30)
            return
        if reply.drop:
            self.close_connection = True
            return
        if isinstance(reply.body, dict | list):
            payload = json.dumps(reply.body).encode()
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
        else:
            payload = reply.body or b""
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Loopback:
    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.requests = []
        self._server.script = deque()
        self._server.release = threading.Event()
        self._server.decide = None
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    def reply(self, *replies: Reply) -> None:
        self._server.script.extend(replies)

    def decide(self, choose: Callable[[Request], Reply]) -> None:
        self._server.decide = choose

    def stop(self) -> None:
        self._server.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@pytest.fixture
def server() -> Iterator[Loopback]:
    loopback = Loopback()
    try:
        yield loopback
    finally:
        loopback.stop()


class Provider:
    """Credentials provider: the key "rotates" when it is asked to refresh."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.authorization = "Bearer old-key"

    def __call__(self, refresh: bool = False) -> Credentials:
        self.calls.append(refresh)
        if refresh:
            self.authorization = "Bearer new-key"
        return Credentials(scheme="api_key", authorization=self.authorization)


@dataclass
class Harness:
    server: Loopback
    provider: Provider
    pauses: list[float]
    now: list[float]

    def client(self, version: str = "2025-09-18", *, attempts: int = 3, read_timeout: float = 10.0) -> PolytomicClient:
        return PolytomicClient(
            self.server.url,
            version,
            self.provider,
            connect_timeout=2.0,
            read_timeout=read_timeout,
            retry=RetryPolicy(attempts=attempts, base_delay=0.2, max_delay=5.0),
            sleep=self.pauses.append,
            clock=lambda: self.now[0],
        )


@pytest.fixture
def h(server: Loopback) -> Harness:
    return Harness(server=server, provider=Provider(), pauses=[], now=[1000.0])


# -- requests -----------------------------------------------------------------------------------


def test_model_start_request(h: Harness) -> None:
    h.server.reply(Reply(200, CREATED, {"X-Polytomic-Version": "2025-09-18"}))
    body = {"resync": True, "identities": ["a@b.c"], "test": False}
    execution = h.client().start("model", SYNC, body, idempotency_key=KEY)

    assert execution == Execution(id=EXECUTION, status="created", created_at="2026-11-23T10:00:01Z")
    [request] = h.server.requests
    assert (request.method, request.path) == ("POST", f"/api/syncs/{SYNC}/executions")
    assert request.headers["Authorization"] == "Bearer old-key"
    assert request.headers["X-Polytomic-Version"] == "2025-09-18"
    assert request.headers["Idempotency-Key"] == KEY
    assert request.headers["User-Agent"] == "polytrigger/0.1.0"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.json() == {"resync": True, "identities": ["a@b.c"], "test": False}
    assert h.provider.calls == [False]


def test_model_start_with_an_empty_body_sends_an_empty_object(h: Harness) -> None:
    h.server.reply(Reply(201, CREATED))
    h.client().start("model", SYNC, {}, idempotency_key=KEY)
    assert h.server.requests[0].json() == {}


def test_model_start_body_is_unchanged_under_the_older_version(h: Harness) -> None:
    h.server.reply(Reply(200, CREATED))
    h.client("2024-02-08").start("model", SYNC, {"resync": True}, idempotency_key=KEY)
    assert h.server.requests[0].json() == {"resync": True}
    assert h.server.requests[0].headers["X-Polytomic-Version"] == "2024-02-08"


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        (
            {"fetch_mode": "full", "resync_mode": "rebuild", "schemas": ["public.a"]},
            {"fetch_mode": "full", "resync_mode": "rebuild", "schemas": ["public.a"]},
        ),
        ({"resync": True}, {"resync_mode": "resync"}),
        ({"resync": False, "fetch_mode": "incremental"}, {"fetch_mode": "incremental"}),
        ({"resync": True, "resync_mode": "refetch"}, {"resync_mode": "refetch"}),
        ({"test": True}, {"test": True}),
    ],
)
def test_bulk_start_under_2025_09_18_sends_resync_mode_never_resync(
    h: Harness, body: dict[str, Any], sent: dict[str, Any]
) -> None:
    h.server.reply(Reply(200, CREATED))
    original = dict(body)
    h.client("2025-09-18").start("bulk", SYNC, body, idempotency_key=KEY)
    [request] = h.server.requests
    assert (request.method, request.path) == ("POST", f"/api/bulk/syncs/{SYNC}/executions")
    assert request.json() == sent
    assert "resync" not in request.json()
    assert body == original  # the caller's (the route's) body is not mutated


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        ({"resync_mode": "resync", "schemas": ["s"]}, {"resync": True, "schemas": ["s"]}),
        ({"resync_mode": "rebuild"}, {"resync": True}),
        ({"resync_mode": "refetch"}, {"resync": False}),
        ({"fetch_mode": "none"}, {"fetch_mode": "none"}),
    ],
)
def test_bulk_start_under_2024_02_08_sends_boolean_resync(
    h: Harness, body: dict[str, Any], sent: dict[str, Any]
) -> None:
    h.server.reply(Reply(200, CREATED))
    h.client("2024-02-08").start("bulk", SYNC, body, idempotency_key=KEY)
    assert h.server.requests[0].json() == sent
    assert "resync_mode" not in h.server.requests[0].json()


@pytest.mark.parametrize(
    ("sync_type", "path"), [("model", f"/api/syncs/{SYNC}/activate"), ("bulk", f"/api/bulk/syncs/{SYNC}/activate")]
)
@pytest.mark.parametrize("active", [True, False])
def test_activate_and_deactivate(h: Harness, sync_type: str, path: str, active: bool) -> None:
    h.server.reply(Reply(200, {"data": {"id": SYNC, "active": active}}))
    assert h.client().set_active(sync_type, SYNC, active, idempotency_key=KEY) is active
    [request] = h.server.requests
    assert (request.method, request.path) == ("POST", path)
    assert request.body == (b'{"active": true}' if active else b'{"active": false}')
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == KEY


def test_activate_without_a_key_sends_no_idempotency_key(h: Harness) -> None:
    h.server.reply(Reply(200, {"data": {"id": SYNC, "active": True}}))
    h.client().set_active("model", SYNC, True)
    assert "Idempotency-Key" not in h.server.requests[0].headers


def test_whether_a_sync_is_active_is_a_plain_get_of_the_sync(h: Harness) -> None:
    h.server.reply(Reply(200, {"data": {"id": SYNC, "name": "warehouse", "active": False}}))
    assert h.client().active("bulk", SYNC) is False
    [request] = h.server.requests
    assert (request.method, request.path, request.body) == ("GET", f"/api/bulk/syncs/{SYNC}", b"")
    assert "Content-Type" not in request.headers
    assert "Idempotency-Key" not in request.headers
    assert request.headers["X-Polytomic-Version"] == "2025-09-18"


# -- a 2xx must say what was done ---------------------------------------------------------------

SECRETISH = "tok_" + "z" * 40  # a body that must never be quoted back in full


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "the body is empty"),
        (b"not json", "the body is not JSON (8 bytes)"),
        (SECRETISH.encode(), f"the body is not JSON ({len(SECRETISH)} bytes)"),
        (b"\xff\xfe", "the body is not JSON (2 bytes)"),
        (b"[1, 2]", "the body is a JSON array, not an object"),
        (b"null", "the body is a JSON null, not an object"),
        (b'{"data": "odd"}', '"data" is a JSON string, not an object'),
        (b'{"data": {"status": "created"}}', 'the execution has no "id"'),
        (b'{"data": {"id": 42, "status": "created"}}', 'the execution\'s "id" is a JSON number, not a string'),
        (b'{"data": {"id": "", "status": "created"}}', 'the execution\'s "id" is empty'),
    ],
)
def test_a_start_answered_2xx_without_an_execution_id_is_unreadable(h: Harness, body: bytes, problem: str) -> None:
    h.server.reply(Reply(201, body), Reply(200, CREATED))
    with pytest.raises(UnreadableAnswer) as raised:
        h.client().start("model", SYNC, {}, idempotency_key=KEY)
    assert str(raised.value) == (
        f"POST /api/syncs/{SYNC}/executions: Polytomic answered 201 but {problem}: nothing is recorded as started"
    )
    assert SECRETISH not in str(raised.value)
    assert raised.value.status == 201
    assert len(h.server.requests) == 1  # not retried in the call: the dispatch policy retries it, same key
    assert h.pauses == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "the body is empty"),
        (b"<html>ok</html>", "the body is not JSON (15 bytes)"),
        (b"[true]", "the body is a JSON array, not an object"),
        (b'{"data": {"id": "x"}}', '"active" is missing, not true as asked'),
        (b'{"data": {"active": false}}', '"active" is false, not true as asked'),
        (b'{"data": {"active": "true"}}', '"active" is a JSON string, not true as asked'),
        (b'{"data": {"active": 1}}', '"active" is a JSON number, not true as asked'),
    ],
)
def test_an_activate_answered_2xx_without_the_asked_state_is_unreadable(h: Harness, body: bytes, problem: str) -> None:
    h.server.reply(Reply(200, body), Reply(200, ACTIVE))
    with pytest.raises(UnreadableAnswer) as raised:
        h.client().set_active("bulk", SYNC, True, idempotency_key=KEY)
    assert str(raised.value) == (
        f"POST /api/bulk/syncs/{SYNC}/activate: Polytomic answered 200 but {problem}: nothing is recorded as activated"
    )
    assert len(h.server.requests) == 1
    assert h.pauses == []


def test_a_pause_answered_active_true_is_unreadable(h: Harness) -> None:
    h.server.reply(Reply(200, ACTIVE))
    with pytest.raises(UnreadableAnswer, match='"active" is true, not false as asked: nothing is recorded as paused'):
        h.client().set_active("model", SYNC, False)


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"data": "odd"}'])
def test_reads_with_an_odd_body_are_still_answers(h: Harness, body: bytes) -> None:
    """Executions and a sync's state are only read, never recorded: an odd body reads as nothing found."""
    h.server.reply(Reply(200, body), Reply(200, body))
    assert h.client().executions("model", SYNC) == []
    assert h.client().active("model", SYNC) is None  # it does not say: not taken for paused


def test_deployment_key_authorization_is_sent_as_is(h: Harness) -> None:
    h.server.reply(Reply(200, CREATED))

    def provider(refresh: bool = False) -> Credentials:
        return Credentials("deployment_key", "Basic b3JnOmtleQ==")

    client = PolytomicClient(h.server.url, "2025-09-18", provider)
    client.start("model", SYNC, {}, idempotency_key=KEY)
    assert h.server.requests[0].headers["Authorization"] == "Basic b3JnOmtleQ=="


# -- ids and keys are validated before any request ----------------------------------------------


@pytest.mark.parametrize(
    "sync_id", ["../../api/webhooks", "x/../y", f"{SYNC}/../../webhooks", f"{SYNC}?x=1", "", SYNC + " "]
)
def test_non_uuid_sync_ids_raise_before_any_request(h: Harness, sync_id: str) -> None:
    client = h.client()
    with pytest.raises(ValueError, match="is not a UUID"):
        client.start("model", sync_id, {}, idempotency_key=KEY)
    with pytest.raises(ValueError, match="is not a UUID"):
        client.set_active("bulk", sync_id, True)
    with pytest.raises(ValueError, match="is not a UUID"):
        client.active("model", sync_id)
    assert h.server.requests == []
    assert h.provider.calls == []


def test_unknown_sync_type_raises_before_any_request(h: Harness) -> None:
    with pytest.raises(ValueError, match="unknown sync type 'elt'"):
        h.client().start("elt", SYNC, {}, idempotency_key=KEY)
    assert h.server.requests == []


@pytest.mark.parametrize("key", ["short", "has space in it", "slash/inside/key", "x" * 256, "ünïcödé-key"])
def test_invalid_idempotency_keys_raise_before_any_request(h: Harness, key: str) -> None:
    with pytest.raises(ValueError, match="Idempotency-Key must be 8-255"):
        h.client().start("model", SYNC, {}, idempotency_key=key)
    assert h.server.requests == []


# -- error mapping ------------------------------------------------------------------------------


def test_409_already_running_is_not_retried(h: Harness) -> None:
    h.server.reply(Reply(409, {"status": 409, "message": "sync is already running", "key": "conflict"}))
    with pytest.raises(AlreadyRunning) as caught:
        h.client().start("bulk", SYNC, {}, idempotency_key=KEY)
    assert (
        str(caught.value) == f"POST /api/bulk/syncs/{SYNC}/executions: Polytomic answered 409: sync is already running"
    )
    assert (caught.value.status, caught.value.key) == (409, "conflict")
    assert len(h.server.requests) == 1
    assert h.pauses == []


def test_409_idempotency_key_in_flight_is_retried_with_the_same_key(h: Harness) -> None:
    in_flight = {"status": 409, "message": "a request with this Idempotency-Key is still being processed"}
    h.server.reply(Reply(409, in_flight), Reply(200, CREATED))
    assert h.client().start("model", SYNC, {}, idempotency_key=KEY).id == EXECUTION
    assert [r.headers["Idempotency-Key"] for r in h.server.requests] == [KEY, KEY]
    assert len(h.pauses) == 1


def test_409_idempotency_key_in_flight_until_attempts_run_out(h: Harness) -> None:
    in_flight = {"status": 409, "message": "conflict", "key": "idempotency_key_in_flight"}
    h.server.reply(*[Reply(409, in_flight)] * 3)
    with pytest.raises(KeyInFlight):
        h.client(attempts=3).start("model", SYNC, {}, idempotency_key=KEY)
    assert len(h.server.requests) == 3
    assert len(h.pauses) == 2


def test_401_refetches_credentials_once_and_retries_once(h: Harness) -> None:
    h.server.reply(Reply(401, {"status": 401, "message": "unauthorized"}), Reply(200, CREATED))
    assert h.client().start("model", SYNC, {}, idempotency_key=KEY).id == EXECUTION
    assert h.provider.calls.count(True) == 1
    assert h.provider.calls == [False, True]  # the retry sends what the re-read returned
    assert [r.headers["Authorization"] for r in h.server.requests] == ["Bearer old-key", "Bearer new-key"]
    assert [r.headers["Idempotency-Key"] for r in h.server.requests] == [KEY, KEY]
    assert h.pauses == []


def test_401_twice_is_unauthorized(h: Harness) -> None:
    h.server.reply(Reply(401, {"message": "bad key"}), Reply(401, {"message": "bad key"}), Reply(200, CREATED))
    with pytest.raises(Unauthorized) as caught:
        h.client().set_active("model", SYNC, True)
    assert caught.value.status == 401
    assert "old-key" not in str(caught.value)
    assert "new-key" not in str(caught.value)
    assert len(h.server.requests) == 2
    assert h.provider.calls.count(True) == 1


class StaticProvider:
    """A secret that stays wrong until the test changes it."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.authorization = "Bearer wrong-key"

    def __call__(self, refresh: bool = False) -> Credentials:
        self.calls.append(refresh)
        return Credentials(scheme="api_key", authorization=self.authorization)


def test_a_refused_key_is_not_sent_again_and_the_secret_is_rechecked_sparingly(h: Harness) -> None:
    provider = StaticProvider()
    h.provider = provider  # type: ignore[assignment]
    client = h.client()
    h.server.reply(Reply(401, {"message": "unauthorized"}), Reply(401, {"message": "unauthorized"}))
    with pytest.raises(Unauthorized, match=r"\(still after re-reading the secret\)$"):
        client.set_active("model", SYNC, True)
    assert len(h.server.requests) == 2

    for _ in range(5):  # further actions: no request; one forced re-read, then none within the window
        with pytest.raises(Unauthorized, match="not calling until the secret changes"):
            client.set_active("model", SYNC, True)
    assert len(h.server.requests) == 2
    assert provider.calls.count(True) == 2  # the refresh after the 401, and one recheck

    provider.authorization = "Bearer fixed-key"  # the secret is fixed ...
    h.now[0] += 11  # ... and the recheck window has passed
    h.server.reply(Reply(200, {"data": {"id": SYNC, "active": True}}))
    assert client.set_active("model", SYNC, True) is True
    assert h.server.requests[-1].headers["Authorization"] == "Bearer fixed-key"


def test_a_refused_key_is_tried_again_after_a_minute(h: Harness) -> None:
    provider = StaticProvider()
    h.provider = provider  # type: ignore[assignment]
    client = h.client()
    h.server.reply(Reply(401, {}), Reply(401, {}))
    with pytest.raises(Unauthorized):
        client.set_active("model", SYNC, True)
    h.now[0] += 61
    h.server.reply(Reply(200, {"data": {"id": SYNC, "active": True}}))
    assert client.set_active("model", SYNC, True) is True
    assert len(h.server.requests) == 3


THREADS = 8


def _all_in_flight_with(key: str, then: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
    """Hold every request made with `key` until THREADS of them are in flight, and refuse them all."""
    gate = threading.Barrier(THREADS)

    def choose(request: Request) -> Reply:
        if request.headers["Authorization"] == key:
            gate.wait(10)
            return Reply(401, {"message": "unauthorized"})
        return then(request)

    return choose


def test_threads_refused_with_a_rotated_key_share_one_reread(h: Harness) -> None:
    h.server.decide(_all_in_flight_with("Bearer old-key", then=lambda _request: Reply(200, ACTIVE)))
    client = h.client()

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda _: client.set_active("model", SYNC, True), range(THREADS)))

    assert answers == [True] * THREADS
    assert h.provider.calls.count(True) == 1  # one Secrets Manager read for the whole fan-out
    keys = sorted(request.headers["Authorization"] for request in h.server.requests)
    assert keys == ["Bearer new-key"] * THREADS + ["Bearer old-key"] * THREADS  # each call refused once, retried once


def test_threads_refused_with_a_key_that_stays_wrong_stop_calling(h: Harness) -> None:
    provider = StaticProvider()
    h.provider = provider  # type: ignore[assignment]
    h.server.decide(_all_in_flight_with("Bearer wrong-key", then=lambda _request: Reply(599, {})))
    client = h.client()

    def act(_: int) -> str:
        with pytest.raises(Unauthorized) as raised:
            client.set_active("model", SYNC, True)
        return str(raised.value)

    with ThreadPoolExecutor(THREADS) as pool:
        reasons = list(pool.map(act, range(THREADS)))

    assert len(reasons) == THREADS
    assert provider.calls.count(True) <= 2  # the shared re-read, and at most one recheck
    assert THREADS < len(h.server.requests) <= 2 * THREADS  # in flight once, then at most one retry each
    sent = len(h.server.requests)
    with pytest.raises(Unauthorized, match="not calling until the secret changes"):
        client.set_active("model", SYNC, True)
    assert len(h.server.requests) == sent


def test_a_credentials_error_while_refreshing_propagates(h: Harness) -> None:
    def provider(refresh: bool = False) -> Credentials:
        if refresh:
            raise CredentialsError("cannot read the Polytomic secret 'x' from Secrets Manager: AccessDenied")
        return Credentials("api_key", "Bearer k")

    h.server.reply(Reply(401, {}))
    client = PolytomicClient(h.server.url, "2025-09-18", provider, sleep=h.pauses.append)
    with pytest.raises(CredentialsError, match="AccessDenied"):
        client.start("model", SYNC, {}, idempotency_key=KEY)
    assert len(h.server.requests) == 1


@pytest.mark.parametrize("status", [400, 403, 404, 405, 422])
def test_configuration_errors_are_rejected_without_retry(h: Harness, status: int) -> None:
    h.server.reply(
        Reply(status, {"status": status, "message": "no such sync", "key": "not_found"}), Reply(200, CREATED)
    )
    with pytest.raises(Rejected) as caught:
        h.client().start("model", SYNC, {}, idempotency_key=KEY)
    assert str(caught.value) == f"POST /api/syncs/{SYNC}/executions: Polytomic answered {status}: no such sync"
    assert caught.value.status == status
    assert len(h.server.requests) == 1
    assert h.pauses == []
    assert h.provider.calls == [False]


def test_500_is_a_server_error_without_retry(h: Harness) -> None:
    h.server.reply(Reply(500, {"status": 500, "message": "internal error"}), Reply(200, CREATED))
    with pytest.raises(ServerError) as caught:
        h.client().start("model", SYNC, {}, idempotency_key=KEY)
    assert caught.value.status == 500
    assert len(h.server.requests) == 1
    assert h.pauses == []


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_transient_statuses_are_retried_up_to_the_policy_then_raise(h: Harness, status: int) -> None:
    h.server.reply(*[Reply(status, "upstream trouble")] * 4)
    with pytest.raises(Transient) as caught:
        h.client(attempts=3).start("model", SYNC, {}, idempotency_key=KEY)
    assert caught.value.status == status
    assert len(h.server.requests) == 3
    assert len(h.pauses) == 2
    assert all(0 <= pause <= 5.0 for pause in h.pauses)
    assert {r.headers["Idempotency-Key"] for r in h.server.requests} == {KEY}


def test_unknown_5xx_is_transient(h: Harness) -> None:
    h.server.reply(Reply(599, "weird"))
    with pytest.raises(Transient):
        h.client(attempts=1).active("model", SYNC)


def test_a_transient_answer_then_success(h: Harness) -> None:
    h.server.reply(Reply(503, ""), Reply(502, "<html>bad gateway</html>"), Reply(200, CREATED))
    assert h.client(attempts=3).start("model", SYNC, {}, idempotency_key=KEY).id == EXECUTION
    assert len(h.server.requests) == 3
    assert len(h.pauses) == 2


def test_one_attempt_means_no_retry(h: Harness) -> None:
    h.server.reply(Reply(503, ""), Reply(200, CREATED))
    with pytest.raises(Transient):
        h.client(attempts=1).start("model", SYNC, {}, idempotency_key=KEY)
    assert len(h.server.requests) == 1
    assert h.pauses == []


@pytest.mark.parametrize(("header", "pause"), [("7", 7.0), ("2.5", 2.5), ("3600", 60.0)])
def test_retry_after_is_honoured(h: Harness, header: str, pause: float) -> None:
    h.server.reply(Reply(429, {"message": "slow down"}, {"Retry-After": header}), Reply(200, CREATED))
    h.client().start("model", SYNC, {}, idempotency_key=KEY)
    assert h.pauses == [pause]


@pytest.mark.parametrize("header", ["soon", "Wed, 21 Oct 2015 07:28:00 GMT", "-5"])
def test_an_unusable_retry_after_falls_back_to_backoff(h: Harness, header: str) -> None:
    h.server.reply(Reply(503, "", {"Retry-After": header}), Reply(200, CREATED))
    h.client().start("model", SYNC, {}, idempotency_key=KEY)
    [pause] = h.pauses
    assert 0 <= pause <= 0.4


def test_retry_after_is_exposed_on_the_final_error(h: Harness) -> None:
    h.server.reply(Reply(429, "", {"Retry-After": "9"}))
    with pytest.raises(Throttled) as caught:  # a Transient the dispatch policy can defer for that long
        h.client(attempts=1).start("model", SYNC, {}, idempotency_key=KEY)
    assert caught.value.retry_after == 9.0


def test_only_a_429_is_throttled(h: Harness) -> None:
    h.server.reply(Reply(503, "", {"Retry-After": "9"}))
    with pytest.raises(Transient) as caught:
        h.client(attempts=1).start("model", SYNC, {}, idempotency_key=KEY)
    assert not isinstance(caught.value, Throttled)


def test_the_deadline_stops_retries_early(h: Harness) -> None:
    h.server.reply(Reply(503, "", {"Retry-After": "5"}), Reply(200, CREATED))
    with pytest.raises(Transient):
        h.client(attempts=5).start("model", SYNC, {}, idempotency_key=KEY, deadline=h.now[0] + 4.0)
    assert len(h.server.requests) == 1
    assert h.pauses == []


def test_a_deadline_with_room_allows_the_retry(h: Harness) -> None:
    h.server.reply(Reply(503, "", {"Retry-After": "5"}), Reply(200, CREATED))
    h.client(attempts=5).start("model", SYNC, {}, idempotency_key=KEY, deadline=h.now[0] + 30.0)
    assert len(h.server.requests) == 2
    assert h.pauses == [5.0]


def test_a_read_timeout_is_transient(h: Harness) -> None:
    h.server.reply(Reply(hang=True), Reply(hang=True))
    with pytest.raises(Transient) as caught:
        h.client(attempts=2, read_timeout=0.05).start("model", SYNC, {}, idempotency_key=KEY)
    assert "no answer from Polytomic" in str(caught.value)
    assert "Timeout" in str(caught.value)
    assert len(h.server.requests) == 2
    assert len(h.pauses) == 1


def test_a_dropped_connection_is_transient(h: Harness) -> None:
    h.server.reply(Reply(drop=True), Reply(200, CREATED))
    assert h.client(attempts=2).start("model", SYNC, {}, idempotency_key=KEY).id == EXECUTION
    assert len(h.server.requests) == 2


def test_connection_refused_is_transient(h: Harness) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = PolytomicClient(
        f"http://127.0.0.1:{port}",
        "2025-09-18",
        h.provider,
        retry=RetryPolicy(attempts=3),
        sleep=h.pauses.append,
        clock=lambda: 0.0,
    )
    with pytest.raises(Transient) as caught:
        client.start("model", SYNC, {}, idempotency_key=KEY)
    assert str(caught.value).startswith(f"POST /api/syncs/{SYNC}/executions: no answer from Polytomic (")
    assert len(h.pauses) == 2


# -- error bodies are parsed defensively --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message", "key"),
    [
        (
            {"status": 404, "message": "sync not found", "key": "not_found", "metadata": {}},
            "sync not found",
            "not_found",
        ),
        ({"error": {"message": "legacy shape"}}, "legacy shape", None),
        ({"error": "plain error string"}, "plain error string", None),
        ({"errors": ["first", "second"]}, "first; second", None),
        ({"message": 5, "key": 7}, "no message", None),
        ({}, "no message", None),
        (["a", "list"], '["a", "list"]', None),
        ("Bad Request: nope", "Bad Request: nope", None),
        ("<html><body>404</body></html>", "<html><body>404</body></html>", None),
        ("", "empty body", None),
        (b"\xff\xfe broken utf-8", "\ufffd\ufffd broken utf-8", None),
        ({"message": "x" * 1000}, "x" * 300, None),
    ],
)
def test_error_bodies_are_parsed_defensively(h: Harness, body: Any, message: str, key: str | None) -> None:
    h.server.reply(Reply(404, body))
    with pytest.raises(Rejected) as caught:
        h.client().start("model", SYNC, {}, idempotency_key=KEY)
    assert str(caught.value) == f"POST /api/syncs/{SYNC}/executions: Polytomic answered 404: {message}"
    assert caught.value.key == key


# -- RetryPolicy --------------------------------------------------------------------------------


@given(
    st.integers(min_value=0, max_value=60),
    st.one_of(st.none(), st.floats(min_value=0, max_value=60)),
    st.floats(min_value=0.001, max_value=2),
    st.floats(min_value=0.001, max_value=30),
)
def test_retry_policy_delay_is_within_the_cap_and_at_least_retry_after(
    attempt: int, retry_after: float | None, base: float, cap: float
) -> None:
    policy = RetryPolicy(attempts=3, base_delay=base, max_delay=cap)
    delay = policy.delay(attempt, retry_after)
    ceiling = min(cap, base * 2**attempt)
    assert delay >= (retry_after or 0.0)
    assert 0 <= delay <= max(ceiling, retry_after or 0.0)
    if retry_after is None:
        assert delay <= cap


def test_retry_policy_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.attempts, policy.base_delay, policy.max_delay) == (3, 0.2, 5.0)
    assert all(0 <= policy.delay(attempt, None) <= 5.0 for attempt in range(20))


def test_a_sync_id_with_a_trailing_newline_is_refused_before_any_request() -> None:
    from polytrigger.polytomic.contract import sync_path

    with pytest.raises(ValueError, match="is not a UUID"):
        sync_path("model", "248df4b7-aa70-47b8-a036-33ac447e668d\n")
