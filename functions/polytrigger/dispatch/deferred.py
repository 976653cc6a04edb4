"""Starts that wait on the dispatch queue: a 409 "already running" deferred until a start succeeds or a
run covers the trigger, and debounce windows that turn a burst of files into one start.

A trigger is *covered* by any execution of its sync created at or after the trigger: that run
has seen the file. Deferred starts are retried with growing delays (30 s, doubling, at most 15
minutes: SQS's limit) until they start, are covered, or exceed the maximum age, when they are
parked in the dispatch dead-letter queue with the reason.

A debounce window's life: the first trigger *opens* it (and queues its message), later ones are
*absorbed*; its message *flushes* it (waits for quiet, never past `max_wait`) and *closes* it, and
the caller starts once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from polytrigger.core.actions import Action
from polytrigger.core.keys import digest
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.errors import RetryLater
from polytrigger.dispatch.messages import WINDOW_PREFIX, Message, WindowFlush, deferred_start, window_flush
from polytrigger.dispatch.ports import (
    MAX_DELAY_SECONDS,
    Queue,
    QueueUnavailable,
    Window,
    WindowStore,
    WindowsUnavailable,
)

FIRST_DELAY_SECONDS = 30
# A window whose deadline passed this long ago lost its message (SQS keeps it 4 days, so this means
# a purge or a bug): it is closed and a new one opened, rather than absorbing files into nothing.
STALE_WINDOW_SECONDS = 3600
Clock = Callable[[], float]


def delay_for(attempt: int, first: int = FIRST_DELAY_SECONDS) -> int:
    return int(min(MAX_DELAY_SECONDS, first * 2 ** max(0, attempt - 1)))


def window_id(action: Action) -> str:
    """One window per (action, sync, start options): a resync is never absorbed into a plain start."""
    return WINDOW_PREFIX + digest(["window", action.kind, action.sync.type, action.sync.id, action.sync.option_pairs()])


def flush_delay(window: Window, action: Action, now: float) -> int:
    """0 when the window should start now; else how long to wait for quiet (never past its deadline)."""
    quiet = now - window.last_arrival
    if quiet >= action.debounce or now >= window.deadline:
        return 0
    return max(1, math.ceil(min(action.debounce - quiet, window.deadline - now)))


@dataclass(frozen=True, slots=True)
class Ready:
    """A flushed window: start now. Only a run created at or after `since` covers its triggers."""

    arrivals: int  # triggers the window gathered (0: an earlier attempt of the message closed it)
    since: float
    now: float


class Deferrals:
    """Puts starts on the dispatch queue: after a 409, or to gather a burst into one window."""

    def __init__(
        self,
        queue: Queue,
        windows: WindowStore,
        *,
        max_age: float,
        first_delay: int = FIRST_DELAY_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        self.queue = queue
        self.windows = windows
        self.max_age = max_age
        self.first_delay = first_delay
        self.clock = clock

    def defer(self, action: Action, *, since: float, reason: str, attempt: int = 1, first_at: float = 0.0) -> Outcome:
        """Retry later; park instead once the action has waited longer than the maximum age."""
        now = self.clock()
        first_at = first_at or now
        delay = delay_for(attempt, self.first_delay)
        message = deferred_start(action, since=since, attempt=attempt, first_at=first_at)
        try:
            if now + delay - first_at > self.max_age:
                waited = int(now - first_at)
                why = f"{reason}; still not started after {waited} s of retries (limit {int(self.max_age)} s): parked"
                self.queue.park(message, why)
                return Outcome.of(action, "failed", reason=why)
            self.queue.send(message, delay)
        except QueueUnavailable as error:
            raise RetryLater(f"{reason}; deferring it failed: {error}") from None
        return Outcome.of(action, "deferred", reason=f"{reason}; retrying in {delay} s")

    def debounce(self, action: Action) -> Outcome:
        """Open the (action, sync)'s window, or be absorbed into the open one."""
        try:
            return self._debounce(action)
        except (WindowsUnavailable, QueueUnavailable) as error:
            raise RetryLater(f"debouncing failed: {type(error).__name__}: {str(error)[:200]}") from None

    def _debounce(self, action: Action) -> Outcome:
        wid = window_id(action)
        for _ in range(3):  # a window can close between our two conditional writes: try again
            now = self.clock()
            if self.windows.open(Window(wid, now, now, now + action.max_wait, 1)):
                try:
                    self.queue.send(window_flush(action, wid, now, 0), action.debounce)
                except QueueUnavailable:
                    self.windows.close(wid, now)  # a window without its message would never start
                    raise
                return Outcome.of(
                    action,
                    "deferred",
                    reason=f"debounced: one start in {action.debounce} s covers every file until then",
                )
            if self.windows.absorb(wid, now, stale_before=now - STALE_WINDOW_SECONDS):
                return Outcome.of(action, "coalesced", reason="absorbed into the open debounce window")
            stale = self.windows.get(wid)
            if stale is not None and stale.deadline < now - STALE_WINDOW_SECONDS:
                self.windows.close(wid, stale.opened_at)  # its message is long overdue: lost; start afresh
        raise RetryLater("debouncing failed: the debounce window kept opening and closing")

    def flush(self, message: WindowFlush) -> Outcome | Ready:
        """Wait for quiet (the next message is queued: `deferred`), or close the window: `Ready` to start."""
        try:
            return self._flush(message)
        except WindowsUnavailable as error:
            raise RetryLater(f"the debounce window cannot be read or closed: {str(error)[:200]}") from None

    def _flush(self, message: WindowFlush) -> Outcome | Ready:
        now = self.clock()
        window = self.windows.get(message.window)
        if window is None or window.opened_at != message.opened_at:
            return Ready(0, now, now)  # closed by an earlier attempt of this message whose start failed
        delay = flush_delay(window, message.action, now)
        if delay:
            self.send(window_flush(message.action, window.id, window.opened_at, message.generation + 1), delay)
            return Outcome.of(message.action, "deferred", reason=f"files are still landing: start in {delay} s")
        closed = self.windows.close(window.id, window.opened_at)
        if closed is None:
            return Ready(0, now, now)
        # a file may have joined after `now` was read: only a run created after it covers it
        return Ready(closed.count, max(now, closed.last_arrival), now)

    def send(self, message: Message, delay: int) -> None:
        try:
            self.queue.send(message, delay)
        except QueueUnavailable as error:
            raise RetryLater(f"the dispatch queue cannot be used: {error}") from None
