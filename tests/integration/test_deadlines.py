"""Arrival deadlines on the local stack: each miss reported once, its late arrival once, in the route's zone.

The S3 function lands the files and the poller (its every-minute poll, and a deadline's Scheduler
firing `{"deadline": route}`) looks at the deadlines, against DynamoDB Local, moto's SQS and the fake
Polytomic, on a clock the test moves by hand: deadlines are days apart, and around the clock changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from local.stack.dispatch_pump import DispatchQueue
from local.stack.lambda_context import LocalContext
from tests.integration.dispatch_support import BUCKET, s3_file
from tests.integration.support import Invoker
from tests.unit.dispatch_support import Clock

ORDERS_SYNC = "d0d0d0d0-0000-4000-8000-000000000001"
NIGHT_SYNC = "d0d0d0d0-0000-4000-8000-000000000002"
NEW_YORK_SYNC = "d0d0d0d0-0000-4000-8000-000000000003"
GATED_SYNC = "d0d0d0d0-0000-4000-8000-000000000004"

ROUTES_YAML = f"""\
routes:
  - name: orders
    s3: {{bucket: {BUCKET}, key: "orders/**"}}
    expect:
      key: "orders/dt={{day}}/_SUCCESS"
      by: "06:00"
      warn: "05:30"
      grace: 15m
      timezone: Europe/Berlin
      days: MON-FRI
    syncs: [{{id: {ORDERS_SYNC}}}]
  - name: berlin-night
    s3: {{bucket: {BUCKET}, key: "night/**"}}
    expect: {{key: "night/{{day}}.csv", by: "02:30", timezone: Europe/Berlin}}
    syncs: [{{id: {NIGHT_SYNC}}}]
  - name: new-york-night
    s3: {{bucket: {BUCKET}, key: "ny/**"}}
    expect: {{key: "ny/{{day}}.csv", by: "02:15", timezone: America/New_York}}
    syncs: [{{id: {NEW_YORK_SYNC}}}]
  - name: new-york-early
    s3: {{bucket: {BUCKET}, key: "ny-early/**"}}
    expect: {{key: "ny-early/{{day}}.csv", by: "01:30", timezone: America/New_York}}
    syncs: [{{id: {NEW_YORK_SYNC}}}]
  - name: gated
    s3: {{bucket: {BUCKET}, key: "gated/date={{date}}/*"}}
    gate: {{marker: "gated/date={{date}}/_SUCCESS"}}
    expect: {{partition: {{date: "{{day}}"}}, by: "07:00", timezone: UTC}}
    syncs: [{{id: {GATED_SYNC}}}]
"""


@dataclass
class Watch:
    polytrigger: Invoker
    clock: Clock

    def at(self, moment: str) -> None:
        """Move the clock to `moment` (UTC, ISO), never back."""
        target = datetime.fromisoformat(moment).replace(tzinfo=UTC).timestamp()
        assert target >= self.clock.now, "the clock only moves forward"
        self.clock.now = target

    def poll(self) -> dict[str, Any]:
        return self.polytrigger.poller()

    def fire(self, route: str) -> dict[str, Any]:
        """The deadline's Scheduler firing, as the wiring makes it."""
        from polytrigger.handlers import poller

        event = {"deadline": route, "time": datetime.fromtimestamp(self.clock.now, UTC).isoformat()}
        return self.polytrigger._call(poller.handler, event, LocalContext(function_name="polytrigger-poller"))

    def land(self, key: str) -> None:
        file = s3_file(key, datetime.fromtimestamp(self.clock.now, UTC))
        self.polytrigger.s3(file.event)

    def said(self, status: str) -> list[str]:
        return [line["message"] for line in self.polytrigger.log_lines() if line.get("status") == status]

    def items(self, prefix: str) -> list[dict[str, Any]]:
        return [item for item in self.polytrigger._items() if str(item["id"]).startswith(prefix)]


@pytest.fixture
def watch(polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Watch]:
    from polytrigger import bootstrap

    queues = DispatchQueue.create(polytrigger.stack.client("sqs"), region=polytrigger.stack.region)
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES_YAML, encoding="utf-8")
    for name, value in {**queues.env(), "ROUTES_FILE": str(routes)}.items():
        monkeypatch.setenv(name, value)
    for sync in (ORDERS_SYNC, NIGHT_SYNC, NEW_YORK_SYNC, GATED_SYNC):
        polytrigger.stack.fake.add_sync(sync, kind="model")
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    bootstrap.use_clock(clock, clock.sleep)
    try:
        yield Watch(polytrigger, clock)
    finally:
        bootstrap.use_clock()
        queues.delete()


