"""The fake Polytomic API over real HTTP: the documented contract, faults, and the official SDK as a check.

These tests use their own FakePolytomic (no AWS emulators needed) and urllib3
with retries disabled, so every status the fake sends is seen as sent.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import polytomic
import pytest
import urllib3
from polytomic.errors import ConflictError
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from local.polytomic import SUPPORTED_VERSIONS, FakePolytomic
from local.stack.dynamodb_local import port_open

API_KEY = "test-api-key-0001"
ORG_ID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"  # fixed: test ids built from it must be the same in every xdist worker
DEPLOYMENT_KEY = "deployment-key-0001"
VERSION = "2025-09-18"
UNAUTHORIZED = {"status": 401, "message": "unauthorized", "key": "unauthorized", "metadata": {}}
_NO_BODY: Any = object()


@pytest.fixture(scope="module")
def server() -> Iterator[FakePolytomic]:
    with FakePolytomic(api_keys=[API_KEY], deployment_keys=[(ORG_ID, DEPLOYMENT_KEY)]) as fake:
        yield fake


@pytest.fixture
def api(server: FakePolytomic) -> FakePolytomic:
    """The module's fake, reset before each test."""
    server.reset()
    return server


@pytest.fixture(scope="module")
def pool() -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5.0, read=30.0))
    yield manager
    manager.clear()


@pytest.fixture
def sdk(api: FakePolytomic) -> polytomic.Polytomic:
    """The official SDK pointed at the fake, with its own retries off (it retries 409/429/5xx)."""
    return polytomic.Polytomic(base_url=api.url, token=API_KEY, version=VERSION, max_retries=0, timeout=30)


def send(
    pool: urllib3.PoolManager,
    fake: FakePolytomic,
    method: str,
    path: str,
    body: Any = _NO_BODY,
    *,
    auth: str | None = f"Bearer {API_KEY}",
    version: str | None = VERSION,
    idempotency_key: str | None = None,
    timeout: float | None = None,
) -> urllib3.BaseHTTPResponse:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    if version is not None:
        headers["X-Polytomic-Version"] = version
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if body is _NO_BODY:
        payload = None
    elif isinstance(body, bytes):
        payload = body
    else:
        payload = json.dumps(body).encode()
    return pool.request(
        method,
        fake.url + path,
        body=payload,
        headers=headers,
        timeout=urllib3.Timeout(connect=5.0, read=timeout) if timeout else None,
    )


def data(response: urllib3.BaseHTTPResponse) -> Any:
    return json.loads(response.data)


def start_path(sync_id: str, kind: str = "model") -> str:
    return f"/api/{'bulk/' if kind == 'bulk' else ''}syncs/{sync_id}/executions"


