"""The schedule handler: starts, activations and pauses reach Polytomic with the right bodies."""

from __future__ import annotations

import pytest

from tests.integration.support import ORDERS_MODEL, WAREHOUSE_BULK, Invoker, load_event, per_sync, posts


def test_nightly_activates_then_resyncs(polytrigger: Invoker) -> None:
    fake = polytrigger.stack.fake
    fake.set_active(ORDERS_MODEL, False)  # paused: activate_first must switch it on before the start

    summary = polytrigger.schedule(load_event("scheduler-input-nightly.json"))

    assert [(call.path, call.body) for call in posts(fake)] == [
        (f"/api/syncs/{ORDERS_MODEL}/activate", {"active": True}),
        (f"/api/syncs/{ORDERS_MODEL}/executions", {"resync": True}),
    ]
    assert [(o["action"], o["status"]) for o in summary["outcomes"]] == [
        ("activate", "activated"),
        ("start", "started"),
    ]
    assert summary["outcomes"][1]["execution_id"] == fake.executions(ORDERS_MODEL)[0].id
    assert fake.sync(ORDERS_MODEL).active is True


def test_freeze_deactivates_both_syncs(polytrigger: Invoker) -> None:
    fake = polytrigger.stack.fake

    summary = polytrigger.schedule(load_event("scheduler-input-freeze.json"))

    assert per_sync([(call.path, call.body) for call in posts(fake)]) == per_sync(
        [
            (f"/api/syncs/{ORDERS_MODEL}/activate", {"active": False}),
            (f"/api/bulk/syncs/{WAREHOUSE_BULK}/activate", {"active": False}),
        ]
    )
    assert [o["status"] for o in summary["outcomes"]] == ["deactivated", "deactivated"]
    assert not fake.sync(ORDERS_MODEL).active
    assert not fake.sync(WAREHOUSE_BULK).active
    assert all(call.headers["idempotency-key"] for call in posts(fake))


def test_thaw_activates_both_syncs(polytrigger: Invoker) -> None:
    fake = polytrigger.stack.fake
    fake.set_active(ORDERS_MODEL, False)
    fake.set_active(WAREHOUSE_BULK, False)

    summary = polytrigger.schedule(load_event("scheduler-input-thaw.json"))

    assert per_sync([(call.path, call.body) for call in posts(fake)]) == per_sync(
        [
            (f"/api/syncs/{ORDERS_MODEL}/activate", {"active": True}),
            (f"/api/bulk/syncs/{WAREHOUSE_BULK}/activate", {"active": True}),
        ]
    )
    assert [o["status"] for o in summary["outcomes"]] == ["activated", "activated"]
    assert fake.sync(ORDERS_MODEL).active
    assert fake.sync(WAREHOUSE_BULK).active


@pytest.mark.parametrize("name", ["eventbridge-scheduled-event.json", "scheduler-scheduled-event.json"])
def test_envelopes_are_the_same_occurrence_as_the_scheduler_input(polytrigger: Invoker, name: str) -> None:
    first = polytrigger.schedule(load_event("scheduler-input-nightly.json"))
    again = polytrigger.schedule(load_event(name))

    assert [o["status"] for o in first["outcomes"]] == ["activated", "started"]
    assert [o["status"] for o in again["outcomes"]] == ["duplicate", "duplicate"]
    assert again["outcomes"][1]["execution_id"] == first["outcomes"][1]["execution_id"]
    assert len(posts(polytrigger.stack.fake)) == 2


def test_a_schedule_no_route_names_calls_nothing(polytrigger: Invoker) -> None:
    summary = polytrigger.schedule({"schedule": "hourly", "time": "2026-11-23T03:00:00Z"})

    assert summary == {"outcomes": []}
    assert polytrigger.stack.fake.calls == []
