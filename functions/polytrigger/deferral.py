"""Starts that wait: a 409 "already running" re-queued until a start succeeds or a run covers the
trigger, and debounce windows that turn a burst of files into one start.

A trigger is *covered* by any execution of its sync created at or after the trigger: that run
has seen the file. Deferred starts are retried with growing delays (30 s, doubling, at most 15
minutes: SQS's limit) until they start, are covered, or exceed the maximum age, when they are
parked in the dispatch dead-letter queue with the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from polytrigger.actions import Action, Outcome, SyncTarget
from polytrigger.queue import MAX_DELAY_SECONDS, Queue
from polytrigger.triggers import Trigger
from polytrigger.windows import Window, WindowStore, window_id

FIRST_DELAY_SECONDS = 30
# A window whose deadline passed this long ago lost its message (SQS keeps it 4 days, so this means
# a purge or a bug): it is closed and a new one opened, rather than absorbing files into nothing.
STALE_WINDOW_SECONDS = 3600
Clock = Callable[[], float]


def delay_for(attempt: int, first: int = FIRST_DELAY_SECONDS) -> int:
    return int(min(MAX_DELAY_SECONDS, first * 2 ** max(0, attempt - 1)))


def message_key(*parts: object) -> str:
    """A deterministic id for a queued message: its dedup record key and its Idempotency-Key."""
    return hashlib.sha256(json.dumps([str(part) for part in parts]).encode()).hexdigest()


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
        message = {
            "kind": "deferred",
            "id": message_key(action.dedup_key, "deferred", attempt),
            "action": encode(action),
            "since": since,
            "attempt": attempt,
            "first_at": first_at,
        }
        if now + delay - first_at > self.max_age:
            waited = int(now - first_at)
            why = f"{reason}; still not started after {waited} s of retries (limit {int(self.max_age)} s): parked"
            self.queue.park(message, why)
            return Outcome.of(action, "failed", reason=why)
        self.queue.send(message, delay)
        return Outcome.of(action, "deferred", reason=f"{reason}; retrying in {delay} s")

    def debounce(self, action: Action) -> Outcome:
        """Open the (action, sync)'s window, or be absorbed into the open one."""
        wid = window_id(action)
        for _ in range(3):  # a window can close between our two conditional writes: try again
            now = self.clock()
            if self.windows.open(Window(wid, now, now, now + action.max_wait, 1)):
                try:
                    self.queue.send(window_message(action, wid, now, 0), action.debounce)
                except Exception:
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
        raise RuntimeError("the debounce window kept opening and closing; will retry")


def window_message(action: Action, wid: str, opened_at: float, generation: int) -> dict[str, Any]:
    return {
        "kind": "window",
        "id": message_key(wid, opened_at, generation),
        "action": encode(action),
        "window": wid,
        "opened_at": opened_at,
        "generation": generation,
    }


def flush_delay(window: Window, action: Action, now: float) -> int:
    """0 when the window should start now; else how long to wait for quiet (never past its deadline)."""
    quiet = now - window.last_arrival
    if quiet >= action.debounce or now >= window.deadline:
        return 0
    return max(1, math.ceil(min(action.debounce - quiet, window.deadline - now)))


# -- messages carry the whole action, so the dispatcher needs no routes file -------------------


def encode(action: Action) -> dict[str, Any]:
    trigger = action.trigger
    return {
        "route": action.route,
        "kind": action.kind,
        "sync": {
            "id": action.sync.id,
            "type": action.sync.type,
            "options": [
                [name, list(value) if isinstance(value, tuple) else value] for name, value in action.sync.options
            ],
        },
        "trigger": {
            "kind": trigger.kind,
            "time": trigger.time.timestamp(),
            "bucket": trigger.bucket,
            "key": trigger.key,
            "event": trigger.event,
            "sequencer": trigger.sequencer,
            "schedule": trigger.schedule,
        },
        "debounce": action.debounce,
        "max_wait": action.max_wait,
    }


def decode(data: dict[str, Any]) -> Action:
    """The inverse of `encode`; raises KeyError/TypeError/ValueError on a message that is not ours."""
    sync, trigger = data["sync"], data["trigger"]
    options = tuple((str(n), tuple(v) if isinstance(v, list) else v) for n, v in sync["options"])
    return Action(
        route=str(data["route"]),
        kind=data["kind"],
        sync=SyncTarget(id=str(sync["id"]), type=sync["type"], options=options),
        trigger=Trigger(
            kind=trigger["kind"],
            time=datetime.fromtimestamp(float(trigger["time"]), UTC),
            bucket=str(trigger["bucket"]),
            key=str(trigger["key"]),
            event=trigger["event"],
            sequencer=str(trigger["sequencer"]),
            schedule=str(trigger["schedule"]),
        ),
        debounce=int(data["debounce"]),
        max_wait=int(data["max_wait"]),
    )
