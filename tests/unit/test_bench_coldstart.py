"""Smoke runs of the cold-start and memory benchmarks (one repetition): rows come out, values are positive.

Benchmarks are not tests: nothing here is timed against a target.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from benchmarks import coldstart, memory
from benchmarks.report import Row


def _number(cell: str) -> float:
    match = re.match(r"[<=\s]*([0-9.]+)", cell)
    assert match is not None, cell
    return float(match.group(1))


def _check(rows: list[Row], count: int) -> None:
    assert len(rows) == count
    for name, value, baseline, ratio, target, passed in rows:
        assert name
        assert target
        assert isinstance(passed, bool)
        assert _number(value) > 0
        assert _number(baseline) > 0
        assert _number(ratio) > 0


def test_coldstart_quick_produces_one_row_per_handler_and_the_references() -> None:
    rows = coldstart.rows(quick=True)

    _check(rows, len(coldstart.HANDLERS) + 2)
    assert [row[0].split()[2] for row in rows[:4]] == ["s3", "schedule", "dispatcher", "s3"]
    assert "Tracing: Active" in rows[3][0]
    assert rows[4][0].startswith("floor with the collector paused")
    assert rows[3][5] is True  # references, not targets
    assert rows[4][5] is True


def test_handlers_run_from_the_shipped_package() -> None:
    package = coldstart.package()
    _, stdout, _ = coldstart.run_child(
        coldstart.handler_code("polytrigger.handlers.s3")
        + "import sys, polytrigger\nprint(polytrigger.__file__)\nprint('yaml' in sys.modules)\n"
    )
    where, yaml_loaded = stdout.split()
    assert where.startswith(str(package))
    assert yaml_loaded == "False"  # the routes came from the build's pre-validated cache


def test_traced_reference_loads_the_x_ray_sdk() -> None:
    _, stdout, _ = coldstart.run_child(
        coldstart.handler_code("polytrigger.handlers.s3") + "import sys\nprint('aws_xray_sdk' in sys.modules)\n",
        env=coldstart.traced_env(),
    )
    assert stdout.strip() == "True"


def test_cold_start_makes_no_network_call_and_the_guard_works() -> None:
    coldstart.run_child(coldstart.handler_code("polytrigger.handlers.s3"))  # the guard is in every child
    with pytest.raises(RuntimeError, match="network access during cold start"):
        coldstart.run_child("import socket\nsocket.create_connection(('127.0.0.1', 9))\n")


def test_import_costs_are_beyond_the_floor_and_largest_first() -> None:
    costs = coldstart.import_costs(top=500)

    names = {name for _, name in costs}
    assert "polytrigger.handlers.s3" in names
    assert "boto3" not in names  # the floor imports it
    assert [micros for micros, _ in costs] == sorted((micros for micros, _ in costs), reverse=True)
    assert all(micros > 0 for micros, _ in costs)


def test_tracing_off_skips_the_x_ray_sdk() -> None:
    _, stdout, _ = coldstart.run_child(
        coldstart.handler_code("polytrigger.handlers.s3") + "import sys\nprint('aws_xray_sdk' in sys.modules)\n"
    )
    assert stdout.strip() == "False"


def test_memory_quick_produces_rows_and_main_prints_the_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    measured: list[dict[str, float]] = []
    measure = memory.measure

    def keep(*args: Any) -> dict[str, float]:
        measured.append(measure(*args))
        return measured[-1]

    monkeypatch.setattr(memory, "measure", keep)

    assert memory.main(["--quick"]) in (0, 1)  # one measurement, its rows checked and its table read

    _check(memory.to_rows(measured[0]), 3)
    out = capsys.readouterr().out
    assert "peak RSS cold invocation" in out
    assert "boto3 bundled: no" in out


def test_the_package_closure_follows_extras() -> None:
    names = memory.closure(["aws-lambda-powertools[tracer]>=3.20,<4"])

    assert {"aws-lambda-powertools", "aws-xray-sdk", "botocore"} <= names  # the [tracer] extra pulls botocore
    assert "boto3" not in names
