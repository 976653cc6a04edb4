"""Debounce windows on DynamoDB Local whose message went missing, and how long a window item is kept.

A crash between opening a window and sending its message, or a message lost later, must never
leave files absorbed into a window that will not start. The tests run on the stack's clock.
"""

from __future__ import annotations

import os
from typing import Any

from polytrigger.dispatch.deferrals import OVERDUE_WINDOW_SECONDS, UNCONFIRMED_WINDOW_SECONDS, window_id
from polytrigger.dispatch.ports import Window
from polytrigger.dispatch.windows import DynamoWindows
from polytrigger.events import s3_triggers
from polytrigger.routing import load_routes
from tests.integration.dispatch_support import BURST_SYNC, DEBOUNCE, Dispatch, s3_file, statuses, uncovered


def windows(dispatch: Dispatch) -> DynamoWindows:
    stack = dispatch.stack
    return DynamoWindows(stack.dynamodb_client(), stack.table_name, ttl_seconds=3600)


def burst_window() -> str:
    """The window id of the `burst` route's action on any of its files."""
    routes = load_routes(os.environ["ROUTES_FILE"])
    (action,) = routes.actions_for(s3_triggers(s3_file("burst/probe.csv").event))
    return window_id(action)


def item(dispatch: Dispatch, wid: str) -> dict[str, Any] | None:
    answer = dispatch.stack.dynamodb_client().get_item(TableName=dispatch.stack.table_name, Key={"id": {"S": wid}})
    found: dict[str, Any] | None = answer.get("Item")
    return found


def test_an_opener_that_died_before_sending_leaves_a_window_the_next_file_repairs(dispatch: Dispatch) -> None:
    """The opener opened the window and died before its message went out: the next file re-sends it."""
    wid = burst_window()
    opened = dispatch.now() - UNCONFIRMED_WINDOW_SECONDS - 1
    assert windows(dispatch).open(Window(wid, opened, opened, opened + 300, 1))  # and nothing on the queue

    file, answer = dispatch.upload("burst/late.csv")

    assert statuses(answer) == ["coalesced"]
    assert answer["outcomes"][0]["reason"].endswith("whose message was not confirmed: sent it again")
    stored = item(dispatch, wid)
    assert stored is not None
    assert stored["sent"] == {"BOOL": True}
    deliveries = dispatch.pump.drain(timeout=15)
    outcomes = [o["status"] for d in deliveries for o in d.outcomes]
    assert outcomes.count("started") == 1
    assert uncovered(dispatch.stack, BURST_SYNC, [file]) == []
    assert item(dispatch, wid) is None  # closed


def test_a_window_whose_flush_is_long_overdue_is_replaced_and_its_files_are_covered(dispatch: Dispatch) -> None:
    """Its message was lost (a purge): a file landing later opens a new window instead of joining it."""
    wid = burst_window()
    lost = dispatch.now() - OVERDUE_WINDOW_SECONDS - 600
    assert windows(dispatch).open(Window(wid, lost, lost, lost + 300, 7))
    windows(dispatch).confirm(wid, lost)

    file, answer = dispatch.upload("burst/after-the-loss.csv")

    assert statuses(answer) == ["deferred"]  # a new window, with its own message
    deliveries = dispatch.pump.drain(timeout=15)
    assert [o["status"] for d in deliveries for o in d.outcomes] == ["started"]
    assert uncovered(dispatch.stack, BURST_SYNC, [file]) == []


def test_a_window_is_kept_at_least_until_its_deadline_whatever_the_dedup_ttl(dispatch: Dispatch) -> None:
    """A window item expires with its deadline plus the dedup TTL, never with the TTL alone (which can be
    shorter than max_wait)."""
    store = DynamoWindows(dispatch.stack.dynamodb_client(), dispatch.stack.table_name, ttl_seconds=60)
    now = dispatch.now()
    deadline = now + 7200  # a two-hour max_wait
    assert store.open(Window("polytrigger#window#" + "a" * 64, now, now, deadline, 1))

    stored = item(dispatch, "polytrigger#window#" + "a" * 64)

    assert stored is not None
    assert int(stored["expiration"]["N"]) == int(deadline) + 60


def test_the_dynamodb_window_store_agrees_with_the_memory_one_on_what_is_overdue(dispatch: Dispatch) -> None:
    store, wid, now = windows(dispatch), "polytrigger#window#" + "b" * 64, dispatch.now()
    assert store.open(Window(wid, now - 400, now - 400, now + 100, 1))  # quiet since 400 s: due at -400 + debounce

    assert store.absorb(wid, now, debounce=DEBOUNCE, overdue_before=now - 400 + DEBOUNCE + 1) is None
    joined = store.absorb(wid, now, debounce=DEBOUNCE, overdue_before=now - 400 + DEBOUNCE)
    assert joined == Window(wid, now - 400, now, now + 100, 2, sent=False)
    store.confirm(wid, now - 1)  # another window's opener: no effect
    assert store.get(wid) == joined
    store.confirm(wid, now - 400)
    assert store.get(wid) == Window(wid, now - 400, now, now + 100, 2, sent=True)
