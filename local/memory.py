"""The dispatch ports in memory: the dedup table, the debounce windows and the dispatch queue.

One implementation of each, with the real adapters' semantics, shared by the burst simulation
(benchmarks/sim.py) and the unit tests, so the policies are tested against the same behaviour the
simulation measures. Never shipped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.messages import Message, decode, encode
from polytrigger.dispatch.ports import DedupBusy, DedupUnavailable, QueueUnavailable, Window


class MemoryDedup:
    """`DedupStore` as the Powertools adapter behaves on DynamoDB.

    A settled outcome is remembered and a later call with the key returns a copy of it with status
    `duplicate`; a `failed` outcome is returned and not remembered; any other exception is not
    remembered and propagates. A call with a key whose first call has not finished raises `DedupBusy`.
    `unavailable` makes every call fail as an unusable table would (`DedupUnavailable`).
    """

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.attempts: Counter[str] = Counter()
        self.sent: dict[str, float] = {}  # when each key's first request went out
        self.seen: list[str] = []  # every key asked for, in order
        self.unavailable: str | None = None
        self._in_progress: set[str] = set()

    def once(self, key: str, perform: Callable[[], Outcome]) -> Outcome:
        self.seen.append(key)
        if self.unavailable is not None:
            raise DedupUnavailable(self.unavailable)
        stored = self.records.get(key)
        if stored is not None:
            earlier = stored["status"]
            return Outcome.from_dict({**stored, "status": "duplicate", "reason": f"already {earlier} for this trigger"})
        if key in self._in_progress:
            raise DedupBusy(key)
        self._in_progress.add(key)
        try:
            outcome = perform()
        finally:
            self._in_progress.discard(key)
        if outcome.status == "failed":
            return outcome
        self.records[key] = outcome.to_dict()
        return Outcome.from_dict(self.records[key])

    def next_attempt(self, key: str) -> int:
        if self.unavailable is not None:
            raise DedupUnavailable(self.unavailable)
        self.attempts[key] += 1
        return self.attempts[key]

    def first_sent(self, key: str, sent: float) -> float:
        if self.unavailable is not None:
            raise DedupUnavailable(self.unavailable)
        return self.sent.setdefault(key, sent)


class MemoryWindows:
    """`WindowStore` in memory, conditional writes included."""

    def __init__(self) -> None:
        self.windows: dict[str, Window] = {}

    def open(self, window: Window) -> bool:
        if window.id in self.windows:
            return False
        self.windows[window.id] = window
        return True

    def absorb(self, window_id: str, now: float, *, debounce: int, overdue_before: float) -> Window | None:
        window = self.windows.get(window_id)
        if window is None or window.flush_due(debounce) < overdue_before:
            return None
        self.windows[window_id] = replace(window, last_arrival=now, count=window.count + 1)
        return self.windows[window_id]

    def confirm(self, window_id: str, opened_at: float) -> None:
        window = self.windows.get(window_id)
        if window is not None and window.opened_at == opened_at:
            self.windows[window_id] = replace(window, sent=True)

    def get(self, window_id: str) -> Window | None:
        return self.windows.get(window_id)

    def close(self, window_id: str, opened_at: float) -> Window | None:
        window = self.windows.get(window_id)
        if window is None or window.opened_at != opened_at:
            return None
        return self.windows.pop(window_id)


class MemoryQueue:
    """`Queue` in memory: what was sent (with its delay) and what was parked (with why), as it would
    come back from SQS (through the JSON wire format). `unavailable` makes sending and parking fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[Message, int]] = []
        self.parked: list[tuple[Message, str]] = []
        self.unavailable: str | None = None

    def send(self, message: Message, delay_seconds: int) -> None:
        if self.unavailable is not None:
            raise QueueUnavailable(self.unavailable)
        self.sent.append((wire(message), delay_seconds))

    def park(self, message: Message, reason: str) -> None:
        """Kept with its reason beside it (SqsQueue writes the reason into the body as `parked_because`)."""
        if self.unavailable is not None:
            raise QueueUnavailable(self.unavailable)
        self.parked.append((wire(message), reason))


def wire(message: Message) -> Message:
    """The message as the dispatcher will receive it: encoded to JSON text and decoded again."""
    return decode(json.loads(json.dumps(encode(message))))
