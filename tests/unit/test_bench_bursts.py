"""`make bench-bursts` in miniature, so the benchmark and its simulated edges cannot rot."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from benchmarks import bursts, sim
from benchmarks.sim import (
    EPOCH,
    SQS_MAX_RECEIVES,
    SQS_VISIBILITY_TIMEOUT,
    Loop,
    Scenario,
    SimPolytomic,
    SimQueue,
    simulate,
    staleness_bound,
)
from local.memory import MemoryDedup
from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.outcomes import Outcome
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch import deferred
from polytrigger.dispatch.deferred import window_id
from polytrigger.dispatch.messages import Message, deferred_start, window_flush
from polytrigger.dispatch.ports import AlreadyRunning, DedupBusy, PolytomicApi, Queue, Window

SYNC = bursts.sync_id(7)


def tiny() -> list[Scenario]:
    return [
        bursts.burst(files=300, seconds=60, debounce=10, run_seconds=15),
        bursts.undebounced(files=100, seconds=60, run_seconds=15),
        bursts.trickle(every=5, seconds=300, debounce=20, max_wait=60, run_seconds=30),
        bursts.bursty(syncs=3, seconds=1200, largest_burst=20, seed=1),
    ]


def test_tiny_scenarios_cover_every_file_and_the_table_renders() -> None:
    results = [simulate(scenario) for scenario in tiny()]

    for result in results:
        assert result.polytrigger.covered == result.files, result.scenario.name
        assert result.polytrigger.coverage == 100.0
        assert result.polytrigger.parked == 0
        assert bursts.passed(result)
    burst = results[0]
    assert burst.polytrigger.executions <= 8  # ceil(60 / 10) + 2
    assert burst.naive.coverage < 100.0  # the files after the naive tool's last start are never synced
    assert burst.polytrigger.outcomes["coalesced"] > 0

    table = bursts.table(results)
    lines = table.splitlines()
    assert lines[0].startswith("| scenario ")
    assert "worst staleness polytrigger" in lines[0]
    assert "| pass/fail |" in lines[0]
    assert len(lines) == 2 + len(results)
    assert all(line.rstrip().endswith("| pass      |") for line in lines[2:])
    assert "coalesced" in bursts.details(results)


def test_the_staleness_bound_fails_a_window_that_ignores_max_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = bursts.trickle(every=5, seconds=300, debounce=20, max_wait=60, run_seconds=30)
    assert staleness_bound(scenario, 30) == 60 + 1 + 30  # max_wait, SQS's whole seconds, retries at 30 s

    def quiet_only(window: Window, action: Action, now: float) -> int:
        quiet = now - window.last_arrival
        return 0 if quiet >= action.debounce else max(1, math.ceil(action.debounce - quiet))

    monkeypatch.setattr(deferred, "flush_delay", quiet_only)
    result = simulate(scenario)

    assert result.polytrigger.covered == result.files  # every file is still started, but far too late
    assert result.polytrigger.late > 0
    assert not bursts.passed(result)


def test_main_exits_non_zero_when_a_target_is_missed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = bursts.burst(files=200, seconds=60, debounce=10, run_seconds=15)
    monkeypatch.setattr(bursts, "scenarios", lambda seed: [scenario])
    assert bursts.main([]) == 0
    assert "all pass" in capsys.readouterr().out

    monkeypatch.setattr(bursts, "scenarios", lambda seed: [replace(scenario, max_executions=1)])
    assert bursts.main([]) == 1
    out = capsys.readouterr().out
    assert "| FAIL " in out
    assert "FAILED: a: 200 files" in out


def test_sim_polytomic_runs_answers_409_and_replays_keys() -> None:
    loop = Loop()
    sim = SimPolytomic(loop.clock, {SYNC: 90})
    client: PolytomicApi = sim  # the port, structurally

    first = client.start("model", SYNC, {}, idempotency_key="key-00001")
    loop.now = EPOCH + 30
    with pytest.raises(AlreadyRunning):
        client.start("model", SYNC, {}, idempotency_key="key-00002")
    loop.now = EPOCH + 90
    assert client.start("model", SYNC, {}, idempotency_key="key-00001") == first  # replayed, no new run
    with pytest.raises(AlreadyRunning):
        client.start("model", SYNC, {}, idempotency_key="key-00002")  # a 409 is replayed too
    second = client.start("model", SYNC, {}, idempotency_key="key-00003")

    listed = client.executions("model", SYNC)
    assert [item["id"] for item in listed] == [second.id, first.id]  # newest first
    assert listed[0]["created_at"].endswith("Z")
    assert listed[0]["status"] == "running"
    assert sim.created("model", SYNC) == [EPOCH, EPOCH + 90]


def action_at(moment: float) -> Action:
    trigger = Trigger.s3(
        bucket="bench-landing",
        key="in/a.csv",
        event="created",
        sequencer="01",
        time=datetime.fromtimestamp(moment, UTC),
    )
    return Action(route="r", kind="start", sync=SyncTarget(id=SYNC), trigger=trigger, debounce=10, max_wait=30)


def test_sim_queue_delivers_typed_messages_through_json_later_and_redelivers_failures() -> None:
    loop = Loop()
    sim = SimQueue(loop)
    queue: Queue = sim  # the port, structurally
    action = action_at(EPOCH)
    window = window_flush(action, window_id(action), EPOCH, 0)
    retry = deferred_start(action, since=EPOCH + 0.5, attempt=2, first_at=EPOCH)
    received: list[tuple[float, Message]] = []

    def deliver(message: Message) -> bool:
        received.append((loop.now, message))
        return message != retry  # the deferred start keeps failing (retryable)

    sim.deliver = deliver
    queue.send(window, 10)
    queue.send(retry, 2000)  # longer than SQS allows: delayed by 15 min
    loop.run()

    assert received[0] == (EPOCH + 10, window)  # equal after the JSON round trip, and typed
    assert [when for when, message in received[1:]] == [
        EPOCH + 900 + SQS_VISIBILITY_TIMEOUT * receive for receive in range(SQS_MAX_RECEIVES)
    ]
    assert sim.sent == 2
    assert sim.parked == [(retry, f"received {SQS_MAX_RECEIVES} times without success")]

    queue.park(window, "a person should look")
    assert sim.parked[-1] == (window, "a person should look")


def test_memory_dedup_remembers_settled_outcomes_only() -> None:
    dedup = MemoryDedup()
    action = action_at(EPOCH)
    started = Outcome.of(action, "started", execution_id="e1")
    failed = Outcome.of(action, "failed", reason="no")

    assert dedup.once("failing", lambda: failed) == failed
    assert dedup.once("failing", lambda: started) == started  # a failure is not remembered
    again = dedup.once("failing", lambda: failed)
    assert (again.status, again.execution_id, again.reason) == ("duplicate", "e1", "already started for this trigger")

    def boom() -> Outcome:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        dedup.once("raising", boom)
    assert dedup.once("raising", lambda: started) == started  # nor is an exception

    def reentrant() -> Outcome:
        return dedup.once("busy", lambda: started)

    with pytest.raises(DedupBusy):
        dedup.once("busy", reentrant)  # a key whose first call has not finished


def test_polytrigger_runs_on_the_virtual_clock_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Virtual time decades after the wall clock: a policy that read the wall clock (`Starts`' default
    clock, `perform`'s default `received`) would take runs created before a file for its coverage."""
    monkeypatch.setattr(sim, "EPOCH", datetime(2100, 1, 4, 9, 0, tzinfo=UTC).timestamp())
    result = simulate(bursts.undebounced(files=400, seconds=60, run_seconds=15))

    assert result.polytrigger.covered == result.files
    assert result.polytrigger.outcomes["covered"] > 0


def test_event_times_have_whole_seconds_as_eventbridge_sends_them() -> None:
    assert sim.event_time(EPOCH + 12.75) == datetime.fromtimestamp(EPOCH + 12, UTC)
