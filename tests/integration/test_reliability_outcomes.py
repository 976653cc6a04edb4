"""Reliability, scaled down: every run's ending known, and told once, however it comes."""

from __future__ import annotations

import pytest

from local.reliability.run import Row
from tests.integration.reliability_support import assert_nothing_lost_doubled_or_acknowledged_undone

pytestmark = pytest.mark.slow  # scenarios of `make reliability`, scaled down
GROUP = "outcomes"  # the rows the `reliability_rows` fixture runs for this module

OUTCOMES = (
    "run outcomes, webhook 30% dropped and 30% duplicated",
    "run outcomes, no webhook and events aged out",
)


def test_nothing_is_lost_doubled_or_acknowledged_undone_in_any_scenario(reliability_rows: list[Row]) -> None:
    assert_nothing_lost_doubled_or_acknowledged_undone(reliability_rows, OUTCOMES)
    assert [row.told_wrong for row in reliability_rows] == [0] * len(OUTCOMES)  # every ending told once


def test_every_run_ending_is_known_and_told_once_though_the_webhook_drops_and_duplicates(
    reliability_by_name: dict[str, Row],
) -> None:
    lossy = reliability_by_name["run outcomes, webhook 30% dropped and 30% duplicated"]
    facts = lossy.facts
    # each file's two runs, and the chained runs the completed runs of the followed sync started
    assert facts["runs"] == 2 * lossy.triggers + facts["chained_starts"]
    assert facts["chained_starts"] >= 1
    assert facts["chain_endings"] >= 1
    assert (facts["chained_lost"], facts["chained_doubled"]) == (0, 0)  # every chained start exactly once
    assert (facts["unknown"], facts["wrong"], facts["untold"], facts["open"]) == (0, 0, 0, 0)
    assert facts["told"] == facts["metrics"] == facts["runs"]  # one line and one metric per ending
    assert facts["webhook"] + facts["poller"] + facts["reconciliation"] == facts["runs"]
    assert facts["webhook"] >= 1
    assert facts["poller"] >= 1  # the endings the webhook dropped
    assert facts["dropped"] >= 1
    assert facts["duplicated"] >= 1
    assert lossy.duplicates == facts["duplicated"]  # each second copy answered 2xx, and settled nothing
    assert facts["refused"] == 0
    assert all(
        facts[f"outcome_{status}"] >= 1 for status in ("completed", "completed_with_errors", "failed", "canceled")
    )
    assert lossy.parked == 0


def test_runs_whose_events_aged_out_are_each_settled_by_reconciliation(reliability_by_name: dict[str, Row]) -> None:
    aged = reliability_by_name["run outcomes, no webhook and events aged out"]
    facts = aged.facts
    assert facts["events_left"] == 0
    assert facts["runs"] == aged.expected == aged.seen
    assert facts["reconciliation"] == facts["lookups"] == facts["runs"]
    assert facts["webhook"] == facts["poller"] == 0
    assert facts["polls"] == 1  # no fixed number a poll: every run due is looked up while the poll has time
    assert (facts["unknown"], facts["wrong"], facts["untold"], facts["open"]) == (0, 0, 0, 0)
    assert facts["told"] == facts["metrics"] == facts["runs"]
