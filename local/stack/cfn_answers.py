"""CloudFormation's pre-signed answer URL, on loopback: what the route wiring answers, for the demo and the tests."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BYTES = 4096  # CloudFormation fails a custom resource whose answer is longer (S3 itself takes it)


@dataclass
class Answers:
    """CloudFormation's pre-signed answer URL, on loopback: every PUT it receives, in order."""

    fail_first: int = 0  # answer this many PUTs with 500 first (a flaky S3)
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # bytes of each answer received

    def __post_init__(self) -> None:
        answers = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if answers.fail_first > 0:
                    answers.fail_first -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                answers.received.append(json.loads(body))
                answers.sizes.append(len(body))
                answers.headers.append(dict(self.headers.items()))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # a 0.05 s poll: close() returns at once (shutdown waits for the poll; 0.5 s by default)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/answer?X-Amz-Signature=local"

    def last(self) -> dict[str, Any]:
        """The last answer, as CloudFormation would take it: one over its size limit fails the deploy."""
        assert self.received, "CloudFormation got no answer"
        assert self.sizes[-1] <= MAX_BYTES, (
            f"CloudFormation refuses a {self.sizes[-1]}-byte answer ({MAX_BYTES} at most)"
        )
        return self.received[-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Answers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
