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
    "run outcomes, a page of other events, then an ending",
    "run outcomes, events newest first, 5,000 in a burst",
    "run outcomes, bus and queue down mid-fan-out",
    "run outcomes, 10,000 freshness promises on one route",
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


def test_the_poller_reads_on_past_a_page_of_other_events_and_tells_each_ending_itself(
    reliability_by_name: dict[str, Row],
) -> None:
    row = reliability_by_name["run outcomes, a page of other events, then an ending"]
    facts = row.facts
    assert facts["other_events"] > 100  # more than a page, 150 of them at one instant
    assert facts["cursor_past"] == 1  # the cursor moved past them, to the last ending
    assert facts["runs"] == 2 * row.triggers
    assert facts["poller"] == facts["told"] == facts["metrics"] == facts["runs"]  # none left to a lookup
    assert (facts["webhook"], facts["reconciliation"], facts["lookups"]) == (0, 0, 0)
    assert (facts["unknown"], facts["wrong"], facts["untold"], facts["open"]) == (0, 0, 0, 0)
    assert row.told_wrong == 0


def test_a_burst_read_newest_first_loses_no_ending(reliability_by_name: dict[str, Row]) -> None:
    row = reliability_by_name["run outcomes, events newest first, 5,000 in a burst"]
    facts = row.facts
    assert facts["runs"] == 2 * row.triggers
    assert facts["events"] == 2 * facts["runs"]  # a running event and an ending each
    assert facts["poller"] == facts["told"] == facts["metrics"] == facts["runs"]  # none skipped
    assert (facts["reconciliation"], facts["lookups"]) == (0, 0)
    assert (facts["unknown"], facts["wrong"], facts["untold"], facts["open"]) == (0, 0, 0, 0)
    assert row.told_wrong == 0


def test_with_the_bus_and_queue_down_for_a_while_every_event_reaches_the_bus_once_and_every_chain_starts_once(
    reliability_by_name: dict[str, Row],
) -> None:
    row = reliability_by_name["run outcomes, bus and queue down mid-fan-out"]
    facts = row.facts
    assert facts["retried"] >= 1  # answered 503 during the outage: Polytomic tried again
    assert facts["given_up"] >= 1  # and gave up: only the poller can hand those on
    assert facts["chains_down"] >= 1  # an ending that sets off a chained start among them
    assert facts["on_bus"] == facts["events"] > 0
    assert (facts["bus_missing"], facts["bus_twice"]) == (0, 0)  # every event on the bus once
    assert (facts["chained_lost"], facts["chained_doubled"]) == (0, 0)  # every chained start once
    assert facts["chained_starts"] >= 1
    assert facts["runs"] == 2 * row.triggers + facts["chained_starts"]
    assert facts["told"] == facts["metrics"] == facts["runs"]  # every ending told once
    assert (facts["unknown"], facts["wrong"], facts["untold"], facts["open"]) == (0, 0, 0, 0)
    assert row.told_wrong == 0
    assert row.parked == facts["polls_failed"] == 1  # the poll in the stretch, parked by Lambda with its error


def test_promises_are_each_checked_when_due_breaches_told_once_and_no_item_grows(
    reliability_by_name: dict[str, Row],
) -> None:
    row = reliability_by_name["run outcomes, 10,000 freshness promises on one route"]
    facts = row.facts
    assert facts["promises"] == 2 * row.triggers  # one per file and sync, all pending at once
    assert facts["kept"] + facts["breaches"] == facts["promises"]  # each checked once
    assert facts["breaches"] == facts["breaches_due"] >= 1  # the last wave's, and no other
    assert (facts["checked_late"], facts["left"]) == (0, 0)  # each at the first poll after it fell due
    assert facts["biggest_item"] <= 64 * 1024
    assert facts["told"] == facts["metrics"] == facts["runs"]
    assert row.told_wrong == 0  # every breach due told once, none other
