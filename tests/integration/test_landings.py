"""The landing item decides between an object's event and a listing that found it, on DynamoDB Local.

Whichever keeps the landing first acts; the other acts on nothing, so an event that arrives after
reconciliation (or replay) found its object, or a listing that finds an object its event brought,
never starts a sync a second time. A listing's landing not yet marked handled is acted on again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from local.stack.stack import LocalStack
from polytrigger.core.triggers import FoundBy, Trigger
from polytrigger.dispatch.landings import DynamoLandings

BUCKET = "landing-bucket"
KEY = "orders/2026-12-07/part-0001.csv"
MODIFIED = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
NOW = MODIFIED.timestamp() + 600


@pytest.fixture
def landings(clean: LocalStack) -> DynamoLandings:
    return DynamoLandings(clean.client("dynamodb"), clean.table_name, clock=lambda: NOW)


def event(*, etag: str = "abc", at: datetime = MODIFIED + timedelta(milliseconds=350), seq: str = "0061") -> Trigger:
    return Trigger.s3(bucket=BUCKET, key=KEY, event="created", sequencer=seq, time=at, size=10, etag=etag)


def listed(*, etag: str = "abc", modified: datetime = MODIFIED, by: FoundBy = "reconciliation") -> Trigger:
    return Trigger.listed(bucket=BUCKET, key=KEY, last_modified=modified, etag=f'"{etag}"', size=10, found_by=by)


def test_an_event_arriving_after_a_listing_found_its_upload_acts_on_nothing(landings: DynamoLandings) -> None:
    assert landings.landed(listed(), NOW)
    assert not landings.landed(event(), NOW)


def test_a_listing_finding_an_object_its_event_brought_acts_on_nothing(landings: DynamoLandings) -> None:
    assert landings.landed(event(), NOW)
    assert not landings.landed(listed(), NOW)
    assert not landings.landed(listed(by="replay"), NOW)


def test_a_redelivered_event_is_still_acted_on_for_dedup_to_answer(landings: DynamoLandings) -> None:
    assert landings.landed(event(), NOW)
    assert landings.landed(event(), NOW + 5)


def test_a_listed_landing_is_acted_on_again_until_it_is_marked_handled(landings: DynamoLandings) -> None:
    assert landings.landed(listed(), NOW)
    assert landings.landed(listed(), NOW + 60)  # the first pass died before its actions were done
    landings.handled(listed())
    assert not landings.landed(listed(), NOW + 120)
    assert not landings.landed(listed(by="replay"), NOW + 120)


def test_a_new_upload_after_a_listed_one_is_acted_on_by_its_event(landings: DynamoLandings) -> None:
    assert landings.landed(listed(), NOW)
    landings.handled(listed())
    assert landings.landed(event(etag="def", at=MODIFIED + timedelta(minutes=5), seq="0099"), NOW)


def test_a_listing_acts_on_an_upload_newer_than_the_landing_it_finds(landings: DynamoLandings) -> None:
    assert landings.landed(event(), NOW)
    assert landings.landed(listed(etag="def", modified=MODIFIED + timedelta(minutes=5)), NOW)
    assert not landings.landed(listed(etag="abc"), NOW)  # a stale page naming the older upload


def test_an_event_and_a_listing_at_once_act_once_between_them(landings: DynamoLandings) -> None:
    for round_ in range(20):
        key = f"race/{round_}.csv"
        one = Trigger.s3(bucket=BUCKET, key=key, event="created", sequencer="01", time=MODIFIED, etag="abc")
        other = Trigger.listed(
            bucket=BUCKET, key=key, last_modified=MODIFIED, etag="abc", size=1, found_by="reconciliation"
        )
        with ThreadPoolExecutor(2) as pool:
            acted = list(pool.map(lambda trigger: landings.landed(trigger, NOW), [one, other]))
        assert sum(acted) == 1, (round_, acted)


def test_landings_are_read_a_page_at_a_time(landings: DynamoLandings) -> None:
    keys = [f"page/{index:04d}.csv" for index in range(250)]
    for key in keys[::2]:
        landings.landed(Trigger.s3(bucket=BUCKET, key=key, event="created", sequencer="01", time=MODIFIED), NOW)
    found = landings.get_many([(BUCKET, key) for key in keys])
    assert sorted(key for _, key in found) == keys[::2]
    assert all(landing.found_by == "event" for landing in found.values())
