"""The fake Polytomic's request pipeline: what happens to one HTTP request, step by step.

Each step can answer and stop:

1. global latency (``set_latency``; on an injected clock, its ``sleep``);
2. proxy faults (429/502/503/504, drops, an injected 401; queued or seeded random):
   answered before Polytomic "sees" the request -- no auth, nothing executed, nothing stored;
3. authentication (Bearer API key, or Basic ``organization_id:deployment_key``) -> 401;
4. ``X-Polytomic-Version`` must be a supported version -> 400;
5. on POSTs, ``Idempotency-Key``: invalid -> 400, stored -> replay, in flight -> 409,
   else reserve it;
6. server faults (e.g. 500, delays, holds) and the endpoint logic (``api``);
7. the answer is stored under the key (errors included) and sent (a fault in
   transit replaces what is sent, not what is stored); every request is
   recorded as a ``Call``.

Kept apart from ``server`` (the controls a test uses) so that each reads on its own.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from local.polytomic.api import SUPPORTED_VERSIONS, FakeApi, Request, error_body
from local.polytomic.faults import Fault, FaultPlan, fault_reply
from local.polytomic.http import LoopbackServer, Reply
from local.polytomic.idempotency import IN_FLIGHT, IdempotencyStore, StoredResponse, valid_key

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


class PolytomicPipeline:
    """The state every request reads and the steps that answer it; ``FakePolytomic`` adds the controls."""

    def __init__(
        self,
        api: FakeApi,
        api_keys: Iterable[str],
        deployment_keys: Iterable[tuple[str, str]],
        reject_reused_keys: bool,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.organization_id = api.organization_id
        self.reject_reused_keys = reject_reused_keys
        self._initial_keys = (tuple(api_keys), tuple(deployment_keys))
        self._lock = threading.Lock()
        self._api_keys: frozenset[str] = frozenset(self._initial_keys[0])
        self._deployment_keys: frozenset[tuple[str, str]] = frozenset(self._initial_keys[1])
        self._api = api
        self._faults = FaultPlan()
        self._idempotency = IdempotencyStore()
        self._calls: list[Call] = []
        self._stopping = threading.Event()
        self._server: LoopbackServer | None = None
        self._injected_sleep = sleep  # latency and delays on an injected clock, instead of real waiting
        # The query string and parsed body of the request this thread is answering. They travel
        # beside `_answer(method, path, headers, raw)` so that signature stays as wrappers know it
        # (the reliability load's rate limit replaces `_answer` on an instance).
        self._current = threading.local()

    def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._injected_sleep is not None:
            self._injected_sleep(seconds)
        else:
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

    def clock_seconds(self) -> float:
        """The fake's time, epoch seconds."""
        return self._api.clock.seconds()

    def pause(self, seconds: float) -> None:
        """Wait as the fake waits: on its injected ``sleep``, else for real (cut short when it stops)."""
        self._sleep(seconds)

    def respond(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer one request and record it (the HTTP server's responder; in process, the transport's)."""
        path, _, query = target.partition("?")
        body = parse_body(raw)
        self._current.query, self._current.body = query, body
        reply = self._answer(method, path, headers, raw)
        call = Call(
            method=method,
            path=path,
            headers=headers,
            body=body,
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
                if self.reject_reused_keys and (existing.path != path or existing.request_body != self._parsed(raw)):
                    message = "Idempotency-Key was already used with a different request"
                    return Reply(422, error_body(422, "idempotency_key_reused", message), echo)
                return Reply(existing.status, existing.body, echo, replayed=True)

        query = str(getattr(self._current, "query", ""))
        request = Request(method, path, raw, str(version), credential, key, query)
        try:
            reply, stored = self._execute(request, drawn)
        except BaseException:
            if key is not None:
                self._idempotency.abandon(key)
            raise
        if key is not None:
            if stored.drop:
                self._idempotency.abandon(key)
            else:
                answer = StoredResponse(stored.status, stored.body, method, path, self._parsed(raw))
                self._idempotency.complete(key, answer)
        return Reply(reply.status, reply.body, {**echo, **reply.headers}, reply.drop, reply.fault)

    def _parsed(self, raw: bytes) -> Any:
        """The request body as ``respond`` parsed it (once per request), or parsed now."""
        body = getattr(self._current, "body", None)
        return body if body is not None else parse_body(raw)

    def _execute(self, request: Request, drawn: Fault | None) -> tuple[Reply, Reply]:
        """Server-side faults and the endpoint logic, inside the Idempotency-Key reservation.

        Returns what the client receives and what is stored under the key: the same answer, except
        for a fault in transit (Polytomic's own answer is stored, the client gets the fault's).
        """
        fault = self._faults.take("server", request.method, request.path) or drawn
        if fault is None:
            status, body = self._api.handle(request)
            return Reply(status, body), Reply(status, body)
        if fault.in_transit:
            status, body = self._api.handle(request)
            self._wait(fault)
            return fault_reply(fault), Reply(status, body)
        executed = self._api.handle(request) if fault.status is None or fault.side_effects else None
        self._wait(fault)
        if self._stopping.is_set():
            dropped = Reply(0, drop=True, fault=fault.label)
            return dropped, dropped
        if fault.status is None and executed is not None:
            answered = Reply(executed[0], executed[1], fault=fault.label)
            return answered, answered
        reply = fault_reply(fault)
        return reply, reply


def parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", errors="replace")
