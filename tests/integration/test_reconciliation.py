"""Reconciliation on the local stack: moto S3 lists real objects, DynamoDB Local keeps landings and the
cursor, the fake Polytomic counts the starts. The reconciliation function is invoked as its schedule
would, on the stack's clock (a pass starts when that clock says; objects are dated by moto's).

What it must show: every object whose event was lost is found within one pass and started (or covered
by a run), each told once as "found by reconciliation"; an object whose event came costs no start and
no line; a pass cut short (a crash, its time budget) goes on from its cursor and doubles nothing; an
event that arrives after reconciliation found its object starts nothing.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.stack.objects import backdate, notification, put_objects
from polytrigger.dispatch.landings import DynamoLandings
from polytrigger.reconciliation.cursor import DynamoCursors
from polytrigger.reconciliation.listing import ListingUnavailable, S3Listing
from polytrigger.routing import load_routes
from tests.integration.dispatch_support import BUCKET, Dispatch

SYNC = "e0e0e0e0-0000-4000-8000-000000000001"
SETTLED = 600  # seconds after the uploads a pass runs: none is too young for its event to be on the way
FOUND = "found by reconciliation, no event had arrived"


class Bucket:
    """The test's route (`s3.reconcile: 15m`) over a prefix of its own, and what the test does to it."""

    def __init__(self, dispatch: Dispatch, prefix: str) -> None:
        self.dispatch = dispatch
        self.prefix = prefix
        self.s3 = dispatch.stack.client("s3")

    def land(self, count: int, name: str = "part") -> dict[str, datetime]:
        keys = [f"{self.prefix}/{name}-{index:05d}.csv" for index in range(count)]
        return put_objects(self.s3, BUCKET, keys)

    def deliver(self, landed: dict[str, datetime], batch: int = 100) -> None:
        """Their events, through the S3 function, `batch` records a payload."""
        items = list(landed.items())
        for start in range(0, len(items), batch):
            self.dispatch.polytrigger.s3(notification(BUCKET, dict(items[start : start + batch])))

    def reconcile(self, **context: Any) -> dict[str, Any]:
        return self.dispatch.polytrigger.reconciler("lost", **context)

    def found_lines(self) -> list[str]:
        return [
            line["message"]
            for line in self.dispatch.polytrigger.log_lines()
            if str(line.get("message", "")).startswith(FOUND)
        ]

    def found_keys(self) -> list[str]:
        return sorted(line.split(f"s3://{BUCKET}/", 1)[1].split(" (", 1)[0] for line in self.found_lines())

    def starts(self) -> int:
        return len(self.dispatch.stack.fake.executions(SYNC))

    def uncovered(self, landed: dict[str, datetime]) -> list[str]:
        """The objects no run of the sync covers (none created at or after the object landed)."""
        created = [execution.created_at for execution in self.dispatch.stack.fake.executions(SYNC)]
        return [key for key, when in landed.items() if not any(moment >= when for moment in created)]

    def doubled_keys(self) -> list[str]:
        """Idempotency-Keys Polytomic was sent for more than one run."""
        keys = [execution.idempotency_key for execution in self.dispatch.stack.fake.executions(SYNC)]
        return sorted({key for key in keys if key and keys.count(key) > 1})


