"""Events of the fake Polytomic: one per execution transition, and ``GET /api/events``.

Events are *derived* from the executions every time they are asked for, never
stored: an execution's ``running`` event is dated its creation, its terminal
event the moment it ended (``run_seconds`` later, or when a test set its
status). So a test asking at any time gets the same events, with the same ids
(a UUID5 of execution id and event type), and the webhook deliveries
(``webhooks``) send exactly these objects.

Shapes follow the official SDK's ``Event`` and ``Eventing*Event`` types. Field
values the fake cannot know (connection ids, counts) are stable placeholders.
Note the SDK's own spelling: ``bulk_sync.completed_with_error`` is singular,
``sync.completed_with_errors`` plural.

``GET /api/events``: ``type`` (exact), ``starting_after`` / ``ending_before``
(RFC 3339 timestamps, strictly after / strictly before), ``limit`` (default 10,
at most 100). Answered **oldest first** by default, the first ``limit`` matches,
so a client pages forward with ``starting_after`` = the last ``created_at`` it
saw; or **newest first** (``order="newest"``): the newest ``limit`` matches,
newest first. Polytomic's own order is unconfirmed: clients must work with
both (and overlap windows and de-duplicate by id). Events older than 48 hours
(by the fake's clock) are gone, as in Polytomic.

The endpoint is the organisation's event log: besides the run events derived
from executions, ``organisation_event`` makes an event of another type (a
connection or model change, ...), kept like the others, so a page can be full
of events a run follower ignores, and many events can share one ``created_at``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from local.polytomic.records import OUTCOMES, ApiError, ExecutionRecord, SyncKind, iso, outcome_status

RETENTION = dt.timedelta(hours=48)
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
PHASES: tuple[str, ...] = ("running", *OUTCOMES)

_IDS = uuid.UUID("6f1c1b0e-8f4e-5c55-9d55-7a2b8f0e4d11")  # namespace of the fake's event and connection ids
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_TERMINAL_DELAY = dt.timedelta(microseconds=1)  # a run of 0 s: its end still sorts after its start


def event_type(kind: SyncKind, phase: str) -> str:
    """``sync.<phase>`` or ``bulk_sync.<phase>``; bulk's "with errors" is ``completed_with_error`` (singular)."""
    if kind == "bulk":
        return "bulk_sync." + ("completed_with_error" if phase == "completed_with_errors" else phase)
    return "sync." + phase


EVENT_TYPES: tuple[str, ...] = tuple(event_type(kind, phase) for kind in ("model", "bulk") for phase in PHASES)


def connection_id(sync_id: str, role: str) -> str:
    """A stable placeholder connection id for a sync (the fake has no connections)."""
    return str(uuid.uuid5(_IDS, f"{sync_id}:{role}"))


@dataclass(frozen=True)
class FakeEvent:
    """One event: ``document`` is the Event object exactly as the API and the webhooks send it."""

    id: str
    type: str
    created_at: dt.datetime
    rank: int  # running before the terminal event when the timestamps tie
    document: dict[str, Any]


def _payload(record: ExecutionRecord, phase: str, organization_id: str) -> dict[str, Any]:
    status = "running" if phase == "running" else outcome_status(record.kind, phase)  # type: ignore[arg-type]
    common: dict[str, Any] = {
        "execution_id": record.id,
        "sync_id": record.sync_id,
        "sync_name": record.sync_name,
        "organization_id": organization_id,
        "status": status,
    }
    if record.kind == "bulk":
        common["source_connection_id"] = connection_id(record.sync_id, "source")
        common["destination_connection_id"] = connection_id(record.sync_id, "destination")
        common["trigger_source"] = "api"
        if phase == "failed":
            common["error"] = "fake: the bulk sync failed"
        return common
    common["target_connection_id"] = connection_id(record.sync_id, "target")
    if phase == "completed":
        counts = ("record_count", "inserted_count", "updated_count", "upserted_count", "error_count", "warning_count")
        common.update(dict.fromkeys(counts, 0), logs_url=None)
    elif phase == "completed_with_errors":
        common.update(number_of_errors=1, number_of_warnings=0, error="fake: a record was rejected")
    elif phase == "failed":
        common["error"] = "fake: the sync failed"
    return common


