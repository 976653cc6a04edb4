"""The fake Polytomic API's endpoint logic, without any HTTP.

What it models (see docs ``polytomic-api.md``): model and bulk syncs with an
active flag, their executions (newest first in lists), the start rules (only
active syncs run; 409 while an execution is in progress; strict, version-aware
request bodies so a client bug shows up as a 400 here rather than in
production), activate/pause, status and cancel; the events of the executions
(``events``) and the organisation's webhook (``webhooks``).
Auth, the version header, ``Idempotency-Key`` handling and faults live in
``server``.

An execution is "in progress" for ``run_seconds`` after it was created (the
sync's setting) and then ends with the sync's outcome, unless a test sets its
status explicitly with ``FakeApi.set_execution_status`` / ``finish_running``,
which is how tests avoid depending on time (the other way: advance the clock).
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from local.polytomic.bodies import bad_field, bulk_options, check_fields, json_object, model_options
from local.polytomic.events import (
    EVENT_TYPES,
    FakeEvent,
    Order,
    execution_events,
    list_events,
    organisation_event,
    retained,
)
from local.polytomic.records import (
    ACTIVE_STATUSES,
    ApiError,
    Execution,
    ExecutionRecord,
    FakeClock,
    Outcome,
    SyncKind,
    SyncRecord,
    check_outcome,
    error_body,
    is_uuid,
    iso,
    moment,
)
from local.polytomic.webhooks import Webhook, Webhooks, loopback_target

__all__ = [
    "ACTIVE_STATUSES",
    "LATEST_VERSION",
    "SUPPORTED_VERSIONS",
    "ApiError",
    "Execution",
    "FakeApi",
    "Request",
    "SyncKind",
    "SyncRecord",
    "error_body",
    "is_uuid",
    "iso",
    "route",
]

SUPPORTED_VERSIONS: tuple[str, ...] = ("2025-09-18", "2024-02-08", "2023-04-25", "2022-12-12", "2021-05-23")
LATEST_VERSION = SUPPORTED_VERSIONS[0]


@dataclass(frozen=True)
class Request:
    """What the endpoint logic needs from an authenticated, version-checked HTTP request."""

    method: str
    path: str
    body: bytes
    version: str
    credential: Literal["api_key", "deployment_key"]
    idempotency_key: str | None = None
    query: str = ""


EXECUTIONS_PAGE = 50  # a list of executions comes in pages of this many, newest first, with a next_page_token
_SCOPE = r"/api/(?P<scope>syncs|bulk/syncs)/(?P<sync_id>[^/]+)"
_WEBHOOK = r"/api/webhooks/(?P<webhook_id>[^/]+)"
_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(r"/api/me"), {"GET": "me"}),
    (re.compile(_SCOPE), {"GET": "get_sync"}),
    (re.compile(_SCOPE + r"/executions"), {"POST": "start", "GET": "list_executions"}),
    (re.compile(_SCOPE + r"/executions/(?P<exec_id>[^/]+)"), {"GET": "get_execution"}),
    (re.compile(_SCOPE + r"/activate"), {"POST": "activate"}),
    (re.compile(_SCOPE + r"/status"), {"GET": "status"}),
    (re.compile(_SCOPE + r"/cancel"), {"POST": "cancel"}),
    (re.compile(r"/api/events"), {"GET": "events"}),
    (re.compile(r"/api/events_types"), {"GET": "event_types"}),
    (re.compile(r"/api/webhooks"), {"GET": "list_webhooks", "POST": "create_webhook"}),
    (re.compile(_WEBHOOK), {"GET": "get_webhook", "PUT": "update_webhook", "DELETE": "delete_webhook"}),
    (re.compile(_WEBHOOK + r"/(?P<switch>disable|enable)"), {"POST": "switch_webhook"}),
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
    """Syncs, executions, events, the webhook and the endpoint logic; thread-safe (one lock around each operation)."""

    organization_id: str
    clock: FakeClock = field(default_factory=FakeClock)
    webhooks: Webhooks | None = None  # made on the fake's clock when not given
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _syncs: dict[str, SyncRecord] = field(default_factory=dict, repr=False)
    _executions: list[ExecutionRecord] = field(default_factory=list, repr=False)  # in creation order
    _by_sync: dict[str, list[ExecutionRecord]] = field(default_factory=dict, repr=False)  # the same, per sync
    _organisation: list[FakeEvent] = field(default_factory=list, repr=False)  # the log's events about no run
    event_order: Order = "oldest"  # which events a page of GET /api/events holds, and in what order

    def __post_init__(self) -> None:
        if self.webhooks is None:
            self.webhooks = Webhooks(self.clock.now)

    @property
    def hooks(self) -> Webhooks:
        assert self.webhooks is not None  # set in __post_init__
        return self.webhooks

    # -- state management used by FakePolytomic's public methods --------------------------

    def add_sync(
        self, sync_id: str, kind: SyncKind, active: bool, run_seconds: float, name: str, *, outcome: str = "completed"
    ) -> None:
        if not is_uuid(sync_id):
            raise ValueError(f"sync id {sync_id!r} is not a UUID")
        if kind not in ("model", "bulk"):
            raise ValueError(f"kind must be 'model' or 'bulk', not {kind!r}")
        with self._lock:
            self._syncs[sync_id] = SyncRecord(sync_id, kind, active, run_seconds, name, check_outcome(outcome))

    def sync(self, sync_id: str) -> SyncRecord:
        with self._lock:
            return replace(self._syncs[sync_id])

    def set_outcome(self, sync_id: str, outcome: str) -> None:
        """How the sync's runs end from now on, the runs in progress included."""
        checked: Outcome = check_outcome(outcome)
        now = self.clock.seconds()
        with self._lock:
            self._syncs[sync_id].outcome = checked
            for record in self._of(sync_id):
                if record.running_by_time(now):
                    record.outcome = checked

    def set_active(self, sync_id: str, active: bool) -> None:
        with self._lock:
            self._syncs[sync_id].active = active

    def add_run(
        self,
        sync_id: str,
        created: float,
        *,
        run_seconds: float | None,
        outcome: str | None,
        execution_id: str | None,
    ) -> str:
        """A run no start through the API made (a schedule, the UI, another tool), begun at ``created``."""
        with self._lock:
            sync = self._syncs[sync_id]
            record = self._record(sync, created, {}, None, LATEST_VERSION, execution_id=execution_id)
            record.run_seconds = sync.run_seconds if run_seconds is None else run_seconds
            record.outcome = sync.outcome if outcome is None else check_outcome(outcome)
            return record.id

    def executions(self, sync_id: str | None = None) -> list[Execution]:
        now = self.clock.seconds()
        with self._lock:
            return [e.snapshot(now) for e in (self._executions if sync_id is None else self._of(sync_id))]

    def set_execution_status(self, execution_id: str, status: str) -> None:
        """Set the status from now on; an outcome's status (or bulk ``errors``) emits its terminal event."""
        with self._lock:
            for record in self._executions:
                if record.id == execution_id:
                    record.set_status(status, self.clock.now())
                    return
        raise KeyError(execution_id)

    def finish_running(self, sync_id: str | None, status: str) -> int:
        """Give every in-progress execution (of one sync, or all) a final status; returns how many."""
        now = self.clock.seconds()
        count = 0
        with self._lock:
            for record in self._executions:
                if (sync_id is None or record.sync_id == sync_id) and record.status(now) in ACTIVE_STATUSES:
                    record.set_status(status, self.clock.now())
                    count += 1
        return count

    def add_event(self, kind: str, at: datetime) -> str:
        """An event of the organisation's log about no run (a connection or model change, ...); its id."""
        with self._lock:
            event = organisation_event(kind, at, self.organization_id, len(self._organisation))
            self._organisation.append(event)
        return event.id

    def events(self) -> list[FakeEvent]:
        """Every event of the last 48 hours (fake clock), oldest first."""
        now = self.clock.seconds()
        with self._lock:
            produced = [e for r in self._executions for e in execution_events(r, now, self.organization_id)]
            produced += self._organisation
        return retained(produced, self.clock.now())

    def reset(self) -> None:
        with self._lock:
            self._syncs.clear()
            self._executions.clear()
            self._by_sync.clear()
            self._organisation.clear()
            self.event_order = "oldest"
        self.hooks.reset()
        self.clock.reset()

    # -- the endpoints ---------------------------------------------------------------------

    def handle(self, request: Request) -> tuple[int, Any]:
        """Answer one request: (status, JSON body); an endpoint answering None is a 204. Never raises ApiError."""
        try:
            endpoint, params = route(request.method, request.path)
            with self._lock:
                data = getattr(self, "_ep_" + endpoint)(request, params)
        except ApiError as error:
            return error.status, error.body
        return (204, None) if data is None else (200, data)

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
        body = json_object(request.body, required=False)
        options = model_options(body) if sync.kind == "model" else bulk_options(body, request.version)
        if not sync.active:
            raise ApiError(400, "sync_inactive", "sync is not active", {"sync_id": sync.id})
        now = self.clock.seconds()
        running = [e for e in self._of(sync.id) if e.status(now) in ACTIVE_STATUSES]
        if running:
            raise ApiError(
                409,
                "sync_already_running",
                "a sync execution is already running",
                {"sync_id": sync.id, "execution_id": running[-1].id},
            )
        record = self._record(sync, now, options, request.idempotency_key, request.version)
        return {"data": record.render(now, status="created")}

    def _ep_list_executions(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        sync = self._find_sync(params)
        now = self.clock.seconds()
        rendered = [e.render(now) for e in reversed(self._of(sync.id))]
        query = parse_qs(request.query)
        asked = (query.get("limit") or [""])[0]
        limit = min(EXECUTIONS_PAGE, int(asked)) if asked.isdigit() and int(asked) > 0 else EXECUTIONS_PAGE
        token = (query.get("page_token") or [""])[0]
        start = int(token) if token.isdigit() else 0
        page = rendered[start : start + limit]
        following = str(start + limit) if start + limit < len(rendered) else None
        return {"data": page, "pagination": {"next_page_token": following}}

    def _ep_get_execution(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        sync = self._find_sync(params)
        for record in self._of(sync.id):
            if record.id == params["exec_id"]:
                return {"data": record.render(self.clock.seconds())}
        raise ApiError(404, "not_found", "execution not found", {"execution_id": params["exec_id"]})

    def _ep_activate(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        sync = self._find_sync(params)
        body = json_object(request.body, required=True)
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
        now = self.clock.seconds()
        mine = self._of(sync.id)
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

    def _ep_events(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        return list_events(self.events(), request.query, self.event_order)

    def _ep_event_types(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        return {"data": list(EVENT_TYPES)}

    def _ep_list_webhooks(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        current = self.hooks.current
        return {"data": [] if current is None else [current.render(self.organization_id)]}

    def _ep_create_webhook(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        endpoint, secret = _webhook_body(request.body)
        try:
            created = self.hooks.subscribe(endpoint, secret, replace_existing=False)
        except FileExistsError:
            existing = self.hooks.current
            message = "the organization already has a webhook (one per organization)"
            raise ApiError(409, "webhook_exists", message, {"webhook_id": existing and existing.id}) from None
        return {"data": created.render(self.organization_id)}

    def _ep_get_webhook(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        return {"data": self._find_webhook(params).render(self.organization_id)}

    def _ep_update_webhook(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        webhook = self._find_webhook(params)
        endpoint, secret = _webhook_body(request.body)
        updated = self.hooks.update(webhook.id, endpoint, secret)
        return {"data": (updated or webhook).render(self.organization_id)}

    def _ep_delete_webhook(self, request: Request, params: dict[str, str]) -> None:
        self.hooks.delete(self._find_webhook(params).id)

    def _ep_switch_webhook(self, request: Request, params: dict[str, str]) -> dict[str, Any]:
        webhook = self._find_webhook(params)
        switched = self.hooks.set_disabled(webhook.id, params["switch"] == "disable")
        return {"data": (switched or webhook).render(self.organization_id)}

    # -- helpers ---------------------------------------------------------------------------

    def _record(
        self,
        sync: SyncRecord,
        created: float,
        options: dict[str, Any],
        key: str | None,
        version: str,
        *,
        execution_id: str | None = None,
    ) -> ExecutionRecord:
        """A new execution of ``sync``, created at ``created`` (the fake clock's seconds), kept in order."""
        record = ExecutionRecord(
            id=execution_id or str(uuid.uuid4()),
            sync_id=sync.id,
            kind=sync.kind,
            options=options,
            created_at=moment(created),
            created_seconds=created,
            run_seconds=sync.run_seconds,
            idempotency_key=key,
            api_version=version,
            sync_name=sync.name,
            outcome=sync.outcome,
        )
        self._executions.append(record)
        self._by_sync.setdefault(sync.id, []).append(record)
        return record

    def _of(self, sync_id: str) -> list[ExecutionRecord]:
        """The sync's executions, in creation order (not a copy)."""
        return self._by_sync.get(sync_id, [])

    def _find_webhook(self, params: dict[str, str]) -> Webhook:
        current = self.hooks.current
        if current is None or current.id != params["webhook_id"]:
            raise ApiError(404, "not_found", "webhook not found", {"webhook_id": params["webhook_id"]})
        return current

    def _find_sync(self, params: dict[str, str]) -> SyncRecord:
        sync_id = params["sync_id"]
        kind: SyncKind = "bulk" if params["scope"] == "bulk/syncs" else "model"
        sync = self._syncs.get(sync_id)  # registered ids are UUIDs (add_sync checks): a crafted one is not there
        if sync is None or sync.kind != kind:
            raise ApiError(404, "not_found", "sync not found", {"sync_id": sync_id})
        return sync

    def _cancel_running(self, sync_id: str) -> int:
        now = self.clock.seconds()
        count = 0
        for record in self._of(sync_id):
            if record.status(now) in ACTIVE_STATUSES:
                record.set_status("canceled", self.clock.now())
                count += 1
        return count


def _webhook_body(raw: bytes) -> tuple[str, str]:
    """``{"endpoint", "secret"}`` (``organization_id`` tolerated: the SDK may send it); loopback endpoints only."""
    body = json_object(raw, required=True)
    check_fields(body, {"endpoint": "str", "secret": "str", "organization_id": "str"})
    for name in ("endpoint", "secret"):
        if not body.get(name):
            raise bad_field(name, "is required")
    try:
        loopback_target(body["endpoint"])
    except ValueError as error:
        raise bad_field("endpoint", str(error)) from None
    return body["endpoint"], body["secret"]
