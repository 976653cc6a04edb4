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

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from polytrigger.core.actions import Action
from polytrigger.core.keys import digest
from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.messages import WINDOW_PREFIX, Message, WindowFlush, deferred_start, window_flush
from polytrigger.dispatch.ports import (
    MAX_DELAY_SECONDS,
    Queue,
    QueueUnavailable,
    RetryLater,
    Window,
    WindowStore,
    WindowsUnavailable,
)

FIRST_DELAY_SECONDS = 30
# A window whose flush was due (quiet for `debounce`, or its deadline) this long ago lost its message
# (a purge, a failed send and a failed close, or a bug): it is closed and a new one opened, rather
# than absorbing files into nothing. Were the message only late, it still starts when it arrives.
OVERDUE_WINDOW_SECONDS = 300
# An opener sends the window's message milliseconds after opening it; a window still unconfirmed
# this long after opening lost its opener in between, and the next file re-sends the message. A
# file joining a younger unconfirmed window waits for the confirmation (polling) up to then.
UNCONFIRMED_WINDOW_SECONDS = 2
CONFIRM_POLL_SECONDS = 0.2
# Polytomic's clock may run ahead of ours: a run it dates this close after the trigger may predate it.
SKEW_SECONDS = 1.0
Clock = Callable[[], float]


def coverage_since(trigger_time: datetime, received: float) -> float:
    """The earliest a run may be created (by Polytomic's clock) and still count as covering the trigger.

    The file had landed by the end of the trigger's time (EventBridge dates S3 events in whole
    seconds, so a whole-second time stands for any moment of that second) and by the time we
    received it: the earlier of the two is the tighter bound, and both are safe. Then SKEW_SECONDS
    for Polytomic's clock running ahead of ours. Erring late costs at most one more start; erring
    early would leave a file unsynced.
    """
    moment = trigger_time.timestamp()
    landed_by = moment + 1 if moment == int(moment) else moment
    return min(landed_by, received) + SKEW_SECONDS


def delay_for(attempt: int, first: int = FIRST_DELAY_SECONDS) -> int:
    return int(min(MAX_DELAY_SECONDS, first * 2 ** max(0, attempt - 1)))


def window_id(action: Action) -> str:
    """One window per (action, sync, start options): a resync is never absorbed into a plain start."""
    return WINDOW_PREFIX + digest(["window", action.kind, action.sync.type, action.sync.id, action.sync.option_pairs()])


def message_refusal(message: Message) -> str | None:
    """Why a queued message is not one the dispatch policies could have written, given its action.

    (Whether the routes make that action at all is the routes' question.) A window message exists
    only for an action that debounces, and names that action's own window.
    """
    if isinstance(message, WindowFlush):
        if not message.action.debounce:
            return "a window message for an action that does not debounce"
        if message.window != window_id(message.action):
            return "a window message naming another action's window"
    return None


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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.queue = queue
        self.windows = windows
        self.max_age = max_age
        self.first_delay = first_delay
        self.clock = clock
        self.sleep = sleep

    def defer(
        self,
        action: Action,
        *,
        since: float,
        reason: str,
        attempt: int = 1,
        first_at: float = 0.0,
        at_least: float = 0.0,
    ) -> Outcome:
        """Retry later (not before `at_least` seconds: a 429's Retry-After); park instead once the
        action has waited longer than the maximum age."""
        now = self.clock()
        first_at = first_at or now
        delay = min(MAX_DELAY_SECONDS, max(delay_for(attempt, self.first_delay), math.ceil(at_least)))
        message = deferred_start(action, since=since, attempt=attempt, first_at=first_at)
        try:
            if now + delay - first_at > self.max_age:
                waited = int(now - first_at)
                why = f"{reason}; still not started after {waited} s of retries (limit {int(self.max_age)} s): parked"
                self.queue.park(message, why)
                return Outcome.of(action, "failed", reason=why, parked=True)
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
                self._confirm(wid, now)
                return Outcome.of(
                    action,
                    "deferred",
                    reason=f"debounced: one start in {action.debounce} s covers every file until then",
                )
            joined = self.windows.absorb(
                wid, now, debounce=action.debounce, overdue_before=now - OVERDUE_WINDOW_SECONDS
            )
            if joined is not None:
                return self._joined(action, joined, now)
            overdue = self.windows.get(wid)
            if overdue is not None and overdue.flush_due(action.debounce) < now - OVERDUE_WINDOW_SECONDS:
                self.windows.close(wid, overdue.opened_at)  # its message is long overdue: lost; start afresh
        raise RetryLater("debouncing failed: the debounce window kept opening and closing")

    def _joined(self, action: Action, window: Window, now: float) -> Outcome:
        """Absorbed: `coalesced` only once the window's message is known to be on the queue.

        A window is confirmed by its opener right after its message is sent. A younger unconfirmed
        window is waited for (its opener is between two calls); one still unconfirmed after
        UNCONFIRMED_WINDOW_SECONDS lost its opener, and its message is sent again: it is deterministic,
        so the dispatcher does it once however many copies arrive. A window that closes meanwhile was
        flushed after this file joined it, or closed by an opener that failed and is retried: either
        start comes after this file, so it covers it.
        """
        for _ in range(math.ceil(UNCONFIRMED_WINDOW_SECONDS / CONFIRM_POLL_SECONDS)):
            if window.sent or now - window.opened_at >= UNCONFIRMED_WINDOW_SECONDS:
                break
            self.sleep(CONFIRM_POLL_SECONDS)
            now = self.clock()
            current = self.windows.get(window.id)
            if current is None or current.opened_at != window.opened_at:
                return Outcome.of(action, "coalesced", reason="absorbed into the debounce window, since closed")
            window = current
        if window.sent:
            return Outcome.of(action, "coalesced", reason="absorbed into the open debounce window")
        delay = max(0, math.ceil(window.opened_at + action.debounce - now))
        self.queue.send(window_flush(action, window.id, window.opened_at, 0), delay)
        self._confirm(window.id, window.opened_at)
        return Outcome.of(
            action,
            "coalesced",
            reason="absorbed into the open debounce window, whose message was not confirmed: sent it again",
        )

    def _confirm(self, wid: str, opened_at: float) -> None:
        """Mark the message sent. If that fails the window stays unconfirmed, and a later file re-sends the
        (same) message: a duplicate the dispatcher ignores, never a window without one."""
        with contextlib.suppress(WindowsUnavailable):
            self.windows.confirm(wid, opened_at)

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
            return Ready(0, now + SKEW_SECONDS, now)  # closed by an earlier attempt of this message whose start failed
        delay = flush_delay(window, message.action, now)
        if delay:
            self.send(window_flush(message.action, window.id, window.opened_at, message.generation + 1), delay)
            return Outcome.of(message.action, "deferred", reason=f"files are still landing: start in {delay} s")
        closed = self.windows.close(window.id, window.opened_at)
        if closed is None:
            return Ready(0, now + SKEW_SECONDS, now)
        # a file may have joined after `now` was read: only a run created after it covers it
        return Ready(closed.count, max(now, closed.last_arrival) + SKEW_SECONDS, now)

    def send(self, message: Message, delay: int) -> None:
        try:
            self.queue.send(message, delay)
        except QueueUnavailable as error:
            raise RetryLater(f"the dispatch queue cannot be used: {error}") from None
