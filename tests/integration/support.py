"""Invoking the real handlers against the local stack, and reading what they logged."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.stack import LocalStack
from local.stack.lambda_context import LocalContext

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ROUTES = ROOT / "functions" / "routes.yaml"

ORDERS_MODEL = "248df4b7-aa70-47b8-a036-33ac447e668d"
WAREHOUSE_BULK = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
CUSTOMERS_MODEL = "3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@dataclass
class LeakGuard:
    """Everything the handlers said during the session, and every secret they were given."""

    said: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def remember_secrets(self, stack: LocalStack) -> None:
        self.secrets.update(stack.fake.api_keys)
        for organization, key in stack.fake.deployment_keys:
            self.secrets.update({key, f"{organization}:{key}"})
        current = stack.secret_value()
        if not current.lstrip().startswith("{"):
            self.secrets.add(current.strip())

    def leaks(self) -> list[str]:
        """Each secret found in plain or base64 form in anything said."""
        everything = "\n".join(self.said)
        found = []
        for secret in sorted(self.secrets):
            for form in (secret, base64.b64encode(secret.encode()).decode()):
                if form in everything:
                    found.append(form[:4] + "…")
        return found


@dataclass
class Invoker:
    """Calls the deployed handler functions directly, as Lambda would, and keeps what they said."""

    stack: LocalStack
    log: io.StringIO = field(default_factory=io.StringIO)
    guard: LeakGuard = field(default_factory=LeakGuard)

    def s3(self, event: dict[str, Any], **context: Any) -> dict[str, Any]:
        from polytrigger.handlers import s3

        return self._call(s3.handler, event, LocalContext(function_name="polytrigger-s3", **context))

    def schedule(self, event: dict[str, Any], **context: Any) -> dict[str, Any]:
        from polytrigger.handlers import schedule

        return self._call(schedule.handler, event, LocalContext(function_name="polytrigger-schedule", **context))

    def dispatcher(self, event: dict[str, Any], **context: Any) -> dict[str, Any]:
        """The dispatch queue's consumer, with an SQS event as the event source mapping builds it."""
        from polytrigger.handlers import dispatcher

        return self._call(dispatcher.handler, event, LocalContext(function_name="polytrigger-dispatcher", **context))

    def webhook(self, event: dict[str, Any], **context: Any) -> dict[str, Any]:
        """The webhook receiver, with a Lambda Function URL request."""
        from polytrigger.handlers import webhook

        return self._call(webhook.handler, event, LocalContext(function_name="polytrigger-webhook", **context))

    def poller(self, **context: Any) -> dict[str, Any]:
        """The outcome poller, as its schedule invokes it."""
        from polytrigger.handlers import poller

        event = {"poll": "2026-11-30T12:00:00Z"}
        return self._call(poller.handler, event, LocalContext(function_name="polytrigger-poller", **context))

    def reconciler(self, route: str, timeout_seconds: float = 900.0, **context: Any) -> dict[str, Any]:
        """A route's reconciliation schedule firing, with the invocation's time (the pass's budget)."""
        from polytrigger.handlers import reconciler

        local = LocalContext(function_name="polytrigger-reconciler", timeout_seconds=timeout_seconds, **context)
        return self._call(reconciler.handler, {"reconcile": route}, local)

    def _call(self, handler: Any, event: dict[str, Any], context: LocalContext) -> dict[str, Any]:
        """Run the handler; its return value, error and stdout (the metrics) all go to the guard too."""
        stdout = io.StringIO()
        try:
            with redirect_stdout(_Tee(sys.stdout, stdout)):
                answer: dict[str, Any] = handler(event, context)
        except Exception as error:
            self.guard.said.append(f"{type(error).__name__}: {error}")
            raise
        finally:
            self.guard.said.append(stdout.getvalue())
        self.guard.said.append(json.dumps(answer))
        return answer

    def log_lines(self) -> list[dict[str, Any]]:
        return [
            json.loads(line) for line in self.log.getvalue().split("\n") if line.strip()
        ]  # not splitlines: U+2028 stays

    def log_text(self) -> str:
        return self.log.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every dedup record in the table (the run ledger's items share it: `runs()`)."""
        return [item for item in self._items() if str(item["id"]).startswith("polytrigger#")]

    def runs(self) -> list[dict[str, Any]]:
        """The run ledger's items (`run#<execution>`, `runs#cursor`)."""
        return [item for item in self._items() if str(item["id"]).startswith(("run#", "runs#"))]

    def _items(self) -> list[dict[str, Any]]:
        items = self.stack.dynamodb_client().scan(TableName=self.stack.table_name)["Items"]
        return [{name: next(iter(value.values())) for name, value in item.items()} for item in items]


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)


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


_SYNC_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def per_sync(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """(path, ...) items grouped by the sync in the path, in their own order within each sync.

    The syncs of one event are called in parallel (POLYTOMIC_CONCURRENCY), so only the order of
    calls on one sync (an activate before its start) is promised, not the order across syncs.
    """
    return sorted(items, key=lambda item: match.group(0) if (match := _SYNC_ID.search(item[0])) else "")
