"""Reliability, scaled down: Polytomic's faults, a rotated key and a missing dedup table: nothing lost, nothing doubled."""

from __future__ import annotations

import pytest

from local.reliability.run import Row
from tests.integration.reliability_support import assert_nothing_lost_doubled_or_acknowledged_undone

pytestmark = pytest.mark.slow  # scenarios of `make reliability`, scaled down
GROUP = "faults"  # the rows the `reliability_rows` fixture runs for this module

SCENARIOS = (
    "30% transient faults",
    "30% replayed 500s",
    "500 after the run was created",
    "key rotated mid-run",
    "dedup table missing",
)


def test_nothing_is_lost_doubled_or_acknowledged_undone_in_any_scenario(reliability_rows: list[Row]) -> None:
    assert_nothing_lost_doubled_or_acknowledged_undone(reliability_rows, SCENARIOS)


def test_outage_parks_without_calling_then_redrive_starts_everything(reliability_by_name: dict[str, Row]) -> None:
    outage = reliability_by_name["dedup table missing"]
    assert f"{outage.triggers} parked, 0 calls during the outage" in outage.notes
    assert outage.seen == outage.expected
    assert outage.parked == 0  # all re-driven


def test_rotation_costs_one_refused_call_per_call_in_flight(reliability_by_name: dict[str, Row]) -> None:
    rotation = reliability_by_name["key rotated mid-run"]
    refused = int(rotation.notes.split()[0])
    assert 1 <= refused <= 2  # each event's two syncs are called at once: both may carry the old key
    assert rotation.seen == rotation.expected
