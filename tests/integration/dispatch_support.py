"""What the dispatch tests share: their routes and syncs, S3 uploads, and the queue, log and pump they drive.

The queue, the log of what polytrigger queued and the pump are the local stack's
(`local.stack.dispatch_pump`): moto SQS queues as the template makes them, and the Lambda event
source mapping for the real dispatcher handler. A test runs on the stack's clock (the default: a
delay is a jump of the clock the fake Polytomic, polytrigger and the pump share) or on real time
(`REAL_TIME`: moto keeps the delays and the pump waits for them; a message moto hands out before its
delay is noted in `pump.early`, which the tests assert stays empty).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.stack import LocalStack
from local.stack.dispatch_pump import DispatchPump, DispatchQueue, SentLog, StackClock
from tests.integration.support import Invoker

BUCKET = "acme-landing"
# Syncs of the dispatch tests' own routes (not the bundled ones): each route has its own sync, so the
# debounce windows (one per action and sync) of different tests never meet.
BURST_SYNC = "b0b0b0b0-0000-4000-8000-000000000001"
TRICKLE_SYNC = "b0b0b0b0-0000-4000-8000-000000000002"
BUSY_SYNC = "b0b0b0b0-0000-4000-8000-000000000003"
BURST_BULK = "b0b0b0b0-0000-4000-8000-000000000004"

DEBOUNCE = 2
TRICKLE_MAX_WAIT = 4
MAX_AGE_SECONDS = 60  # the smallest DEFERRAL_MAX_AGE_SECONDS allowed
STACK_CLOCK, REAL_TIME = "stack clock", "real time"  # what a dispatch test runs on

ROUTES_YAML = f"""\
routes:
  - name: burst
    s3: {{bucket: {BUCKET}, key: "burst/**"}}
    debounce: {DEBOUNCE}
    syncs: [{{id: {BURST_SYNC}}}]
  - name: burst-bulk
    s3: {{bucket: {BUCKET}, key: "bulk-burst/**"}}
    debounce: {DEBOUNCE}
    syncs: [{{id: {BURST_BULK}, type: bulk, fetch_mode: incremental}}]
  - name: trickle
    s3: {{bucket: {BUCKET}, key: "trickle/**"}}
    debounce: {DEBOUNCE}
    max_wait: {TRICKLE_MAX_WAIT}
    syncs: [{{id: {TRICKLE_SYNC}}}]
  - name: busy
    s3: {{bucket: {BUCKET}, key: "busy/**"}}
    syncs: [{{id: {BUSY_SYNC}}}]
"""


# -- S3 events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    """One upload: its S3 notification and the trigger time polytrigger will read from it."""

    key: str
    time: datetime
    event: dict[str, Any]


def s3_file(key: str, at: datetime | None = None) -> File:
    """An S3 event notification for one new upload (a fresh sequencer) at ``at`` (default: now).

    The event time keeps milliseconds, as S3 writes it, and is truncated (never rounded up), so the
    trigger time is never later than the moment the file was really sent.
    """
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    sequencer = uuid.uuid4().hex[:18].upper()
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AROAEXAMPLE:ingest"},
                "requestParameters": {"sourceIPAddress": "203.0.113.24"},
                "responseElements": {"x-amz-request-id": sequencer[:16], "x-amz-id-2": "local"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "polytrigger-objects",
                    "bucket": {
                        "name": BUCKET,
                        "ownerIdentity": {"principalId": "A3EXAMPLE"},
                        "arn": f"arn:aws:s3:::{BUCKET}",
                    },
                    "object": {"key": key, "size": 1024, "eTag": uuid.uuid4().hex, "sequencer": sequencer},
                },
            }
        ]
    }
    return File(key, moment, event)


def uncovered(stack: LocalStack, sync_id: str, files: Iterable[File]) -> list[str]:
    """The files no execution of the sync covers (none created at or after the file's trigger time)."""
    created = [execution.created_at for execution in stack.fake.executions(sync_id)]
    return [file.key for file in files if not any(moment >= file.time for moment in created)]


def statuses(answer: dict[str, Any]) -> list[str]:
    return [outcome["status"] for outcome in answer.get("outcomes", [])]


@dataclass
class Dispatch:
    """What the dispatch tests work with: the handlers, the queues, the log of what was queued and the pump."""

    polytrigger: Invoker
    queues: DispatchQueue
    log: SentLog
    pump: DispatchPump
    clock: StackClock | None  # None: real time

    @property
    def stack(self) -> LocalStack:
        return self.polytrigger.stack

    def now(self) -> float:
        """The time polytrigger reads (epoch seconds)."""
        return self.log.clock()

    def wait(self, seconds: float) -> None:
        """Let time pass: a jump of the stack's clock, or a real wait."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)

    def upload(self, key: str, at: datetime | None = None) -> tuple[File, dict[str, Any]]:
        """A file lands now (or `at`): the S3 function is invoked with its notification; the file and the answer."""
        file = s3_file(key, at or datetime.fromtimestamp(self.now(), UTC))
        return file, self.polytrigger.s3(file.event)

    def log_lines(self, status: str | None = None) -> Iterator[dict[str, Any]]:
        for line in self.polytrigger.log_lines():
            if status is None or line.get("status") == status:
                yield line
