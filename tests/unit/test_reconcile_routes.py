"""Reconciliation in the routes file: `s3.reconcile`, its period and overlap, and each refusal in one line."""

from __future__ import annotations

from typing import Any

import pytest

from polytrigger.routing import RoutesError, parse_routes
from polytrigger.routing.reconciling import Reconcile

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"


def reconcile_of(reconcile: Any, **s3: Any) -> Reconcile | None:
    raw = {"name": "orders", "s3": {"bucket": "acme-landing", "key": "orders/**", "reconcile": reconcile, **s3}}
    return parse_routes({"routes": [{**raw, "syncs": [{"id": SYNC}]}]}).routes[0].reconcile


def problems_of(reconcile: Any, **s3: Any) -> list[str]:
    with pytest.raises(RoutesError) as raised:
        reconcile_of(reconcile, **s3)
    return raised.value.problems


def test_a_duration_alone_is_the_period_with_an_hour_of_overlap() -> None:
    assert reconcile_of("15m") == Reconcile(every=900, overlap=3600)
    assert reconcile_of("1 hour") == Reconcile(every=3600, overlap=3600)


def test_a_mapping_sets_the_period_and_the_overlap() -> None:
    assert reconcile_of({"every": "30m", "overlap": "2h"}) == Reconcile(every=1800, overlap=7200)
    assert reconcile_of({"every": "24h", "overlap": 0}) == Reconcile(every=86400, overlap=0)
    assert reconcile_of({"every": "5m", "overlap": "7d"}) == Reconcile(every=300, overlap=7 * 86400)


def test_a_route_without_reconcile_is_not_listed() -> None:
    assert reconcile_of(None) is None


def test_the_period_is_the_schedulers_rate() -> None:
    assert Reconcile(every=900).rate == "rate(15 minutes)"
    assert Reconcile(every=3600).rate == "rate(1 hour)"
    assert Reconcile(every=7200).rate == "rate(2 hours)"
    assert Reconcile(every=5400).rate == "rate(90 minutes)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1m", "s3.reconcile: must be {every: 15m, overlap: 1h} or a duration from 5 minutes to 1 day"),
        ("2d", "s3.reconcile: must be {every: 15m, overlap: 1h} or a duration from 5 minutes to 1 day"),
        (900, "s3.reconcile: must be {every: 15m, overlap: 1h} or a duration"),
        ("90s", "in whole minutes"),
        ("15 minuts", "did you mean 15 minutes?"),
        ({"every": "15m", "overlap": "8d"}, "s3.reconcile.overlap: must be a duration from 0 seconds to 7 days"),
        ({"overlap": "1h"}, "s3.reconcile.every: required"),
        ({"every": "15m", "overlapp": "1h"}, "s3.reconcile.overlapp: unknown field; did you mean overlap?"),
        ({"every": "15m", "period": "1h"}, "s3.reconcile.period: unknown field; did you mean every?"),
    ],
)
def test_each_refusal_is_one_line_naming_the_field(value: Any, expected: str) -> None:
    problems = problems_of(value)
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert "\n" not in problems[0]


def test_a_route_for_deletions_only_has_nothing_to_reconcile() -> None:
    [problem] = problems_of("15m", events=["deleted"])
    assert "s3.reconcile: a listing finds objects, never deletions" in problem


def test_reconcile_on_the_route_itself_says_where_it_belongs() -> None:
    raw = {"name": "orders", "s3": {"bucket": "acme-landing"}, "reconcile": "15m", "syncs": [{"id": SYNC}]}
    with pytest.raises(RoutesError) as raised:
        parse_routes({"routes": [raw]})
    assert raised.value.problems == ["route 'orders': reconcile: belongs under s3, not on the route itself"]


def test_a_misspelt_reconcile_under_s3_is_named() -> None:
    raw = {"name": "orders", "s3": {"bucket": "acme-landing", "reconcil": "15m"}, "syncs": [{"id": SYNC}]}
    with pytest.raises(RoutesError) as raised:
        parse_routes({"routes": [raw]})
    assert "s3.reconcil: unknown field; did you mean reconcile?" in raised.value.problems[0]
