"""The fake Polytomic's ``Idempotency-Key`` store.

Documented behaviour it reproduces: the first request with a key fixes the
response (status and body, errors included); later requests with the same key
get that response back; while the first one is still being processed a
duplicate gets 409. Only responses Polytomic itself produced are stored: the
caller decides that (401s, version errors and proxy faults never get here).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,255}")


@dataclass(frozen=True)
class StoredResponse:
    """The response fixed by the first request with a key, and what that request was."""

    status: int
    body: Any
    method: str
    path: str
    request_body: Any


class _InFlight:
    """Marker: the first request with this key has not answered yet."""


IN_FLIGHT = _InFlight()


def valid_key(key: str) -> bool:
    """8-255 characters, letters, digits, ``-`` and ``_`` only (a SHA-256 hex digest fits)."""
    return KEY_PATTERN.fullmatch(key) is not None


class IdempotencyStore:
    """Keys to stored responses, with an in-flight state; thread-safe.

    Keys are global to the fake (it models one organisation).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, StoredResponse | _InFlight] = {}

    def begin(self, key: str) -> StoredResponse | _InFlight | None:
        """Reserve ``key``; returns None when reserved, else what is already there (do not proceed)."""
        with self._lock:
            existing = self._entries.get(key)
            if existing is None:
                self._entries[key] = IN_FLIGHT
            return existing

    def complete(self, key: str, response: StoredResponse) -> None:
        with self._lock:
            self._entries[key] = response

    def abandon(self, key: str) -> None:
        """Release a reservation whose request never produced a response (the fake was stopping)."""
        with self._lock:
            if self._entries.get(key) is IN_FLIGHT:
                del self._entries[key]

    def get(self, key: str) -> StoredResponse | None:
        with self._lock:
            entry = self._entries.get(key)
        return entry if isinstance(entry, StoredResponse) else None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
