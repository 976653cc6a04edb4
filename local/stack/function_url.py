"""A Lambda Function URL on loopback: HTTP requests in, the handler's answer out, as Lambda would relay them.

For the webhook receiver: the fake Polytomic's deliveries reach the real handler through this, with
the request shaped as a Function URL event (payload 2.0: lower-cased headers, base64 body).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.stack.lambda_context import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class FunctionUrl:
    def __init__(self, handler: Handler, function_name: str = "polytrigger-webhook") -> None:
        self.handler, self.function_name = handler, function_name
        self.answers: list[int] = []
        url = self

        class Request(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event = {
                    "version": "2.0",
                    "rawPath": self.path,
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                    "requestContext": {"http": {"method": "POST", "path": self.path, "sourceIp": "127.0.0.1"}},
                    "body": base64.b64encode(body).decode(),
                    "isBase64Encoded": True,
                }
                try:
                    answer = url.handler(event, LocalContext(function_name=url.function_name))
                    status, text = int(answer.get("statusCode", 200)), str(answer.get("body", ""))
                except Exception:  # as Lambda: an error is a 502 to the caller
                    status, text = 502, '{"message": "Internal Server Error"}'
                url.answers.append(status)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Request)
        # a 0.05 s poll: close() returns at once (shutdown waits for the poll; 0.5 s by default)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FunctionUrl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
