"""The container's AWS clients, all made from one boto3 session.

Why one session: every new session loads botocore's data files again, so a client made in a
second session costs about 40 ms more than one made in the first (Powertools would otherwise make
a session for the dedup table and another for the secret, on the first invocation). Clients are
thread-safe but sessions are not, so clients are made here, before any fan-out thread runs.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

DEFAULT_POOL = 10  # botocore's own default


def client_config(pool: int = DEFAULT_POOL) -> Config:
    """Fail fast and clearly when a service is unreachable; one connection per fan-out thread."""
    return Config(
        connect_timeout=2,
        read_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=max(DEFAULT_POOL, pool),
    )


class AwsClients:
    """DynamoDB and Secrets Manager at cold start (every path needs them); SQS when first asked for."""

    def __init__(self, pool: int = DEFAULT_POOL) -> None:
        self.session = boto3.session.Session()
        self.config = client_config(pool)
        self.dynamodb: Any = self.session.client("dynamodb", config=self.config)
        self.secretsmanager: Any = self.session.client("secretsmanager", config=self.config)
        self._sqs: Any = None

    @property
    def sqs(self) -> Any:
        """Only deferral and debounce send messages; made on first use (call it before fanning out)."""
        if self._sqs is None:
            self._sqs = self.session.client("sqs", config=self.config)
        return self._sqs


def error_code(error: BaseException) -> str:
    """The AWS error code of a failed call (or the botocore error's name): enough to act on, never a payload."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(error).__name__


def error_line(error: BaseException) -> str:
    """An AWS error on one line, as a person reads it: its code and message, whitespace folded, 300 characters."""
    response = getattr(error, "response", None)
    message = str(response.get("Error", {}).get("Message", "")) if isinstance(response, dict) else ""
    return f"{error_code(error)}: {' '.join((message or str(error)).split())[:300]}"
