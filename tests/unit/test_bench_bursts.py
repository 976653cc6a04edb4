"""`make bench-bursts` in miniature, so the benchmark and its simulated edges cannot rot."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from benchmarks import bursts, sim, storm
from benchmarks.platform import AsyncFunction, Done, Platform, Processes
from benchmarks.sim import (
    EPOCH,
    SQS_MAX_RECEIVES,
    SQS_VISIBILITY_TIMEOUT,
    Landing,
    Loop,
    NaiveClient,
    Polytomic,
    Received,
    RouteSpec,
    Scenario,
    SimQueue,
    SyncSpec,
    simulate,
    simulate_one,
    staleness_bound,
)
from local.polytomic import FakePolytomic
from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch import deferrals as deferred
from polytrigger.dispatch.deferrals import window_id
from polytrigger.dispatch.messages import Message, deferred_start, window_flush
from polytrigger.dispatch.ports import Queue, Window
from polytrigger.polytomic.contract import AlreadyRunning, PolytomicApi, Throttled

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
    assert bursts.main(["--storm-files", "0"]) == 0
    assert "all pass" in capsys.readouterr().out

    monkeypatch.setattr(bursts, "scenarios", lambda seed: [replace(scenario, max_executions=1)])
    assert bursts.main(["--storm-files", "0"]) == 1
    out = capsys.readouterr().out
    assert "| FAIL " in out
    assert "FAILED: a: 200 files" in out


def test_the_simulations_polytomic_is_the_shared_fake_on_the_virtual_clock() -> None:
    """Runs end, 409s and replays come from the local stack's fake, on virtual time, through the real client."""
    loop = Loop()
    polytomic = Polytomic(loop.clock, {SYNC: 90})
    client: PolytomicApi = polytomic.client
    assert isinstance(polytomic.fake, FakePolytomic)

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
    assert polytomic.created(SYNC) == [EPOCH, EPOCH + 90]
    assert polytomic.calls == Counter({"start": 5, "executions": 1})


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

    def consume(batch: list[Received]) -> tuple[list[bool], float]:
        received.extend((loop.now, record.message) for record in batch)
        return [record.message != retry for record in batch], 0.0  # the deferred start keeps failing

    sim.consume = consume
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


