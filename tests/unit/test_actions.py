"""Actions (their dedup keys) and outcomes (their summary form)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polytrigger.core.actions import Action, SyncTarget
from polytrigger.core.outcomes import STATUSES, Outcome
from polytrigger.core.triggers import Trigger

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
OTHER = "7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"
WHEN = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,255}$")  # polytomic-api.md, "Idempotency-Key"


def upload(
    *,
    bucket: str = "acme-landing",
    key: str = "orders/a.csv",
    event: str = "created",
    sequencer: str = "0055AED6DCD90281E5",
    time: datetime = WHEN,
) -> Trigger:
    return Trigger.s3(bucket=bucket, key=key, event=event, sequencer=sequencer, time=time)  # type: ignore[arg-type]


def action(
    trigger: Trigger | None = None,
    *,
    kind: str = "start",
    sync_type: str = "model",
    sync_id: str = SYNC,
    route: str = "r",
) -> Action:
    return Action(
        route=route,
        kind=kind,  # type: ignore[arg-type]
        sync=SyncTarget(id=sync_id, type=sync_type),  # type: ignore[arg-type]
        trigger=trigger or upload(),
    )


def test_dedup_key_is_64_hex_chars_and_fits_the_idempotency_key_header() -> None:
    key = action().dedup_key
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert IDEMPOTENCY_KEY.fullmatch(key)
    assert IDEMPOTENCY_KEY.fullmatch(f"{key}-r1")


def test_dedup_key_is_stable() -> None:
    assert action().dedup_key == action().dedup_key
    assert action().dedup_key == action(upload()).dedup_key
    # pinned: a change of derivation would silently re-run every action remembered in DynamoDB
    assert action().dedup_key == "f6e9d41eb476beaff7fba12cb5ccd4e89951e272801b7054becddbee4482193a"


def test_dedup_key_ignores_the_route_name_and_activate_first() -> None:
    elsewhere = Action(route="other", kind="start", sync=SyncTarget(id=SYNC, activate_first=True), trigger=upload())
    assert elsewhere.dedup_key == action().dedup_key


def test_a_start_with_options_is_another_action_than_the_plain_start() -> None:
    """A plain route and a resync route on one sync once shared a key, and the resync was dropped."""
    resync = Action(route="full", kind="start", sync=SyncTarget(id=SYNC, options=(("resync", True),)), trigger=upload())
    assert resync.dedup_key != action().dedup_key
    assert resync.dedup_scope != action().dedup_scope
    test_run = Action(route="t", kind="start", sync=SyncTarget(id=SYNC, options=(("test", True),)), trigger=upload())
    assert len({resync.dedup_key, test_run.dedup_key, action().dedup_key}) == 3


@pytest.mark.parametrize(
    "changed",
    [
        action(upload(bucket="acme-other")),
        action(upload(key="orders/b.csv")),
        action(upload(event="deleted")),
        action(upload(sequencer="0055AED6DCD90281E6")),
        action(kind="activate"),
        action(kind="deactivate"),
        action(sync_type="bulk"),
        action(sync_id=OTHER),
        action(Trigger.scheduled(schedule="nightly", time=WHEN)),
    ],
)
def test_dedup_key_differs_when_any_part_differs(changed: Action) -> None:
    assert changed.dedup_key != action().dedup_key


def test_same_upload_has_same_key_whatever_the_time_precision_or_zone() -> None:
    keys = {
        action(upload(time=WHEN)).dedup_key,
        action(upload(time=WHEN.replace(microsecond=123000))).dedup_key,  # notification: milliseconds
        action(upload(time=WHEN + timedelta(seconds=1))).dedup_key,  # EventBridge: seconds, a bit later
        action(upload(time=WHEN.astimezone(timezone(timedelta(hours=2))))).dedup_key,
    }
    assert len(keys) == 1


def test_a_new_upload_of_the_same_key_has_a_new_dedup_key() -> None:
    assert action(upload(sequencer="01")).dedup_key != action(upload(sequencer="02")).dedup_key


def test_schedule_identity_is_name_and_time_to_the_second_in_utc() -> None:
    base = Trigger.scheduled(schedule="nightly", time=WHEN)
    same = [
        Trigger.scheduled(schedule="nightly", time=WHEN.replace(microsecond=999999)),
        Trigger.scheduled(schedule="nightly", time=WHEN.astimezone(timezone(timedelta(hours=-5)))),
    ]
    different = [
        Trigger.scheduled(schedule="nightly", time=WHEN + timedelta(days=1)),
        Trigger.scheduled(schedule="freeze", time=WHEN),
    ]
    assert all(action(t).dedup_key == action(base).dedup_key for t in same)
    assert all(action(t).dedup_key != action(base).dedup_key for t in different)


@given(
    bucket=st.text(min_size=1, max_size=40),
    key=st.text(min_size=1, max_size=200),
    event=st.sampled_from(["created", "deleted"]),
    sequencer=st.text(alphabet="0123456789ABCDEF", min_size=0, max_size=20),
    kind=st.sampled_from(["start", "activate", "deactivate"]),
    sync_type=st.sampled_from(["model", "bulk"]),
)
def test_every_dedup_key_is_a_valid_idempotency_key(
    *, bucket: str, key: str, event: str, sequencer: str, kind: str, sync_type: str
) -> None:
    trigger = upload(bucket=bucket, key=key, event=event, sequencer=sequencer)
    dedup_key = action(trigger, kind=kind, sync_type=sync_type).dedup_key
    assert re.fullmatch(r"[0-9a-f]{64}", dedup_key)


def test_dedup_scope_is_action_sync_and_options() -> None:
    scope = action(kind="activate", sync_type="bulk").dedup_scope
    assert scope[:3] == ("activate", "bulk", SYNC)
    assert scope == action(kind="activate", sync_type="bulk").dedup_scope


def test_sync_target_body_turns_tuples_into_lists() -> None:
    target = SyncTarget(id=SYNC, type="bulk", options=(("schemas", ("a", "b")), ("fetch_mode", "full")))
    assert target.body() == {"schemas": ["a", "b"], "fetch_mode": "full"}
    assert SyncTarget(id=SYNC).body() == {}


# -- outcomes -----------------------------------------------------------------------------------


def test_outcome_to_dict_omits_empty_execution_id_and_reason() -> None:
    outcome = Outcome.of(action(), "started", execution_id="", reason="")
    assert outcome.to_dict() == {
        "route": "r",
        "sync_id": SYNC,
        "sync_type": "model",
        "action": "start",
        "status": "started",
    }
    assert "execution_id" not in Outcome.of(action(), "activated").to_dict()


def test_outcome_to_dict_includes_execution_id_and_reason_when_set() -> None:
    outcome = Outcome.of(action(kind="start", sync_type="bulk"), "started", execution_id="e-1", reason="because")
    assert outcome.to_dict() == {
        "route": "r",
        "sync_id": SYNC,
        "sync_type": "bulk",
        "action": "start",
        "status": "started",
        "execution_id": "e-1",
        "reason": "because",
    }


def test_outcome_to_dict_never_includes_retryable() -> None:
    outcome = Outcome.of(action(), "failed", reason="429; the event will be retried", retryable=True)
    assert outcome.retryable is True
    assert "retryable" not in outcome.to_dict()
    assert set(outcome.to_dict()) == {"route", "sync_id", "sync_type", "action", "status", "reason"}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize(("execution_id", "reason"), [(None, None), ("e-1", None), (None, "r"), ("e-1", "r")])
def test_outcome_round_trips_through_its_dict(status: Any, execution_id: str | None, reason: str | None) -> None:
    outcome = Outcome.of(action(kind="deactivate"), status, execution_id=execution_id, reason=reason)
    again = Outcome.from_dict(outcome.to_dict())
    assert again == outcome
    assert again.to_dict() == outcome.to_dict()


def test_from_dict_ignores_extra_fields_and_is_not_retryable() -> None:
    data = {**Outcome.of(action(), "duplicate", reason="already started for this trigger").to_dict(), "other": 1}
    outcome = Outcome.from_dict(data)
    assert outcome.status == "duplicate"
    assert outcome.retryable is False


def test_outcome_of_copies_route_sync_and_action() -> None:
    outcome = Outcome.of(action(route="nightly-full", kind="activate", sync_type="bulk", sync_id=OTHER), "activated")
    assert (outcome.route, outcome.sync_id, outcome.sync_type, outcome.action, outcome.status) == (
        "nightly-full",
        OTHER,
        "bulk",
        "activate",
        "activated",
    )
