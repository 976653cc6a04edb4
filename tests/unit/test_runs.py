"""Run outcomes, pure: reading events, checking signatures, polling from a cursor, reconciling open runs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from polytrigger.events.function_url import NotADelivery, delivery, signed
from polytrigger.runs.endings import MalformedRunEvent, RunEvent, from_execution, run_event
from polytrigger.runs.event_log import OVERLAP, PAGE, poll
from polytrigger.runs.ledger import Ended, OpenRun, Run, settle
from polytrigger.runs.reconcile import reconcile

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def event(
    status: str, execution: str = "e1", *, at: datetime = NOW, bulk: bool = False, event_id: str = ""
) -> dict[str, Any]:
    kind = f"{'bulk_sync' if bulk else 'sync'}.{status}"
    return {
        "id": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{execution}/{status}")),
        "type": kind,
        "organization_id": str(uuid.uuid4()),
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "event": {"execution_id": execution, "sync_id": SYNC, "status": status},
    }


@pytest.mark.parametrize(
    ("kind", "bulk", "status", "terminal"),
    [
        ("completed", False, "completed", True),
        ("completed_with_errors", False, "completed_with_errors", True),
        ("completed_with_error", True, "completed_with_errors", True),  # bulk's singular spelling
        ("failed", True, "failed", True),
        ("canceled", False, "canceled", True),
        ("running", False, "running", False),
        ("something_new", True, "something_new", False),  # open-ended: unknown is not terminal
    ],
)
def test_an_event_is_read_into_one_vocabulary(kind: str, bulk: bool, status: str, terminal: bool) -> None:
    read = run_event(event(kind, bulk=bulk))
    assert read is not None
    assert (read.status, read.terminal, read.sync_type) == (status, terminal, "bulk" if bulk else "model")


def test_another_event_type_is_none_and_a_broken_run_event_names_its_field() -> None:
    assert run_event({"type": "user.created", "id": "x"}) is None
    broken = event("completed")
    del broken["event"]["execution_id"]
    with pytest.raises(MalformedRunEvent, match=r"event\.execution_id"):
        run_event(broken)
    broken = event("completed")
    broken["created_at"] = "yesterday"
    with pytest.raises(MalformedRunEvent, match="created_at"):
        run_event(broken)


def test_nanosecond_timestamps_are_read() -> None:
    raw = event("completed")
    raw["created_at"] = "2026-11-30T12:00:00.123456789Z"
    read = run_event(raw)
    assert read is not None
    assert read.created_at == datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


SECRET = "whsec-test"


def signature(body: bytes, encoding: str) -> str:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


@pytest.mark.parametrize(
    ("given", "setting", "accepted"),
    [
        ("hex", "either", True),
        ("base64", "either", True),
        ("hex", "hex", True),
        ("base64", "hex", False),
        ("hex", "base64", False),
    ],
)
def test_the_signature_is_hmac_sha256_in_the_accepted_encoding(given: str, setting: Any, accepted: bool) -> None:
    body = b'{"id": "1"}'
    assert signed(body, signature(body, given), SECRET, setting) is accepted
    assert not signed(body + b" ", signature(body, given), SECRET, setting)  # the exact bytes
    assert not signed(body, signature(body, given), "another secret", setting)
    assert not signed(body, "", SECRET, setting)


def test_a_function_url_delivery_gives_the_body_as_sent_and_the_header_whatever_its_case() -> None:
    body = json.dumps(event("completed")).encode()
    raw = {
        "requestContext": {},
        "headers": {"Polytomic-Signature": "abc"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    assert delivery(raw) == (body, "abc")
    with pytest.raises(NotADelivery):
        delivery({"body": "x"})


class MemoryLedger:
    """The RunLedger port in memory (a unit test's double; DynamoLedger is tested against DynamoDB Local)."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.open: dict[str, OpenRun] = {}
        self.looked_up: dict[str, datetime] = {}  # execution -> when it is next due for a look-up
        self.outbox: dict[str, Ended] = {}  # settled, not yet told
        self.after: datetime | None = None
        self.behind = False
        self.settles = 0
        self.handed: set[str] = set()

    def record(self, run: Run, route: str, trigger: str, trigger_at: datetime, covers_from: datetime) -> None:
        self.runs[run.execution_id] = Run(
            run.execution_id,
            run.sync_id,
            run.sync_type,
            routes=(route,),
            first_trigger=trigger,
            trigger_count=1,
            first_trigger_at=trigger_at,
            started_at=NOW - timedelta(hours=1),
        )
        self.open[run.execution_id] = OpenRun(run.execution_id, run.sync_id, run.sync_type, NOW - timedelta(hours=1))
        self.looked_up[run.execution_id] = NOW - timedelta(hours=1)

    def settle(self, event: RunEvent, how: str) -> Run | None:
        self.settles += 1
        run = self.runs.get(event.execution_id)
        if run is None or run.status:
            return None
        self.runs[event.execution_id] = settled = replace(run, status=event.status, finished_at=event.created_at)
        self.open.pop(event.execution_id, None)
        self.outbox[event.execution_id] = Ended(settled, event, how)
        return settled

    def told(self, execution_id: str) -> None:
        self.outbox.pop(execution_id, None)

    def untold(self, now: datetime) -> Iterator[Ended]:
        yield from list(self.outbox.values())

    def open_runs(self, looked_up_before: datetime) -> Iterator[OpenRun]:
        yield from [run for run in self.open.values() if self.looked_up[run.execution_id] <= looked_up_before]

    def checked(self, execution_id: str, at: datetime) -> None:
        self.looked_up[execution_id] = at

    def forget(self, execution_id: str) -> None:
        self.open.pop(execution_id, None)

    def cursor(self) -> tuple[datetime | None, bool]:
        return self.after, self.behind

    def handed_on(self, event_id: str) -> bool:
        return event_id in self.handed

    def hand_on(self, event_id: str) -> None:
        self.handed.add(event_id)

    def advance(self, before: datetime | None, after: datetime, *, behind: bool = False) -> bool:
        if self.after != before:
            return False
        self.after, self.behind = after, behind
        return True


class Reads:
    def __init__(
        self,
        events: list[dict[str, Any]],
        executions: dict[str, dict[str, Any]] | None = None,
        *,
        newest_first: bool = False,
    ) -> None:
        self.all = events
        self.by_id = executions or {}
        self.newest_first = newest_first
        self.calls: list[tuple[datetime, datetime | None, int]] = []

    def events(self, starting_after: datetime, ending_before: datetime | None, limit: int) -> list[Any]:
        self.calls.append((starting_after, ending_before, limit))
        chosen = [e for e in self.all if starting_after < _at(e) and (ending_before is None or _at(e) < ending_before)]
        chosen.sort(key=_at, reverse=self.newest_first)
        return chosen[:limit]

    def execution(self, sync_type: str, sync_id: str, execution_id: str) -> dict[str, Any] | None:
        return self.by_id.get(execution_id)

    def executions(self, sync_type: str, sync_id: str, since: datetime) -> list[dict[str, Any]]:
        return list(self.by_id.values())

    def active(self, sync_type: str, sync_id: str) -> bool | None:
        return True


def _at(raw: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(raw["created_at"].replace("Z", "+00:00"))


def started(ledger: MemoryLedger, *executions: str) -> None:
    for execution in executions:
        ledger.record(
            Run(execution, SYNC, "model"),
            "orders",
            f"s3://b/{execution}.csv (created)",
            NOW - timedelta(hours=2),
            NOW - timedelta(hours=2),
        )


def test_an_ending_settles_its_run_once_whatever_the_order_and_however_often_it_comes() -> None:
    ledger = MemoryLedger()
    started(ledger, "e1")
    done = run_event(event("completed", "e1"))
    running = run_event(event("running", "e1", at=NOW - timedelta(minutes=1)))
    assert done is not None
    assert running is not None

    ended = settle([done, running, done], ledger, "webhook")  # completed before running, and twice

    assert [(item.run.execution_id, item.event.status) for item in ended] == [("e1", "completed")]
    assert ended[0].run.freshness_seconds == 7200.0
    assert settle([done], ledger, "poller") == []
    assert list(ledger.outbox) == ["e1"]  # settled, not yet told: the outbox keeps it until `told`


@pytest.mark.parametrize("newest_first", [False, True])
def test_the_poller_reads_every_page_whatever_the_order_and_moves_the_cursor_after_settling(newest_first: bool) -> None:
    ledger = MemoryLedger()
    executions = [f"e{i}" for i in range(250)]
    started(ledger, *executions)
    ledger.after = NOW - timedelta(hours=1)
    events = [
        event("completed", e, at=NOW - timedelta(minutes=50) + timedelta(seconds=i)) for i, e in enumerate(executions)
    ]
    reads = Reads(events, newest_first=newest_first)

    polled = poll(reads, ledger, NOW)

    assert len(polled.ended) == 250
    assert polled.cursor is not None
    assert polled.cursor >= max(_at(e) for e in events)  # every event before it read (newest first: a window's end)
    assert ledger.after == polled.cursor
    assert reads.calls[0][0] == NOW - timedelta(hours=1) - OVERLAP  # it reads the overlap again
    assert all(limit == PAGE for _, _, limit in reads.calls)


def test_an_idle_poll_is_one_call_and_moves_nothing() -> None:
    ledger = MemoryLedger()
    ledger.after = NOW - timedelta(minutes=1)
    reads = Reads([])

    polled = poll(reads, ledger, NOW)

    assert (polled.calls, polled.events, ledger.after) == (1, 0, NOW - timedelta(minutes=1))


def test_the_overlap_read_again_settles_nothing_twice() -> None:
    ledger = MemoryLedger()
    started(ledger, "e1")
    ledger.after = NOW - timedelta(minutes=10)
    reads = Reads([event("completed", "e1", at=NOW - timedelta(minutes=2))])

    assert len(poll(reads, ledger, NOW).ended) == 1
    assert poll(reads, ledger, NOW + timedelta(minutes=1)).ended == []  # inside the overlap: read, not settled again


def test_a_run_with_no_ending_heard_is_looked_up_and_settled_by_its_status() -> None:
    ledger = MemoryLedger()
    started(ledger, "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")
    done = {"id": "11111111-1111-4111-8111-111111111111", "status": "failed", "completed_at": "2026-11-30T11:30:00Z"}
    still = {"id": "22222222-2222-4222-8222-222222222222", "status": "running"}
    reads = Reads([], {done["id"]: done, still["id"]: still})

    first = reconcile(reads, ledger, NOW, timedelta(minutes=15))

    assert [(item.run.execution_id, item.event.status) for item in first.ended] == [(done["id"], "failed")]
    assert first.looked_up == 2
    assert ledger.looked_up[still["id"]] == NOW
    assert (
        reconcile(reads, ledger, NOW + timedelta(minutes=5), timedelta(minutes=15)).looked_up == 0
    )  # checked recently
    assert from_execution("model", SYNC, {"status": "completed"}) is None  # names no run


def test_a_run_polytomic_no_longer_knows_is_forgotten_with_a_reason_after_48_hours() -> None:
    ledger = MemoryLedger()
    started(ledger, "33333333-3333-4333-8333-333333333333")
    late = NOW + timedelta(hours=49)

    done = reconcile(Reads([]), ledger, late, timedelta(minutes=15))

    assert ledger.open == {}
    assert done.forgotten == [
        f"execution 33333333-3333-4333-8333-333333333333 of model sync {SYNC}: Polytomic does not know it"
        " after 48 h; its outcome is no longer watched"
    ]


@pytest.mark.parametrize(
    ("data", "status", "terminal"),
    [
        ({"id": "x", "status": "errors"}, "completed_with_errors", True),  # bulk's "with errors"
        ({"id": "x", "status": "completed", "errors": ["a record was rejected"]}, "completed_with_errors", True),
        ({"id": "x", "status": "completed", "errors": []}, "completed", True),
        ({"id": "x", "status": "interrupted"}, "interrupted", True),
        ({"id": "x", "status": "exporting"}, "exporting", False),
        ({"id": "x", "status": "brand_new_state"}, "brand_new_state", False),
    ],
)
def test_an_execution_status_reads_as_the_event_it_stands_for(
    data: dict[str, Any], status: str, terminal: bool
) -> None:
    read = from_execution("bulk", SYNC, data)
    assert read is not None
    assert (read.status, read.terminal, read.event_id) == (status, terminal, f"execution:x:{status}")


class Book:
    def __init__(self, *promises: Any) -> None:
        self.open = {p.key: p for p in promises}

    def promise(self, promise: Any) -> None:
        self.open.setdefault(promise.key, promise)

    def due(self, now: datetime) -> Iterator[Any]:
        yield from [p for p in self.open.values() if p.due <= now]

    def close(self, key: str, verdict: str = "kept") -> bool:
        return self.open.pop(key, None) is not None


def promise(key: str) -> Any:
    from polytrigger.runs.freshness import Promise

    return Promise(
        key,
        "fresh",
        SYNC,
        "model",
        f"s3://b/{key}.csv (created)",
        NOW - timedelta(minutes=40),
        NOW - timedelta(minutes=10),
    )


def execution(created: timedelta, status: str, completed: timedelta | None = None) -> dict[str, Any]:
    data = {"id": f"run-{created}", "status": status, "created_at": (NOW + created).isoformat()}
    if completed is not None:
        data["completed_at"] = (NOW + completed).isoformat()
    return data


@pytest.mark.parametrize(
    ("executions", "what"),
    [
        ([execution(-timedelta(minutes=35), "completed", -timedelta(minutes=20))], None),  # kept
        (
            [execution(-timedelta(minutes=35), "completed", -timedelta(minutes=5))],
            "the run completed after the promise was due",
        ),
        ([execution(-timedelta(minutes=35), "failed", -timedelta(minutes=30))], "the run ended failed"),
        ([execution(-timedelta(minutes=35), "running")], "still running"),
        ([execution(-timedelta(minutes=50), "completed", -timedelta(minutes=45))], "never started"),  # before the file
        (  # created in the whole second the file landed in: it may predate the file (the start path's rule)
            [execution(-timedelta(minutes=40, microseconds=-500_000), "completed", -timedelta(minutes=20))],
            "never started",
        ),
        ([execution(-timedelta(minutes=40, seconds=-3), "completed", -timedelta(minutes=20))], None),
        ([], "never started"),
    ],
)
def test_a_due_promise_is_kept_by_a_later_completed_run_or_reported_once_with_what_happened(
    executions: list[dict[str, Any]], what: str | None
) -> None:
    from polytrigger.runs.freshness import check

    book = Book(promise("a"))
    reads = Reads([])
    reads.by_id = {e["id"]: e for e in executions}

    verdicts = list(check(book, reads, NOW))

    assert [breach.what if breach else None for _, breach in verdicts] == [what]
    assert list(check(book, reads, NOW)) == verdicts  # checked again until the caller closes it (no breach lost)
    book.close("a")
    assert list(check(book, reads, NOW)) == []


def test_a_burst_larger_than_a_poll_is_caught_up_without_the_overlap_then_the_overlap_resumes_once() -> None:
    """The overlap after the burst holds more than a poll reads: read once, then not again while nothing new comes."""
    ledger = MemoryLedger()
    executions = [f"burst{i}" for i in range(2500)]
    started(ledger, *executions)
    ledger.after = NOW - timedelta(minutes=2)
    reads = Reads(
        [
            event("completed", e, at=NOW - timedelta(seconds=60) + timedelta(milliseconds=i))
            for i, e in enumerate(executions)
        ]
    )

    first = poll(reads, ledger, NOW)
    assert ledger.cursor()[1]  # stopped short of the newest
    second = poll(reads, ledger, NOW + timedelta(minutes=1))
    caught_up = ledger.after
    calls = len(reads.calls)
    assert not ledger.cursor()[1]
    third = poll(reads, ledger, NOW + timedelta(minutes=2))
    fourth = poll(reads, ledger, NOW + timedelta(minutes=3))

    assert len(first.ended) + len(second.ended) == 2500  # every ending, none twice
    assert third.ended == fourth.ended == []
    assert caught_up is not None
    assert reads.calls[calls][0] == caught_up - OVERLAP  # the overlap again once caught up
    assert ledger.settles <= 2500 + 2000  # the third poll re-reads the overlap: reads, never a second ending
    assert fourth.calls == 1  # the overlap held more than a poll: not read again while nothing new comes
    assert ledger.cursor() == (caught_up, True)


def test_a_full_page_with_no_readable_time_stops_the_poll_and_says_so() -> None:
    ledger = MemoryLedger()
    ledger.after = NOW - timedelta(minutes=1)
    timeless = [{"id": f"x{i}", "type": "connection.updated", "created_at": "later"} for i in range(PAGE)]

    class Timeless(Reads):
        def events(self, starting_after: datetime, ending_before: datetime | None, limit: int) -> list[Any]:
            self.calls.append((starting_after, ending_before, limit))
            return timeless

    reads = Timeless([])
    polled = poll(reads, ledger, NOW)

    assert (len(reads.calls), polled.caught_up) == (1, False)  # no loop on a page it cannot page past
    assert polled.unread == [
        f"a full page of events with no readable created_at after {(NOW - 6 * OVERLAP / 5).isoformat()}"
    ]
    assert ledger.cursor() == (NOW - timedelta(minutes=1), True)  # where the next poll goes on; its age shows
