"""`polytrigger replay` on the local stack: real objects in moto's S3, DynamoDB Local, the fake Polytomic.

The dry run's plan is what the live run makes, start for start (compared at the fake Polytomic); an
interrupted replay run again makes no extra start; the starts-per-minute ceiling holds on the stack's
clock (the fake dates each run by it, and the replay's waits move it); an object a run covers is
skipped; a late event of a replayed object starts nothing; an S3 Inventory report is read as input;
bad input is one line and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.stack.dispatch_pump import StackClock
from local.stack.land import object_created
from polytrigger.tools import replay_cli
from polytrigger.tools.cli import main
from polytrigger.tools.replay import Interrupt
from tests.integration.support import ROOT, Invoker, starts

BUCKET = "replay-landing"
DAILY_MODEL = "5a0c6b1e-1d2f-4e3a-9b8c-7d6e5f4a3b21"
DAILY_BULK = "6b1d7c2f-2e3a-4f4b-8c9d-8e7f6a5b4c32"
FAN = [f"7c2e8d3a-3f4b-4a5c-9dae-{index:012d}" for index in range(10)]
ROUTES_YAML = f"""
routes:
  - name: orders-daily
    s3: {{bucket: {BUCKET}, key: "orders/{{date}}/*.csv"}}
    debounce: 5m
    syncs:
      - id: {DAILY_MODEL}
      - id: {DAILY_BULK}
        type: bulk
        fetch_mode: incremental
  - name: vendor-drops
    s3: {{bucket: {BUCKET}, key: "vendor/{{date}}/**"}}
    gate: {{marker: "vendor/{{date}}/_SUCCESS"}}
    syncs: [{{id: {DAILY_MODEL}}}]
  - name: fan-out
    s3: {{bucket: {BUCKET}, key: "fan/*.json"}}
    syncs: [{", ".join(f"{{id: {sync}}}" for sync in FAN)}]
