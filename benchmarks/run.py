"""`make bench`: every performance figure in one table, each against a baseline measured in the same run.

Benchmarks are not tests: nothing here is asserted in `make test` (a smoke run only checks that
each benchmark still produces its rows). Figures depend on the machine; docs/performance.md
records them with the machine they came from.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence

from benchmarks.report import Row, render

# Each module exposes rows(quick) -> list[Row] (benchmarks/report.py).
MODULES = (
    "benchmarks.coldstart",
    "benchmarks.fanout",
    "benchmarks.budget",
    "benchmarks.matching",
    "benchmarks.memory",
    "benchmarks.cost",
    "benchmarks.outcomes",
    "benchmarks.status",
    "benchmarks.gates",
    "benchmarks.reconciliation",
    "benchmarks.intake",
)


def collect(quick: bool, only: Sequence[str] = ()) -> list[Row]:
    rows: list[Row] = []
    for name in MODULES:
        if only and not any(part in name for part in only):
            continue
        module = importlib.import_module(name)
        rows.extend(module.rows(quick))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repetition each: a smoke run, not figures")
    parser.add_argument("only", nargs="*", help="run only benchmarks whose module name contains one of these")
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = collect(args.quick, args.only)
    print(render(rows))
    failed = [row.name for row in rows if not row.passed]
    print(f"\n{len(rows)} figures in {time.monotonic() - started:.0f} s; {len(failed)} below target")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
