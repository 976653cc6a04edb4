"""A smoke run of the gates benchmark: its rows still come out, each with a target, and the counts hold.

Benchmarks are not tests: nothing here is timed against a target (the latency row's ratio is only
checked to be a ratio). The local stack uses moto's DynamoDB (no Java needed here); `make bench`
runs on DynamoDB Local.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks import gates
from benchmarks.report import REFERENCE, Row
from local.stack import LocalStack

ROWS = (
    "gates, marker + 40 parts: gate reads per waiting object",
    "gates, marker + 40 parts: gate write requests per waiting object",
    "gates, marker + 40 parts: gate WCU per waiting object (1 transaction of 2 items: 2 WCU per KB of each)",
    "gates, marker + 40 parts: gate requests per object, whole partition (fire + settle once)",
    "gates, marker + 40 parts: the completing object's gate requests",
    "gates, marker + 40 parts: gate writes per duplicate delivery (counts nothing)",
    "gates, marker + 40 parts: gate reads per duplicate delivery",
    "gates, manifest of 40: gate requests per listed file (count, then its entry's)",
    "gates, manifest of 40: gate reads / writes per listed file",
    "gates: the completing object's own invocation answers",
    "gates: dispatch messages between the completing object and its start",
    "gates: completing object's invocation (starts the syncs) vs an ungated object's start",
    "gates: completing object's invocation, median",
)


@pytest.fixture(scope="module")
def rows() -> Iterator[list[Row]]:
    with LocalStack(dynamodb="moto") as stack:
        yield gates.rows(quick=True, stack=stack, warm_ups=0)


def test_every_gates_row_comes_out_with_a_target(rows: list[Row]) -> None:
    assert [row.name for row in rows] == list(ROWS)
    for row in rows:
        assert row.value
        assert row.target
    held = [row for row in rows if row.target != REFERENCE]
    assert len(held) == 8  # counts per object, the outcome, no polling, the latency ratio


def test_the_counts_per_object_and_the_start_in_the_completing_invocation_meet_their_targets(
    rows: list[Row],
) -> None:
    by_name = {row.name: row for row in rows}
    counted = [row for row in rows if row.target.startswith(("=", "<="))]
    assert all(row.passed for row in counted if "vs" not in row.name), counted
    assert by_name["gates: the completing object's own invocation answers"].value == "started"
    assert by_name["gates: dispatch messages between the completing object and its start"].value == "0"
    ratio = by_name["gates: completing object's invocation (starts the syncs) vs an ungated object's start"]
    assert ratio.target == f"<= {gates.LATENCY_TARGET:g}x"
    assert float(ratio.ratio.rstrip("x")) > 0  # timed, not asserted
