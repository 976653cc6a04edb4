"""A run's outcome as Polytomic reports it: one event (webhook, events API or execution status), normalised.

Polytomic names the same outcome two ways (`bulk_sync.completed_with_error`, singular, beside
`sync.completed_with_errors`) and keeps its status set open, so an event is read into one
vocabulary here: a status polytrigger does not know is not terminal, and an event type it does
not know is `None` (ignored, never an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from polytrigger.core.keys import is_uuid
from polytrigger.core.triggers import RUN_ENDINGS

RunStatus = str  # open-ended, as Polytomic's; TERMINAL names the ones that end a run
TERMINAL = RUN_ENDINGS
BAD_ENDINGS = frozenset({"completed_with_errors", "failed", "canceled", "interrupted"})
_PREFIXES: dict[str, Literal["model", "bulk"]] = {"sync.": "model", "bulk_sync.": "bulk"}
_SPELLINGS = {"completed_with_error": "completed_with_errors", "cancelled": "canceled"}


class MalformedRunEvent(ValueError):
    """An event of a known type that does not say which run or when: the message names the field."""


@dataclass(frozen=True, slots=True)
class RunEvent:
    event_id: str
    sync_type: Literal["model", "bulk"]
    status: RunStatus
    execution_id: str
    sync_id: str
    created_at: datetime

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def describe(self) -> str:
        return f"{self.sync_type} sync {self.sync_id} execution {self.execution_id} {self.status}"


def status_of(raw: Any) -> RunStatus:
    """A status in polytrigger's spelling (`completed_with_error` → `completed_with_errors`)."""
    text = str(raw or "").strip().lower()
    return _SPELLINGS.get(text, text)


def run_event(raw: Any) -> RunEvent | None:
    """The event, or None when it is not about a sync run (another type: nothing to do).

    MalformedRunEvent when it claims to be one and does not say which run, of which sync, or when.
    """
    if not isinstance(raw, Mapping):
        raise MalformedRunEvent("an event must be a JSON object")
    kind = raw.get("type")
    prefix = next((p for p in _PREFIXES if isinstance(kind, str) and kind.startswith(p)), None)
    if prefix is None:
        return None
    assert isinstance(kind, str)
    payload = raw.get("event")
    if not isinstance(payload, Mapping):
        raise MalformedRunEvent(f"{kind[:60]}: `event` must be an object")
    event_id, execution, sync = raw.get("id"), payload.get("execution_id"), payload.get("sync_id")
    for name, value in (("id", event_id), ("event.execution_id", execution), ("event.sync_id", sync)):
        if not isinstance(value, str) or not value or len(value) > 128 or not value.isprintable():
            raise MalformedRunEvent(f"{kind[:60]}: `{name}` is missing or not an id")
    if not is_uuid(sync):
        raise MalformedRunEvent(f"{kind[:60]}: `event.sync_id` is not a UUID")
    return RunEvent(
        event_id=str(event_id),
        sync_type=_PREFIXES[prefix],
        status=status_of(kind[len(prefix) :]),
        execution_id=str(execution),
        sync_id=str(sync).lower(),
        created_at=timestamp(raw.get("created_at"), f"{kind[:60]}: `created_at`"),
    )


def timestamp(raw: Any, what: str) -> datetime:
    """An RFC 3339 time (`Z` or an offset, any fraction) as an aware UTC datetime."""
    if not isinstance(raw, str) or not raw:
        raise MalformedRunEvent(f"{what} is missing")
    text = raw.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:  # Python takes at most 6 fractional digits; Go writes up to 9
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedRunEvent(f"{what} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise MalformedRunEvent(f"{what} has no time zone")
    return moment.astimezone(UTC)


def from_execution(sync_type: Literal["model", "bulk"], sync_id: str, data: Any) -> RunEvent | None:
    """An execution status answer as the event it stands for (reconciliation), or None if it names no run."""
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or not data["id"]:
        return None
    status = status_of(data.get("status"))
    if status == "errors" or (status == "completed" and data.get("errors")):  # bulk's and model's "with errors"
        status = "completed_with_errors"
    when = data.get("completed_at") or data.get("updated_at") or data.get("created_at")
    try:
        created = timestamp(when, "the execution's time")
    except MalformedRunEvent:
        created = datetime.now(UTC)
    return RunEvent(
        event_id=f"execution:{data['id']}:{status}",
        sync_type=sync_type,
        status=status,
        execution_id=str(data["id"]),
        sync_id=sync_id,
        created_at=created,
    )
