"""Debounce windows cannot swallow files: no window without its message, no absorbing into a dead one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from polytrigger.actions import Action, SyncTarget
from polytrigger.deferral import STALE_WINDOW_SECONDS, Deferrals
from polytrigger.triggers import Trigger
from polytrigger.windows import MemoryWindows, Window, window_id

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"


class Queue:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []
        self.fail = fail

    def send(self, body: dict[str, Any], delay_seconds: int) -> None:
        if self.fail:
            raise ConnectionError("queue unreachable")
        self.sent.append((body, delay_seconds))

    def park(self, body: dict[str, Any], reason: str) -> None:
        raise AssertionError("nothing is parked here")


def action(key: str = "orders/a.csv") -> Action:
    trigger = Trigger.s3(bucket="acme-landing", key=key, event="created", sequencer="01", time=datetime.now(UTC))
    return Action(route="orders", kind="start", sync=SyncTarget(id=SYNC), trigger=trigger, debounce=60, max_wait=300)


def test_a_window_whose_message_could_not_be_queued_is_closed_again() -> None:
    windows, now = MemoryWindows(), 1_000_000.0
    deferrals = Deferrals(Queue(fail=True), windows, max_age=21600, clock=lambda: now)

    with pytest.raises(ConnectionError):
        deferrals.debounce(action())

    assert windows.windows == {}  # the retry of this trigger will open a window, not join a dead one


def test_a_stale_window_is_replaced_not_joined() -> None:
    windows, queue, now = MemoryWindows(), Queue(), 1_000_000.0
    wid = window_id(action())
    lost = now - STALE_WINDOW_SECONDS - 400
    windows.open(Window(wid, lost, lost, lost + 300, 7))  # its message never came
    deferrals = Deferrals(queue, windows, max_age=21600, clock=lambda: now)

    outcome = deferrals.debounce(action("orders/b.csv"))

    assert outcome.status == "deferred"
    assert windows.windows[wid].opened_at == now
    assert [delay for _, delay in queue.sent] == [60]


def test_a_live_window_is_joined() -> None:
    windows, queue, now = MemoryWindows(), Queue(), 1_000_000.0
    deferrals = Deferrals(queue, windows, max_age=21600, clock=lambda: now)

    first = deferrals.debounce(action("orders/a.csv"))
    second = deferrals.debounce(action("orders/b.csv"))

    assert (first.status, second.status) == ("deferred", "coalesced")
    assert len(queue.sent) == 1
    assert windows.windows[window_id(action())].count == 2


def test_a_resync_is_not_absorbed_into_a_plain_window() -> None:
    plain = action()
    resync = Action(
        route="nightly",
        kind="start",
        sync=SyncTarget(id=SYNC, options=(("resync", True),)),
        trigger=plain.trigger,
        debounce=60,
        max_wait=300,
    )
    assert window_id(plain) != window_id(resync)


@pytest.mark.parametrize(
    ("options", "coverable"),
    [
        ((), True),
        ((("fetch_mode", "incremental"),), True),
        ((("schemas", ("public.a",)),), True),
        ((("resync", False),), True),
        ((("resync", True),), False),
        ((("test", True),), False),
        ((("identities", ("a",)),), False),
        ((("resync_mode", "refetch"),), False),
        ((("fetch_mode", "full"),), False),
    ],
)
def test_only_a_plain_start_can_be_covered_by_another_run(options: tuple[Any, ...], coverable: bool) -> None:
    assert SyncTarget(id=SYNC, options=options).coverable is coverable
