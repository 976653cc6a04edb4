"""The fake Polytomic API's resources and endpoint logic, without any HTTP.

What it models (see docs ``polytomic-api.md``): model and bulk syncs with an
active flag, their executions (newest first in lists), the start rules (only
active syncs run; 409 while an execution is in progress; strict, version-aware
request bodies so a client bug shows up as a 400 here rather than in
production), activate/pause, status and cancel. Auth, the version header,
``Idempotency-Key`` handling and faults live in ``fake_polytomic``.

An execution is "in progress" for ``run_seconds`` after it was created (the
sync's setting), unless a test sets its status explicitly with
``FakeApi.set_execution_status`` / ``finish_running``, which is how tests
avoid depending on time.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

SUPPORTED_VERSIONS: tuple[str, ...] = ("2025-09-18", "2024-02-08", "2023-04-25", "2022-12-12", "2021-05-23")
LATEST_VERSION = SUPPORTED_VERSIONS[0]

SyncKind = Literal["model", "bulk"]

#: Statuses of an execution that has not finished; a start meanwhile gets 409.
ACTIVE_STATUSES: frozenset[str] = frozenset(
    {"created", "scheduled", "queued", "waiting", "running", "processing", "canceling", "exporting"}
)
FETCH_MODES = ("none", "incremental", "full")
RESYNC_MODES = ("refetch", "resync", "rebuild")


def error_body(status: int, key: str, message: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Polytomic's current error shape."""
    return {"status": status, "message": message, "key": key, "metadata": metadata or {}}


class ApiError(Exception):
    """An error answer of the API; ``body`` is the JSON error object."""

    def __init__(self, status: int, key: str, message: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(status, key, message, metadata)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def iso(moment: dt.datetime | None) -> str | None:
    """RFC 3339 UTC timestamp with a ``Z``, as Polytomic writes them."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class SyncRecord:
    """A registered sync (internal, mutable; guarded by ``FakeApi``'s lock)."""

    id: str
    kind: SyncKind
    active: bool
    run_seconds: float
    name: str


@dataclass(frozen=True)
class Execution:
    """A snapshot of one execution as the fake recorded it (for test assertions)."""

    id: str
    sync_id: str
    kind: SyncKind
    status: str
    options: dict[str, Any]
    created_at: dt.datetime
    idempotency_key: str | None
    api_version: str


@dataclass
class _ExecutionRecord:
    id: str
    sync_id: str
    kind: SyncKind
    options: dict[str, Any]
    created_at: dt.datetime
    created_mono: float
    run_seconds: float
    idempotency_key: str | None
    api_version: str
    status_override: str | None = None
    finished_at: dt.datetime | None = None

    def status(self, now: float) -> str:
        if self.status_override is not None:
            return self.status_override
        return "running" if now - self.created_mono < self.run_seconds else "completed"

    def completed_at(self, now: float) -> dt.datetime | None:
        if self.status(now) in ACTIVE_STATUSES:
            return None
        if self.finished_at is not None:
            return self.finished_at
        return self.created_at + dt.timedelta(seconds=self.run_seconds)

    def render(self, now: float, status: str | None = None) -> dict[str, Any]:
        """The API's execution object; ``status`` forces it (a start answers ``created``)."""
        shown = status or self.status(now)
        started = None if shown == "created" else self.created_at
        completed = None if status else self.completed_at(now)
        common = {
            "id": self.id,
            "status": shown,
            "type": "manual",
            "created_at": iso(self.created_at),
            "started_at": iso(started),
            "completed_at": iso(completed),
        }
        if self.kind == "model":
            return {
                **common,
                "errors": [],
                "counts": {"insert": 0, "update": 0, "delete": 0, "error": 0, "total": 0, "upserts": 0, "warnings": 0},
            }
        return {
            **common,
            "updated_at": iso(completed or started or self.created_at),
            "fetch_mode": self.options.get("fetch_mode"),
            "is_resync": bool(self.options.get("resync_mode") or self.options.get("resync")),
            "is_test": bool(self.options.get("test", False)),
            "is_partial": bool(self.options.get("schemas")),
            "schemas": [],
            "record_count": 0,
            "error_count": 0,
            "warning_count": 0,
            "status_message": None,
        }

    def snapshot(self, now: float) -> Execution:
        return Execution(
            id=self.id,
            sync_id=self.sync_id,
            kind=self.kind,
            status=self.status(now),
            options=dict(self.options),
            created_at=self.created_at,
            idempotency_key=self.idempotency_key,
            api_version=self.api_version,
        )


@dataclass(frozen=True)
class Request:
    """What the endpoint logic needs from an authenticated, version-checked HTTP request."""

    method: str
    path: str
    body: bytes
    version: str
    credential: Literal["api_key", "deployment_key"]
    idempotency_key: str | None = None


_SCOPE = r"/api/(?P<scope>syncs|bulk/syncs)/(?P<sync_id>[^/]+)"
_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(r"/api/me"), {"GET": "me"}),
    (re.compile(_SCOPE), {"GET": "get_sync"}),
    (re.compile(_SCOPE + r"/executions"), {"POST": "start", "GET": "list_executions"}),
    (re.compile(_SCOPE + r"/executions/(?P<exec_id>[^/]+)"), {"GET": "get_execution"}),
    (re.compile(_SCOPE + r"/activate"), {"POST": "activate"}),
    (re.compile(_SCOPE + r"/status"), {"GET": "status"}),
    (re.compile(_SCOPE + r"/cancel"), {"POST": "cancel"}),
]


