"""Pauses that fight the routes (`validate`): the starts a pause holds, a pause longer than a route's hold,
an activate_first that ends a pause, and a pause nothing resumes. Seen from a fixed instant, never the clock."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from polytrigger.routing import parse_routes
from polytrigger.routing.pauses import Finding, pause_findings
from polytrigger.tools.validate import register, run

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday
ORDERS = "248df4b7-aa70-47b8-a036-33ac447e668d"
FREEZE = {"name": "freeze", "schedule": {"name": "freeze", "cron": "0 18 ? * FRI *", "timezone": "Europe/Berlin"},
          "action": "deactivate", "syncs": [{"id": ORDERS}]}  # fmt: skip
THAW = {"name": "thaw", "schedule": {"name": "thaw", "cron": "0 6 ? * MON *", "timezone": "Europe/Berlin"},
        "action": "activate", "syncs": [{"id": ORDERS}]}  # fmt: skip
LANDING = {"name": "landing", "s3": {"bucket": "acme-landing"}, "syncs": [{"id": ORDERS}]}


def nightly(days: str, *, activate_first: bool = True) -> dict[str, Any]:
    return {
        "name": "nightly",
        "schedule": {"name": "nightly", "cron": f"0 2 ? * {days} *", "timezone": "Europe/Berlin"},
        "syncs": [{"id": ORDERS, "activate_first": activate_first}],
    }


def findings(*routes: dict[str, Any]) -> list[Finding]:
    return pause_findings(parse_routes({"routes": list(routes)}), NOW)


def warnings(*routes: dict[str, Any]) -> list[str]:
    return [finding.text for finding in findings(*routes) if finding.warning]


def notes(*routes: dict[str, Any]) -> list[str]:
    return [finding.text for finding in findings(*routes) if not finding.warning]


def test_activate_first_on_a_schedule_that_fires_inside_the_pause_is_a_warning_with_the_firing() -> None:
    assert warnings(FREEZE, THAW, nightly("MON-FRI")) == [
        f"route nightly activates model sync {ORDERS} before starting it (activate_first), so it ends the pause"
        " route freeze sets: it fires in it at Mon 2026-11-30 02:00 CET; drop activate_first to hold its starts"
        " instead, or keep its schedule out of the pause"
    ]


def test_activate_first_on_a_schedule_that_keeps_out_of_the_pause_is_fine() -> None:
    assert warnings(FREEZE, THAW, nightly("TUE-FRI")) == []


def test_activate_first_on_a_file_route_ends_the_pause_whenever_a_file_lands() -> None:
    landing = {**LANDING, "syncs": [{"id": ORDERS, "activate_first": True}]}
    (warning,) = warnings(FREEZE, THAW, landing)
    assert warning.startswith(f"route landing activates model sync {ORDERS} before starting it (activate_first),")
    assert "ends the pause route freeze sets whenever it fires in it: drop activate_first" in warning


def test_a_files_starts_are_held_until_the_resume_a_note_not_a_warning() -> None:
    assert findings(FREEZE, THAW, LANDING) == [
        Finding(
            False,
            f"route freeze pauses model sync {ORDERS} until route thaw resumes it, at most 61 hours later;"
            " meanwhile the starts of route landing (hold 7 days) are held",
        )
    ]


def test_a_pause_longer_than_a_routes_hold_is_a_warning_naming_the_hold_to_give() -> None:
    """Friday 18:00 to Monday 06:00 Berlin is 60 hours, 61 across the October clock change."""
    assert warnings(FREEZE, THAW, {**LANDING, "hold": "2d"}) == [
        f"route landing starts model sync {ORDERS}, which route freeze pauses for up to 61 hours until route thaw"
        " resumes it: longer than its hold (2 days), so its files would be parked before the resume;"
        " give it hold: 61 hours or more"
    ]
    assert warnings(FREEZE, THAW, {**LANDING, "hold": "61h"}) == []


def test_a_pause_nothing_resumes_is_a_warning() -> None:
    assert warnings(FREEZE, LANDING) == [
        f"route freeze pauses model sync {ORDERS} and no route activates it again: the starts of route landing"
        " would be held until their hold runs out, unless a person resumes it"
    ]
    assert warnings(FREEZE) == [
        f"route freeze pauses model sync {ORDERS} and no route activates it again, unless a person resumes it"
    ]


def test_a_resume_that_has_passed_leaves_the_next_pause_unresumed() -> None:
    once = {**THAW, "schedule": {"name": "thaw", "at": "2026-11-30T06:00:00", "timezone": "Europe/Berlin"}}
    assert warnings(FREEZE, once, LANDING) == [
        f"route freeze pauses model sync {ORDERS} on Fri 2026-12-04 17:00 UTC and no route activates it after that:"
        " the starts of route landing would be held until their hold runs out, unless a person resumes it"
    ]


def test_a_scheduled_start_is_held_only_when_it_fires_in_the_pause() -> None:
    assert notes(FREEZE, THAW, nightly("TUE-FRI", activate_first=False)) == []
    (note,) = notes(FREEZE, THAW, nightly("SAT", activate_first=False))
    assert note.endswith("meanwhile the starts of route nightly (hold 7 days) are held")


def test_times_the_file_does_not_fix_give_the_note_without_a_length() -> None:
    bare_thaw = {**THAW, "schedule": "thaw"}
    rate_thaw = {**THAW, "schedule": {"name": "thaw", "rate": "1d"}}
    for thaw in (bare_thaw, rate_thaw):
        assert findings(FREEZE, thaw, LANDING) == [
            Finding(
                False,
                f"route freeze pauses model sync {ORDERS} until route thaw resumes it; meanwhile the starts of"
                " route landing (hold 7 days) are held",
            )
        ]


def test_a_sync_no_route_pauses_is_not_mentioned() -> None:
    assert findings(LANDING, nightly("MON-FRI"), THAW) == []


ROUTES_YAML = f"""\
routes:
  - name: freeze
    schedule: {{name: freeze, cron: "0 18 ? * FRI *", timezone: Europe/Berlin}}
    action: deactivate
    syncs: [{{id: {ORDERS}}}]
  - name: thaw
    schedule: {{name: thaw, cron: "0 6 ? * MON *", timezone: Europe/Berlin}}
    action: activate
    syncs: [{{id: {ORDERS}}}]
  - name: nightly
    schedule: {{name: nightly, cron: "0 2 ? * MON-FRI *", timezone: Europe/Berlin}}
    syncs: [{{id: {ORDERS}, activate_first: true}}]
"""


def command(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="polytrigger")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.mark.parametrize(("strict", "code"), [([], 0), (["--strict"], 1)])
def test_validate_prints_warnings_on_stderr_and_fails_on_them_only_when_strict(
    strict: list[str], code: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES_YAML, encoding="utf-8")

    assert run(command(["validate", str(path), *strict])) == code

    out, err = capsys.readouterr()
    assert out.startswith(f"{path}: 3 routes, 0 buckets, 3 schedules (freeze, nightly, thaw), 1 sync (1 model)\n")
    assert err.startswith("warning: route nightly activates model sync ")
    assert err.count("\n") == 1


def test_validate_strict_passes_the_bundled_routes_file(capsys: pytest.CaptureFixture[str]) -> None:
    bundled = Path(__file__).resolve().parents[2] / "functions" / "routes.yaml"

    assert run(command(["validate", "--strict", str(bundled)])) == 0

    assert capsys.readouterr().err == ""
