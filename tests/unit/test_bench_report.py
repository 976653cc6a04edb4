"""The benchmarks' one table: how a row's figures are written and printed (benchmarks/report.py)."""

from __future__ import annotations

import pytest

from benchmarks import report
from benchmarks.report import Row


def test_a_count_per_unit_is_held_to_equality_or_a_ceiling() -> None:
    assert report.per_unit("calls", 10, 10, 1) == Row("calls", "1 (10/10)", "1", "1", "= 1", True)
    assert report.per_unit("writes", 30, 10, 0).passed is False
    assert report.per_unit("pages", 25, 10, 3, at_most=True) == Row("pages", "2.5 (25/10)", "3", "2.5", "<= 3", True)
    assert report.per_unit("pages", 31, 10, 3, at_most=True).passed is False


def test_a_count_per_unit_may_be_judged_by_what_its_target_allows_for() -> None:
    """A write once per shard, not per sync: the figure shows 4.4, the target reads <= 4, the budget holds."""
    row = report.per_unit("writes", 88, 20, 4, at_most=True, passed=88 <= 4 * 20 + 8)

    assert row == Row("writes", "4.4 (88/20)", "4", "4.4", "<= 4", True)


def test_rounds_against_a_baseline_take_the_median_of_the_rounds_ratios() -> None:
    # Rounds' ratios 2, 1, 5: their median is 2; the ratio of the medians (3 / 2) would be 1.5.
    samples, baselines = [0.002, 0.003, 0.010], [0.001, 0.003, 0.002]

    assert report.median_ratio(samples, baselines) == pytest.approx(2.0)
    assert report.against("x", samples, baselines, "(floor)", 2.5) == Row(
        "x", "3 ms", "2 ms (floor)", "2.00x", "<= 2.5x", True
    )
    assert report.against("x", samples, baselines, "(floor)", 1.25) == Row(
        "x", "3 ms", "2 ms (floor)", "2.00x", "<= 1.25x", False
    )
    assert report.against("x", samples, baselines, "(floor)").target == "reference"
    assert report.against("x", samples, baselines, "(floor)", "reference (off)")[4:] == ("reference (off)", True)


def test_a_reference_row_has_nothing_to_miss() -> None:
    assert report.reference("cpu", "9.9 ms", "measured") == Row("cpu", "9.9 ms", "measured", "-", "reference", True)
    assert report.ms(0.00931, 1) == "9.3 ms"
    assert report.count(170, 10) == "17 (170/10)"


def test_the_table_aligns_its_columns_and_says_which_figures_failed(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        Row("a", "1 ms", "2 ms", "0.50x", "<= 1x", True),
        Row("longer name", "3 ms", "1 ms", "3.00x", "<= 1x", False),
    ]

    assert report.show(rows) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(" | ") == ["figure     ", "value", "baseline", "ratio", "target", "pass"]
    assert set(lines[1]) == {"-", "+"}
    assert lines[2] == "a           | 1 ms  | 2 ms     | 0.50x | <= 1x  | pass"
    assert lines[3] == "longer name | 3 ms  | 1 ms     | 3.00x | <= 1x  | FAIL"
    assert report.status(rows[:1]) == 0


def test_every_benchmark_takes_quick_under_its_module_name() -> None:
    parser = report.arguments("benchmarks.example", "what it measures", "a smoke run")

    assert parser.prog == "python -m benchmarks.example"
    assert parser.parse_args(["--quick"]).quick is True
    assert parser.parse_args([]).quick is False