def test_polytrigger_runs_on_the_virtual_clock_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Virtual time decades after the wall clock: a policy that read the wall clock (`Starts`' default
    clock, `perform`'s default `received`) would take runs created before a file for its coverage."""
    monkeypatch.setattr(sim, "EPOCH", datetime(2100, 1, 4, 9, 0, tzinfo=UTC).timestamp())
    result = simulate(bursts.undebounced(files=400, seconds=60, run_seconds=15))

    assert result.polytrigger.covered == result.files
    assert result.polytrigger.outcomes["covered"] > 0


def test_event_times_have_whole_seconds_as_eventbridge_sends_them() -> None:
    assert sim.event_time(EPOCH + 12.75) == datetime.fromtimestamp(EPOCH + 12, UTC)


# -- the platform: Lambda's concurrency and queue, the dispatch mapping, Polytomic's rate limit ----


def crowd(files: int = 1_500, seconds: float = 10.0) -> Scenario:
    """A small storm: most files on a debounced route that starts two syncs, every fifth on a plain route."""
    syncs = (SyncSpec(bursts.sync_id(40), 30), SyncSpec(bursts.sync_id(41), 90), SyncSpec(bursts.sync_id(42), 45))
    return Scenario(
        name="crowd",
        syncs=syncs,
        landings=tuple(Landing(index * seconds / files, 1 if index % 5 == 0 else 0) for index in range(files)),
        debounce=10,
        max_wait=30,
        routes=(RouteSpec((0, 1), debounce=10, max_wait=30), RouteSpec((2,))),
    )


def bounded(**changes: Any) -> Platform:
    platform = Platform(
        s3_concurrency=3,
        dispatcher_concurrency=2,
        batch_size=10,
        batching_window=1.0,
        call_seconds=0.1,
        invoke_seconds=0.005,
        aws_seconds=0.02,
        rate_limit=5,
    )
    return replace(platform, **changes)


def test_a_bounded_platform_never_exceeds_its_concurrency_and_every_file_is_covered_or_parked() -> None:
    side = simulate_one(crowd(), bounded(), naive=False)

    assert side.s3.peak == 3  # the bound was reached ...
    assert side.s3.throttles > 0  # ... and held: the excess waited in Lambda's queue
    assert 0 < side.dispatcher_peak <= 2
    assert side.s3.invocations >= side.files // 2  # every event was invoked in the end (debounced files count twice)
    assert side.rate_limited > 0  # the rate limit was met, and answered 429 ...
    assert side.most_let_through <= 5  # ... never letting more through than it allows
    assert side.unaccounted == 0
    assert side.covered + side.parked_uncovered == side.files


def test_no_429_when_the_bounded_concurrency_cannot_exceed_the_rate_limit() -> None:
    # one S3 invocation and one dispatcher invocation, each request 0.1 s: at most about 20 a second
    side = simulate_one(crowd(), bounded(s3_concurrency=1, dispatcher_concurrency=1, rate_limit=25), naive=False)

    assert side.busiest_second <= 25
    assert side.rate_limited == 0
    assert side.covered == side.files
    assert side.parked == 0


def test_events_older_than_the_maximum_age_are_parked_and_still_accounted_for() -> None:
    side = simulate_one(crowd(), bounded(s3_concurrency=1, max_event_age=20), naive=False)

    assert side.parked_reasons["event: older than MaximumEventAgeInSeconds"] > 0
    assert side.parked_files > 0
    assert side.unaccounted == 0  # covered by a run, or parked where a person sees it


def test_the_naive_tool_starts_once_per_file_and_takes_a_409_as_final() -> None:
    """The naive side: one start per (file, sync), never deferred; what Polytomic refused as running is dropped."""
    naive = bounded(s3_concurrency=200, dispatcher_concurrency=None, rate_limit=8, honour_retry_after=False)
    side = simulate_one(crowd(files=600, seconds=5), naive, naive=True)

    assert side.rate_limited > 0
    assert (side.messages, side.dispatcher_peak) == (0, 0)  # no dispatch queue
    assert side.outcomes["started"] == side.executions == sum(side.executions_by_sync.values())
    assert side.outcomes["already_running"] > 0
    assert set(side.outcomes) <= {"started", "already_running", "duplicate", "failed"}  # never deferred


def test_coverage_is_measured_on_polytomic_true_clock_so_skew_beyond_the_margin_shows() -> None:
    """A file lands 50 ms after a run began. Polytomic dating runs up to SKEW_SECONDS late cannot make
    polytrigger take that run for the file's; dating them later can, and the benchmark sees the miss."""
    sync = SyncSpec(bursts.sync_id(9), 30)
    scenario = Scenario("skew", (sync,), (Landing(0, 0), Landing(0.05, 0)), debounce=0)

    within = simulate(scenario, polytrigger=Platform(polytomic_ahead=0.95))
    beyond = simulate(scenario, polytrigger=Platform(polytomic_ahead=1.2))

    assert within.polytrigger.covered == 2
    assert beyond.polytrigger.outcomes["covered"] == 1  # polytrigger believes the first run has the file
    assert beyond.polytrigger.covered == 1  # it has not


def test_lambda_keeps_a_throttled_event_and_invokes_it_later() -> None:
    loop = Loop()
    began: list[tuple[float, int]] = []

    def start(payload: int, done: Done) -> None:
        began.append((loop.now - EPOCH, payload))
        loop.after(10, lambda: done((True, 0.0), None))

    function: AsyncFunction[int] = AsyncFunction(loop, start, concurrency=1)
    for payload in range(4):
        function.invoke(payload)
    loop.run()

    assert sorted(payload for _, payload in began) == [0, 1, 2, 3]  # delayed, not lost
    times = [when for when, _ in began]
    assert times[0] == 0
    assert all(later - earlier >= 10 for earlier, later in itertools.pairwise(times))
    assert function.stats.peak == 1
    assert function.stats.throttles > 0
    assert function.stats.parked == []


def test_lambda_parks_an_event_past_its_maximum_age_and_a_failing_one_after_two_retries() -> None:
    loop = Loop()

    def slow(payload: str, done: Done) -> None:
        loop.after(10, lambda: done((payload != "failing", 0.0), None))

    aged: AsyncFunction[str] = AsyncFunction(loop, slow, concurrency=1, max_event_age=25)
    for number in range(6):
        aged.invoke(f"file {number}")
    failing: AsyncFunction[str] = AsyncFunction(loop, slow, concurrency=None)
    failing.invoke("failing")
    loop.run()

    assert 0 < len(aged.stats.parked) < 6
    assert aged.stats.invocations + len(aged.stats.parked) == 6
    assert all(why.startswith("older than MaximumEventAgeInSeconds") for _, why in aged.stats.parked)
    assert failing.stats.invocations == 3  # the first try and Lambda's two retries (after 1 and 2 min)
    assert failing.stats.parked == [("failing", "failed 3 times")]


def test_processes_interleave_in_virtual_time_and_an_inline_one_cannot_wait() -> None:
    loop = Loop()
    processes = Processes(loop, threaded=True)
    steps: list[tuple[float, str]] = []

    def body(name: str, pauses: tuple[float, ...]) -> str:
        for pause in pauses:
            steps.append((loop.now - EPOCH, name))
            processes.wait(pause)
        return name

    ended: list[str | None] = []
    try:
        processes.spawn(partial(body, "a", (1.0, 3.0)), lambda result, error: ended.append(result))
        processes.spawn(partial(body, "b", (2.0, 0.5)), lambda result, error: ended.append(result))
        loop.run()
    finally:
        processes.close()

    assert steps == [(0, "a"), (0, "b"), (1, "a"), (2, "b")]
    assert ended == ["b", "a"]  # b ends at 2.5 s, a at 4 s
    errors: list[BaseException | None] = []
    processes.spawn(partial(body, "c", (1.0,)), lambda result, error: errors.append(error), inline=True)
    assert isinstance(errors[0], RuntimeError)


def test_the_gateway_answers_429_over_its_rate_limit_and_polytriggers_client_waits_retry_after() -> None:
    loop = Loop()

    def wait(seconds: float) -> None:  # the process's wait, outside a process: time just moves on
        loop.now += seconds

    other = bursts.sync_id(8)
    polytomic = Polytomic(loop.clock, {SYNC: 90, other: 90}, limit=1, wait=wait, call_seconds=0.1)
    assert polytomic.admit("start") is None
    assert polytomic.admit("start") == 1.0  # the second request in the same second: 429, Retry-After 1
    assert polytomic.calls == Counter({"start": 2, "429": 1})

    loop.now = EPOCH + 10.5
    polytomic.client.start("model", SYNC, {}, idempotency_key="key-00001")  # the first of second 10: through
    polytomic.client.start("model", other, {}, idempotency_key="key-00002")  # 429; after Retry-After, through
    assert polytomic.longest_pause >= 1.0  # at least Retry-After: into the next second
    assert [len(polytomic.fake.executions(sync)) for sync in (SYNC, other)] == [1, 1]  # the 429 did nothing
    with pytest.raises(Throttled):  # in that second again: a pause past its deadline is not taken
        polytomic.client.start("model", SYNC, {}, idempotency_key="key-00003", deadline=loop.now + 1.05)
    assert polytomic.calls == Counter({"start": 6, "429": 3})


def test_the_naive_client_ignores_retry_after_and_gives_up_after_its_attempts_or_at_its_deadline() -> None:
    loop = Loop()
    platform = Platform(call_seconds=0.1, honour_retry_after=False, seed=3)
    naive = NaiveClient(platform, Polytomic(loop.clock, {SYNC: 90}))
    honouring = NaiveClient(replace(platform, honour_retry_after=True), Polytomic(loop.clock, {SYNC: 90}))

    assert all((naive.pause(1, 1.0, EPOCH, None) or 0) <= 0.4 for _ in range(20))  # full jitter over 0.2 * 2
    assert all((honouring.pause(1, 1.0, EPOCH, None) or 0) >= 1.0 for _ in range(20))
    assert honouring.pause(3, 1.0, EPOCH, None) is None  # the third 429 of a call is the last
    assert honouring.pause(1, 1.0, EPOCH, EPOCH + 1.05) is None  # a pause past the deadline is not taken


def test_when_polytomic_lets_nothing_through_every_file_is_parked_none_dropped() -> None:
    """No run ever starts: each file is accounted for by what was parked (its event, or its window's message)."""
    side = simulate_one(crowd(), bounded(rate_limit=0), naive=False)

    assert side.covered == 0
    # a throttled start waits on the dispatch queue: no event fails its retries into the storm; the plain
    # route's deferred starts and the debounce windows' messages end parked on their last receive
    assert side.parked_reasons["event: failed 3 times"] == 0
    assert side.parked_reasons["message: failed on its last receive"] > 0
    assert side.parked_uncovered == side.files
    assert side.unaccounted == 0


# -- the storm: 100,000 objects within a minute, in miniature ------------------------------------


def test_the_storm_table_shows_each_behaviour_within_its_bounds() -> None:
    scenario = storm.storm(files=1_500)  # within a minute, as the real one
    outcomes = storm.run(scenario, storm.rows(variants=(3,)), jobs=1)

    naive, default, low = outcomes
    assert naive.side.s3.peak > storm.S3_CONCURRENCY  # nothing bounds the naive tool but the account
    assert naive.side.rate_limited > default.side.rate_limited
    assert default.side.s3.peak <= storm.S3_CONCURRENCY
    assert default.side.dispatcher_peak <= storm.DISPATCHER_CONCURRENCY
    assert low.side.s3.peak <= 3
    assert naive.side.unaccounted > 0  # its dropped 409s: files neither covered nor parked ...
    assert not naive.kept_promise
    assert not naive.failed  # ... which is what the naive tool does, not a failure of the benchmark
    assert all(outcome.kept_promise for outcome in outcomes[1:])

    lines = storm.table(outcomes).splitlines()
    assert [cell.strip() for cell in lines[0].strip("|").split("|")] == [
        "behaviour (S3 / dispatcher concurrency)",
        "peak concurrency",
        "Polytomic calls",
        "429s",
        "executions per sync",
        "files covered",
        "worst staleness",
        "parked",
        "longest wait for a Lambda slot",
        "covered or parked",
    ]
    assert "| NO (" in lines[2]
    assert len(lines) == 2 + len(outcomes)
    assert lines[3].startswith("| polytrigger 10 / 5 ")
    assert "Polytomic lets 10 requests a second through" in storm.details(scenario, outcomes)


def test_the_storm_rows_give_the_same_figures_in_parallel_processes() -> None:
    scenario = storm.storm(files=600, seconds=5)
    table_rows = storm.rows(variants=())
    alone = storm.run(scenario, table_rows, jobs=1)
    forked = storm.run(scenario, table_rows, jobs=2)

    assert [outcome.side.calls for outcome in forked] == [outcome.side.calls for outcome in alone]
    assert storm.table(forked) == storm.table(alone)


def test_main_prints_the_storm_and_fails_a_row_that_breaks_the_promise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bursts, "scenarios", lambda seed: [bursts.burst(files=200, seconds=60, debounce=10)])
    assert bursts.main(["--storm-files", "1500", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "Storm: 1,500 objects in 60 s" in out
    assert "| polytrigger 10 / 5 " in out
    assert out.rstrip().endswith("all pass")

    monkeypatch.setattr(storm.RowResult, "kept_promise", property(lambda self: self.row.naive))  # all broken
    assert bursts.main(["--storm-files", "1500", "--jobs", "1"]) == 1
    assert "FAILED: storm: polytrigger 10 / 5" in capsys.readouterr().out
