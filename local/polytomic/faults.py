"""Fault injection for the fake Polytomic API.

Two kinds of fault exist, because they behave differently for a client:

- **proxy faults** -- 429/502/503/504 answers and dropped connections. They model
  the load balancers and gateways in front of Polytomic: the request never
  reaches Polytomic, nothing is executed and nothing is stored under an
  ``Idempotency-Key``. They are applied before authentication. An injected 401
  is answered there too: Polytomic refuses a key before it looks at the
  ``Idempotency-Key``, so a refusal is never stored (a retry after re-reading
  the secret is answered afresh).
- **server faults** -- any other injected status (typically 500), and pure
  delays/holds. They model Polytomic itself misbehaving: they are applied after
  authentication, the version check and the ``Idempotency-Key`` reservation, so
  an injected 500 is stored and replayed for the same key, exactly like a real
  one. ``side_effects=True`` lets the request execute (the sync starts) and
  still answer with the injected status -- the "500, but it did start" case.
- **in transit** (``in_transit=True``) -- Polytomic runs the request and stores
  its own answer under the key as usual, but the client receives the injected
  status and body, or no answer (``drop``): something between them mangled or
  lost the answer. A retry with the same key gets Polytomic's stored answer.

Queued faults are consumed strictly in order: a request takes the first queued
fault that matches it, and only at the stage that fault belongs to.
"""

from __future__ import annotations

import http
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from local.polytomic.api import error_body
from local.polytomic.http import Reply

#: Statuses that come from the proxies in front of Polytomic, never from Polytomic itself.
PROXY_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})
#: Answered before the ``Idempotency-Key`` is looked at, so never stored: the proxies' and a refused key's.
BEFORE_KEY_STATUSES: frozenset[int] = PROXY_STATUSES | {401}

Stage = Literal["proxy", "server"]


class _Unset:
    """Marker type: no response body override was given."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(eq=False)
class Fault:
    """One injected fault; returned by ``FakePolytomic.inject`` so a test can synchronise with it.

    ``reached`` is set each time a request takes this fault (for a server fault:
    after its ``Idempotency-Key`` has been reserved, i.e. while it is "in flight").
    With ``hold=True`` that request then waits until ``release()`` is called (or
    the fake stops): the deterministic way to test in-flight duplicates, with no
    sleeps.
    """

    status: int | None = None
    times: int = 1
    path_contains: str | None = None
    method: str | None = None
    retry_after: float | int | str | None = None
    delay: float = 0.0
    drop: bool = False
    hold: bool = False
    side_effects: bool = False
    response_body: Any = UNSET
    in_transit: bool = False
    reached: threading.Event = field(default_factory=threading.Event, repr=False)
    released: threading.Event = field(default_factory=threading.Event, repr=False)
    remaining: int = field(init=False)

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.status is None and not self.drop and self.delay <= 0 and not self.hold:
            raise ValueError("a fault needs a status, drop=True, a delay or hold=True")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status")
        if self.side_effects and (self.stage == "proxy" or self.status is None or self.in_transit):
            raise ValueError("side_effects only applies to an injected server status such as 500")
        if self.in_transit and self.status is None and not self.drop:
            raise ValueError("an answer lost or mangled in transit needs a status or drop=True")
        self.remaining = self.times

    @property
    def stage(self) -> Stage:
        """Where the fault applies: in front of Polytomic (proxy) or inside it (server; in transit: after it)."""
        if self.in_transit:
            return "server"
        if self.drop or (self.status is not None and self.status in BEFORE_KEY_STATUSES):
            return "proxy"
        return "server"

    @property
    def label(self) -> str:
        """A short description recorded on the ``Call`` the fault answered."""
        if self.drop:
            return "transit:drop" if self.in_transit else "drop"
        if self.status is not None:
            return f"transit:{self.status}" if self.in_transit else f"status:{self.status}"
        return "hold" if self.hold else "delay"

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with this method and path (query string excluded) is targeted."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_contains is None or self.path_contains in path

    def release(self) -> None:
        """Let the held request(s) continue."""
        self.released.set()


@dataclass(frozen=True)
class RandomFaults:
    """Seeded random faults for reliability runs: each request fails with probability ``rate``."""

    rate: float
    seed: int | None
    statuses: tuple[int, ...] = tuple(sorted(PROXY_STATUSES))
    drop: bool = True
    path_contains: str | None = None
    timeout: float = 0.0  # > 0: also answer late (after this many seconds) but run the request


class FaultPlan:
    """The queued faults, the random-fault generator and the global latency; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self._holds: list[Fault] = []  # every hold fault, consumed or not, so clear() can release them
        self._random: RandomFaults | None = None
        self._rng = random.Random()
        self.latency: float = 0.0

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._queue.append(fault)
            if fault.hold:
                self._holds.append(fault)
        return fault

    def set_random(self, config: RandomFaults | None) -> None:
        with self._lock:
            self._random = config
            self._rng = random.Random(config.seed if config else None)

    def clear(self) -> list[Fault]:
        """Forget every fault and the latency; returns the queued and hold faults (to be released)."""
        with self._lock:
            dropped = [*self._queue, *(f for f in self._holds if f not in self._queue)]
            self._queue, self._holds = [], []
            self._random = None
            self.latency = 0.0
        return dropped

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._queue)

    def take(self, stage: Stage, method: str, path: str) -> Fault | None:
        """Consume one use of the first queued fault matching the request, if it belongs to ``stage``.

        A matching fault of the other stage stops the search: it is first in
        line, so the request leaves it for its own stage (order is kept).
        """
        with self._lock:
            for fault in self._queue:
                if not fault.matches(method, path):
                    continue
                if fault.stage != stage:
                    return None
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._queue.remove(fault)
                return fault
            return None

    def draw_random(self, method: str, path: str) -> Fault | None:
        """Roll the seeded dice once for this request; a hit becomes a one-shot fault."""
        with self._lock:
            config = self._random
            if config is None or config.rate <= 0:
                return None
            if config.path_contains is not None and config.path_contains not in path:
                return None
            if self._rng.random() >= config.rate:
                return None
            choices: list[int | str] = list(config.statuses)
            if config.drop:
                choices.append("drop")
            if config.timeout > 0:
                choices.append("slow")
            if not choices:
                return None
            picked = self._rng.choice(choices)
        if picked == "drop":
            return Fault(drop=True)
        if picked == "slow":
            return Fault(delay=config.timeout)
        return Fault(status=int(picked))


def normalise_statuses(statuses: Iterable[int]) -> tuple[int, ...]:
    """Validate random-fault statuses (HTTP error statuses only)."""
    result = tuple(int(s) for s in statuses)
    for status in result:
        if not 400 <= status <= 599:
            raise ValueError(f"random fault status {status} is not an HTTP error status")
    return result


def default_body(status: int) -> Any:
    """What a fault answers by default: gateways send HTML pages, Polytomic sends its error JSON."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if status in (502, 503, 504):
        return f"<html><head><title>{status} {phrase}</title></head><body><h1>{status} {phrase}</h1></body></html>"
    if status == 409:
        return error_body(409, "sync_already_running", "a sync execution is already running")
    return error_body(status, phrase.lower().replace(" ", "_").replace("-", "_"), phrase.lower())


def fault_reply(fault: Fault) -> Reply:
    """The answer an injected status or drop gives (``Retry-After`` when configured)."""
    if fault.drop or fault.status is None:
        return Reply(0, drop=True, fault=fault.label)
    body = default_body(fault.status) if fault.response_body is UNSET else fault.response_body
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    return Reply(fault.status, body, headers, fault=fault.label)
