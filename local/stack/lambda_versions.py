"""Lambda's Invoke API on loopback, for one function's published versions: how the route wiring's front hands
a request to the version it names (a rollback), here without Docker.

Point boto3 at it with `AWS_ENDPOINT_URL_LAMBDA=<url>`. A version is a Python callable taking the event;
the answer is what Lambda answers a synchronous (RequestResponse) invocation: 200 and the result; 200 with
`X-Amz-Function-Error: Unhandled` and the error when the callable raises (a crash or a timeout, to the
caller); 404 `ResourceNotFoundException` for a version that does not exist.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from local.service import LocalService

Version = Callable[[dict[str, Any]], Any]


@dataclass
class LambdaVersions(LocalService):
    """Each published version of one function, by its number; `invoked` lists (version, event) in order."""

    versions: dict[str, Version] = field(default_factory=dict)
    invoked: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Lambda endpoint is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> Self:
        lambdas = self

        class Invoke(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                # /2015-03-31/functions/<name or ARN, with its version>/invocations[?Qualifier=N]
                name = unquote(parts.path.split("/")[3])
                qualifier = parse_qs(parts.query).get("Qualifier", [""])[0]
                if name.startswith("arn:") and name.count(":") == 7:
                    qualifier = name.rsplit(":", 1)[1]
                event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")
                version = lambdas.versions.get(qualifier)
                if version is None:
                    message = f"Function not found: {name} (version {qualifier or '$LATEST'})"
                    self._send(
                        404, {"Type": "User", "message": message}, {"x-amzn-ErrorType": "ResourceNotFoundException"}
                    )
                    return
                lambdas.invoked.append((qualifier, event))
                try:
                    result = version(event)
                except Exception as error:  # what Lambda tells the caller of any crash
                    body = {"errorMessage": str(error), "errorType": type(error).__name__}
                    self._send(200, body, {"X-Amz-Function-Error": "Unhandled"})
                    return
                self._send(200, result, {})

            def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the caller stopped waiting
                    self.send_response(status)
                    for key, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Invoke)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
