"""The table every benchmark prints: one row per figure, each against a baseline from the same run.

One place for a row's columns, the ways a figure is written (milliseconds, a count per unit, a
median of rounds against a baseline measured in the same rounds) and the printing, so that
`make bench` (benchmarks/run.py) and each benchmark's own `python -m benchmarks.<name>` print the
same table, and a new benchmark writes only what it measures.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from typing import NamedTuple

REFERENCE = "reference"  # the target of a figure shown for comparison: nothing to miss
HEADER = ("figure", "value", "baseline", "ratio", "target", "pass")


class Row(NamedTuple):
    """One figure: what it is, its value, the baseline it is read against, their ratio, its target."""

    name: str
    value: str
    baseline: str
    ratio: str
    target: str
    passed: bool


def ms(seconds: float, digits: int = 0) -> str:
    """Seconds as milliseconds, the unit every timed row prints."""
    return f"{seconds * 1000:.{digits}f} ms"


def count(total: int, units: int) -> str:
    """A count per unit with what it was counted from: `1.2 (24/20)`."""
    return f"{total / units:g} ({total}/{units})"


def reference(name: str, value: str, baseline: str, ratio: str = "-", target: str = REFERENCE) -> Row:
    """A figure shown for comparison, with no target to miss."""
    return Row(name, value, baseline, ratio, target, True)


def median_ratio(samples: Sequence[float], baselines: Sequence[float]) -> float:
    """The median of the rounds' own ratios, not a ratio of medians: a round's runs share the
    machine's momentary load, so each round's ratio is fair even when the shared machine is not."""
    return statistics.median(sample / base for sample, base in zip(samples, baselines, strict=True))


def against(
    name: str, samples: Sequence[float], baselines: Sequence[float], baseline: str, target: float | str = REFERENCE
) -> Row:
    """Seconds measured in rounds against a baseline measured in the same rounds.

    Value and baseline are medians in milliseconds (`baseline` says what the baseline is); the
    ratio is `median_ratio`. A number as `target` is the ratio's ceiling; text makes it a reference.
    """
    ratio = median_ratio(samples, baselines)
    text, passed = (target, True) if isinstance(target, str) else (f"<= {target:g}x", ratio <= target)
    return Row(
        name,
        ms(statistics.median(samples)),
        f"{ms(statistics.median(baselines))} {baseline}",
        f"{ratio:.2f}x",
        text,
        passed,
    )


def per_unit(
    name: str, total: int, units: int, limit: int, *, at_most: bool = False, passed: bool | None = None
) -> Row:
    """A count over what it is counted per (syncs, polls, events) against `= limit` or `<= limit`.

    `passed` overrides the comparison where the target allows for what a per-unit figure cannot
    show (a write that happens once per shard, not per sync).
    """
    value = total / units
    if passed is None:
        passed = value <= limit if at_most else value == limit
    return Row(name, count(total, units), f"{limit}", f"{value:g}", f"{'<=' if at_most else '='} {limit}", passed)


def render(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table under HEADER."""
    lines = [HEADER] + [(*row[:5], "pass" if row.passed else "FAIL") for row in rows]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(HEADER))]
    out = [" | ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def status(rows: Sequence[Row]) -> int:
    """The exit status of a benchmark: 0 when every figure met its target."""
    return 0 if all(row.passed for row in rows) else 1


def show(rows: Sequence[Row]) -> int:
    """Print the table; the exit status says whether every figure met its target."""
    print(render(rows))
    return status(rows)


def arguments(module: str, description: str | None, quick: str) -> argparse.ArgumentParser:
    """The command line every benchmark's `main` starts from: `python -m <module> [--quick]`."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser
