"""`polytrigger validate ROUTES`: a summary of a valid routes file, every problem of an invalid one, nothing written."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest

from polytrigger.routing.load import CACHE_FORMAT
from polytrigger.routing.schedules import ScheduleSpec
from polytrigger.tools.validate import Report, register, render, run, validate

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "functions" / "routes.yaml"
SYNC_A = "11111111-1111-4111-8111-111111111111"
SYNC_B = "22222222-2222-4222-8222-222222222222"
SYNC_C = "33333333-3333-4333-8333-333333333333"

TWO_BUCKETS = f"""\
routes:
  - name: orders
    s3: {{bucket: acme-landing, key: "orders/**/*.csv"}}
    syncs: [{{id: {SYNC_A}}}, {{id: {SYNC_C}, type: bulk, fetch_mode: incremental}}]
  - name: exports
    s3: {{bucket: acme-exports, key: "exports/*/_SUCCESS"}}
    debounce: 60
    syncs: [{{id: {SYNC_B}}}]
  - name: nightly
    schedule: nightly
    syncs: [{{id: {SYNC_A}, resync: true}}]
"""

BROKEN = f"""\
routes:
  - name: orders
    s3:
      bucket: acme-landing
      key: /orders/*.csv
      key: /orders/*.tsv
    syncs: [{{id: {SYNC_A}}}]
  - name: nightly
    schedule: nightly
    resync: true
    syncs: [{{id: not-a-uuid}}]
"""


ORDERS = "248df4b7-aa70-47b8-a036-33ac447e668d"
WAREHOUSE = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
HELD_MODEL = (
    f"route weekend-freeze pauses model sync {ORDERS} until route weekend-thaw resumes it, at most 61 hours later;"
    " meanwhile the starts of route orders-landing (hold 7 days) are held"
)
HELD_BULK = (
    f"route weekend-freeze pauses bulk sync {WAREHOUSE} until route weekend-thaw resumes it, at most 61 hours later;"
    " meanwhile the starts of routes orders-landing (hold 7 days), snapshot-removed (hold 7 days) are held"
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="polytrigger")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_the_bundled_routes_file_is_summarised() -> None:
    report = validate(BUNDLED)

    assert report == Report(
        source=str(BUNDLED),
        routes=7,
        buckets=["acme-landing"],
        schedules=["freeze", "nightly", "thaw"],
        syncs={"model": 2, "bulk": 1},
        created=[
            ScheduleSpec("freeze", "cron(0 18 ? * FRI *)", "Europe/Berlin"),
            ScheduleSpec("nightly", "cron(0 2 ? * TUE-FRI *)", "Europe/Berlin"),
            ScheduleSpec("thaw", "cron(0 6 ? * MON *)", "Europe/Berlin"),
        ],
        chains=["route customers-after-orders follows sync 248df4b7-aa70-47b8-a036-33ac447e668d: completed"],
        held=[HELD_MODEL, HELD_BULK],
    )
    assert report.warnings == []  # the example is coherent: nothing fights the weekend freeze
    assert render(report).splitlines() == [
        f"{BUNDLED}: 7 routes, 1 bucket (acme-landing), 3 schedules (freeze, nightly, thaw), 3 syncs (2 model, 1 bulk)",
        "  the S3 rule will listen to: acme-landing (each needs its EventBridge notifications on: --check-buckets)",
        "  the stack will create schedule freeze: cron(0 18 ? * FRI *) Europe/Berlin",
        "  the stack will create schedule nightly: cron(0 2 ? * TUE-FRI *) Europe/Berlin",
        "  the stack will create schedule thaw: cron(0 6 ? * MON *) Europe/Berlin",
        "  chained: route customers-after-orders follows sync 248df4b7-aa70-47b8-a036-33ac447e668d: completed",
        f"  held while paused: {HELD_MODEL}",
        f"  held while paused: {HELD_BULK}",
    ]


def test_buckets_and_schedules_are_sorted_and_syncs_counted_once_by_type(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(TWO_BUCKETS)

    assert render(validate(path)).splitlines() == [
        f"{path}: 3 routes, 2 buckets (acme-exports, acme-landing), 1 schedule (nightly), 3 syncs (2 model, 1 bulk)",
        "  the S3 rule will listen to: acme-exports, acme-landing (each needs its EventBridge notifications on:"
        " --check-buckets)",
        "  schedule nightly is made elsewhere: polytrigger does not create it",
    ]


def test_a_flexible_window_is_shown_and_what_no_deployment_could_wire_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"routes:\n  - name: hourly\n    schedule: {{name: hourly, rate: 1 hour, flexible_window: 15m}}\n"
        f"    syncs: [{{id: {SYNC_A}}}]\n"
    )
    assert render(validate(path)).splitlines()[1] == (
        "  the stack will create schedule hourly: rate(1 hour) UTC, flexible window 15 min"
    )

    path.write_text(path.read_text().replace("rate: 1 hour,", "rate: 1 hour, timezone: Europe/Nowhere,"))
    assert validate(path).problems == [
        "route 'hourly': schedule.timezone: 'Europe/Nowhere' is not a time zone the IANA database knows"
    ]


def test_routes_whose_wiring_answer_would_pass_cloudformations_4_kb_are_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 rule's pattern limit keeps the bucket list short; with the quota raised to 4,096 characters
    the buckets alone could fill the wiring's answer, which CloudFormation would refuse at deploy."""
    monkeypatch.setattr("polytrigger.route_wiring.plan.MAX_PATTERN_CHARS", 4096)
    buckets = [f"acme-{i:02d}-" + "x" * 32 for i in range(80)]
    path = tmp_path / "routes.yaml"
    path.write_text(
        "routes:\n"
        + "".join(
            f"  - {{name: r{i}, s3: {{bucket: {b}}}, syncs: [{{id: {SYNC_A}}}]}}\n" for i, b in enumerate(buckets)
        )
    )

    (problem,) = validate(path).problems

    assert problem.startswith("the routes name 80 buckets, so the wiring's answer to CloudFormation would be about ")
    assert problem.endswith(" bytes, over its limit of 4096: deploy a second stack for some of them")


def test_a_cron_value_out_of_range_is_refused_before_any_deploy_writes_a_schedule(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"routes:\n  - name: nightly\n    schedule: {{name: nightly, cron: '30 25 * * ? *'}}\n"
        f"    syncs: [{{id: {SYNC_A}}}]\n"
    )

    assert render(validate(path)).splitlines() == [
        f"{path} is invalid (1 problem):",
        "  - route 'nightly': schedule.cron: hours must be 0-23, got '25' (in '30 25 * * ? *')",
    ]


def test_every_problem_is_listed_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(BROKEN)

    report = validate(path)

    assert not report.ok
    assert render(report).splitlines() == [
        f"{path} is invalid (4 problems):",
        "  - route 'orders': s3.key: given again at line 6 (first at line 5);"
        " YAML would silently keep only the last one: remove one",
        "  - route 'orders': s3.key: S3 keys never start with '/', so it can never match; drop the leading /"
        " (got '/orders/*.tsv')",
        "  - route 'nightly': resync: belongs under syncs[n], on each sync it applies to, not on the route itself",
        "  - route 'nightly': syncs[0].id: must be a sync UUID (got 'not-a-uuid')",
    ]


def test_an_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    report = validate(tmp_path / "absent.yaml")

    assert report.problems == ["cannot be read (No such file or directory)"]


def test_validate_writes_nothing_and_never_trusts_a_cache(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(BROKEN)
    cache = tmp_path / "routes.validated.json"  # a cache claiming these very bytes are a valid document
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    document = {"routes": [{"name": "x", "schedule": "s", "syncs": [{"id": SYNC_A}]}]}
    cache.write_text(json.dumps({"format": CACHE_FORMAT, "source_sha256": sha, "document": document}))
    before = {item.name: item.read_bytes() for item in tmp_path.iterdir()}

    assert not validate(path).ok
    path.write_text(TWO_BUCKETS)
    before["routes.yaml"] = path.read_bytes()
    assert validate(path).ok

    assert {item.name: item.read_bytes() for item in tmp_path.iterdir()} == before


def test_the_command_exits_0_with_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parse(["validate", str(BUNDLED)])) == 0

    out, err = capsys.readouterr()
    assert out.startswith(f"{BUNDLED}: 7 routes, 1 bucket (acme-landing)")
    assert err == ""


def test_the_command_exits_1_with_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(BROKEN)

    assert run(parse(["validate", str(path)])) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{path} is invalid (4 problems):\n")
    assert err.count("\n  - ") == 4


def test_validate_takes_the_routes_file_as_explain_and_status_do_and_refuses_two(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from polytrigger.tools.cli import main

    assert main(["validate", "--routes", str(BUNDLED)]) == 0
    assert main(["validate", str(BUNDLED)]) == 0
    capsys.readouterr()
    assert main(["validate", str(BUNDLED), "--routes", str(BUNDLED)]) == 2
    assert "give one routes file" in capsys.readouterr().err
