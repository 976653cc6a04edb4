"""Reliability, scaled down: uploads whose events were lost, found by reconciliation under duplicate
deliveries, the Scheduler's firings twice, DynamoDB throttling and a pass that crashes mid-listing."""

from __future__ import annotations

import pytest

from local.reliability.run import Row, table
from tests.integration.reliability_support import assert_nothing_lost_doubled_or_acknowledged_undone

pytestmark = pytest.mark.slow  # scenarios of `make reliability`, scaled down
GROUP = "reconciliation"  # the rows the `reliability_rows` fixture runs for this module

FAULTS = "events lost, found by reconciliation: 60 uploads, 10% of events lost, firings twice, faults"


def test_every_lost_event_is_found_and_no_run_is_made_twice(reliability_rows: list[Row]) -> None:
    assert_nothing_lost_doubled_or_acknowledged_undone(reliability_rows, (FAULTS,))
    (row,) = reliability_rows
    assert row.seen == row.expected == row.facts["lost_events"], table(reliability_rows)


def test_only_objects_whose_event_was_lost_are_found_and_every_upload_is_covered(
    reliability_by_name: dict[str, Row],
) -> None:
    facts = reliability_by_name[FAULTS].facts
    assert facts["found_with_event"] == facts["never_found"] == facts["uncovered"] == 0
    assert facts["doubled_runs"] == 0


def test_the_faults_struck_and_the_next_firing_went_on(reliability_by_name: dict[str, Row]) -> None:
    facts = reliability_by_name[FAULTS].facts
    assert facts["crashes"] == 1
    assert facts["failed_passes"] >= 1
    assert facts["batches_twice"] >= 0
