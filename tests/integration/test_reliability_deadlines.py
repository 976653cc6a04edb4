"""Reliability, scaled down: arrival deadlines across weekdays, data on time, late or never, the poller every
minute, the Scheduler's firings delivered twice and DynamoDB throttling on the deadline book."""

from __future__ import annotations

import pytest

from local.reliability.run import Row, table
from tests.integration.reliability_support import assert_nothing_lost_doubled_or_acknowledged_undone

pytestmark = pytest.mark.slow  # scenarios of `make reliability`, scaled down
GROUP = "deadlines"  # the rows the `reliability_rows` fixture runs for this module

FAULTS = "deadlines: 3 weekdays x 4 routes, on time / late / never, firings twice, DynamoDB faults"


def test_no_report_is_lost_doubled_or_made_for_the_wrong_day(reliability_rows: list[Row]) -> None:
    assert_nothing_lost_doubled_or_acknowledged_undone(reliability_rows, (FAULTS,))
    (row,) = reliability_rows
    assert row.told_wrong == 0, table(reliability_rows)
    assert row.seen == row.expected == row.facts["late"] * 2 + row.facts["never"], table(reliability_rows)


def test_every_late_or_never_day_is_reported_missed_exactly_once_and_no_day_on_time(
    reliability_by_name: dict[str, Row],
) -> None:
    facts = reliability_by_name[FAULTS].facts
    assert min(facts["on_time"], facts["late"], facts["never"]) >= 1  # every fate is tried
    assert facts["missed_reports"] == facts["missed_pairs"] == facts["late"] + facts["never"]
    assert facts["missed_on_time"] == 0
    assert facts["missed_metric"] == facts["missed_reports"]  # metric `deadline_missed` once per missed day


def test_every_late_day_is_reported_arrived_late_exactly_once_and_no_day_that_never_came(
    reliability_by_name: dict[str, Row],
) -> None:
    facts = reliability_by_name[FAULTS].facts
    assert facts["late_reports"] == facts["late_pairs"] == facts["late"]
    assert facts["late_for_never"] == 0
    assert facts["late_metric"] == facts["late"]


def test_throttled_polls_and_firings_fail_and_are_simply_run_again(reliability_by_name: dict[str, Row]) -> None:
    row = reliability_by_name[FAULTS]
    facts = row.facts
    assert facts["throttled"] > 0
    assert facts["failed_polls"] > 0  # the next minute's poll does their work
    assert row.duplicates == facts["route_days"]  # each day's firing of each route delivered twice
    assert facts["landed"] == facts["on_time"] + facts["late"]