def test_a_deadline_in_berlins_spring_forward_gap_is_reported_the_instant_the_clocks_jump(watch: Watch) -> None:
    watch.at("2026-03-28T12:00:00")
    watch.fire("berlin-night")  # the wiring's firing: from now on the route's next look is in the table
    (checkpoint,) = watch.items("deadline#berlin-night")
    watch.at("2026-03-29T00:59:59")  # 01:59:59 CET: 02:30 does not exist tonight
    watch.poll()
    missed_before = watch.said("deadline_missed")
    watch.at("2026-03-29T01:00:30")  # 03:00:30 CEST
    watch.poll()
    watch.poll()

    assert checkpoint["due_at"] == "2026-03-29T01:00:00.000000+00:00"  # 02:30 moved to 03:00 CEST
    assert missed_before == []
    assert watch.said("deadline_missed") == [
        "deadline missed: route berlin-night, s3://acme-landing/night/2026-03-29.csv due 03:00 Europe/Berlin"
        " (01:00 UTC): s3://acme-landing/night/2026-03-29.csv has not landed"
    ]


def test_an_ambiguous_berlin_deadline_at_fall_back_takes_the_first_0230(watch: Watch) -> None:
    watch.at("2026-10-24T12:00:00")
    watch.fire("berlin-night")
    watch.at("2026-10-25T00:29:00")  # 02:29 CEST
    watch.poll()
    watch.at("2026-10-25T00:31:00")  # 02:31 CEST, the first 02:30 has passed
    watch.poll()
    watch.at("2026-10-25T01:31:00")  # 02:31 CET, the second: nothing more
    watch.poll()

    assert watch.said("deadline_missed") == [
        "deadline missed: route berlin-night, s3://acme-landing/night/2026-10-25.csv due 02:30 Europe/Berlin"
        " (00:30 UTC): s3://acme-landing/night/2026-10-25.csv has not landed"
    ]


def test_a_new_york_deadline_in_the_spring_forward_gap_is_reported_at_0300_edt(watch: Watch) -> None:
    watch.at("2026-03-07T12:00:00")
    watch.fire("new-york-night")
    watch.at("2026-03-08T06:59:00")  # 01:59 EST; 02:15 does not exist on 2026-03-08
    watch.poll()
    early = watch.said("deadline_missed")
    watch.at("2026-03-08T07:00:10")  # 03:00:10 EDT
    watch.poll()

    assert early == []
    assert watch.said("deadline_missed") == [
        "deadline missed: route new-york-night, s3://acme-landing/ny/2026-03-08.csv due 03:00 America/New_York"
        " (07:00 UTC): s3://acme-landing/ny/2026-03-08.csv has not landed"
    ]


def test_an_ambiguous_new_york_deadline_at_fall_back_takes_the_first_0130(watch: Watch) -> None:
    watch.at("2026-10-31T12:00:00")
    watch.fire("new-york-early")
    watch.at("2026-11-01T05:29:00")  # 01:29 EDT
    watch.poll()
    early = watch.said("deadline_missed")
    watch.at("2026-11-01T05:31:00")  # 01:31 EDT: the first 01:30 has passed
    watch.poll()
    watch.at("2026-11-01T06:31:00")  # 01:31 EST: the second, nothing more
    watch.poll()

    assert early == []
    assert watch.said("deadline_missed") == [
        "deadline missed: route new-york-early, s3://acme-landing/ny-early/2026-11-01.csv due 01:30"
        " America/New_York (05:30 UTC): s3://acme-landing/ny-early/2026-11-01.csv has not landed"
    ]


def test_nothing_is_due_over_a_weekend_and_monday_is_reported_once(watch: Watch) -> None:
    watch.at("2026-12-04T04:00:00")  # Friday 05:00 CET
    watch.fire("orders")
    watch.land("orders/dt=2026-12-04/_SUCCESS")
    for moment in ("2026-12-04T05:20:00", "2026-12-05T05:20:00", "2026-12-06T05:20:00"):
        watch.at(moment)  # Friday on time; Saturday and Sunday nothing due, nothing landed
        watch.poll()
    weekend = watch.said("deadline_missed") + watch.said("deadline_warned")
    watch.at("2026-12-07T04:31:00")  # Monday 05:31 CET: the warning
    watch.poll()
    watch.fire("orders")  # the Scheduler's warn firing comes too: still once
    watch.at("2026-12-07T05:16:00")  # 06:16 CET: past 06:00 + 15 minutes' grace
    watch.fire("orders")
    watch.poll()

    assert weekend == []
    assert watch.said("deadline_warned") == [
        "deadline near: route orders, s3://acme-landing/orders/dt=2026-12-07/_SUCCESS due 06:00 Europe/Berlin"
        " (05:00 UTC): s3://acme-landing/orders/dt=2026-12-07/_SUCCESS has not landed"
    ]
    assert len(watch.said("deadline_missed")) == 1
    assert "route orders, s3://acme-landing/orders/dt=2026-12-07/_SUCCESS due 06:00" in watch.said("deadline_missed")[0]


