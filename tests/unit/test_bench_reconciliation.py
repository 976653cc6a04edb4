"""A smoke run of the reconciliation benchmark: its rows still come out, each with a target, and the
counts hold (S3 list calls per page, no DynamoDB read for an idle bucket, one batch read per 100 keys).

Benchmarks are not tests: nothing here is timed. The local stack uses moto's DynamoDB (no Java needed
here); `make bench` runs on DynamoDB Local, with 10,000 objects instead of 1,000.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks import reconciliation
from benchmarks.report import REFERENCE, Row
from local.stack import LocalStack


@pytest.fixture(scope="module")
def rows() -> Iterator[list[Row]]:
    with LocalStack(dynamodb="moto") as stack:
        yield reconciliation.rows(quick=True, stack=stack)


def test_every_reconciliation_row_comes_out_with_a_target(rows: list[Row]) -> None:
    assert len(rows) == 13
    assert all(row.name.startswith("reconciliation") and row.value and row.target for row in rows)
    held = [row for row in rows if row.target != REFERENCE]
    assert len(held) == 10


def test_the_counts_meet_the_design(rows: list[Row]) -> None:
    failed = [row for row in rows if not row.passed and "month" not in row.name]
    assert failed == []
    by_name = {row.name: row for row in rows}
    assert by_name["reconciliation, idle bucket (1,000 objects): DynamoDB reads per pass"].value == "0"


def test_the_months_cost_is_the_listing_when_1m_objects_are_reconciled_every_15_minutes() -> None:
    month = reconciliation.monthly(1, 0.01, 0.5)
    assert month["floor"] == pytest.approx(2880 * 1000 * 0.005 / 1000)  # $14.40: 1,000 LIST calls a pass
    assert month["read_requests"] == pytest.approx(2880 * 10_000 * 75 / 1440 * 0.01)
    assert month["total"] <= month["floor"] * reconciliation.COST_TARGET
