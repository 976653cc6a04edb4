"""A paused sync holds its files, and every file answers for itself (`polytrigger status`), on the local stack.

The handlers, the dispatcher (through the pump), the poller and the `status` command run against
DynamoDB Local, moto's SQS and the fake Polytomic, on the stack's clock: a wait is a jump of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local.stack.dispatch_pump import DispatchPump, DispatchQueue, SentLog, StackClock
from tests.integration.dispatch_support import BUCKET, Dispatch, statuses
from tests.integration.support import Invoker

VENDOR_SYNC = "c0c0c0c0-0000-4000-8000-000000000001"  # paused over the weekend
BURST_SYNC = "c0c0c0c0-0000-4000-8000-000000000002"
BUSY_SYNC = "c0c0c0c0-0000-4000-8000-000000000003"
GONE_SYNC = "c0c0c0c0-0000-4000-8000-000000000004"  # Polytomic does not know it: 404

ROUTES_YAML = f"""\
routes:
  - name: vendor-manifest
    s3: {{bucket: {BUCKET}, key: "vendor/**/manifest.json"}}
    syncs: [{{id: {VENDOR_SYNC}}}]
  - name: burst
    s3: {{bucket: {BUCKET}, key: "burst/**"}}
    debounce: 2
    syncs: [{{id: {BURST_SYNC}}}]
  - name: busy
    s3: {{bucket: {BUCKET}, key: "busy/**"}}
    syncs: [{{id: {BUSY_SYNC}}}]
  - name: gone
    s3: {{bucket: {BUCKET}, key: "gone/**"}}
    syncs: [{{id: {GONE_SYNC}}}]
  - name: weekend-freeze
    schedule: freeze
    action: deactivate
    syncs: [{{id: {VENDOR_SYNC}}}]
  - name: weekend-thaw
    schedule: thaw
    action: activate
    syncs: [{{id: {VENDOR_SYNC}}}]
"""


@pytest.fixture
def held(polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Dispatch]:
    """The stack with these routes, their syncs, the dispatch queues and the pump, on the stack's clock."""
    from polytrigger import bootstrap

    queues = DispatchQueue.create(polytrigger.stack.client("sqs"), region=polytrigger.stack.region)
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES_YAML, encoding="utf-8")
    for name, value in {**queues.env(), "ROUTES_FILE": str(routes), "DEFERRAL_FIRST_DELAY_SECONDS": "1"}.items():
        monkeypatch.setenv(name, value)
    fake = polytrigger.stack.fake
    for sync in (VENDOR_SYNC, BURST_SYNC, BUSY_SYNC):
        fake.add_sync(sync, kind="model", run_seconds=60)
    clock = StackClock(fake)
    bootstrap.use_clock(clock.now, clock.sleep)
    log = SentLog(clock.now, virtual=True)
    pump = DispatchPump(
        queues, lambda event, _: polytrigger.dispatcher(event), log, clock, returned_after=1, errors="raise"
    )
    try:
        with log.recording():
            yield Dispatch(polytrigger, queues, log, pump, clock)
    finally:
        bootstrap.use_clock()
        queues.delete()