def route(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The endpoint name and path parameters for a request; ApiError 404/405 otherwise."""
    for pattern, methods in _ROUTES:
        found = pattern.fullmatch(path)
        if found is None:
            continue
        if method not in methods:
            raise ApiError(405, "method_not_allowed", f"method {method} is not allowed on {path}")
        return methods[method], {k: v for k, v in found.groupdict().items() if v is not None}
    raise ApiError(404, "not_found", "not found")


@dataclass
class FakeApi:
    """Syncs, executions and the endpoint logic; thread-safe (one lock around every operation)."""

    organization_id: str
    clock: Callable[[], float] = time.monotonic
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _syncs: dict[str, SyncRecord] = field(default_factory=dict, repr=False)
    _executions: list[_ExecutionRecord] = field(default_factory=list, repr=False)

    # -- state management used by FakePolytomic's public methods --------------------------

    def add_sync(self, sync_id: str, kind: SyncKind, active: bool, run_seconds: float, name: str) -> None:
        if not is_uuid(sync_id):
            raise ValueError(f"sync id {sync_id!r} is not a UUID")
        if kind not in ("model", "bulk"):
            raise ValueError(f"kind must be 'model' or 'bulk', not {kind!r}")
        with self._lock:
            self._syncs[sync_id] = SyncRecord(sync_id, kind, active, run_seconds, name)

    def sync(self, sync_id: str) -> SyncRecord:
        with self._lock:
            record = self._syncs[sync_id]
            return SyncRecord(record.id, record.kind, record.active, record.run_seconds, record.name)

    def set_active(self, sync_id: str, active: bool) -> None:
        with self._lock:
            self._syncs[sync_id].active = active

    def executions(self, sync_id: str | None = None) -> list[Execution]:
        now = self.clock()
        with self._lock:
            return [e.snapshot(now) for e in self._executions if sync_id is None or e.sync_id == sync_id]

    def set_execution_status(self, execution_id: str, status: str) -> None:
        with self._lock:
            for record in self._executions:
                if record.id == execution_id:
                    record.status_override = status
                    record.finished_at = dt.datetime.now(dt.UTC)
                    return
        raise KeyError(execution_id)

    def finish_running(self, sync_id: str | None, status: str) -> int:
        """Give every in-progress execution (of one sync, or all) a final status; returns how many."""
        now = self.clock()
        count = 0
        with self._lock:
            for record in self._executions:
                if (sync_id is None or record.sync_id == sync_id) and record.status(now) in ACTIVE_STATUSES:
                    record.status_override = status
                    record.finished_at = dt.datetime.now(dt.UTC)
                    count += 1
        return count

    def reset(self) -> None:
        with self._lock:
            self._syncs.clear()
            self._executions.clear()

    # -- the endpoints ---------------------------------------------------------------------

    def handle(self, request: Request) -> tuple[int, Any]:
        """Answer one request: (status, JSON body). Never raises ApiError."""
        try:
            endpoint, params = route(request.method, request.path)
            with self._lock:
                data = getattr(self, "_ep_" + endpoint)(request, params)
        except ApiError as error:
            return error.status, error.body
        return 200, data

    def _ep_me(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        by_key = request.credential == "api_key"
        return {
            "data": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-polytomic:{request.credential}")),
                "email": "fake-user@example.com" if by_key else None,
                "organization_id": self.organization_id,
                "organization_name": "Fake Organisation",
                "role": "admin",
                "is_user": by_key,
                "is_organization": not by_key,
                "is_system": False,
                "is_partner": False,
                "credential": {"method": request.credential},
            }
        }

    def _ep_get_sync(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        sync = self._find_sync(params)
        return {
            "data": {"id": sync.id, "name": sync.name, "active": sync.active, "organization_id": self.organization_id}
        }

    def _ep_start(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        sync = self._find_sync(params)
        body = _json_object(request.body, required=False)
        options = _model_options(body) if sync.kind == "model" else _bulk_options(body, request.version)
        if not sync.active:
            raise ApiError(400, "sync_inactive", "sync is not active", {"sync_id": sync.id})
        now = self.clock()
        running = [e for e in self._executions if e.sync_id == sync.id and e.status(now) in ACTIVE_STATUSES]
        if running:
            raise ApiError(
                409,
                "sync_already_running",
                "a sync execution is already running",
                {"sync_id": sync.id, "execution_id": running[-1].id},
            )
        record = _ExecutionRecord(
            id=str(uuid.uuid4()),
            sync_id=sync.id,
            kind=sync.kind,
            options=options,
            created_at=dt.datetime.now(dt.UTC),
            created_mono=now,
            run_seconds=sync.run_seconds,
            idempotency_key=request.idempotency_key,
            api_version=request.version,
        )
        self._executions.append(record)
        return {"data": record.render(now, status="created")}

    def _ep_list_executions(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        sync = self._find_sync(params)
        now = self.clock()
        rendered = [e.render(now) for e in reversed(self._executions) if e.sync_id == sync.id]
        return {"data": rendered, "pagination": {"next_page_token": None}}

    def _ep_get_execution(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        sync = self._find_sync(params)
        for record in self._executions:
            if record.id == params["exec_id"] and record.sync_id == sync.id:
                return {"data": record.render(self.clock())}
        raise ApiError(404, "not_found", "execution not found", {"execution_id": params["exec_id"]})

    def _ep_activate(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        sync = self._find_sync(params)
        body = _json_object(request.body, required=True)
        for name in body:
            if name != "active":
                raise ApiError(400, "invalid_request", f'unknown field "{name}"', {"field": name})
        active = body.get("active")
        if not isinstance(active, bool):
            raise ApiError(400, "invalid_request", '"active" is required and must be a boolean', {"field": "active"})
        self._syncs[sync.id].active = active
        if not active and sync.kind == "bulk":  # pausing a bulk sync also cancels its running execution
            self._cancel_running(sync.id)
        return {"data": {"id": sync.id, "active": active}}

    def _ep_status(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        sync = self._find_sync(params)
        now = self.clock()
        mine = [e for e in self._executions if e.sync_id == sync.id]
        current = next((e for e in reversed(mine) if e.status(now) in ACTIVE_STATUSES), None)
        return {
            "data": {
                "current_execution": current.render(now) if current else None,
                "last_execution": mine[-1].render(now) if mine else None,
                "next_execution_time": None,
            }
        }

    def _ep_cancel(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        sync = self._find_sync(params)
        count = self._cancel_running(sync.id)
        return {"data": {"message": f"cancellation requested for {count} execution(s)"}}

    # -- helpers ---------------------------------------------------------------------------

    def _find_sync(self, params: dict[str, str]) -> SyncRecord:
        sync_id = params["sync_id"]
        kind: SyncKind = "bulk" if params["scope"] == "bulk/syncs" else "model"
        sync = self._syncs.get(sync_id) if is_uuid(sync_id) else None
        if sync is None or sync.kind != kind:
            raise ApiError(404, "not_found", "sync not found", {"sync_id": sync_id})
        return sync

    def _cancel_running(self, sync_id: str) -> int:
        now = self.clock()
        count = 0
        for record in self._executions:
            if record.sync_id == sync_id and record.status(now) in ACTIVE_STATUSES:
                record.status_override = "canceled"
                record.finished_at = dt.datetime.now(dt.UTC)
                count += 1
        return count


def _json_object(raw: bytes, *, required: bool) -> dict[str, Any]:
    if not raw.strip():
        if required:
            raise ApiError(400, "invalid_request", "a JSON request body is required")
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "invalid_request", f"request body is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "invalid_request", "request body must be a JSON object")
    return parsed


def _bad_field(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", f'"{name}" {message}', {"field": name})


def _check_fields(body: dict[str, Any], allowed: dict[str, str]) -> None:
    """Reject unknown fields and fields of the wrong type (allowed: name -> bool|str|list[str])."""
    for name, value in body.items():
        expected = allowed.get(name)
        if expected is None:
            raise _bad_field(name, "is not an accepted field")
        if expected == "bool" and not isinstance(value, bool):
            raise _bad_field(name, "must be a boolean")
        if expected == "str" and not isinstance(value, str):
            raise _bad_field(name, "must be a string")
        if expected == "list[str]" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise _bad_field(name, "must be a list of strings")


def _model_options(body: dict[str, Any]) -> dict[str, Any]:
    _check_fields(body, {"identities": "list[str]", "resync": "bool", "test": "bool"})
    return dict(body)


def _bulk_options(body: dict[str, Any], version: str) -> dict[str, Any]:
    modern = version >= "2025-09-18"
    if modern and "resync" in body:
        raise _bad_field("resync", f"is not accepted with X-Polytomic-Version {version}; use resync_mode")
    if not modern and "resync_mode" in body:
        raise _bad_field("resync_mode", f"is not accepted with X-Polytomic-Version {version}; use resync")
    allowed = {"fetch_mode": "str", "schemas": "list[str]", "test": "bool"}
    allowed.update({"resync_mode": "str"} if modern else {"resync": "bool"})
    _check_fields(body, allowed)
    if "fetch_mode" in body and body["fetch_mode"] not in FETCH_MODES:
        raise _bad_field("fetch_mode", f"must be one of {', '.join(FETCH_MODES)}")
    if "resync_mode" in body and body["resync_mode"] not in RESYNC_MODES:
        raise _bad_field("resync_mode", f"must be one of {', '.join(RESYNC_MODES)}")
    if body.get("test") is True and "resync_mode" in body:
        raise _bad_field("test", "cannot be combined with resync_mode")
    return dict(body)