def test_a_route_whose_syncs_are_paused_raises_nothing_and_says_why(watch: Watch) -> None:
    watch.polytrigger.stack.fake.set_active(NIGHT_SYNC, False)
    watch.at("2026-12-01T12:00:00")
    watch.fire("berlin-night")
    watch.at("2026-12-02T01:31:00")
    watch.poll()
    watch.poll()

    assert watch.said("deadline_missed") == []
    assert watch.said("deadline_skipped") == [
        "deadline skipped: route berlin-night, s3://acme-landing/night/2026-12-02.csv due 02:30 Europe/Berlin"
        " (01:30 UTC): all its syncs are paused in Polytomic"
    ]


def test_a_late_arrival_is_reported_late_once_then_arrived_once(watch: Watch) -> None:
    from polytrigger.deadlines.watch import CHECK_SECONDS

    watch.at("2026-12-01T12:00:00")
    watch.fire("berlin-night")
    watch.at("2026-12-02T01:31:00")
    watch.poll()
    watch.fire("berlin-night")  # a twice-delivered firing, a second poll: still one report
    watch.poll()
    watch.at("2026-12-02T03:00:00")
    watch.land("night/2026-12-02.csv")  # 90 minutes after 02:30 CET
    watch.clock.sleep(CHECK_SECONDS)
    watch.poll()
    watch.clock.sleep(CHECK_SECONDS)
    watch.poll()

    assert len(watch.said("deadline_missed")) == 1
    assert watch.said("arrived_late") == [
        "arrived late: route berlin-night, s3://acme-landing/night/2026-12-02.csv, 90 minutes after its deadline"
    ]
    (late,) = watch.items("late#berlin-night#2026-12-02")
    assert late["state"] == "arrived"
    assert "due_at" not in late  # out of the index
    assert any('"arrived_late":[1.0]' in said for said in watch.polytrigger.guard.said)  # the metric


def test_a_gated_partition_is_due_complete_and_its_completion_is_its_arrival(watch: Watch) -> None:
    from polytrigger.gating.state import gate_id

    table, client = watch.polytrigger.stack.table_name, watch.polytrigger.stack.dynamodb_client()
    watch.at("2026-12-01T12:00:00")
    watch.fire("gated")
    client.put_item(  # the gate has seen files but no marker yet (as the gating code keeps it)
        TableName=table,
        Item={"id": {"S": gate_id("gated", (("date", "2026-12-02"),))}, "version": {"N": "1"}, "objects": {"N": "3"}},
    )
    watch.at("2026-12-02T07:01:00")
    watch.poll()
    client.update_item(
        TableName=table,
        Key={"id": {"S": gate_id("gated", (("date", "2026-12-02"),))}},
        UpdateExpression="SET fired = :one, completed_at = :at",
        ExpressionAttributeValues={":one": {"N": "1"}, ":at": {"S": "2026-12-02T07:30:00+00:00"}},
    )
    watch.clock.sleep(600)
    watch.poll()

    assert watch.said("deadline_missed") == [
        "deadline missed: route gated, partition date=2026-12-02 due 07:00 UTC (07:00 UTC):"
        " marker gated/date=2026-12-02/_SUCCESS missing"
    ]
    assert watch.said("arrived_late") == [
        "arrived late: route gated, partition date=2026-12-02, 30 minutes after its deadline"
    ]


def test_days_missed_while_nothing_looked_are_each_reported_once_at_the_next_firing(watch: Watch) -> None:
    watch.at("2026-12-01T12:00:00")
    watch.fire("berlin-night")
    watch.land("night/2026-12-03.csv")  # Thursday's file came early; Wednesday's and Friday's never
    watch.at("2026-12-04T01:45:00")  # no poll for three nights (the poller was down): one firing
    watch.fire("berlin-night")
    watch.fire("berlin-night")
    watch.poll()

    missed = watch.said("deadline_missed")
    assert len(missed) == 2
    assert "night/2026-12-02.csv due 02:30 Europe/Berlin (01:30 UTC)" in missed[0]
    assert "night/2026-12-04.csv due 02:30 Europe/Berlin (01:30 UTC)" in missed[1]
