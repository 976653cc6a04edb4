"""A Lambda context for invoking handlers directly (the demo and the tests): no Docker needed."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LocalContext:
    function_name: str = "polytrigger-local"
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 60.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/polytrigger-local"
    log_stream_name: str = "local"
    qualifier: str = ""  # the version or alias the caller named: then invoked_function_arn carries it
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        return f"{arn}:{self.qualifier}" if self.qualifier else arn

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_seconds - (time.monotonic() - self._started)
        return max(0, int(left * 1000))
