"""Reliability of joins, scaled down: each pair of upstream completions starts the joined sync exactly once."""

from __future__ import annotations

import pytest

from local.reliability.run import Row
from tests.integration.reliability_support import assert_nothing_lost_doubled_or_acknowledged_undone

pytestmark = pytest.mark.slow  # scenarios of `make reliability`, scaled down
GROUP = "joins"  # the rows the `reliability_rows` fixture runs for this module
JOINS = ("joins: pairs duplicated, reordered, concurrent, crashing",)


def test_each_pair_starts_once_though_endings_are_duplicated_reordered_concurrent_and_crash(
    reliability_rows: list[Row],
) -> None:
    assert_nothing_lost_doubled_or_acknowledged_undone(reliability_rows, JOINS)
    (row,) = reliability_rows
    facts = row.facts
    assert row.seen == row.expected == facts["pairs"] == facts["executions"] == facts["started"]
    assert facts["strays"] == 0
    assert facts["concurrent"] >= 1
    assert facts["repeated_upstream"] >= 1
    assert facts["duplicated"] >= 1
    assert all(facts[f"crash_{kind}"] >= 1 for kind in ("record", "fire", "send", "sent")), facts
    assert facts["refused"] == sum(facts[f"crash_{kind}"] for kind in ("record", "fire", "send", "sent"))
