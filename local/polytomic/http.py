"""HTTP transport of the fake Polytomic API: a loopback ``ThreadingHTTPServer`` that asks a responder.

Kept apart from the API logic so that the fake's behaviour can be read without
socket details. Two details matter for tests:

- HTTP/1.1 keep-alive, like the real service, so clients' connection pools and
  stale-connection handling are exercised;
- ``stop`` must leave nothing behind: request threads are joined
  (``daemon_threads = False``) after idle keep-alive connections are shut down,
  and sleeping/held requests are woken by the ``stopping`` event.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """An answer: a JSON body (dict/list/None) or a text/html page (str); or a dropped connection."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    fault: str | None = None
    replayed: bool = False


def encode(reply: Reply) -> tuple[bytes, str | None]:
    """The bytes of an answer and their Content-Type: JSON, a text/html page, or nothing for a 204."""
    if reply.status == 204:  # No Content: no body and no Content-Type, as HTTP requires
        return b"", None
    if isinstance(reply.body, str):
        return reply.body.encode("utf-8"), "text/html; charset=utf-8"
    return json.dumps(reply.body).encode("utf-8"), "application/json"


#: (method, request target with query string, lower-cased headers, raw body) -> Reply
Responder = Callable[[str, str, dict[str, str], bytes], Reply]


class _Handler(BaseHTTPRequestHandler):
    """Read the request, ask the responder, write the reply (or close the socket on a drop)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid delayed-ACK stalls
    server: LoopbackServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.responder(self.command, self.path, headers, raw)
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload, content_type = encode(reply)
        self.send_response(reply.status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake's recorded calls are the log."""


class LoopbackServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on 127.0.0.1:0 whose ``stop`` closes keep-alive connections and joins threads."""

    daemon_threads = False  # server_close() joins them: nothing outlives stop()
    block_on_close = True

    def __init__(self, responder: Responder, stopping: threading.Event) -> None:
        self.responder = responder
        self.stopping = stopping
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's getfqdn() (a DNS lookup)
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self, name: str) -> None:
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Set ``stopping``, stop accepting, shut open connections down, join every thread, close."""
        self.stopping.set()
        self.shutdown()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:  # unblocks threads waiting on idle keep-alive connections
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()  # joins the request threads
        if self._thread is not None:
            self._thread.join()

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or disconnect (and everything during stop) are expected; report the rest."""
        if not self.stopping.is_set() and not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)
