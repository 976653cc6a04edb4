"""A fake Polytomic REST API on 127.0.0.1, for tests and the demo.

Why a fake and not mocks: polytrigger talks HTTP with urllib3, and the
behaviours that matter (auth, the version header, envelopes, 409 while a run is
in progress, ``Idempotency-Key`` replay and in-flight 409, dropped connections,
slow answers) only show up over a real socket. The fake follows
the Polytomic API notes (``polytomic-api.md``); the official ``polytomic`` SDK pointed at it is the
independent check that its shapes are right.

Request pipeline (each step can answer and stop):

1. global latency (``set_latency``);
2. proxy faults (429/502/503/504, drops; queued or seeded random): answered
   before Polytomic "sees" the request -- no auth, nothing executed, nothing stored;
3. authentication (Bearer API key, or Basic ``organization_id:deployment_key``) -> 401;
4. ``X-Polytomic-Version`` must be a supported version -> 400;
5. on POSTs, ``Idempotency-Key``: invalid -> 400, stored -> replay, in flight -> 409,
   else reserve it;
6. server faults (e.g. 500, delays, holds) and the endpoint logic (``polytomic_api``);
7. the answer is stored under the key (errors included) and sent; every
   request is recorded as a ``Call``.

Usage::

    with FakePolytomic(api_keys=["k1"]) as fake:
        sync_id = fake.add_sync(kind="model", run_seconds=3600)
        ... point the client at fake.url ...
        assert fake.executions(sync_id)[0].options == {"resync": True}
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Self

from local.polytomic_api import (
    SUPPORTED_VERSIONS,
    Execution,
    FakeApi,
    Request,
    SyncKind,
    SyncRecord,
    error_body,
)
from local.polytomic_faults import UNSET, Fault, FaultPlan, RandomFaults, fault_reply, normalise_statuses
from local.polytomic_http import LoopbackServer, Reply
from local.polytomic_idempotency import IN_FLIGHT, IdempotencyStore, StoredResponse, valid_key
from local.service import LocalService

__all__ = [
    "DEFAULT_API_KEY",
    "SUPPORTED_VERSIONS",
    "Call",
    "Execution",
    "FakePolytomic",
    "Fault",
    "StoredResponse",
    "SyncRecord",
]

DEFAULT_API_KEY = "fake-polytomic-api-key"

Credential = Literal["api_key", "deployment_key"]
UNAUTHORIZED = error_body(401, "unauthorized", "unauthorized")


@dataclass(frozen=True)
class Call:
    """One request that reached the fake and what it answered.

    ``headers`` has lower-cased names; ``body`` is the parsed JSON request body
    (the raw text if it was not JSON, None if empty); ``status`` is 0 when the
    connection was dropped; ``response`` is the parsed answer body (JSON, or the
    text of an HTML proxy error page). ``fault`` names the injected fault that
    answered (``"status:503"``, ``"drop"``, ``"delay"``, ``"hold"``), and
    ``replayed`` is True when the answer came from the ``Idempotency-Key`` store.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    response: Any
    query: str = ""
    fault: str | None = None
    replayed: bool = False


