"""A misspelt field, action, event or time zone is refused in one line that offers what it probably meant,
and a valid routes file never pays for working that out (a function's cold start reads one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from polytrigger.routing import RoutesError, parse_routes
from polytrigger.routing.suggest import close_to, zone_like

ROOT = Path(__file__).resolve().parents[2]
SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
UPSTREAM = "3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f"


def problems_of(route: dict[str, Any], *, check_zones: bool = False) -> list[str]:
    with pytest.raises(RoutesError) as raised:
        parse_routes({"routes": [{"name": "r", "syncs": [{"id": SYNC}], **route}]}, check_zones=check_zones)
    return raised.value.problems


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ({"s3": {"bucket": "acme-landing", "evnets": ["created"]}}, "s3.evnets: unknown field; did you mean events?"),
        ({"s3": {"bukcet": "acme-landing"}}, "s3.bukcet: unknown field; did you mean bucket?"),
        ({"s3": {"bucket": "acme-landing"}, "evnets": ["created"]},
         "evnets: unknown field; did you mean events (it belongs under s3)?"),
        ({"s3": {"bucket": "acme-landing"}, "freshnes": "1h"}, "freshnes: unknown field; did you mean freshness?"),
        ({"s3": {"bucket": "acme-landing"}, "debounse": 60}, "debounce"),
        ({"schedule": "nightly", "acton": "deactivate"}, "acton: unknown field; did you mean action?"),
        ({"schedule": {"name": "n", "rate": "1h", "timezon": "UTC"}}, "schedule.timezon: unknown field; did you mean timezone?"),
        ({"schedule": {"name": "n", "rate": "1h", "flexible": "5m"}},
         "schedule.flexible: unknown field; did you mean flexible_window?"),
        ({"polytomic": {"sync": UPSTREAM, "event": ["completed"]}}, "polytomic.event: unknown field; did you mean events?"),
    ],
)  # fmt: skip
def test_a_misspelt_field_offers_the_field_it_meant(route: dict[str, Any], problem: str) -> None:
    found = problems_of(route)
    assert any(line.startswith("route 'r': ") and problem in line for line in found), found


def test_a_misspelt_sync_option_offers_the_option_it_meant() -> None:
    (found,) = problems_of({"schedule": "nightly", "syncs": [{"id": SYNC, "resynk": True}]})
    assert found == (
        "route 'r': syncs[0].resynk: not an option of a model sync (options: identities, resync, test);"
        " did you mean resync?"
    )
    (found,) = problems_of({"schedule": "nightly", "syncs": [{"id": SYNC, "activate_frist": True}]})
    assert found.endswith("; did you mean activate_first?")


@pytest.mark.parametrize(
    ("action", "meant"),
    [("pause", "deactivate"), ("resume", "activate"), ("unpause", "activate"), ("Pause", "deactivate"),
     ("activte", "activate"), ("strat", "start"), ("disable", "deactivate")],
)  # fmt: skip
def test_an_action_in_other_words_offers_the_action_it_meant(action: str, meant: str) -> None:
    assert problems_of({"schedule": "freeze", "action": action}) == [
        f"route 'r': action: must be one of start, activate, deactivate (got {action!r}); did you mean {meant}?"
    ]


def test_an_action_nothing_like_any_offers_nothing() -> None:
    assert problems_of({"schedule": "freeze", "action": "stop"}) == [
        "route 'r': action: must be one of start, activate, deactivate (got 'stop')"
    ]


@pytest.mark.parametrize(
    ("events", "meant"),
    [(["complete"], "created"), (["completed"], "created"), ("put", "created"), (["removed"], "deleted"),
     (["creatd"], "created")],
)  # fmt: skip
def test_an_s3_event_in_other_words_offers_created_or_deleted(events: Any, meant: str) -> None:
    (found,) = problems_of({"s3": {"bucket": "acme-landing", "events": events}})
    assert found.startswith("route 'r': s3.events: must be a list of created and/or deleted (got [")
    assert found.endswith(f"; did you mean {meant}?")


def test_several_wrong_events_say_which_is_which() -> None:
    (found,) = problems_of({"s3": {"bucket": "acme-landing", "events": ["complete", "remove"]}})
    assert found.endswith("; did you mean created for 'complete', deleted for 'remove'?")


@pytest.mark.parametrize(
    ("events", "meant"),
    [(["complete"], "completed"), (["success"], "completed"), (["cancelled"], "canceled"), (["error"], "failed"),
     (["completed_with_error"], "completed_with_errors")],
)  # fmt: skip
def test_a_run_ending_in_other_words_offers_the_ending_it_meant(events: list[str], meant: str) -> None:
    (found,) = problems_of({"polytomic": {"sync": UPSTREAM, "events": events}})
    assert found.startswith("route 'r': polytomic.events: must be a list of completed, completed_with_errors,")
    assert found.endswith(f"; did you mean {meant}?")


@pytest.mark.parametrize(
    ("zone", "meant"),
    [("Europe/berlin", "Europe/Berlin"), ("europe/berlin", "Europe/Berlin"), ("Europe/Berln", "Europe/Berlin"),
     ("utc", "UTC"), ("America/New York", "America/New_York"), ("Berlin", "Europe/Berlin")],
)  # fmt: skip
def test_a_time_zone_in_the_wrong_case_or_spelt_a_little_wrong_offers_the_zone(zone: str, meant: str) -> None:
    (found,) = problems_of({"schedule": {"name": "n", "rate": "1h", "timezone": zone}}, check_zones=True)
    assert found.startswith("route 'r': schedule.timezone: ")
    assert found.endswith(f"(got {zone!r}); did you mean {meant}?") or found.endswith(
        f"{zone!r} is not a time zone the IANA database knows; did you mean {meant}?"
    )


def test_a_zone_in_the_right_region_but_unlike_any_city_offers_nothing() -> None:
    assert zone_like("Europe/Nowhere") is None
    assert zone_like("Mars/Olympus") is None
    assert zone_like("Berlin time") == "Europe/Berlin"


def test_close_to_tries_aliases_then_case_then_spelling() -> None:
    assert close_to("PAUSE", ["start", "activate", "deactivate"], {"pause": "deactivate"}) == "deactivate"
    assert close_to("Events", ["events"]) == "events"
    assert close_to("evnets", ["bucket", "key", "events"]) == "events"
    assert close_to("zzz", ["bucket", "key", "events"]) is None
    assert close_to(7, ["events"]) is None


def test_a_valid_routes_file_loads_without_difflib_or_the_zone_list() -> None:
    """The suggestions cost nothing until a refusal is written: a cold start imports neither."""
    code = (
        "import sys\n"
        "from polytrigger.routing import load_routes\n"
        "from polytrigger.settings import BUNDLED_ROUTES\n"
        "load_routes(BUNDLED_ROUTES)\n"
        "print(sorted(name for name in ('difflib', 'zoneinfo') if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "functions"), "PATH": ""},
    )
    assert result.stdout.strip() == "[]"