"""
DATES = ["2026-12-01", "2026-12-02", "2026-12-03"]


@dataclass
class Replay:
    invoker: Invoker
    routes: Path
    clock: StackClock
    s3: Any

    def put(self, key: str, body: bytes = b"x") -> dict[str, Any]:
        """The object in S3; its "Object Created" event (not delivered unless the test does)."""
        return object_created(BUCKET, key, body, self.invoker.stack.region)

    def args(self, *argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        replay_cli.register(parser.add_subparsers(dest="command"))
        return parser.parse_args(["replay", "--routes", str(self.routes), *argv])

    def plan(self, *argv: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
        capsys.readouterr()  # what the handlers logged before
        code = main(["replay", "--routes", str(self.routes), "--dry-run", "--json", *argv])
        out = capsys.readouterr().out
        assert code in (0, 1), out
        document: dict[str, Any] = json.loads(out)
        return document

    def live(self, *argv: str, capsys: pytest.CaptureFixture[str], interrupt: Interrupt | None = None) -> Any:
        capsys.readouterr()
        code = replay_cli.run(self.args("--json", *argv), interrupt=interrupt)
        return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def replay(polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Replay]:
    from polytrigger import bootstrap

    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES_YAML, encoding="utf-8")
    monkeypatch.setenv("ROUTES_FILE", str(routes))  # restored after the test: the live run sets it
    monkeypatch.setenv("IDEMPOTENCY_TABLE", polytrigger.stack.table_name)
    fake = polytrigger.stack.fake
    for sync in (DAILY_MODEL, *FAN):
        fake.add_sync(sync, kind="model")
    fake.add_sync(DAILY_BULK, kind="bulk")
    s3 = polytrigger.stack.client("s3")
    with contextlib.suppress(s3.exceptions.NoSuchBucket):  # moto keeps S3 between tests: start empty
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for entry in page.get("Contents", []):
                s3.delete_object(Bucket=BUCKET, Key=entry["Key"])
    clock = StackClock(fake)
    bootstrap.use_clock(clock.now, clock.sleep)
    try:
        yield Replay(polytrigger, routes, clock, s3)
    finally:
        bootstrap.use_clock()


def land_days(replay: Replay, per_day: int = 3) -> list[str]:
    keys = [f"orders/{day}/part-{index}.csv" for day in DATES for index in range(per_day)]
    for key in keys:
        replay.put(key)
    return keys


def made(fake: Any) -> list[tuple[str, str]]:
    """(sync id, Idempotency-Key) of every run the fake made, sorted."""
    return sorted((run.sync_id, run.idempotency_key or "") for run in fake.executions())


def planned(plan: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((start["sync_id"], start["idempotency_key"]) for start in plan["starts"])


def test_the_live_replay_makes_exactly_the_plan_its_dry_run_printed(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    land_days(replay)
    replay.put("orders/2026-12-01/notes.txt")  # not a CSV: no route matches it
    plan = replay.plan("--route", "orders-daily", capsys=capsys)
    assert plan["listed"] == 10
    assert plan["matched"] == 9
    assert [p["partition"] for p in plan["partitions"]] == [f"date={day}" for day in DATES]
    assert planned(plan) != []
    assert len(plan["starts"]) == 2
    assert all(start["objects"] == 9 for start in plan["starts"])
    fake = replay.invoker.stack.fake
    assert starts(fake) == []  # the dry run called nothing

    code, result = replay.live("--route", "orders-daily", capsys=capsys)

    assert code == 0, result
    assert made(fake) == planned(plan)
    assert [o["status"] for o in result["outcomes"]] == ["started", "started"]
    again = replay.plan("--route", "orders-daily", capsys=capsys)
    assert again["starts"] == []
    assert again["skipped_by_reason"] == {"covered": 18}


def test_a_partition_range_and_a_date_range_narrow_the_objects(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    land_days(replay)
    plan = replay.plan("--route", "orders-daily", "--partition", "date=2026-12-02..2026-12-03", capsys=capsys)
    assert plan["matched"] == 6
    assert [p["partition"] for p in plan["partitions"]] == ["date=2026-12-02", "date=2026-12-03"]
    later = replay.plan("s3://replay-landing/orders/", "--since", "2099-01-01", capsys=capsys)
    assert later["matched"] == 0
    assert later["starts"] == []


def test_a_gated_route_starts_once_per_partition(replay: Replay, capsys: pytest.CaptureFixture[str]) -> None:
    for day in DATES[:2]:
        for name in ("a.parquet", "b.parquet", "_SUCCESS"):
            replay.put(f"vendor/{day}/{name}")
    plan = replay.plan("--route", "vendor-drops", capsys=capsys)
    assert [(s["partition"], s["objects"]) for s in plan["starts"]] == [("date=2026-12-01", 3), ("date=2026-12-02", 3)]

    code, _ = replay.live("--route", "vendor-drops", capsys=capsys)

    assert code == 0
    assert made(replay.invoker.stack.fake) == planned(plan)


def test_an_interrupted_replay_run_again_makes_no_extra_start(
    replay: Replay, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(3):
        replay.put(f"fan/{index}.json")
    plan = replay.plan("--route", "fan-out", capsys=capsys)
    assert len(plan["starts"]) == 10
    interrupt = Interrupt()
    made_before = replay_cli.FlowStarter.start

    def start_then_ctrl_c(self: Any, start: Any) -> Any:
        outcome = made_before(self, start)
        if len(starts(replay.invoker.stack.fake)) == 4:
            interrupt.request()  # Ctrl-C during the fourth start: the run stops after it
        return outcome

    monkeypatch.setattr(replay_cli.FlowStarter, "start", start_then_ctrl_c)
    code, first = replay.live("--route", "fan-out", capsys=capsys, interrupt=interrupt)
    assert code == replay_cli.INTERRUPTED
    assert first["interrupted"]
    assert first["not_made"] == 6

    def crash_after_the_call(self: Any, start: Any) -> Any:
        made_before(self, start)
        raise KeyboardInterrupt  # a second Ctrl-C with no handler: the start is made, nothing after it ran

    monkeypatch.setattr(replay_cli.FlowStarter, "start", crash_after_the_call)
    code, _second = replay.live("--route", "fan-out", capsys=capsys, interrupt=Interrupt())
    assert code == replay_cli.INTERRUPTED
    assert len(starts(replay.invoker.stack.fake)) == 5

    monkeypatch.setattr(replay_cli.FlowStarter, "start", made_before)
    code, last = replay.live("--route", "fan-out", capsys=capsys)
    assert code == 0, last
    assert len(last["outcomes"]) == 5
    assert made(replay.invoker.stack.fake) == planned(plan)  # every planned start once, none twice
    done = replay.plan("--route", "fan-out", capsys=capsys)
    assert done["starts"] == []
    assert done["skipped_by_reason"] == {"covered": 30}


def test_ctrl_c_in_a_terminal_stops_the_command_after_its_start_and_a_rerun_finishes_the_plan(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    replay.put("fan/0.json")
    plan = replay.plan("--route", "fan-out", capsys=capsys)
    fake = replay.invoker.stack.fake
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT}"}
    command = [sys.executable, "-m", "polytrigger", "replay", "--routes", str(replay.routes), "--route", "fan-out"]
    process = subprocess.Popen([*command, "--rate", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(600):  # its first start made, it waits a minute for the next
            if starts(fake) or process.poll() is not None:
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == replay_cli.INTERRUPTED, err
    assert b"stopping after the current start" in err
    assert b"Traceback" not in err
    assert b"interrupted with 9 start(s) not made" in out
    assert len(starts(fake)) == 1
    code, _ = replay.live("--route", "fan-out", capsys=capsys)
    assert code == 0
    assert made(fake) == planned(plan)


def test_the_starts_per_minute_ceiling_holds_at_the_fake(replay: Replay, capsys: pytest.CaptureFixture[str]) -> None:
    replay.put("fan/0.json")
    code, result = replay.live("--route", "fan-out", "--rate", "4", capsys=capsys)
    assert code == 0
    assert len(result["outcomes"]) == 10
    created = sorted(run.created_seconds for run in replay.invoker.stack.fake.executions())
    assert len(created) == 10
    busiest = max(sum(1 for other in created if first <= other < first + 60) for first in created)
    assert busiest == 4  # no minute of the stack's clock holds more than four starts
    assert created[-1] - created[0] >= 9 * 15 - 1  # spaced, not bunched: the waits moved the clock


def test_an_object_a_run_covers_is_skipped(replay: Replay, capsys: pytest.CaptureFixture[str]) -> None:
    for index in range(2):
        replay.invoker.s3(replay.put(f"fan/{index}.json"))  # their events started every sync
    assert len(starts(replay.invoker.stack.fake)) == 20
    time.sleep(1.1)  # S3 dates objects in whole seconds: the next one lands after the runs were created
    replay.put("fan/late.json")  # no event came for this one
    plan = replay.plan("--route", "fan-out", capsys=capsys)
    assert plan["skipped_by_reason"] == {"covered": 20}
    assert [start["objects"] for start in plan["starts"]] == [1] * 10
    assert {start["newest"] for start in plan["starts"]} == {f"s3://{BUCKET}/fan/late.json"}


def test_a_late_event_of_a_replayed_object_starts_nothing(replay: Replay, capsys: pytest.CaptureFixture[str]) -> None:
    event = replay.put("orders/2026-12-01/late.csv")
    code, _ = replay.live("--route", "orders-daily", capsys=capsys)
    assert code == 0
    fake = replay.invoker.stack.fake
    assert len(starts(fake)) == 2
    answer = replay.invoker.s3(event)  # the event arrives at last
    assert answer["outcomes"] == []
    assert len(starts(fake)) == 2
    capsys.readouterr()
    main(["status", f"s3://{BUCKET}/orders/2026-12-01/late.csv", "--routes", str(replay.routes)])
    assert "(found by polytrigger replay)" in capsys.readouterr().out  # the file says how it reached us


def test_a_start_that_meets_a_running_run_waits_on_the_dispatch_queue_and_is_not_made_again(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = replay.invoker.stack.fake
    fake.add_sync(FAN[0], kind="model", run_seconds=3600)
    fake.add_run(FAN[0], created=replay.clock.now())  # a run in progress that started before the object landed
    replay.put("fan/0.json")
    code, result = replay.live("--route", "fan-out", capsys=capsys)
    assert code == 0, result  # deferred, as the functions answer it: not a failure
    assert {o["sync_id"]: o["status"] for o in result["outcomes"]}[FAN[0]] == "deferred"
    again = replay.plan("--route", "fan-out", capsys=capsys)
    assert again["starts"] == []
    assert again["skipped_by_reason"] == {"covered": 9, "deferred": 1}  # its start waits on the queue


def test_the_plan_is_printed_for_people(replay: Replay, capsys: pytest.CaptureFixture[str]) -> None:
    land_days(replay, per_day=1)
    code = main(["replay", "--routes", str(replay.routes), "--route", "orders-daily", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == ("replay plan: 3 object(s) listed, 3 matched, 3 partition(s); 2 start(s) to make")
    assert "  orders-daily: date=2026-12-02" in out
    assert f"start model sync {DAILY_MODEL} (route orders-daily) for 3 object(s)" in out


def test_the_live_run_ends_with_one_summary_line(replay: Replay, capsys: pytest.CaptureFixture[str]) -> None:
    land_days(replay, per_day=1)
    capsys.readouterr()
    code = main(["replay", "--routes", str(replay.routes), "--route", "orders-daily"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert lines[-1] == ("replay: 3 object(s) matched, 3 partition(s); 2 start(s) planned: 2 started")
    assert all(line.endswith(")") and " -> started (" in line for line in lines[:-1])


def test_an_inventory_report_is_read_as_input(replay: Replay, capsys: pytest.CaptureFixture[str]) -> None:
    keys = land_days(replay, per_day=1)
    listing = replay.s3.list_objects_v2(Bucket=BUCKET, Prefix="orders/")["Contents"]
    rows = io.StringIO()
    writer = csv.writer(rows)
    for entry in listing:
        modified = entry["LastModified"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
        writer.writerow([BUCKET, entry["Key"], entry["Size"], modified, entry["ETag"].strip('"')])
    writer.writerow([BUCKET, "orders/2026-12-04/gone.csv", "1", "2026-12-04T00:00:00.000Z", "00"])  # since deleted
    data = gzip.compress(rows.getvalue().encode())
    replay.s3.put_object(Bucket=BUCKET, Key="inventory/data/part-0.csv.gz", Body=data)
    manifest = {
        "sourceBucket": BUCKET,
        "destinationBucket": f"arn:aws:s3:::{BUCKET}",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": [
            {"key": "inventory/data/part-0.csv.gz", "MD5checksum": hashlib.md5(data, usedforsecurity=False).hexdigest()}
        ],
    }
    replay.s3.put_object(Bucket=BUCKET, Key="inventory/manifest.json", Body=json.dumps(manifest).encode())
    plan = replay.plan(
        "--inventory", f"s3://{BUCKET}/inventory/manifest.json", "--route", "orders-daily", capsys=capsys
    )
    assert plan["matched"] == len(keys) + 1
    assert [p["partition"] for p in plan["partitions"]] == [f"date={day}" for day in [*DATES, "2026-12-04"]]
    code, _ = replay.live("--inventory", f"s3://{BUCKET}/inventory/manifest.json", capsys=capsys)
    assert code == 0
    assert made(replay.invoker.stack.fake) == planned(plan)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--route", "orders-dayly"], "no route is named 'orders-dayly'; did you mean orders-daily?"),
        (["--route", "orders-daily", "--since", "yesterday"], "--since must be an ISO date or time"),
        (["s3:/replay-landing/orders"], "not an S3 URL"),
        (["--route", "fan-out", "--partition", "date=2026-12-01"], "no chosen route's glob has a {date} placeholder"),
        ([], "give --route NAME, s3://BUCKET/PREFIX or --inventory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    replay: Replay, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    code = main(["replay", "--routes", str(replay.routes), "--dry-run", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert said in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
