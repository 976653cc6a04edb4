"""The fake Polytomic's resources: syncs, executions, its clock, and its error shape.

Kept apart from the endpoint logic (``api``) so that the events
(``events``) and the endpoints can both read an execution's life
without importing each other.

An execution's life: ``created`` (only in the start's answer), ``running`` from
its creation, and after the sync's ``run_seconds`` the sync's *outcome*
(completed, completed with errors, failed or canceled). A test that sets a
status explicitly (``set_status``) overrides that. Time is the ``FakeClock``'s:
real time plus an offset a test can advance, so "48 hours later" or "after the
run ended" needs no waiting.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

SyncKind = Literal["model", "bulk"]

#: How an execution ends; each has an event (``sync.<outcome>``, ``bulk_sync.<outcome>``).
Outcome = Literal["completed", "completed_with_errors", "failed", "canceled"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)

#: Statuses of an execution that has not finished; a start meanwhile gets 409.
ACTIVE_STATUSES: frozenset[str] = frozenset(
    {"created", "scheduled", "queued", "waiting", "running", "processing", "canceling", "exporting"}
)


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
    """RFC 3339 UTC timestamp with microseconds and a ``Z``, as Polytomic writes them."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def check_outcome(outcome: str) -> Outcome:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    return outcome  # type: ignore[return-value]


def outcome_status(kind: SyncKind, outcome: Outcome) -> str:
    """The execution status an outcome shows (unconfirmed for "with errors": model ``completed``, bulk ``errors``)."""
    if outcome == "completed_with_errors":
        return "errors" if kind == "bulk" else "completed"
    return outcome


def status_outcome(kind: SyncKind, status: str) -> tuple[str, Outcome | None]:
    """(status, outcome) for a status a test sets; an outcome name is accepted too. No outcome: no event."""
    if status in OUTCOMES:
        outcome = check_outcome(status)
        return outcome_status(kind, outcome), outcome
    if kind == "bulk" and status == "errors":
        return status, "completed_with_errors"
    return status, None


class FakeClock:
    """The fake's time: a source of epoch seconds (the wall clock unless one is injected) plus an offset
    that only grows, so tests jump ahead (run ends, 48 h retention) without sleeping.

    An injected source (the simulation's virtual clock, a unit test's hand-moved clock) is the whole
    of the fake's time: runs end and events are dated on it, so nothing depends on real waiting.
    """

    def __init__(self, source: Callable[[], float] | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self.source: Callable[[], float] = source or time.time

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the fake's clock does not go back")
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def seconds(self) -> float:
        """Epoch seconds: what decides whether a run is still in progress, and what dates it."""
        return self.source() + self._offset  # a float read is atomic: no lock on the hot path

    def now(self) -> dt.datetime:
        """The same moment as a UTC datetime: timestamps the API shows."""
        return moment(self.seconds())


def moment(seconds: float) -> dt.datetime:
    """Epoch seconds as a UTC datetime."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@dataclass
class SyncRecord:
    """A registered sync (internal, mutable; guarded by ``FakeApi``'s lock)."""

    id: str
    kind: SyncKind
    active: bool
    run_seconds: float
    name: str
    outcome: Outcome = "completed"


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
    created_seconds: float  # ``created_at`` as the fake's clock read it (epoch seconds), unrounded


@dataclass
class ExecutionRecord:
    """One execution (internal, mutable; guarded by ``FakeApi``'s lock)."""

    id: str
    sync_id: str
    kind: SyncKind
    options: dict[str, Any]
    created_at: dt.datetime
    created_seconds: float
    run_seconds: float
    idempotency_key: str | None
    api_version: str
    sync_name: str = ""
    outcome: Outcome = "completed"  # how it ends once run_seconds have passed (while running: settable)
    status_override: str | None = None
    override_outcome: Outcome | None = None
    finished_at: dt.datetime | None = None
    # An ended execution renders the same until a test (or a cancel) sets its status: rendered once,
    # since listing a sync's executions renders every one of them (the simulation lists thousands of times).
    rendered: dict[str, Any] | None = field(default=None, repr=False)

    def running_by_time(self, now: float) -> bool:
        return self.status_override is None and now - self.created_seconds < self.run_seconds

    def status(self, now: float) -> str:
        if self.status_override is not None:
            return self.status_override
        return "running" if self.running_by_time(now) else outcome_status(self.kind, self.outcome)

    def set_status(self, status: str, at: dt.datetime) -> None:
        """A test (or a cancel) decides the status from now on; an outcome status also ends it with an event."""
        self.status_override, self.override_outcome = status_outcome(self.kind, status)
        self.finished_at = at
        self.rendered = None

    def ending(self, now: float) -> tuple[Outcome, dt.datetime] | None:
        """How and when the execution ended, if it has ended in a way that has an event."""
        if self.status_override is not None:
            if self.override_outcome is None or self.finished_at is None:
                return None
            return self.override_outcome, self.finished_at
        if self.running_by_time(now):
            return None
        return self.outcome, self.created_at + dt.timedelta(seconds=self.run_seconds)

    def completed_at(self, now: float) -> dt.datetime | None:
        if self.status(now) in ACTIVE_STATUSES:
            return None
        if self.finished_at is not None:
            return self.finished_at
        return self.created_at + dt.timedelta(seconds=self.run_seconds)

    def render(self, now: float, status: str | None = None) -> dict[str, Any]:
        """The API's execution object; ``status`` forces it (a start answers ``created``). Not to be changed."""
        if status is None and self.rendered is not None:
            return self.rendered
        document = self._render(now, status)
        if status is None and document["status"] not in ACTIVE_STATUSES:
            self.rendered = document
        return document

    def _render(self, now: float, status: str | None) -> dict[str, Any]:
        shown = status or self.status(now)
        started = None if shown == "created" else self.created_at
        completed = None if status else self.completed_at(now)
        ending = None if status else self.ending(now)
        with_errors = ending is not None and ending[0] == "completed_with_errors"
        common = {
            "id": self.id,
            "status": shown,
            "type": "manual",
            "created_at": iso(self.created_at),
            "started_at": iso(started),
            "completed_at": iso(completed),
        }
        if self.kind == "model":
            errors = ["fake: a record was rejected"] if with_errors else []
            return {
                **common,
                "errors": errors,
                "counts": {
                    "insert": 0,
                    "update": 0,
                    "delete": 0,
                    "error": len(errors),
                    "total": 0,
                    "upserts": 0,
                    "warnings": 0,
                },
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
            "error_count": 1 if with_errors else 0,
            "warning_count": 0,
            "status_message": "fake: a record was rejected" if with_errors else None,
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
            created_seconds=self.created_seconds,
        )
