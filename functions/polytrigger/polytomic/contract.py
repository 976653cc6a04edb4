"""Polytomic as polytrigger relies on it: the calls it makes, what they answer, and every way they fail.

The one contract between polytrigger and Polytomic (`polytomic-api.md` is its source). The client
(`polytomic.client`, urllib3) keeps it and says *what Polytomic answered*, as the errors below; what
an answer means for an action is decided once, by the dispatch policy (`dispatch.policy`), whoever
performs it. Paths are built here only from validated parts, so a crafted id never changes a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from polytrigger.core.keys import is_uuid

# -- Polytomic ---------------------------------------------------------------------------------


class PolytomicError(Exception):
    """An answer (or no answer) from Polytomic that is not a success."""

    def __init__(self, message: str, *, status: int | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.key = key

    @property
    def reason(self) -> str:
        """The message without the request line: what an outcome's reason shows."""
        text = str(self)
        return text.split(": ", 1)[1] if text.startswith(("GET ", "POST ")) and ": " in text else text


class AlreadyRunning(PolytomicError):
    """409: a run of this sync is already in progress (not a failure)."""


class KeyInFlight(PolytomicError):
    """409: a request with the same Idempotency-Key is still being processed (retry later)."""


class Unauthorized(PolytomicError):
    """401, still after re-reading the secret."""


class Rejected(PolytomicError):
    """Any other 4xx (400, 403, 404, 422, ...): configuration is wrong; retrying cannot help."""


class ServerError(PolytomicError):
    """500: Polytomic replays it for the same Idempotency-Key, so a blind retry is useless."""


class Transient(PolytomicError):
    """408/429/502/503/504 and other 5xx, timeouts, dropped connections: still failing after bounded retries."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        key: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, key=key)
        self.retry_after = retry_after


class Throttled(Transient):
    """429, still after the in-call retries: Polytomic asks us to slow down (`retry_after`, if it says)."""


class UnreadableAnswer(PolytomicError):
    """A 2xx whose body does not say what was done (not JSON, no execution id, the wrong `active`).

    Not recorded as done: a retry with the same Idempotency-Key gets Polytomic's stored answer,
    and an answer that stays unreadable ends parked with this reason.
    """


class CredentialsError(RuntimeError):
    """The Polytomic secret cannot be read or is not in a supported format (the value is never quoted)."""


@dataclass(frozen=True, slots=True)
class Execution:
    id: str
    status: str
    created_at: str | None = None


class PolytomicApi(Protocol):
    def start(
        self, sync_type: str, sync_id: str, body: dict[str, Any], *, idempotency_key: str, deadline: float | None = None
    ) -> Execution: ...

    def set_active(
        self,
        sync_type: str,
        sync_id: str,
        active: bool,
        *,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> bool: ...

    def executions(self, sync_type: str, sync_id: str, *, deadline: float | None = None) -> list[dict[str, Any]]:
        """The sync's most recent executions, newest first."""
        ...

    def active(self, sync_type: str, sync_id: str, *, deadline: float | None = None) -> bool | None:
        """Whether the sync is active (not paused); None when Polytomic's answer does not say."""
        ...


class RunReads(Protocol):
    """Polytomic's reads that follow runs: the events API and one execution's status."""

    def events(self, starting_after: datetime, ending_before: datetime | None, limit: int) -> list[Any]: ...

    def execution(self, sync_type: str, sync_id: str, execution_id: str) -> dict[str, Any] | None:
        """The execution, or None when Polytomic does not know it (404)."""
        ...

    def executions(self, sync_type: str, sync_id: str, since: datetime) -> list[dict[str, Any]]:
        """The sync's executions newest first, every page back to one created before `since` (none for a
        sync Polytomic does not know)."""
        ...

    def active(self, sync_type: str, sync_id: str) -> bool | None:
        """Whether the sync is active; None when Polytomic does not know it (404) or does not say."""
        ...


# -- paths ---------------------------------------------------------------------------------------


def base(sync_type: str) -> str:
    if sync_type == "model":
        return "/api/syncs"
    if sync_type == "bulk":
        return "/api/bulk/syncs"
    raise ValueError(f"unknown sync type {sync_type!r}")


def sync_path(sync_type: str, sync_id: str) -> str:
    """`/api/syncs/<id>` or `/api/bulk/syncs/<id>`, once the id is a UUID."""
    if not is_uuid(sync_id):
        raise ValueError(f"sync id {sync_id!r} is not a UUID")
    return f"{base(sync_type)}/{sync_id}"
