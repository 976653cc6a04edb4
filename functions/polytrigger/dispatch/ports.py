"""What the dispatch policies need from the world, and the errors it may answer with.

Adapters implement these protocols and turn their libraries' errors (urllib3, botocore,
Powertools) into the errors below, so a policy catches exactly what it can act on and lets
anything else (a bug) fail loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.messages import Message

MAX_DELAY_SECONDS = 900  # the longest an SQS message can be delayed

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


# -- the dedup table ---------------------------------------------------------------------------


class DedupBusy(Exception):
    """Another delivery is doing this action right now (its record is in progress)."""


class DedupUnavailable(Exception):
    """The dedup table cannot be used. `called`: the action was performed, but its outcome not saved."""

    def __init__(self, message: str, *, called: bool = False) -> None:
        super().__init__(message)
        self.called = called


class DedupStore(Protocol):
    def once(self, key: str, perform: Callable[[], Outcome]) -> Outcome:
        """`perform` at most once per key. A settled outcome is remembered and comes back as `duplicate`;
        a `failed` outcome or an exception is not remembered (a retry does it again)."""
        ...

    def next_attempt(self, key: str) -> int:
        """Count fresh attempts of one action (after a replayed 500), atomically: 1, 2, ..."""
        ...

    def first_sent(self, key: str, sent: float) -> float:
        """The earliest `sent` ever given for this key (kept atomically): when its first request went out."""
        ...


# -- debounce windows --------------------------------------------------------------------------


class WindowsUnavailable(Exception):
    """The window store cannot be used."""


@dataclass(frozen=True, slots=True)
class Window:
    id: str
    opened_at: float  # epoch seconds, by the opener's clock
    last_arrival: float  # when the latest absorbed trigger arrived
    deadline: float  # opened_at + max_wait: the start happens by then whatever keeps landing
    count: int
    sent: bool = False  # its first message is on the queue (confirmed by the opener, or re-sent by an absorber)

    def flush_due(self, debounce: int) -> float:
        """When its message should have flushed it: after `debounce` quiet seconds, and never past the deadline."""
        return min(self.last_arrival + debounce, self.deadline)


class WindowStore(Protocol):
    def open(self, window: Window) -> bool:
        """Open the window unless one with its id is open (conditional: one opener wins)."""
        ...

    def absorb(self, window_id: str, now: float, *, debounce: int, overdue_before: float) -> Window | None:
        """Join the open window and answer its new state; None if it is gone, or overdue: its flush was
        due (`Window.flush_due(debounce)`) before `overdue_before`, so its message is lost."""
        ...

    def confirm(self, window_id: str, opened_at: float) -> None:
        """Record that the window's first message is on the queue."""
        ...

    def get(self, window_id: str) -> Window | None: ...

    def close(self, window_id: str, opened_at: float) -> Window | None:
        """Close the window if it is still the one opened at `opened_at` (one closer wins); its last state."""
        ...


# -- the dispatch queue ------------------------------------------------------------------------


class QueueUnavailable(Exception):
    """The dispatch queue (or its dead-letter queue) cannot be used."""


class Queue(Protocol):
    def send(self, message: Message, delay_seconds: int) -> None: ...

    def park(self, message: Message, reason: str) -> None:
        """Put the message where a person will look at it (the dispatch dead-letter queue), with why."""
        ...
