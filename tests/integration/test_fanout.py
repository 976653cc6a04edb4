"""Fan-out under parallelism: correctness, not timing (timings belong to `make bench`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import budget, cost, fanout, status
from local.stack import LocalStack
from tests.integration.support import Invoker

SCHEDULE = "bench-nightly"
PAUSED = tuple(fanout.sync_id(200 + n) for n in range(6))


def _routes_with_schedule(tmp_path: Path) -> Path:
    routes = tmp_path / "routes.yaml"
    syncs = "\n".join(f"      - {{id: {sid}, resync: true, activate_first: true}}" for sid in PAUSED)
    routes.write_text(
        fanout.routes_yaml() + f"  - name: nightly-many\n    schedule: {SCHEDULE}\n    syncs:\n{syncs}\n",
        encoding="utf-8",
    )
    return routes


@pytest.fixture
def many(polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Invoker:
    """The handlers with the benchmark's routes (20 syncs on one S3 route) plus paused activate_first syncs."""
    from polytrigger import bootstrap

    fake = polytrigger.stack.fake
    for sid in (*fanout.FANOUT_SYNCS, fanout.SINGLE_SYNC):
        fake.add_sync(sid, kind="model")
    for sid in PAUSED:
        fake.add_sync(sid, kind="model", active=False)
    monkeypatch.setenv("ROUTES_FILE", str(_routes_with_schedule(tmp_path)))
    monkeypatch.setenv("POLYTOMIC_CONCURRENCY", "8")  # fewer threads than syncs: the pool is reused
    bootstrap.reset()
    return polytrigger


def test_twenty_syncs_start_once_each_with_outcomes_in_action_order(many: Invoker) -> None:
    fake = many.stack.fake
    event = fanout.s3_event(f"{fanout.FANOUT_PREFIX}a.csv", "0055AED6DCD90281E5")

    answer = many.s3(event)

    assert [(o["sync_id"], o["status"]) for o in answer["outcomes"]] == [(s, "started") for s in fanout.FANOUT_SYNCS]
    starts = [c for c in fake.calls if c.method == "POST" and c.path.endswith("/executions")]
    assert sorted(c.path.split("/")[-2] for c in starts) == sorted(fanout.FANOUT_SYNCS)
    keys = [c.headers["idempotency-key"] for c in starts]
    assert len(set(keys)) == fanout.SYNCS
    records = {r["id"] for r in many.records()}
    assert len(records) == fanout.SYNCS
    assert all(f"polytrigger#{key}" in records for key in keys)
    fake.reset_calls()

    again = many.s3(event)  # a duplicate delivery, in parallel too

    assert [(o["sync_id"], o["status"]) for o in again["outcomes"]] == [(s, "duplicate") for s in fanout.FANOUT_SYNCS]
    assert fake.calls == []


def test_activate_first_start_follows_its_activate_for_every_sync(many: Invoker) -> None:
    fake = many.stack.fake

    answer = many.schedule({"schedule": SCHEDULE, "time": "2026-11-23T02:00:00Z"})

    expected = [(sid, action) for sid in PAUSED for action in ("activate", "start")]
    assert [(o["sync_id"], o["action"]) for o in answer["outcomes"]] == expected
    assert {o["status"] for o in answer["outcomes"]} == {"activated", "started"}
    for sid in PAUSED:
        per_sync = [c.path.rsplit("/", 1)[-1] for c in fake.calls if c.method == "POST" and f"/{sid}/" in c.path]
        assert per_sync == ["activate", "executions"], sid


def test_fanout_benchmark_smoke(clean: LocalStack) -> None:
    table = fanout.rows(quick=True, stack=clean)

    assert len(table) == 2
    assert all(len(row) == 6 for row in table)


def test_budget_counts_are_exactly_on_target(clean: LocalStack) -> None:
    table = budget.rows(quick=True, stack=clean)

    assert len(table) == 8
    assert all(row[5] for row in table), table
    values = {row[0]: row[3] for row in table}
    assert values["budget warm: Polytomic calls per (trigger, sync)"] == "1"
    # dedup 2 and run ledger 1 per sync: the run's item carries its place among the open runs
    assert values["budget warm: DynamoDB writes per (trigger, sync): dedup 2, run ledger 1"] == "3"
    assert values["budget warm: Secrets Manager calls per event"] == "0"
    assert values["budget warm: DynamoDB writes per landed file: its landing (was 0)"] == "1"
    assert values["budget duplicate: DynamoDB calls per (trigger, sync), beside the landing"] == "1"
    assert values["budget duplicate: Polytomic calls per (trigger, sync)"] == "0"


def test_status_reads_the_same_few_items_whatever_the_table_holds(clean: LocalStack) -> None:
    table = status.rows(quick=True, stack=clean, sizes=(50, 1_000))  # `make bench`: 1,000 and 100,000

    assert all(row[5] for row in table), table
    requests, items_large, items_small = table[0], table[1], table[2]
    assert requests[1] == requests[2] == "GetItem 2, Query 1"  # the landing, the dedup record; one index Query
    assert items_large[1] == items_small[1] == f"{status.MOST_ITEMS} ({status.MOST_ITEMS}/1)"
    assert table[5][1] == "started"  # the object's own start made the run that covers it


def test_cost_benchmark_smoke_reads_the_template(clean: LocalStack) -> None:
    table = cost.rows(quick=True, stack=clean)

    chosen = [row for row in table if row[4] == "chosen"]
    assert len(chosen) == 1
    assert f"{cost.memory_size()} MB (template)" in chosen[0][0]
    assert float(table[0][1].removesuffix(" ms")) > 0


def test_cost_arithmetic() -> None:
    parts = cost.per_million(10.0, 1769)  # a full vCPU: CPU time bills as measured
    billed_s = (cost.WAIT_MS + 10.0) / 1000
    assert parts["billed_ms"] == pytest.approx(cost.WAIT_MS + 10.0)
    assert parts["lambda"] == pytest.approx((billed_s * 1769 / 1024 * 0.0000133334 + 0.20 / 1e6) * 1e6)
    assert parts["dynamodb"] == pytest.approx(3.75)  # 6 writes x $0.625 per million

    [chosen] = [row for row in cost.to_rows(4.7, 256) if row[4] == "chosen"]
    at_256 = cost.per_million(4.7, 256)
    assert chosen[1] == f"${at_256['lambda'] + at_256['dynamodb']:.2f}"
