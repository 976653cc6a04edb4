"""Invoking the real handlers against the local stack, and reading what they logged."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.lambda_context import LocalContext
from local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ROUTES = ROOT / "functions" / "routes.yaml"

ORDERS_MODEL = "248df4b7-aa70-47b8-a036-33ac447e668d"
WAREHOUSE_BULK = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
CUSTOMERS_MODEL = "3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@dataclass
class Invoker:
    """Calls the deployed handler functions directly, as Lambda would, and keeps their log lines."""

    stack: LocalStack
    log: io.StringIO = field(default_factory=io.StringIO)

    def s3(self, event: dict[str, Any], **context: Any) -> dict[str, Any]:
        from polytrigger.handlers import s3

        return s3.handler(event, LocalContext(function_name="polytrigger-s3", **context))

    def schedule(self, event: dict[str, Any], **context: Any) -> dict[str, Any]:
        from polytrigger.handlers import schedule

        return schedule.handler(event, LocalContext(function_name="polytrigger-schedule", **context))

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.strip()]

    def log_text(self) -> str:
        return self.log.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every dedup record in the table."""
        items = self.stack.dynamodb_client().scan(TableName=self.stack.table_name)["Items"]
        return [{name: next(iter(value.values())) for name, value in item.items()} for item in items]


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Point the Powertools logger's stream at a buffer for one test (it keeps the stdout of its import)."""
    from polytrigger.observability import logger

    handler = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def starts(fake: Any) -> list[Any]:
    return [call for call in fake.calls if call.method == "POST" and call.path.endswith("/executions")]


def posts(fake: Any) -> list[Any]:
    return [call for call in fake.calls if call.method == "POST"]