@pytest.fixture
def bucket(dispatch: Dispatch, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Bucket:
    from polytrigger import bootstrap

    prefix = f"lost-{uuid.uuid4().hex[:8]}"
    routes = tmp_path / "reconciled-routes.yaml"
    routes.write_text(
        f'routes:\n  - name: lost\n    s3: {{bucket: {BUCKET}, key: "{prefix}/**", reconcile: 15m}}\n'
        f"    syncs: [{{id: {SYNC}}}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    dispatch.stack.fake.add_sync(SYNC, kind="model")
    s3 = dispatch.stack.client("s3")
    if BUCKET not in [one["Name"] for one in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=BUCKET)
    bootstrap.reset()
    return Bucket(dispatch, prefix)


def first_pass(bucket: Bucket) -> None:
    """Reconciliation turned on before the uploads: its first pass finds nothing and sets the checkpoint."""
    assert bucket.reconcile()["state"] == "complete"


def test_every_object_whose_event_was_lost_is_found_and_started_once(bucket: Bucket) -> None:
    first_pass(bucket)
    landed = bucket.land(1000)
    dropped = set(random.Random(7).sample(sorted(landed), 100))
    bucket.deliver({key: when for key, when in landed.items() if key not in dropped})
    starts_by_events = bucket.starts()
    bucket.dispatch.wait(SETTLED)

    answer = bucket.reconcile()

    assert answer["state"] == "complete"
    assert answer["listed"] == 1000
    assert answer["found"] == 100
    assert bucket.found_keys() == sorted(dropped)  # each dropped object told once, no other
    assert bucket.uncovered(landed) == []  # every object started or covered
    assert bucket.starts() == starts_by_events + 1  # one payload of the listing's page: one start
    assert bucket.doubled_keys() == []


def test_a_second_pass_finds_nothing_and_starts_nothing(bucket: Bucket) -> None:
    first_pass(bucket)
    landed = bucket.land(300)
    bucket.deliver(dict(list(landed.items())[:200]))
    bucket.dispatch.wait(SETTLED)
    assert bucket.reconcile()["found"] == 100
    starts = bucket.starts()
    bucket.dispatch.wait(900)

    answer = bucket.reconcile()

    assert (answer["state"], answer["found"], answer["looked_at"]) == ("complete", 0, 300)
    assert bucket.starts() == starts
    assert len(bucket.found_lines()) == 100


def test_an_event_arriving_after_reconciliation_found_its_object_starts_nothing(bucket: Bucket) -> None:
    first_pass(bucket)
    landed = bucket.land(20)
    bucket.dispatch.wait(SETTLED)
    assert bucket.reconcile()["found"] == 20
    starts = bucket.starts()

    bucket.deliver(landed)  # the events, late

    assert bucket.starts() == starts
    assert bucket.doubled_keys() == []


def test_a_day_of_uploads_with_notifications_off_is_found_by_one_pass(bucket: Bucket) -> None:
    now = datetime.fromtimestamp(bucket.dispatch.now(), UTC)
    first_pass_at = now - timedelta(days=1, minutes=5)
    landed = bucket.land(96, name="quarter")
    for index, key in enumerate(sorted(landed)):  # one every 15 minutes through the day
        landed[key] = first_pass_at + timedelta(minutes=15 * index + 3)
        backdate(BUCKET, key, landed[key])
    older = bucket.land(10, name="before")  # landed before reconciliation looked: replay's, not a pass's
    for key in older:
        backdate(BUCKET, key, first_pass_at - timedelta(days=2))
    cursors = DynamoCursors(bucket.dispatch.stack.client("dynamodb"), bucket.dispatch.stack.table_name)
    began = cursors.take("lost", first_pass_at.timestamp(), 60)
    assert began is not None
    cursors.finish(began)  # the last pass, a day ago, before notifications went off

    answer = bucket.reconcile()

    assert (answer["state"], answer["listed"], answer["looked_at"], answer["found"]) == ("complete", 106, 96, 96)
    assert bucket.found_keys() == sorted(landed)
    assert bucket.uncovered(landed) == []


def test_a_crash_halfway_through_the_listing_resumes_from_the_cursor_and_doubles_nothing(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polytrigger import bootstrap

    first_pass(bucket)
    landed = bucket.land(1000)
    bucket.deliver(dict(list(landed.items())[::2]))  # every other event lost
    bucket.dispatch.wait(SETTLED)
    bootstrap.reconciler().passes.page_size = 100
    pages = {"listed": 0}
    real_page = S3Listing.page

    def crash_after_four(self: S3Listing, *args: Any, **kwargs: Any) -> Any:
        if pages["listed"] == 4:
            raise ListingUnavailable("the function died here")
        pages["listed"] += 1
        return real_page(self, *args, **kwargs)

    monkeypatch.setattr(S3Listing, "page", crash_after_four)
    with pytest.raises(ListingUnavailable):
        bucket.reconcile()
    assert len(bucket.found_lines()) == 200  # four pages handled, every other object of them found
    cursor = DynamoCursors(bucket.dispatch.stack.client("dynamodb"), bucket.dispatch.stack.table_name).read("lost")
    assert cursor["after"]["S"] == sorted(landed)[399]
    monkeypatch.setattr(S3Listing, "page", real_page)
    starts = bucket.starts()

    answer = bucket.reconcile()

    assert (answer["state"], answer["pages"], answer["found"]) == ("complete", 6, 300)
    assert bucket.found_keys() == sorted(list(landed)[1::2])  # each lost one found once, across both runs
    assert bucket.starts() == starts + 6
    assert bucket.uncovered(landed) == []
    assert bucket.doubled_keys() == []


def test_a_pass_out_of_time_stops_before_a_page_and_the_next_goes_on(bucket: Bucket) -> None:
    from polytrigger import bootstrap

    first_pass(bucket)
    landed = bucket.land(500)
    bucket.dispatch.wait(SETTLED)
    passes = bootstrap.reconciler().passes
    passes.page_size = 100
    route = load_routes(passes_routes()).routes[0]
    listing = passes.listing
    pages = {"listed": 0}

    class Counted:
        def page(self, *args: Any, **kwargs: Any) -> Any:
            pages["listed"] += 1
            return listing.page(*args, **kwargs)

    passes.listing = Counted()
    # The margin is 60 s: after two pages the invocation has 30 s left, so the third is not listed.
    first = passes.run(route, lambda: 600.0 if pages["listed"] < 2 else 30.0)
    second = passes.run(route, lambda: 600.0)

    assert (first.state, first.pages, len(first.found)) == ("paused", 2, 200)
    assert (second.state, second.pages, len(second.found)) == ("complete", 3, 300)
    assert bucket.found_keys() == sorted(landed)
    assert bucket.uncovered(landed) == []


def passes_routes() -> str:
    import os

    return os.environ["ROUTES_FILE"]


def test_two_invocations_never_list_one_route_at_once(bucket: Bucket) -> None:
    cursors = DynamoCursors(bucket.dispatch.stack.client("dynamodb"), bucket.dispatch.stack.table_name)
    held = cursors.take("lost", bucket.dispatch.now(), 300)
    assert held is not None

    assert bucket.reconcile()["state"] == "busy"
    bucket.dispatch.wait(301)  # the holder died: its lease runs out
    assert bucket.reconcile()["state"] == "complete"


def test_five_thousand_objects_are_listed_across_pages_within_one_invocation(bucket: Bucket) -> None:
    first_pass(bucket)
    landed = bucket.land(5000)
    lost = sorted(landed)[::100]
    landings = DynamoLandings(bucket.dispatch.stack.client("dynamodb"), bucket.dispatch.stack.table_name)
    events = notification(BUCKET, {key: when for key, when in landed.items() if key not in lost})
    from polytrigger.events import s3_triggers

    for trigger in s3_triggers(events):  # their events came (kept as the S3 function keeps them)
        landings.landed(trigger, bucket.dispatch.now())
    bucket.dispatch.wait(SETTLED)

    answer = bucket.reconcile(timeout_seconds=300)

    assert (answer["state"], answer["pages"], answer["listed"], answer["found"]) == ("complete", 5, 5000, 50)
    assert bucket.found_keys() == lost


def test_a_start_refused_for_an_object_reconciliation_found_is_parked_with_its_reason(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import json

    from polytrigger import bootstrap

    unknown = "e0e0e0e0-0000-4000-8000-0000000000ff"  # Polytomic answers 404: a retry cannot fix it, a person must
    routes = tmp_path / "refused-routes.yaml"
    routes.write_text(
        f'routes:\n  - name: lost\n    s3: {{bucket: {BUCKET}, key: "{bucket.prefix}/**", reconcile: 15m}}\n'
        f"    syncs: [{{id: {unknown}}}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    bootstrap.reset()
    queues = bucket.dispatch.queues
    first_pass(bucket)
    bucket.land(3)
    bucket.dispatch.wait(SETTLED)

    answer = bucket.reconcile()

    assert answer["found"] == 3
    sqs = bucket.dispatch.stack.client("sqs")
    parked = sqs.receive_message(QueueUrl=queues.dead_letter_url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(parked) == 1  # the page's one start, parked as a start message that `redrive` sends back
    body = json.loads(parked[0]["Body"])
    assert body["action"]["sync"]["id"] == unknown
    assert body["action"]["trigger"]["found_by"] == "reconciliation"
    assert body["parked_because"]
