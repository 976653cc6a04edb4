"""The fake Polytomic answered in process (no socket), on an injected clock, with the real client.

The fake's contract over HTTP and against the official SDK is tests/integration/test_fake_polytomic*.py;
here: what the in-process transport must reproduce of a socket (a dropped connection, a read timeout,
a round trip), the injected clock, and the controls the unit tests and the simulation rely on (a run
no start made, a key in flight, a fault in transit, a refused key that is never stored).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from local.polytomic import DEFAULT_API_KEY, IN_PROCESS_URL, FakePolytomic
from polytrigger.polytomic.client import PolytomicClient, RetryPolicy
from polytrigger.polytomic.contract import AlreadyRunning, KeyInFlight, Transient, Unauthorized, UnreadableAnswer
from polytrigger.polytomic.credentials import Credentials

T0 = 1_795_000_000.0
KEY = "k" * 64
HEADERS = {"Authorization": f"Bearer {DEFAULT_API_KEY}", "X-Polytomic-Version": "2025-09-18"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def fake_on(clock: Clock) -> FakePolytomic:
    return FakePolytomic(clock=clock, sleep=clock.sleep)


def client(fake: FakePolytomic, clock: Clock, **options: Any) -> PolytomicClient:
    def credentials(refresh: bool = False) -> Credentials:
        return Credentials(scheme="api_key", authorization=f"Bearer {DEFAULT_API_KEY}")

    http = fake.in_process(latency=options.pop("latency", 0.0))
    return PolytomicClient(
        IN_PROCESS_URL, "2025-09-18", credentials, http=http, sleep=clock.sleep, clock=clock, **options
    )


def start(fake: FakePolytomic, sync_id: str, key: str = KEY, **kw: Any) -> urllib3.BaseHTTPResponse:
    return fake.in_process().request(
        "POST", f"{IN_PROCESS_URL}/api/syncs/{sync_id}/executions", headers={**HEADERS, "Idempotency-Key": key}, **kw
    )


# -- the transport ------------------------------------------------------------------------------


def test_the_real_client_reaches_the_fake_through_the_same_pipeline_as_over_http() -> None:
    clock = Clock(T0)
    fake = fake_on(clock)
    sync_id = fake.add_sync(run_seconds=60)
    execution = client(fake, clock).start("model", sync_id, {"resync": True}, idempotency_key=KEY)
    [recorded] = fake.executions(sync_id)
    assert (execution.id, recorded.options, recorded.idempotency_key) == (recorded.id, {"resync": True}, KEY)
    [call] = fake.calls
    assert (call.method, call.path, call.status, call.body) == (
        "POST",
        f"/api/syncs/{sync_id}/executions",
        200,
        {"resync": True},
    )
    assert call.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    response = start(fake, sync_id)  # the same key: replayed, headers echoed as over HTTP
    assert (response.status, response.headers["X-Polytomic-Version"]) == (200, "2025-09-18")
    assert json.loads(response.data)["data"]["id"] == execution.id
    assert fake.calls[-1].replayed


def test_a_dropped_connection_is_no_answer_and_the_request_was_not_run() -> None:
    fake = fake_on(Clock(T0))
    sync_id = fake.add_sync()
    fake.inject(drop=True)
    with pytest.raises(ProtocolError):
        start(fake, sync_id)
    assert fake.executions() == []
    assert fake.calls[-1].status == 0


def test_an_answer_slower_than_the_read_timeout_times_out_on_the_fakes_clock_though_the_request_ran() -> None:
    clock = Clock(T0)
    fake = fake_on(clock)
    sync_id = fake.add_sync(run_seconds=3600)
    fake.inject(delay=30.0)
    with pytest.raises(ReadTimeoutError):
        start(fake, sync_id, timeout=urllib3.Timeout(connect=3.0, read=10.0))
    assert clock.now == T0 + 30  # no real waiting: the fake's sleep moved the test's clock
    assert len(fake.executions(sync_id)) == 1  # Polytomic started it; the client never heard back
    fake.inject(delay=30.0)
    once = client(fake, clock, retry=RetryPolicy(attempts=1))
    with pytest.raises(Transient, match="ReadTimeoutError"):  # the real client sees no answer
        once.active("model", sync_id)


def test_each_request_takes_its_round_trip_after_polytomic_acted_on_it() -> None:
    clock = Clock(T0)
    fake = fake_on(clock)
    sync_id = fake.add_sync(run_seconds=60)
    client(fake, clock, latency=0.25).start("model", sync_id, {}, idempotency_key=KEY)
    assert clock.now == T0 + 0.25
    assert fake.executions(sync_id)[0].created_seconds == T0  # created when the request arrived


def test_the_in_process_fake_answers_only_its_loopback_url() -> None:
    with pytest.raises(ValueError, match="in-process"):
        FakePolytomic().in_process().request("GET", "https://app.example.com/api/me", headers=HEADERS)


# -- the fake on an injected clock, and the controls the tests use --------------------------------


def test_runs_end_and_events_are_dated_on_the_injected_clock() -> None:
    clock = Clock(T0)
    fake = fake_on(clock)
    sync_id = fake.add_sync(run_seconds=60, outcome="failed")
    polytomic = client(fake, clock)
    polytomic.start("model", sync_id, {}, idempotency_key=KEY)
    assert fake.executions(sync_id)[0].status == "running"
    with pytest.raises(AlreadyRunning):
        polytomic.start("model", sync_id, {}, idempotency_key="another-key-0001")
    clock.now = T0 + 60
    assert [e["status"] for e in polytomic.executions("model", sync_id)] == ["failed"]
    assert [(e["type"], e["created_at"]) for e in fake.events()] == [
        ("sync.running", "2026-11-18T11:06:40.000000Z"),
        ("sync.failed", "2026-11-18T11:07:40.000000Z"),
    ]


def test_a_run_no_start_made_is_listed_and_a_start_meets_it_while_it_runs() -> None:
    clock = Clock(T0)
    fake = fake_on(clock)
    sync_id = fake.add_sync()
    scheduled = fake.add_run(sync_id, T0 - 10, run_seconds=600)
    polytomic = client(fake, clock)
    assert [(e["id"], e["status"]) for e in polytomic.executions("model", sync_id)] == [(scheduled, "running")]
    with pytest.raises(AlreadyRunning):
        polytomic.start("model", sync_id, {}, idempotency_key=KEY)
    clock.now = T0 + 590
    assert polytomic.start("model", sync_id, {}, idempotency_key="after-the-run-01").id != scheduled
    assert fake.executions(sync_id)[0].idempotency_key is None


def test_a_held_key_gets_the_in_flight_409_until_it_is_released() -> None:
    clock = Clock(T0)
    fake = fake_on(clock)
    sync_id = fake.add_sync()
    fake.hold_key(KEY)
    with pytest.raises(KeyInFlight):
        client(fake, clock).start("model", sync_id, {}, idempotency_key=KEY)
    assert [call.status for call in fake.calls] == [409] * 3  # every attempt of the client's call
    assert fake.executions() == []
    fake.release_key(KEY)
    client(fake, clock).start("model", sync_id, {}, idempotency_key=KEY)
    assert len(fake.executions()) == 1


def test_an_answer_mangled_in_transit_is_polytomics_own_when_the_key_is_sent_again() -> None:
    clock = Clock(T0)
    fake = fake_on(clock)
    sync_id = fake.add_sync(run_seconds=600)
    fake.inject(201, in_transit=True, response_body={"data": {"status": "created"}})
    polytomic = client(fake, clock)
    with pytest.raises(UnreadableAnswer):
        polytomic.start("model", sync_id, {}, idempotency_key=KEY)
    [run] = fake.executions(sync_id)  # Polytomic did start it
    assert polytomic.start("model", sync_id, {}, idempotency_key=KEY).id == run.id  # its stored answer
    assert len(fake.executions(sync_id)) == 1


def test_an_answer_dropped_in_transit_reaches_the_clients_retry_under_the_same_key() -> None:
    """The case the Idempotency-Key exists for: the run started, the answer was lost, the retry is told."""
    clock = Clock(T0)
    fake = fake_on(clock)
    sync_id = fake.add_sync(run_seconds=600)
    fake.inject(drop=True, in_transit=True)
    execution = client(fake, clock).start("model", sync_id, {}, idempotency_key=KEY)
    [run] = fake.executions(sync_id)
    assert execution.id == run.id
    assert [(call.status, call.replayed) for call in fake.calls] == [(0, False), (200, True)]


def test_an_injected_401_is_answered_before_the_key_is_looked_at_so_it_is_never_stored() -> None:
    clock = Clock(T0)
    fake = fake_on(clock)
    sync_id = fake.add_sync()
    fake.inject(401, times=2)
    with pytest.raises(Unauthorized, match="still after re-reading the secret"):
        client(fake, clock).start("model", sync_id, {}, idempotency_key=KEY)
    assert fake.stored_response(KEY) is None
    client(fake, clock).start("model", sync_id, {}, idempotency_key=KEY)
    assert len(fake.executions(sync_id)) == 1


def test_an_ended_execution_shows_a_status_set_after_it_ended() -> None:
    """Ended executions are rendered once for speed; a status a test sets later still shows."""
    clock = Clock(T0)
    fake = fake_on(clock)
    sync_id = fake.add_sync(run_seconds=60)
    polytomic = client(fake, clock)
    execution = polytomic.start("model", sync_id, {}, idempotency_key=KEY)
    clock.now = T0 + 60
    assert polytomic.executions("model", sync_id)[0]["status"] == "completed"
    fake.set_execution_status(execution.id, "failed")
    assert polytomic.executions("model", sync_id)[0]["status"] == "failed"