def _event(record: ExecutionRecord, phase: str, at: dt.datetime, organization_id: str) -> FakeEvent:
    kind_type = event_type(record.kind, phase)
    event_id = str(uuid.uuid5(_IDS, f"{record.id}:{kind_type}"))
    document = {
        "id": event_id,
        "type": kind_type,
        "organization_id": organization_id,
        "created_at": iso(at),
        "event": _payload(record, phase, organization_id),
    }
    return FakeEvent(event_id, kind_type, at, 0 if phase == "running" else 1, document)


def organisation_event(kind: str, at: dt.datetime, organization_id: str, number: int) -> FakeEvent:
    """An event of the organisation's log that is not about a run (``number`` makes its id unique)."""
    if kind.startswith(("sync.", "bulk_sync.")):
        raise ValueError(f"{kind!r} is a run event: runs make their own events")
    event_id = str(uuid.uuid5(_IDS, f"organisation:{number}:{kind}"))
    document = {
        "id": event_id,
        "type": kind,
        "organization_id": organization_id,
        "created_at": iso(at),
        "event": {"organization_id": organization_id},
    }
    return FakeEvent(event_id, kind, at, 0, document)


def execution_events(record: ExecutionRecord, now: float, organization_id: str) -> list[FakeEvent]:
    """The events an execution has produced by ``now`` (the fake clock's epoch seconds)."""
    events = [_event(record, "running", record.created_at, organization_id)]
    ending = record.ending(now)
    if ending is not None:
        outcome, at = ending
        events.append(_event(record, outcome, max(at, record.created_at + _TERMINAL_DELAY), organization_id))
    return events


def retained(events: Iterable[FakeEvent], now: dt.datetime) -> list[FakeEvent]:
    """Events of the last 48 hours, oldest first (ties: running before terminal, then by id)."""
    kept = [e for e in events if e.created_at >= now - RETENTION]
    return sorted(kept, key=lambda e: (e.created_at, e.rank, e.id))


def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", f'"{name}" {message}', {"field": name})


def _timestamp(name: str, value: str) -> dt.datetime:
    """RFC 3339 with an offset; an unencoded ``+`` arrives as a space and is refused, like a real parser would."""
    if _RFC3339.fullmatch(value) is None:
        raise _bad(name, f"must be an RFC 3339 timestamp such as 2025-01-02T03:04:05Z, not {value!r}")
    return dt.datetime.fromisoformat(value.upper())


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise _bad("limit", f"must be an integer from 1 to {MAX_LIMIT}, not {value!r}")
    return int(value)


Order = Literal["oldest", "newest"]


def list_events(events: list[FakeEvent], query: str, order: Order = "oldest") -> dict[str, Any]:
    """``GET /api/events``: filter retained events (oldest first) by the query; ApiError 400 for a bad one.

    ``type`` must be one the fake produces: a misspelt type (``bulk_sync.completed_with_errors``)
    is a client bug, better a 400 here than an empty answer forever. ``order``: which ``limit``
    matches a page holds, and in what order (the oldest, oldest first; or the newest, newest first).
    """
    params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
    wanted = params.get("type") or None
    known = set(EVENT_TYPES) | {e.type for e in events}
    if wanted is not None and wanted not in known:
        raise _bad("type", f"is not an event type the fake knows ({', '.join(EVENT_TYPES)})")
    after = _timestamp("starting_after", params["starting_after"]) if params.get("starting_after") else None
    before = _timestamp("ending_before", params["ending_before"]) if params.get("ending_before") else None
    limit = _limit(params.get("limit") or None)
    selected = [
        e
        for e in events
        if (wanted is None or e.type == wanted)
        and (after is None or e.created_at > after)
        and (before is None or e.created_at < before)
    ]
    if order == "newest":
        selected.reverse()
    return {"data": [e.document for e in selected[:limit]]}
