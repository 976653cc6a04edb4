"""Properties of the Polytomic client's URLs: no sync id can move a request off `/api/syncs/{uuid}/...`.

For any text as a sync id (and any text as a sync type), `start`, `set_active` and `status` either raise
ValueError before any request is made, or request exactly the documented path for that UUID. A stub
urllib3 pool records every URL the client asks for; one loopback server check confirms what actually
reaches the wire for the classic traversal attempts.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import urllib3
from hypothesis import example, given, settings
from hypothesis import strategies as st

from polytrigger.polytomic.client import PolytomicClient
from polytrigger.polytomic.contract import UnreadableAnswer
from polytrigger.polytomic.credentials import Credentials

BASE = "https://polytomic.example"
SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
KEY = "k" * 64
UUID_SHAPE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
BASES = {"model": "/api/syncs", "bulk": "/api/bulk/syncs"}
HOSTILE_IDS = [
    "../../api/webhooks",
    f"{SYNC}/../x",
    f"{SYNC}/../../webhooks",
    f"{SYNC}/../../../api/webhooks",
    f"{SYNC}?x=1",
    f"{SYNC}#x",
    f"{SYNC}\n",
    f"{SYNC}\r\nX-Injected: 1",
    f"{SYNC} HTTP/1.1",
    f"{SYNC}%2F..%2F..",
    "%2e%2e/%2e%2e/api/webhooks",
    SYNC.replace("-", "/"),
    SYNC.replace("4", "\u0664"),  # a unicode digit: \d would take it, [0-9] must not
    SYNC.replace("a", "\uff41"),  # a fullwidth letter
    f"{{{SYNC}}}",
    f"urn:uuid:{SYNC}",
    SYNC.replace("-", ""),
    "",
    "..",
    "/",
]


class RecordingPool:
    """Stands in for urllib3.PoolManager: records each request and answers 200 with an execution."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def request(self, method: str, url: str, body: bytes | None = None, **_: Any) -> urllib3.BaseHTTPResponse:
        self.requests.append((method, url))
        asked = json.loads(body).get("active", True) if body else True  # an activation answers what it was asked
        body = json.dumps({"data": {"id": "e1", "status": "created", "active": asked}}).encode()
        return urllib3.HTTPResponse(body=body, status=200, headers={"Content-Type": "application/json"})


def credentials(_refresh: bool) -> Credentials:
    return Credentials(scheme="api_key", authorization="Bearer test")


def client(pool: Any, base_url: str = BASE) -> PolytomicClient:
    return PolytomicClient(base_url, "2025-09-18", credentials, http=cast(urllib3.PoolManager, pool))


Operation = Callable[[PolytomicClient, str, str], object]
OPERATIONS: dict[str, tuple[str, str, Operation]] = {
    "start": ("POST", "executions", lambda c, t, i: c.start(t, i, {}, idempotency_key=KEY)),
    "activate": ("POST", "activate", lambda c, t, i: c.set_active(t, i, True, idempotency_key=KEY)),
    "deactivate": ("POST", "activate", lambda c, t, i: c.set_active(t, i, False)),
    "active": ("GET", "", lambda c, t, i: c.active(t, i)),  # the sync itself: GET {base}/{id}
}

uuids = st.uuids().map(str)
sync_ids = (
    st.text(max_size=60)
    | st.sampled_from(HOSTILE_IDS)
    | uuids
    | uuids.map(str.upper)
    | st.builds(lambda u, pre, post: pre + u + post, uuids, st.text(max_size=8), st.text(max_size=8))
    | st.builds(lambda u, i, ch: u[:i] + ch + u[i + 1 :], uuids, st.integers(0, 35), st.characters())
)


def check(sync_type: str, sync_id: str, operation: str) -> None:
    method, tail, call = OPERATIONS[operation]
    pool = RecordingPool()
    try:
        call(client(pool), sync_type, sync_id)
    except ValueError:
        assert pool.requests == []  # refused before anything went out
        assert not (sync_type in BASES and UUID_SHAPE.fullmatch(sync_id)), "a valid UUID was refused"
        return
    assert UUID_SHAPE.fullmatch(sync_id), f"requested with a non-UUID id {sync_id!r}"
    assert pool.requests == [(method, f"{BASE}{BASES[sync_type]}/{sync_id}" + (f"/{tail}" if tail else ""))]
    parts = urlsplit(pool.requests[0][1])
    assert (parts.query, parts.fragment) == ("", "")
    assert parts.path.split("/")[: -2 if tail else -1] == BASES[sync_type].split("/")
    assert ".." not in parts.path.split("/")


@settings(max_examples=400, deadline=None)
@given(sync_id=sync_ids, sync_type=st.sampled_from(sorted(BASES)), operation=st.sampled_from(sorted(OPERATIONS)))
@example(sync_id="../../api/webhooks", sync_type="model", operation="start")
@example(sync_id=f"{SYNC}/../x", sync_type="bulk", operation="start")
@example(sync_id=f"{SYNC}\n", sync_type="model", operation="activate")
@example(sync_id=SYNC.upper(), sync_type="bulk", operation="active")
def test_any_sync_id_is_refused_or_requests_exactly_its_path(sync_id: str, sync_type: str, operation: str) -> None:
    check(sync_type, sync_id, operation)


@settings(max_examples=100, deadline=None)
@given(sync_type=st.text(max_size=20) | st.sampled_from(["Model", "bulk ", "../api", "model/..", ""]))
def test_an_unknown_sync_type_is_refused_before_any_request(sync_type: str) -> None:
    if sync_type in BASES:
        return
    for operation in OPERATIONS:
        pool = RecordingPool()
        with pytest.raises(ValueError, match="unknown sync type"):
            OPERATIONS[operation][2](client(pool), sync_type, SYNC)
        assert pool.requests == []


@pytest.mark.parametrize("sync_id", HOSTILE_IDS)
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_hostile_id_is_refused_by_every_operation(sync_id: str, operation: str) -> None:
    for sync_type in BASES:
        pool = RecordingPool()
        with pytest.raises(ValueError, match="is not a UUID"):
            OPERATIONS[operation][2](client(pool), sync_type, sync_id)
        assert pool.requests == []


# -- on the wire --------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    paths: list[str]

    def _answer(self) -> None:
        self.paths.append(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b'{"data": {"id": "e1", "status": "created"}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[str, list[str]]]:
    paths: list[str] = []
    handler = type("Recorder", (_Recorder,), {"paths": paths})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()


def test_what_reaches_the_server_is_only_ever_a_uuid_path(loopback: tuple[str, list[str]]) -> None:
    url, paths = loopback
    real = client(urllib3.PoolManager(retries=False), base_url=url)
    for sync_id in [*HOSTILE_IDS, SYNC, SYNC.upper()]:
        for sync_type in BASES:
            for operation in OPERATIONS:
                try:
                    OPERATIONS[operation][2](real, sync_type, sync_id)
                except (ValueError, UnreadableAnswer):  # refused before sending; or sent (and recorded)
                    continue
    tails = {tail for _, tail, _ in OPERATIONS.values()}
    expected = {
        f"{BASES[t]}/{i}" + (f"/{tail}" if tail else "") for t in BASES for i in (SYNC, SYNC.upper()) for tail in tails
    }
    assert paths
    assert set(paths) == expected