class FakePolytomic(LocalService):
    """The fake API server: configuration, state, fault injection and the recorded calls.

    All public methods are thread-safe and may be called while requests are in flight.
    """

    def __init__(
        self,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        deployment_keys: Iterable[tuple[str, str]] = (),
        *,
        organization_id: str | None = None,
        reject_reused_keys: bool = False,
    ) -> None:
        """``deployment_keys`` are ``(organization_id, key)`` pairs accepted as Basic auth.

        ``reject_reused_keys=True`` answers 422 when an ``Idempotency-Key`` is reused
        with a different path or body (unconfirmed for Polytomic; the default replays).
        """
        self.organization_id = organization_id or str(uuid.uuid4())
        self.reject_reused_keys = reject_reused_keys
        self._initial_keys = (tuple(api_keys), tuple(deployment_keys))
        self._lock = threading.Lock()
        self._api_keys: frozenset[str] = frozenset(self._initial_keys[0])
        self._deployment_keys: frozenset[tuple[str, str]] = frozenset(self._initial_keys[1])
        self._api = FakeApi(organization_id=self.organization_id)
        self._faults = FaultPlan()
        self._idempotency = IdempotencyStore()
        self._calls: list[Call] = []
        self._stopping = threading.Event()
        self._server: LoopbackServer | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("FakePolytomic is already running")
        self._stopping.clear()
        self._server = LoopbackServer(self._respond, self._stopping)
        self._server.start("fake-polytomic")
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping/held requests, close every connection, join every thread."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakePolytomic is not running")
        return self._server.port

    @property
    def url(self) -> str:
        """Base URL to use as ``POLYTOMIC_BASE_URL``: ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    # -- credentials ----------------------------------------------------------------------

    @property
    def api_keys(self) -> frozenset[str]:
        with self._lock:
            return self._api_keys

    def set_api_keys(self, keys: Iterable[str]) -> None:
        """Replace the accepted API keys (key rotation: the old key gets 401 from now on)."""
        with self._lock:
            self._api_keys = frozenset(keys)

    @property
    def deployment_keys(self) -> frozenset[tuple[str, str]]:
        with self._lock:
            return self._deployment_keys

    def set_deployment_keys(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Replace the accepted ``(organization_id, deployment_key)`` pairs."""
        with self._lock:
            self._deployment_keys = frozenset(pairs)

    # -- syncs and executions -------------------------------------------------------------

    def add_sync(
        self,
        sync_id: str | None = None,
        kind: SyncKind = "model",
        active: bool = True,
        run_seconds: float = 0.0,
        name: str | None = None,
    ) -> str:
        """Register (or replace) a sync; returns its id (a new UUID when none is given).

        An execution stays in progress for ``run_seconds`` (a start meanwhile gets
        409); use a large value and ``finish_running`` to avoid timing in tests.
        """
        sync_id = sync_id or str(uuid.uuid4())
        self._api.add_sync(sync_id, kind, active, run_seconds, name or f"fake {kind} sync")
        return sync_id

    def sync(self, sync_id: str) -> SyncRecord:
        """A copy of the sync's current state (``active`` changes through the activate endpoint)."""
        return self._api.sync(sync_id)

    def set_active(self, sync_id: str, active: bool) -> None:
        self._api.set_active(sync_id, active)

    def executions(self, sync_id: str | None = None) -> list[Execution]:
        """Executions created by starts, oldest first (the API lists them newest first)."""
        return self._api.executions(sync_id)

    def set_execution_status(self, execution_id: str, status: str) -> None:
        self._api.set_execution_status(execution_id, status)

    def finish_running(self, sync_id: str | None = None, status: str = "completed") -> int:
        """End in-progress executions (so a new start is accepted); returns how many."""
        return self._api.finish_running(sync_id, status)

    def stored_response(self, idempotency_key: str) -> StoredResponse | None:
        """What the fake will replay for this ``Idempotency-Key``, if anything."""
        return self._idempotency.get(idempotency_key)

    # -- faults ---------------------------------------------------------------------------

    def inject(
        self,
        status: int | None = None,
        *,
        times: int = 1,
        path_contains: str | None = None,
        method: str | None = None,
        retry_after: float | int | str | None = None,
        delay: float = 0.0,
        drop: bool = False,
        hold: bool = False,
        side_effects: bool = False,
        response_body: Any = UNSET,
    ) -> Fault:
        """Queue a fault for the next ``times`` matching requests (see ``polytomic_faults``).

        ``delay`` sleeps before answering (client read timeouts): with no status the
        request is executed at once and answered after the delay, still holding its
        ``Idempotency-Key`` (a retry meanwhile gets the in-flight 409). ``drop`` closes the connection without
        an answer. ``hold`` parks the request until ``fault.release()``.
        ``response_body`` overrides the error body (a str is sent as text/html).
        """
        fault = Fault(
            status=status,
            times=times,
            path_contains=path_contains,
            method=method,
            retry_after=retry_after,
            delay=delay,
            drop=drop,
            hold=hold,
            side_effects=side_effects,
            response_body=response_body,
        )
        return self._faults.add(fault)

    def set_latency(self, seconds: float) -> None:
        """Sleep this long before handling every request."""
        self._faults.latency = max(0.0, seconds)

    def set_random_faults(
        self,
        rate: float,
        seed: int | None = None,
        *,
        statuses: Iterable[int] = (429, 502, 503, 504),
        drop: bool = True,
        path_contains: str | None = None,
        timeout: float = 0.0,
    ) -> None:
        """Fail each request with probability ``rate`` (0 disables), reproducibly for a given seed.

        A fault is one of ``statuses``, a dropped connection (``drop``) or, with ``timeout`` > 0, an
        answer that comes ``timeout`` seconds late although Polytomic ran the request (a client
        read timeout: the case the Idempotency-Key exists for).
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        config = RandomFaults(rate, seed, normalise_statuses(statuses), drop, path_contains, timeout)
        self._faults.set_random(config if rate > 0 else None)

    def clear_faults(self) -> None:
        """Forget queued and random faults and the latency; releases held requests."""
        for fault in self._faults.clear():
            fault.release()

    def pending_faults(self) -> list[Fault]:
        return self._faults.pending()

    # -- recorded calls -------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request that reached the fake, in the order they were answered."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, match: str | Callable[[Call], bool], method: str | None = None) -> list[Call]:
        """Calls whose path ends with ``match`` (or for which ``match(call)`` is true)."""
        selected = [c for c in self.calls if (c.path.endswith(match) if isinstance(match, str) else match(c))]
        return [c for c in selected if method is None or c.method == method.upper()]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def reset(self) -> None:
        """Back to a freshly constructed fake (keeps running): calls, faults, syncs, keys, stored responses."""
        self.clear_faults()
        self.reset_calls()
        self._api.reset()
        self._idempotency.clear()
        self.set_api_keys(self._initial_keys[0])
        self.set_deployment_keys(self._initial_keys[1])

    # -- the request pipeline (runs in the HTTP handler threads) --------------------------

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)  # wakes up at once when the fake stops

    def _wait(self, fault: Fault) -> None:
        fault.reached.set()
        while fault.hold and not fault.released.wait(0.05) and not self._stopping.is_set():
            pass
        self._sleep(fault.delay)

    def _authenticate(self, header: str | None) -> Credential | None:
        scheme, _, value = (header or "").partition(" ")
        value = value.strip()
        with self._lock:
            if scheme.lower() == "bearer" and value in self._api_keys:
                return "api_key"
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(value, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    return None
                org, _, key = decoded.partition(":")
                if (org, key) in self._deployment_keys:
                    return "deployment_key"
        return None

    def _respond(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer one request and record it (the HTTP server's responder)."""
        path, _, query = target.partition("?")
        reply = self._answer(method, path, headers, raw)
        call = Call(
            method=method,
            path=path,
            headers=headers,
            body=_parse_body(raw),
            status=0 if reply.drop else reply.status,
            response=None if reply.drop else reply.body,
            query=query,
            fault=reply.fault,
            replayed=reply.replayed,
        )
        with self._lock:
            self._calls.append(call)
        return reply

    def _answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        self._sleep(self._faults.latency)
        fault = self._faults.take("proxy", method, path)
        drawn = None if fault else self._faults.draw_random(method, path)
        if drawn is not None and drawn.stage == "proxy":
            fault, drawn = drawn, None
        if fault is not None:
            self._wait(fault)
            return fault_reply(fault)

        version = headers.get("x-polytomic-version")
        echo = {"X-Polytomic-Version": version} if version else {}
        credential = self._authenticate(headers.get("authorization"))
        if credential is None:
            return Reply(401, UNAUTHORIZED, echo)
        if version not in SUPPORTED_VERSIONS:
            problem = "is required" if version is None else f"value {version!r} is not supported"
            message = f"X-Polytomic-Version {problem}; supported: {', '.join(SUPPORTED_VERSIONS)}"
            return Reply(400, error_body(400, "invalid_version", message), echo)

        key = headers.get("idempotency-key") if method == "POST" else None
        if key is not None:
            if not valid_key(key):
                message = "Idempotency-Key must be 8-255 characters: letters, digits, '-' and '_'"
                return Reply(400, error_body(400, "invalid_idempotency_key", message), echo)
            existing = self._idempotency.begin(key)
            if existing is IN_FLIGHT:
                message = "a request with this Idempotency-Key is in progress (being processed)"
                return Reply(409, error_body(409, "idempotency_key_in_progress", message), echo)
            if isinstance(existing, StoredResponse):
                if self.reject_reused_keys and (existing.path != path or existing.request_body != _parse_body(raw)):
                    message = "Idempotency-Key was already used with a different request"
                    return Reply(422, error_body(422, "idempotency_key_reused", message), echo)
                return Reply(existing.status, existing.body, echo, replayed=True)

        request = Request(method, path, raw, str(version), credential, key)
        try:
            reply = self._execute(request, drawn)
        except BaseException:
            if key is not None:
                self._idempotency.abandon(key)
            raise
        if key is not None:
            if reply.drop:
                self._idempotency.abandon(key)
            else:
                stored = StoredResponse(reply.status, reply.body, method, path, _parse_body(raw))
                self._idempotency.complete(key, stored)
        return Reply(reply.status, reply.body, {**echo, **reply.headers}, reply.drop, reply.fault)

    def _execute(self, request: Request, drawn: Fault | None) -> Reply:
        """Server-side faults and the endpoint logic, inside the Idempotency-Key reservation."""
        fault = self._faults.take("server", request.method, request.path) or drawn
        if fault is None:
            status, body = self._api.handle(request)
            return Reply(status, body)
        executed = self._api.handle(request) if fault.status is None or fault.side_effects else None
        self._wait(fault)
        if self._stopping.is_set():
            return Reply(0, drop=True, fault=fault.label)
        if fault.status is None and executed is not None:
            return Reply(executed[0], executed[1], fault=fault.label)
        return fault_reply(fault)


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", errors="replace")
