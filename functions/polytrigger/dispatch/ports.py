"""What the dispatch policies need from the world (the dedup table, the debounce windows, the dispatch
queue), the errors it may answer with, and the two ways a policy says an action failed.

Adapters (`dedup`, `windows`, `queue`) implement these protocols and turn their libraries' errors
into the errors below, so a policy catches exactly what it can act on and lets anything else (a
bug) fail loudly. A policy raises `RetryLater` (a retry can fix it) or `Refused` (a person must)
inside the dedup call, so the action is not remembered; both become a `failed` outcome at the
dedup boundary (`DispatchPolicy.once`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.messages import Message

MAX_DELAY_SECONDS = 900  # the longest an SQS message can be delayed
DISPATCH_DEAD_LETTERS = "the dispatch dead-letter queue"  # where a dispatch message is parked, with why


class RetryLater(Exception):
    """A later attempt can fix it: the outcome is retryable, so the invocation (or the message) fails and AWS retries."""


class Refused(Exception):
    """Polytomic refused it; retrying cannot help until a person fixes the cause."""


def retryable(action: Action, reason: str) -> Outcome:
    return Outcome.of(action, "failed", reason=f"{reason}; the event will be retried", retryable=True)


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