def fire(held: Dispatch, schedule: str) -> dict[str, Any]:
    moment = datetime.fromtimestamp(held.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return held.polytrigger.schedule({"schedule": schedule, "time": moment})


def status(held: Dispatch, key: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    """`polytrigger status s3://…/key --json`, as an operator runs it: exit status and answer."""
    from polytrigger.tools.cli import main

    capsys.readouterr()
    code = main(["status", f"s3://{BUCKET}/{key}", "--table", held.stack.table_name, "--json"])
    return code, json.loads(capsys.readouterr().out)


def state(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(sync["state"], sync["run_status"]) for sync in answer["syncs"]]


def poll_holds(held: Dispatch) -> dict[str, Any]:
    """The poller, once the held syncs are due to be asked again (CHECK_SECONDS on)."""
    from polytrigger.dispatch.holds import CHECK_SECONDS

    held.wait(CHECK_SECONDS + 1)
    return held.polytrigger.poller()


def hold_items(held: Dispatch) -> list[dict[str, Any]]:
    items = held.stack.dynamodb_client().scan(TableName=held.stack.table_name)["Items"]
    return [item for item in items if item["id"]["S"].startswith("polytrigger#hold#")]


# -- a paused sync holds its files --------------------------------------------------------------


def test_files_landing_during_a_weekend_freeze_are_held_and_the_thaw_starts_once_for_all(
    held: Dispatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = held.stack.fake
    assert statuses(fire(held, "freeze")) == ["deactivated"]
    answers = [held.upload(f"vendor/2026-12-0{day}/manifest.json")[1] for day in (5, 6)]
    held.wait(3600)
    code, answer = status(held, "vendor/2026-12-05/manifest.json", capsys)

    assert [statuses(a) for a in answers] == [["held"], ["held"]]  # not failed, not parked
    assert fake.executions(VENDOR_SYNC) == []
    assert (code, state(answer)) == (1, [("held", "")])
    assert "the sync is paused" in answer["syncs"][0]["reason"]
    assert [line for line in held.log_lines() if line.get("status") in ("failed", "parked")] == []

    thawed = fire(held, "thaw")
    held.pump.drain()

    assert statuses(thawed) == ["activated"]
    (run,) = fake.executions(VENDOR_SYNC)  # exactly one start, after the thaw, covering both files
    assert hold_items(held) == []
    for day in (5, 6):
        held.stack.fake.set_execution_status(run.id, "completed")
        held.polytrigger.poller()  # hears the ending
        code, answer = status(held, f"vendor/2026-12-0{day}/manifest.json", capsys)
        assert (code, state(answer)) == (0, [("covered", "completed")])
        assert answer["syncs"][0]["execution_id"] == run.id
    assert [line for line in held.log_lines() if line.get("status") in ("failed", "parked")] == []


def test_a_sync_resumed_by_hand_starts_its_held_files_within_the_pollers_check(held: Dispatch) -> None:
    fake = held.stack.fake
    fake.set_active(VENDOR_SYNC, False)  # someone paused it in Polytomic
    for day in (1, 2, 3):
        assert statuses(held.upload(f"vendor/2026-12-0{day}/manifest.json")[1]) == ["held"]
    still = poll_holds(held)
    fake.set_active(VENDOR_SYNC, True)  # ... and resumed it
    resumed = poll_holds(held)
    held.pump.drain()

    assert (still["holds_released"], resumed["holds_released"]) == (0, 1)
    assert len(fake.executions(VENDOR_SYNC)) == 1
    assert hold_items(held) == []


def test_a_hold_past_its_limit_is_parked_with_the_reason_and_counted(
    held: Dispatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = held.stack.fake
    fake.set_active(VENDOR_SYNC, False)
    held.upload("vendor/2026-12-07/manifest.json")
    held.wait(7 * 86400)
    polled = poll_holds(held)
    code, answer = status(held, "vendor/2026-12-07/manifest.json", capsys)

    assert polled["holds_expired"] == 1
    parked = held.stack.client("sqs").receive_message(
        QueueUrl=held.queues.dead_letter_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    assert len(parked) == 1
    assert any('"hold_expired":[1.0]' in said for said in held.polytrigger.guard.said)  # the metric
    (line,) = [line for line in held.polytrigger.log_lines() if line.get("status") == "parked"]
    assert (line["level"], line["parked_in"]) == ("ERROR", "the dispatch dead-letter queue")
    assert (code, state(answer)) == (1, [("parked", "")])
    assert "still paused" in answer["syncs"][0]["reason"]
    assert hold_items(held) == []


def test_a_redelivered_held_file_is_held_once_and_a_crash_after_holding_loses_nothing(
    held: Dispatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polytrigger.dispatch import holds

    fake = held.stack.fake
    fake.set_active(VENDOR_SYNC, False)
    real = holds.DynamoHolds.hold

    def crash_after_holding(self: Any, *args: Any, **kwargs: Any) -> Any:
        real(self, *args, **kwargs)
        raise TimeoutError("the invocation ran out of time after the hold was written")

    file, _ = held.upload("vendor/2026-12-08/manifest.json")
    with monkeypatch.context() as crash:
        crash.setattr(holds.DynamoHolds, "hold", crash_after_holding)
        other = dict(file.event)
        other["Records"] = [json.loads(json.dumps(file.event["Records"][0]).replace("2026-12-08", "2026-12-09"))]
        with pytest.raises(TimeoutError):
            held.polytrigger.s3(other)
    again = held.polytrigger.s3(other)  # AWS delivers the event again
    replayed = held.polytrigger.s3(file.event)  # and the first one too
    fake.set_active(VENDOR_SYNC, True)
    poll_holds(held)
    held.pump.drain()

    assert statuses(again) == ["held"]
    assert statuses(replayed) == ["duplicate"]
    assert len(fake.executions(VENDOR_SYNC)) == 1  # one start for both files, nothing lost, nothing doubled
    assert hold_items(held) == []


def test_a_paused_sync_that_answers_409_is_asked_on_the_retry_and_holds_the_file(held: Dispatch) -> None:
    """What Polytomic answers a start of a paused sync is unconfirmed: a 409 reads as a running run
    at first (deferred), and the deferred retry asks the sync itself."""
    fake = held.stack.fake
    fake.set_active(VENDOR_SYNC, False)
    fake.inject(409, times=2, path_contains=f"/syncs/{VENDOR_SYNC}/executions", method="POST")
    _, answer = held.upload("vendor/2026-12-10/manifest.json")
    retried = held.pump.drain()
    fake.set_active(VENDOR_SYNC, True)
    poll_holds(held)
    held.pump.drain()

    assert statuses(answer) == ["deferred"]
    assert [o["status"] for d in retried for o in d.answer.get("outcomes", [])] == ["held"]
    assert len(fake.executions(VENDOR_SYNC)) == 1


def test_a_refusal_of_an_active_sync_is_still_parked_not_held(
    held: Dispatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, answer = held.upload("gone/x.csv")
    code, fate = status(held, "gone/x.csv", capsys)

    assert statuses(answer) == ["failed"]
    assert answer["outcomes"][0].get("parked") is True
    assert (code, state(fate)) == (1, [("parked", "")])
    assert "polytrigger redrive" in json.dumps(fate) or fate["syncs"][0]["parked_in"]


# -- every file answers for itself ---------------------------------------------------------------


def test_every_file_of_a_burst_of_200_names_the_windows_run_and_its_outcome(
    held: Dispatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [f"burst/part-{n:04d}.csv" for n in range(200)]
    answers = [held.upload(key)[1] for key in keys]
    code, waiting = status(held, keys[-1], capsys)
    held.pump.drain()
    (run,) = held.stack.fake.executions(BURST_SYNC)
    held.stack.fake.set_execution_status(run.id, "completed")
    held.polytrigger.poller()

    assert sorted({s for a in answers for s in statuses(a)}) == ["coalesced", "deferred"]
    assert (code, state(waiting)[0][0]) == (1, "waiting")
    for key in keys:
        code, answer = status(held, key, capsys)
        assert (code, answer["syncs"][0]["execution_id"], state(answer)[0][1]) == (0, run.id, "completed"), key


def test_a_file_covered_by_a_run_someone_else_started_names_that_run(
    held: Dispatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = held.stack.fake
    fake.add_run(BUSY_SYNC, datetime.fromtimestamp(held.now() - 1, UTC), run_seconds=600)  # someone's, running
    _, answer = held.upload("busy/late.csv")  # 409: a run is in progress, so the start waits
    held.wait(2)
    theirs = fake.add_run(BUSY_SYNC, datetime.fromtimestamp(held.now(), UTC), run_seconds=1, outcome="completed")
    held.wait(2)
    held.pump.drain()
    code, fate = status(held, "busy/late.csv", capsys)

    assert statuses(answer) == ["deferred"]
    assert fate["syncs"][0]["state"] == "covered"
    assert fate["syncs"][0]["execution_id"] == getattr(theirs, "id", theirs)
    assert code in (0, 1)  # completed once its ending is heard


def test_a_file_nobody_routes_says_so_with_the_closest_routes(
    held: Dispatch, capsys: pytest.CaptureFixture[str]
) -> None:
    held.upload("vendor/2026-12-05/manifest.csv")
    code, answer = status(held, "vendor/2026-12-05/manifest.csv", capsys)

    assert (code, answer["routes"], answer["syncs"]) == (1, [], [])
    assert answer["seen"] is True
    assert any("vendor-manifest" in miss for miss in answer["near_misses"])
