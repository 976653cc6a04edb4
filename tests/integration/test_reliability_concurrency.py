"""Reliability, scaled down: the same trigger delivered again and again, at once, by threads and processes,
and by a holder that dies mid-call: each action starts once."""

from __future__ import annotations

import pytest

from local.reliability.run import Row
from tests.integration.reliability_support import assert_nothing_lost_doubled_or_acknowledged_undone

pytestmark = pytest.mark.slow  # scenarios of `make reliability`, scaled down
GROUP = "concurrency"  # the rows the `reliability_rows` fixture runs for this module

SCENARIOS = (
    "every trigger once",
    "each trigger delivered 3 times",
    "2 concurrent deliveries (threads)",
    "10 concurrent deliveries (threads)",
    "50 concurrent deliveries (threads)",
    "2 concurrent deliveries (processes)",
    "10 concurrent deliveries (processes)",
    "first holder dies mid-call",
)


def test_nothing_is_lost_doubled_or_acknowledged_undone_in_any_scenario(reliability_rows: list[Row]) -> None:
    assert_nothing_lost_doubled_or_acknowledged_undone(reliability_rows, SCENARIOS)


def test_duplicates_were_suppressed_not_executed(reliability_by_name: dict[str, Row]) -> None:
    again = reliability_by_name["each trigger delivered 3 times"]
    assert again.duplicates == 2 * again.expected  # two redeliveries of every action
    assert again.seen == again.expected
    for copies in (2, 10, 50):
        row = reliability_by_name[f"{copies} concurrent deliveries (threads)"]
        assert row.seen == row.expected
        assert row.duplicates >= (copies - 1) * row.expected