def basic(org: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{org}:{key}".encode()).decode()


# -- authentication --------------------------------------------------------------------------


def test_bearer_api_key_is_accepted(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    response = send(pool, api, "GET", "/api/me")
    assert response.status == 200
    assert data(response)["data"]["organization_id"] == api.organization_id
    assert data(response)["data"]["credential"] == {"method": "api_key"}


def test_basic_deployment_key_is_accepted(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync()
    response = send(pool, api, "POST", start_path(sync_id), auth=basic(ORG_ID, DEPLOYMENT_KEY))
    assert response.status == 200
    assert data(response)["data"]["id"] == api.executions(sync_id)[0].id


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Bearer wrong-key",
        f"Bearer {API_KEY}x",
        API_KEY,
        f"Token {API_KEY}",
        basic(ORG_ID, "wrong-key"),
        basic("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", DEPLOYMENT_KEY),  # another organisation
        "Basic not-base64!!",
        f"Basic {base64.b64encode(API_KEY.encode()).decode()}",
    ],
)
def test_bad_credentials_get_401(api: FakePolytomic, pool: urllib3.PoolManager, auth: str | None) -> None:
    sync_id = api.add_sync()
    response = send(pool, api, "POST", start_path(sync_id), auth=auth)
    assert response.status == 401
    assert data(response) == UNAUTHORIZED
    assert api.executions(sync_id) == []


def test_rotated_key_gets_401_and_the_new_key_works(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    api.set_api_keys(["rotated-key-0002"])
    assert send(pool, api, "GET", "/api/me").status == 401
    assert send(pool, api, "GET", "/api/me", auth="Bearer rotated-key-0002").status == 200


# -- version header and envelopes -------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_supported_versions_are_accepted_and_echoed(
    api: FakePolytomic, pool: urllib3.PoolManager, version: str
) -> None:
    response = send(pool, api, "GET", "/api/me", version=version)
    assert response.status == 200
    assert response.headers["X-Polytomic-Version"] == version


def test_missing_version_header_is_400(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    response = send(pool, api, "GET", "/api/me", version=None)
    assert response.status == 400
    assert "X-Polytomic-Version" in data(response)["message"]
    assert "X-Polytomic-Version" not in response.headers


@pytest.mark.parametrize("version", ["2025-09-19", "2024-01-01", "latest", ""])
def test_unknown_version_is_400_and_echoed(api: FakePolytomic, pool: urllib3.PoolManager, version: str) -> None:
    sync_id = api.add_sync()
    response = send(pool, api, "POST", start_path(sync_id), version=version)
    assert response.status == 400
    assert set(data(response)) == {"status", "message", "key", "metadata"}
    if version:
        assert response.headers["X-Polytomic-Version"] == version
    assert api.executions(sync_id) == []


def test_unknown_sync_is_404(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    for kind in ("model", "bulk"):
        response = send(pool, api, "POST", start_path(str(uuid.uuid4()), kind))
        assert response.status == 404
        assert data(response)["status"] == 404
        assert set(data(response)) == {"status", "message", "key", "metadata"}


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "248df4b7aa70"])
def test_non_uuid_sync_id_is_404(api: FakePolytomic, pool: urllib3.PoolManager, bad_id: str) -> None:
    assert send(pool, api, "POST", start_path(bad_id)).status == 404
    assert send(pool, api, "GET", f"/api/bulk/syncs/{bad_id}/status").status == 404


def test_sync_of_the_other_kind_is_404(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    model, bulk = api.add_sync(kind="model"), api.add_sync(kind="bulk")
    assert send(pool, api, "POST", start_path(model, "bulk")).status == 404
    assert send(pool, api, "POST", start_path(bulk, "model")).status == 404


def test_unknown_path_and_wrong_method(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync()
    assert send(pool, api, "GET", "/api/nothing-here").status == 404
    assert send(pool, api, "DELETE", start_path(sync_id)).status == 405


# -- model starts -----------------------------------------------------------------------------


def test_model_start_returns_the_execution_in_a_data_envelope(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync(kind="model")
    response = send(pool, api, "POST", start_path(sync_id), {"resync": True, "identities": ["a@example.com"]})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    execution = data(response)["data"]
    assert uuid.UUID(execution["id"])
    assert execution["status"] == "created"
    assert set(execution) >= {"id", "status", "type", "created_at", "started_at", "completed_at", "errors", "counts"}
    [recorded] = api.executions(sync_id)
    assert (recorded.id, recorded.options) == (execution["id"], {"resync": True, "identities": ["a@example.com"]})


@pytest.mark.parametrize("body", [_NO_BODY, {}, {"test": True}, {"identities": []}, {"resync": False}])
def test_model_start_accepts_optional_bodies(api: FakePolytomic, pool: urllib3.PoolManager, body: Any) -> None:
    sync_id = api.add_sync()
    assert send(pool, api, "POST", start_path(sync_id), body).status == 200
    assert len(api.executions(sync_id)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fetch_mode": "full"}, "fetch_mode"),
        ({"resync_mode": "refetch"}, "resync_mode"),
        ({"resync": "true"}, "resync"),
        ({"test": 1}, "test"),
        ({"identities": "a@example.com"}, "identities"),
        ({"identities": [1, 2]}, "identities"),
        ({"resync": None}, "resync"),
    ],
)
def test_model_start_rejects_bad_fields_by_name(
    api: FakePolytomic, pool: urllib3.PoolManager, body: dict[str, Any], field: str
) -> None:
    sync_id = api.add_sync()
    response = send(pool, api, "POST", start_path(sync_id), body)
    assert response.status == 400
    assert field in data(response)["message"]
    assert data(response)["metadata"] == {"field": field}
    assert api.executions(sync_id) == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"resync"'])
def test_model_start_rejects_a_body_that_is_not_a_json_object(
    api: FakePolytomic, pool: urllib3.PoolManager, raw: bytes
) -> None:
    sync_id = api.add_sync()
    assert send(pool, api, "POST", start_path(sync_id), raw).status == 400


# -- bulk starts ------------------------------------------------------------------------------


def test_bulk_start_with_current_options(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync(kind="bulk")
    body = {"fetch_mode": "incremental", "resync_mode": "refetch", "schemas": ["public.orders"]}
    response = send(pool, api, "POST", start_path(sync_id, "bulk"), body)
    assert response.status == 200
    execution = data(response)["data"]
    assert execution["status"] == "created"
    assert execution["fetch_mode"] == "incremental"
    assert api.executions(sync_id)[0].options == body
    assert api.executions(sync_id)[0].id == execution["id"]


def test_bulk_start_with_legacy_resync_under_2024_02_08(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync(kind="bulk")
    response = send(pool, api, "POST", start_path(sync_id, "bulk"), {"resync": True}, version="2024-02-08")
    assert response.status == 200
    assert api.executions(sync_id)[0].options == {"resync": True}
    assert api.executions(sync_id)[0].api_version == "2024-02-08"


@pytest.mark.parametrize(
    ("version", "body", "field"),
    [
        ("2025-09-18", {"resync": True}, "resync"),
        ("2025-09-18", {"resync": False}, "resync"),
        ("2024-02-08", {"resync_mode": "refetch"}, "resync_mode"),
        ("2025-09-18", {"test": True, "resync_mode": "rebuild"}, "test"),
        ("2025-09-18", {"fetch_mode": "sometimes"}, "fetch_mode"),
        ("2025-09-18", {"resync_mode": "everything"}, "resync_mode"),
        ("2025-09-18", {"schemas": "public.orders"}, "schemas"),
        ("2025-09-18", {"identities": ["x"]}, "identities"),
        ("2024-02-08", {"resync": "yes"}, "resync"),
    ],
)
def test_bulk_start_rejects_bad_fields_by_name(
    api: FakePolytomic, pool: urllib3.PoolManager, version: str, body: dict[str, Any], field: str
) -> None:
    sync_id = api.add_sync(kind="bulk")
    response = send(pool, api, "POST", start_path(sync_id, "bulk"), body, version=version)
    assert response.status == 400
    assert field in data(response)["message"]
    assert api.executions(sync_id) == []


# -- sync state: inactive, running, activate --------------------------------------------------


@pytest.mark.parametrize("kind", ["model", "bulk"])
def test_inactive_sync_start_is_400(api: FakePolytomic, pool: urllib3.PoolManager, kind: str) -> None:
    sync_id = api.add_sync(kind=kind, active=False)  # type: ignore[arg-type]
    response = send(pool, api, "POST", start_path(sync_id, kind))
    assert response.status == 400
    assert data(response)["key"] == "sync_inactive"
    assert data(response)["message"] == "sync is not active"
    assert api.executions(sync_id) == []


@pytest.mark.parametrize("kind", ["model", "bulk"])
def test_start_while_running_is_409_already_running(api: FakePolytomic, pool: urllib3.PoolManager, kind: str) -> None:
    sync_id = api.add_sync(kind=kind, run_seconds=3600)  # type: ignore[arg-type]
    first = send(pool, api, "POST", start_path(sync_id, kind))
    assert first.status == 200
    second = send(pool, api, "POST", start_path(sync_id, kind))
    assert second.status == 409
    assert "already running" in data(second)["message"]
    assert data(second)["key"] == "sync_already_running"
    status = data(send(pool, api, "GET", f"{start_path(sync_id, kind).removesuffix('/executions')}/status"))["data"]
    assert status["current_execution"]["id"] == data(first)["data"]["id"]
    assert status["current_execution"]["status"] == "running"
    assert api.finish_running(sync_id) == 1
    assert send(pool, api, "POST", start_path(sync_id, kind)).status == 200
    assert len(api.executions(sync_id)) == 2


def test_executions_list_is_newest_first_and_get_by_id(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync()
    ids = [data(send(pool, api, "POST", start_path(sync_id)))["data"]["id"] for _ in range(3)]
    listed = data(send(pool, api, "GET", start_path(sync_id)))
    assert [e["id"] for e in listed["data"]] == ids[::-1]
    assert listed["pagination"] == {"next_page_token": None}
    assert [e.id for e in api.executions(sync_id)] == ids
    one = send(pool, api, "GET", f"{start_path(sync_id)}/{ids[1]}")
    assert data(one)["data"]["id"] == ids[1]
    assert data(one)["data"]["status"] == "completed"
    assert send(pool, api, "GET", f"{start_path(sync_id)}/{uuid.uuid4()}").status == 404


@pytest.mark.parametrize("kind", ["model", "bulk"])
def test_activate_changes_the_active_flag(api: FakePolytomic, pool: urllib3.PoolManager, kind: str) -> None:
    sync_id = api.add_sync(kind=kind)  # type: ignore[arg-type]
    activate = f"{start_path(sync_id, kind).removesuffix('/executions')}/activate"
    paused = send(pool, api, "POST", activate, {"active": False})
    assert paused.status == 200
    assert data(paused) == {"data": {"id": sync_id, "active": False}}
    assert api.sync(sync_id).active is False
    assert send(pool, api, "POST", start_path(sync_id, kind)).status == 400
    resumed = send(pool, api, "POST", activate, {"active": True}, idempotency_key="activate-key-01")
    assert data(resumed) == {"data": {"id": sync_id, "active": True}}
    assert api.sync(sync_id).active is True
    assert send(pool, api, "POST", start_path(sync_id, kind)).status == 200


@pytest.mark.parametrize("body", [_NO_BODY, {}, {"active": "false"}, {"active": None}, {"active": True, "x": 1}])
def test_activate_requires_a_boolean_active(api: FakePolytomic, pool: urllib3.PoolManager, body: Any) -> None:
    sync_id = api.add_sync()
    response = send(pool, api, "POST", f"/api/syncs/{sync_id}/activate", body)
    assert response.status == 400
    assert api.sync(sync_id).active is True


def test_pausing_a_bulk_sync_cancels_its_running_execution(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    bulk, model = api.add_sync(kind="bulk", run_seconds=3600), api.add_sync(kind="model", run_seconds=3600)
    send(pool, api, "POST", start_path(bulk, "bulk"))
    send(pool, api, "POST", start_path(model))
    send(pool, api, "POST", f"/api/bulk/syncs/{bulk}/activate", {"active": False})
    send(pool, api, "POST", f"/api/syncs/{model}/activate", {"active": False})
    assert api.executions(bulk)[0].status == "canceled"
    assert api.executions(model)[0].status == "running"  # pausing a model sync does not cancel its run


# -- Idempotency-Key --------------------------------------------------------------------------


def test_same_key_replays_the_first_response(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync(run_seconds=3600)
    first = send(pool, api, "POST", start_path(sync_id), {"resync": True}, idempotency_key="a" * 64)
    again = send(pool, api, "POST", start_path(sync_id), {"resync": True}, idempotency_key="a" * 64)
    assert (again.status, again.data) == (first.status, first.data) == (200, again.data)
    assert len(api.executions(sync_id)) == 1
    assert api.executions(sync_id)[0].idempotency_key == "a" * 64
    assert [c.replayed for c in api.calls_to(start_path(sync_id))] == [False, True]
    # a new key is a new request: the run is still in progress
    other = send(pool, api, "POST", start_path(sync_id), {"resync": True}, idempotency_key="b" * 64)
    assert other.status == 409


def test_stored_4xx_is_replayed_even_after_the_cause_is_gone(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync(active=False)
    first = send(pool, api, "POST", start_path(sync_id), idempotency_key="inactive-key-1")
    assert first.status == 400
    api.set_active(sync_id, True)
    again = send(pool, api, "POST", start_path(sync_id), idempotency_key="inactive-key-1")
    assert (again.status, again.data) == (400, first.data)
    assert api.executions(sync_id) == []


def test_injected_500_is_stored_and_replayed(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync()
    api.inject(500, path_contains="/executions")
    first = send(pool, api, "POST", start_path(sync_id), idempotency_key="key-500-replay")
    assert first.status == 500
    assert data(first)["status"] == 500
    again = send(pool, api, "POST", start_path(sync_id), idempotency_key="key-500-replay")
    assert (again.status, again.data) == (500, first.data)
    assert api.executions(sync_id) == []
    assert api.stored_response("key-500-replay") is not None
    fresh = send(pool, api, "POST", start_path(sync_id), idempotency_key="key-500-replay-2")
    assert fresh.status == 200


def test_injected_500_with_side_effects_starts_the_sync(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync(run_seconds=3600)
    api.inject(500, side_effects=True)
    response = send(pool, api, "POST", start_path(sync_id), idempotency_key="key-500-started")
    assert response.status == 500
    assert len(api.executions(sync_id)) == 1
    status = data(send(pool, api, "GET", f"/api/syncs/{sync_id}/status"))["data"]
    assert status["current_execution"]["id"] == api.executions(sync_id)[0].id


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_proxy_faults_are_not_stored(api: FakePolytomic, pool: urllib3.PoolManager, status: int) -> None:
    sync_id = api.add_sync()
    api.inject(status)
    assert send(pool, api, "POST", start_path(sync_id), idempotency_key="proxy-fault-key").status == status
    assert api.executions(sync_id) == []
    assert api.stored_response("proxy-fault-key") is None
    retried = send(pool, api, "POST", start_path(sync_id), idempotency_key="proxy-fault-key")
    assert retried.status == 200
    assert len(api.executions(sync_id)) == 1


def test_401_is_not_stored_so_a_retry_with_a_new_key_value_works(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync()
    assert send(pool, api, "POST", start_path(sync_id), auth="Bearer old", idempotency_key="rotation-key").status == 401
    assert send(pool, api, "POST", start_path(sync_id), idempotency_key="rotation-key").status == 200


@pytest.mark.parametrize("key", ["short", "1234567", "has space in it", "dots.are.bad", "x" * 256, "ünïcode-key"])
def test_malformed_idempotency_key_is_400(api: FakePolytomic, pool: urllib3.PoolManager, key: str) -> None:
    sync_id = api.add_sync()
    response = pool.request(
        "POST",
        api.url + start_path(sync_id),
        headers={"Authorization": f"Bearer {API_KEY}", "X-Polytomic-Version": VERSION, "Idempotency-Key": key},
    )
    assert response.status == 400
    assert "Idempotency-Key" in data(response)["message"]
    assert api.executions(sync_id) == []


@pytest.mark.parametrize("key", ["12345678", "x" * 255, "A-b_0" * 4])
def test_well_formed_idempotency_keys(api: FakePolytomic, pool: urllib3.PoolManager, key: str) -> None:
    assert send(pool, api, "POST", start_path(api.add_sync()), idempotency_key=key).status == 200


def test_duplicate_while_the_first_is_in_flight_is_409(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync()
    fault = api.inject(hold=True, path_contains="/executions")
    results: list[urllib3.BaseHTTPResponse] = []
    first = threading.Thread(
        target=lambda: results.append(send(pool, api, "POST", start_path(sync_id), idempotency_key="in-flight-key"))
    )
    first.start()
    try:
        assert fault.reached.wait(10), "the first request never reached the fake"
        duplicate = send(pool, api, "POST", start_path(sync_id), idempotency_key="in-flight-key")
        assert duplicate.status == 409
        message = data(duplicate)["message"]
        assert "Idempotency-Key" in message
        assert "in progress" in message or "being processed" in message
        assert "already running" not in message
    finally:
        fault.release()
        first.join(10)
    assert [r.status for r in results] == [200]
    replay = send(pool, api, "POST", start_path(sync_id), idempotency_key="in-flight-key")
    assert (replay.status, replay.data) == (200, results[0].data)
    assert len(api.executions(sync_id)) == 1


def test_reset_releases_held_requests(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    fault = api.inject(hold=True, path_contains="/api/me")
    results: list[int] = []
    held = threading.Thread(target=lambda: results.append(send(pool, api, "GET", "/api/me").status))
    held.start()
    assert fault.reached.wait(10)
    api.reset()
    held.join(10)
    assert not held.is_alive()
    assert results == [200]


def test_reused_key_with_a_different_body_can_be_rejected(pool: urllib3.PoolManager) -> None:
    with FakePolytomic(api_keys=[API_KEY], reject_reused_keys=True) as strict:
        sync_id = strict.add_sync()
        assert (
            send(pool, strict, "POST", start_path(sync_id), {"resync": False}, idempotency_key="reuse-key").status
            == 200
        )
        again = send(pool, strict, "POST", start_path(sync_id), {"resync": False}, idempotency_key="reuse-key")
        assert again.status == 200
        other = send(pool, strict, "POST", start_path(sync_id), {"resync": True}, idempotency_key="reuse-key")
        assert other.status == 422


# -- fault injection --------------------------------------------------------------------------


def test_injected_429_with_retry_after_then_normal_service(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync()
    api.inject(429, times=2, retry_after=7)
    statuses = []
    for _ in range(3):
        response = send(pool, api, "POST", start_path(sync_id))
        statuses.append(response.status)
        if response.status == 429:
            assert response.headers["Retry-After"] == "7"
            assert data(response)["status"] == 429
    assert statuses == [429, 429, 200]
    assert [c.fault for c in api.calls] == ["status:429", "status:429", None]


def test_gateway_errors_answer_html_not_json(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    api.inject(502)
    response = send(pool, api, "GET", "/api/me")
    assert response.status == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in response.data.decode()


def test_fault_body_override(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    api.inject(500, response_body={"error": {"message": "legacy shape"}})
    response = send(pool, api, "GET", "/api/me")
    assert (response.status, data(response)) == (500, {"error": {"message": "legacy shape"}})


def test_faults_are_consumed_in_order_and_filtered(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    model, bulk = api.add_sync(), api.add_sync(kind="bulk")
    api.inject(503, path_contains="/bulk/")
    api.inject(500, method="GET")
    api.inject(504)
    assert send(pool, api, "POST", start_path(model)).status == 504  # skips the bulk-only and GET-only faults
    assert send(pool, api, "GET", "/api/me").status == 500
    assert send(pool, api, "POST", start_path(bulk, "bulk")).status == 503
    assert send(pool, api, "POST", start_path(bulk, "bulk")).status == 200
    assert api.pending_faults() == []


def test_dropped_connection(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync()
    api.inject(drop=True, path_contains="/executions")
    with pytest.raises(ProtocolError):
        send(pool, api, "POST", start_path(sync_id), idempotency_key="dropped-key-1")
    assert api.executions(sync_id) == []
    assert api.calls[-1].status == 0
    assert api.calls[-1].fault == "drop"
    assert send(pool, api, "POST", start_path(sync_id), idempotency_key="dropped-key-1").status == 200


def test_delay_causes_a_client_read_timeout_but_the_request_still_runs(
    api: FakePolytomic, pool: urllib3.PoolManager
) -> None:
    sync_id = api.add_sync(run_seconds=3600)
    fault = api.inject(delay=30.0, path_contains="/executions")
    with pytest.raises(ReadTimeoutError):
        send(pool, api, "POST", start_path(sync_id), idempotency_key="slow-request-1", timeout=0.2)
    assert fault.reached.wait(10)
    assert len(api.executions(sync_id)) == 1  # Polytomic started it; the client just never heard back
    retry = send(pool, api, "POST", start_path(sync_id), idempotency_key="slow-request-1")
    assert retry.status == 409
    assert "Idempotency-Key" in data(retry)["message"]


def test_latency_applies_to_every_call(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    api.set_latency(30.0)
    with pytest.raises(ReadTimeoutError):
        send(pool, api, "GET", "/api/me", timeout=0.2)
    api.set_latency(0)
    assert send(pool, api, "GET", "/api/me").status == 200


def test_random_faults_are_reproducible_for_a_seed(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    def run() -> list[int]:
        outcomes = []
        for _ in range(40):
            try:
                outcomes.append(send(pool, api, "GET", "/api/me").status)
            except ProtocolError:
                outcomes.append(0)
        return outcomes

    api.set_random_faults(0.5, seed=1234)
    first = run()
    api.set_random_faults(0.5, seed=1234)
    assert run() == first
    assert 200 in first
    assert set(first) - {200} <= {0, 429, 502, 503, 504}
    assert len(set(first) - {200}) >= 2
    api.set_random_faults(0)
    assert send(pool, api, "GET", "/api/me").status == 200


# -- recording ------------------------------------------------------------------------------


def test_calls_are_recorded(api: FakePolytomic, pool: urllib3.PoolManager) -> None:
    sync_id = api.add_sync()
    send(pool, api, "POST", start_path(sync_id), {"test": True}, idempotency_key="recorded-key")
    send(pool, api, "GET", f"/api/syncs/{sync_id}/status")
    [start] = api.calls_to("/executions")
    assert start.method == "POST"
    assert start.headers["idempotency-key"] == "recorded-key"
    assert start.headers["authorization"] == f"Bearer {API_KEY}"
    assert start.body == {"test": True}
    assert (start.status, start.response["data"]["id"]) == (200, api.executions(sync_id)[0].id)
    assert len(api.calls_to(lambda c: c.method == "GET")) == 1
    assert len(api.calls_to("/status", method="get")) == 1
    api.reset_calls()
    assert api.calls == []


def test_stop_closes_the_port_even_with_a_held_request(pool: urllib3.PoolManager) -> None:
    fake = FakePolytomic(api_keys=[API_KEY]).start()
    port = fake.port
    fault = fake.inject(hold=True)
    errors: list[BaseException] = []

    def held() -> None:
        try:
            send(pool, fake, "GET", "/api/me")
        except (ProtocolError, urllib3.exceptions.HTTPError) as error:
            errors.append(error)

    thread = threading.Thread(target=held)
    thread.start()
    assert fault.reached.wait(10)
    fake.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1  # the held request was dropped, not answered
    assert not port_open(port)
    assert not fake.running


# -- the official SDK against the fake --------------------------------------------------------


def test_sdk_model_start(api: FakePolytomic, sdk: polytomic.Polytomic) -> None:
    sync_id = api.add_sync(kind="model")
    started = sdk.model_sync.start(id=sync_id, resync=True, identities=["a@example.com"], idempotency_key="sdk-model-1")
    assert started.data is not None
    [execution] = api.executions(sync_id)
    assert started.data.id == execution.id
    assert started.data.status == "created"
    assert started.data.created_at is not None
    [call] = api.calls_to(start_path(sync_id))
    assert call.body == {"resync": True, "identities": ["a@example.com"]}
    assert call.headers["idempotency-key"] == "sdk-model-1"
    assert call.headers["x-polytomic-version"] == VERSION


def test_sdk_bulk_start(api: FakePolytomic, sdk: polytomic.Polytomic) -> None:
    sync_id = api.add_sync(kind="bulk")
    started = sdk.bulk_sync.start(id=sync_id, fetch_mode="full", resync_mode="rebuild", schemas=["public.users"])
    assert started.data is not None
    [execution] = api.executions(sync_id)
    assert started.data.id == execution.id
    assert started.data.status == "created"
    assert started.data.fetch_mode == "full"
    assert execution.options == {"fetch_mode": "full", "resync_mode": "rebuild", "schemas": ["public.users"]}


def test_sdk_start_without_options_sends_an_accepted_body(api: FakePolytomic, sdk: polytomic.Polytomic) -> None:
    model, bulk = api.add_sync(), api.add_sync(kind="bulk")
    assert sdk.model_sync.start(id=model).data is not None
    assert sdk.bulk_sync.start(id=bulk).data is not None
    assert len(api.executions()) == 2


@pytest.mark.parametrize("kind", ["model", "bulk"])
def test_sdk_activate_and_pause(api: FakePolytomic, sdk: polytomic.Polytomic, kind: str) -> None:
    sync_id = api.add_sync(kind=kind)  # type: ignore[arg-type]
    client = sdk.model_sync if kind == "model" else sdk.bulk_sync
    paused = client.activate(id=sync_id, active=False, idempotency_key=f"sdk-pause-{kind}")
    assert paused.data is not None
    assert (paused.data.id, paused.data.active) == (sync_id, False)
    assert api.sync(sync_id).active is False
    resumed = client.activate(id=sync_id, active=True)
    assert resumed.data is not None
    assert resumed.data.active is True
    assert api.sync(sync_id).active is True


def test_sdk_reads_status_and_executions(api: FakePolytomic, sdk: polytomic.Polytomic) -> None:
    model, bulk = api.add_sync(run_seconds=3600), api.add_sync(kind="bulk", run_seconds=3600)
    model_run = sdk.model_sync.start(id=model).data
    bulk_run = sdk.bulk_sync.start(id=bulk).data
    assert model_run is not None
    assert bulk_run is not None
    model_status = sdk.model_sync.get_status(id=model).data
    bulk_status = sdk.bulk_sync.get_status(id=bulk).data
    assert model_status is not None
    assert bulk_status is not None
    assert model_status.current_execution is not None
    assert model_status.current_execution.id == model_run.id
    assert bulk_status.current_execution is not None
    assert bulk_status.current_execution.id == bulk_run.id
    listed = sdk.model_sync.executions.list(sync_id=model).data
    assert listed is not None
    assert [e.id for e in listed] == [model_run.id]
    got = sdk.bulk_sync.executions.get(id=bulk, exec_id=str(bulk_run.id)).data
    assert got is not None
    assert got.id == bulk_run.id
    me = sdk.identity.get().data
    assert me is not None
    assert me.organization_id == api.organization_id


def test_sdk_sees_409_once_with_retries_off(api: FakePolytomic, sdk: polytomic.Polytomic) -> None:
    sync_id = api.add_sync(run_seconds=3600)
    sdk.model_sync.start(id=sync_id)
    with pytest.raises(ConflictError) as raised:
        sdk.model_sync.start(id=sync_id)
    assert "already running" in str(raised.value.body)
    assert len(api.calls_to(start_path(sync_id))) == 2
