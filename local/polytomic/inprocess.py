"""The fake Polytomic without a socket: urllib3's request interface answered by the fake's own pipeline.

Why: the unit tests and the burst simulation drive the REAL client (``PolytomicClient(http=...)``)
against the REAL fake, on an injected clock, without a server thread, a port or real waiting; the
scripted failures they need come from the fake's fault injection, as over HTTP. What a socket
would add is reproduced where a client can tell:

- every request goes through the same pipeline as over HTTP (latency, faults, auth, version,
  ``Idempotency-Key``, endpoint) and is recorded as a ``Call``;
- a dropped connection raises urllib3's ``ProtocolError``, as a closed socket does;
- an answer that took longer than the read timeout (on the fake's clock) raises
  ``ReadTimeoutError``; the request ran all the same, and its whole delay has passed;
- ``latency`` is the round trip of every request, waited (the fake's ``sleep``) after Polytomic
  acted on it: what a request takes in the simulation.
"""

from __future__ import annotations

from http.client import RemoteDisconnected
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from local.polytomic.http import encode

if TYPE_CHECKING:
    from local.polytomic.pipeline import PolytomicPipeline

#: The base URL to give the client: never contacted (the transport answers), on loopback all the same.
IN_PROCESS_URL = "http://127.0.0.1"


class InProcess(urllib3.PoolManager):
    """A ``PoolManager`` whose requests the fake answers in this thread (see the module)."""

    def __init__(self, fake: PolytomicPipeline, *, latency: float = 0.0) -> None:
        super().__init__(num_pools=1)
        self.fake = fake
        self.latency = latency
        self._pool = self.connection_from_host("127.0.0.1", 80, "http")  # named in a timeout; never connects

    def request(  # type: ignore[override]  # the keywords the client sends; no fields, no json
        self, method: str, url: str, body: bytes | str | None = None, headers: Any = None, **kw: Any
    ) -> urllib3.BaseHTTPResponse:
        """``urlopen`` at once: urllib3's own request() only re-packs the headers, which costs here."""
        return self.urlopen(method, url, body=body, headers=headers, **kw)

    def urlopen(  # type: ignore[override]  # PoolManager's own signature
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> urllib3.BaseHTTPResponse:
        parts = urlsplit(url)
        if parts.hostname not in (None, "127.0.0.1"):
            raise ValueError(f"the in-process fake answers only {IN_PROCESS_URL}, not {parts.hostname!r}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {name.lower(): str(value) for name, value in (kw.get("headers") or {}).items()}
        body = kw.get("body") or b""
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        clock = self.fake.clock_seconds
        began = clock()
        reply = self.fake.respond(method, target, headers, raw)
        self.fake.pause(self.latency)
        timeout = kw.get("timeout")
        read_timeout = timeout.read_timeout if isinstance(timeout, urllib3.Timeout) else None
        if isinstance(read_timeout, int | float) and clock() - began > read_timeout:
            raise ReadTimeoutError(self._pool, url, f"Read timed out. (read timeout={read_timeout})")
        if reply.drop:
            raise ProtocolError("Connection aborted.", RemoteDisconnected("Remote end closed connection"))
        payload, content_type = encode(reply)
        sent = dict(reply.headers)
        if content_type is not None:
            sent.update({"Content-Type": content_type, "Content-Length": str(len(payload))})
        return urllib3.HTTPResponse(body=payload, headers=sent, status=reply.status, preload_content=True)
