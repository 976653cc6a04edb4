"""Smoke runs of the run-outcome benchmark: its parts still measure, and what is counted, not timed, is right.

Benchmarks are not tests: nothing here is timed against a target. The local stack uses moto's
DynamoDB (no Java needed here); `make bench` runs on DynamoDB Local.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks import outcomes
from local.stack import LocalStack


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(dynamodb="moto") as local:
        yield local


def test_an_idle_poll_costs_one_polytomic_call_and_no_write(stack: LocalStack) -> None:
    idle = outcomes.quiet_polls(stack, "idle", 2)

    assert (idle["polytomic"], idle["writes"], idle["ended"]) == (2, 0, 0)
    assert idle["reads"] >= 2  # the cursor at least, each poll


def test_a_poll_after_runs_ended_settles_nothing_again(stack: LocalStack) -> None:
    ended = outcomes.quiet_polls(stack, "ended", 1, ended=1)  # the benchmark ends 5 events' runs; one shows it

    assert ended["ended"] == 0  # read again, settled once already
    assert ended["polytomic"] >= 1


def test_promises_pending_cost_no_read_and_no_write_until_due_then_a_delete_each(stack: LocalStack) -> None:
    idle = outcomes.quiet_polls(stack, "idle", 1)
    figures = outcomes.promise_polls(stack, outcomes.QUICK_PENDING, 1)  # the quick mode's 500

    quiet, due = figures["quiet"], figures["due"]
    assert (quiet["reads"], quiet["writes"], quiet["checked"]) == (idle["reads"], 0, 0)  # as if none were pending
    assert (due["writes"], due["checked"]) == (outcomes.DUE, outcomes.DUE)  # one delete for each promise due
    assert due["reads"] == idle["reads"]  # the same index queries: the due items come in their pages
    rows = outcomes.promise_rows(idle["reads"], figures, outcomes.QUICK_PENDING, 1)
    assert all(row.passed for row in rows), rows


def test_warm_deliveries_are_each_settled_and_timed(stack: LocalStack) -> None:
    through, alone = outcomes.warm_webhook(stack, 3, 1)

    assert len(through) == len(alone) == 3
    assert all(seconds > 0 for seconds in through + alone)


def test_the_webhook_cold_start_builds_its_container_without_the_network() -> None:
    floor, webhook = outcomes.cold_webhook(1)

    assert floor[0] > 0
    assert webhook[0] > 0


def test_percentiles_and_the_overlap_rows_ceiling() -> None:
    samples = [float(n) for n in range(1, 101)]

    assert outcomes.percentile(samples, 0.5) == pytest.approx(50.5)
    assert outcomes.percentile(samples, 0.99) == pytest.approx(99.01)
    assert outcomes.percentile([7.0], 0.99) == 7.0
    # 100 endings: 200 events to read again, two pages, then the one call of a quiet poll.
    row = outcomes.overlap_calls(100, 30, 10)
    assert row[1:] == ("3 (30/10)", "3", "3", "<= 3", True)
    assert outcomes.overlap_calls(100, 31, 10).passed is False
