"""run(): the actions of one event, one sync after another or several at once; outcomes in action order,
activate_first, and errors raised after the outcomes that were reached. `perform` is a recording double."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrigger.core.actions import Action, ActionKind
from polytrigger.core.outcomes import ActionsFailed, Outcome, Report, Status
from polytrigger.dispatch.fan_out import run
from tests.unit.dispatch_support import OTHER, SYNC, act

THIRD = "c4a1e8f2-3b5d-4e6f-8a9b-1c2d3e4f5a6b"
FOURTH = "d5b2f9a3-4c6e-4f70-9bac-2d3e4f5a6b7c"
SUCCESS: dict[ActionKind, Status] = {"start": "started", "activate": "activated", "deactivate": "deactivated"}
Event = tuple[Literal["perform", "outcome"], Action]
MAIN = threading.current_thread().name


class Recorder:
    """`perform` and `on_outcome` for run(): scripted answers (else success), and what happened, on which thread."""

    def __init__(
        self,
        answers: Mapping[Action, Outcome | Exception] | None = None,
        before: Callable[[Action], None] | None = None,
    ) -> None:
        self.answers = dict(answers or {})
        self.before = before  # called in perform, before answering: to hold or synchronise threads
        self.events: list[Event] = []
        self.threads: dict[Action, str] = {}
        self.emitted: list[tuple[Action, Outcome, str]] = []
        self.emitting_threads: set[str] = set()
        self.prepared: list[int] = []  # how many actions had been performed when prepare ran
        self._lock = threading.Lock()

    def perform(self, action: Action) -> Outcome:
        with self._lock:
            self.events.append(("perform", action))
            self.threads[action] = threading.current_thread().name
        if self.before is not None:
            self.before(action)
        answer = self.answers.get(action, Outcome.of(action, SUCCESS[action.kind]))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def on_outcome(self, action: Action, outcome: Outcome, key: str) -> None:
        with self._lock:
            self.events.append(("outcome", action))
            self.emitted.append((action, outcome, key))
            self.emitting_threads.add(threading.current_thread().name)

    def prepare(self) -> None:
        self.prepared.append(len(self.performed))
        assert threading.current_thread().name == MAIN

    @property
    def performed(self) -> list[Action]:
        return [action for kind, action in self.events if kind == "perform"]


def go(recorder: Recorder, *actions: Action, concurrency: int = 1) -> Report:
    """run() with the recorder; on_outcome must have seen every outcome once, in action order, from this thread."""
    report = run(
        list(actions), recorder.perform, recorder.on_outcome, concurrency=concurrency, prepare=recorder.prepare
    )
    assert recorder.emitted == [(a, o, a.dedup_key) for a, o in zip(actions, report.outcomes, strict=True)]
    assert recorder.emitting_threads <= {MAIN}
    return report


def statuses(report: Report) -> list[tuple[ActionKind, str, Status]]:
    return [(o.action, o.sync_id, o.status) for o in report.outcomes]


def barrier(parties: int) -> Callable[[Action], None]:
    """Hold each perform until `parties` are in progress at once: run one at a time, it breaks, and run raises."""
    gate = threading.Barrier(parties, timeout=5)

    def wait(_action: Action) -> None:
        gate.wait()

    return wait


# -- outcomes and the report --------------------------------------------------------------------


def test_no_actions_no_calls() -> None:
    recorder = Recorder()
    report = go(recorder)
    assert (report.outcomes, report.retryable, recorder.events, recorder.prepared) == ([], [], [], [])


def test_every_action_is_performed_once_and_its_outcome_reported_in_order() -> None:
    actions = [act("activate"), act("start"), act("deactivate", "bulk", sync_id=OTHER), act("start", sync_id=THIRD)]
    recorder = Recorder()
    report = go(recorder, *actions)
    assert recorder.performed == actions
    assert statuses(report) == [
        ("activate", SYNC, "activated"),
        ("start", SYNC, "started"),
        ("deactivate", OTHER, "deactivated"),
        ("start", THIRD, "started"),
    ]
    assert report.retryable == []


def test_a_failed_action_does_not_stop_the_next_one() -> None:
    first, second = act(), act("deactivate", sync_id=OTHER)
    refused = Outcome.of(first, "failed", reason="Polytomic answered 404: not found")
    recorder = Recorder({first: refused})
    report = go(recorder, first, second)
    assert statuses(report) == [("start", SYNC, "failed"), ("deactivate", OTHER, "deactivated")]
    assert recorder.performed == [first, second]


def test_report_summary_and_actions_failed_message() -> None:
    busy, refused, paused = act(), act(sync_id=OTHER), act("deactivate", "bulk")
    recorder = Recorder(
        {
            busy: Outcome.of(
                busy, "failed", reason="Polytomic answered 503: busy; the event will be retried", retryable=True
            ),
            refused: Outcome.of(refused, "failed", reason="nope"),
        }
    )
    report = go(recorder, busy, refused, paused)
    summary = report.summary()["outcomes"]
    assert [o["status"] for o in summary] == ["failed", "failed", "deactivated"]
    assert summary == [o.to_dict() for o in report.outcomes]
    assert all("retryable" not in o for o in summary)
    assert [o.sync_id for o in report.retryable] == [SYNC]
    error = ActionsFailed(report)
    assert str(error) == (
        f"1 action(s) failed and will be retried: start {SYNC} (orders-landing): "
        "Polytomic answered 503: busy; the event will be retried"
        f"; and 1 refused: start {OTHER} (orders-landing): nope"
    )
    assert error.report is report


def test_report_extend() -> None:
    a = Report(outcomes=[Outcome.of(act(), "started")])
    failed = Outcome.of(act(), "failed", reason="r", retryable=True)
    b = Report(outcomes=[failed], retryable=[failed])
    a.extend(b)
    assert [o.status for o in a.outcomes] == ["started", "failed"]
    assert a.retryable == [failed]


# -- activate_first -----------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 4])
def test_activate_first_activates_then_starts(concurrency: int) -> None:
    recorder = Recorder()
    activate, start = act("activate", activate_first=True), act("start", activate_first=True)
    report = go(recorder, activate, start, concurrency=concurrency)
    assert [o.status for o in report.outcomes] == ["activated", "started"]
    assert recorder.performed == [activate, start]


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("retryable", [False, True])
def test_a_failed_activate_skips_its_start(retryable: bool, concurrency: int) -> None:
    activate, start = act("activate", activate_first=True), act("start", activate_first=True)
    other = act("start", sync_id=OTHER, activate_first=True)  # another sync's start is not held back
    failed = Outcome.of(activate, "failed", reason="Polytomic answered 404: not found", retryable=retryable)
    recorder = Recorder({activate: failed})
    report = go(recorder, activate, start, other, concurrency=concurrency)
    assert statuses(report) == [
        ("activate", SYNC, "failed"),
        ("start", SYNC, "failed"),
        ("start", OTHER, "started"),
    ]
    assert report.outcomes[1].reason == "not started: activating the sync first failed"
    assert [o.retryable for o in report.outcomes[:2]] == [retryable, retryable]  # a retry does both again
    order = [activate, start, other]
    assert sorted(recorder.performed, key=order.index) == [activate, other]  # the start never ran


def test_a_failed_activate_does_not_skip_starts_without_activate_first() -> None:
    activate, start = act("activate"), act("start")
    recorder = Recorder({activate: Outcome.of(activate, "failed", reason="404")})
    report = go(recorder, activate, start)
    assert [o.status for o in report.outcomes] == ["failed", "started"]
    assert recorder.performed == [activate, start]


def test_an_activate_first_start_after_a_successful_activate_runs() -> None:
    start = act("start", activate_first=True)
    report = go(Recorder(), act("activate", activate_first=True), start)
    assert report.outcomes[1] == Outcome.of(start, "started")


# -- several syncs at once ----------------------------------------------------------------------


def test_different_syncs_run_at_once_on_the_pool_after_prepare() -> None:
    actions = [act(), act(sync_id=OTHER)]
    recorder = Recorder(before=barrier(2))
    report = go(recorder, *actions, concurrency=2)
    assert [o.status for o in report.outcomes] == ["started", "started"]
    assert recorder.prepared == [0]  # once, on this thread, before anything ran
    names = set(recorder.threads.values())
    assert len(names) == 2
    assert all(name.startswith("polytrigger-run") for name in names)


def test_one_syncs_actions_run_in_order_on_one_thread() -> None:
    actions = [
        act("activate", activate_first=True),
        act("deactivate", sync_id=OTHER),
        act("start", activate_first=True),
        act("activate", sync_id=OTHER),
        act("start", sync_id=OTHER),
        act("deactivate"),
    ]
    recorder = Recorder()
    go(recorder, *actions, concurrency=4)
    for sync in (SYNC, OTHER):
        mine = [a for a in actions if a.sync.id == sync]
        assert [a for a in recorder.performed if a.sync.id == sync] == mine
        assert len({recorder.threads[a] for a in mine}) == 1


def test_outcomes_come_in_action_order_whatever_finishes_first() -> None:
    slow, fast = act(), act(sync_id=OTHER)
    fast_done = threading.Event()

    def hold(action: Action) -> None:
        if action == slow:
            assert fast_done.wait(timeout=5)
        else:
            fast_done.set()

    recorder = Recorder(before=hold)
    report = go(recorder, slow, fast, concurrency=2)
    assert [o.sync_id for o in report.outcomes] == [SYNC, OTHER]
    assert [kind for kind, _ in recorder.events] == ["perform", "perform", "outcome", "outcome"]  # after all finished


def test_no_more_syncs_at_once_than_the_concurrency() -> None:
    actions = [act(sync_id=sync) for sync in (SYNC, OTHER, THIRD, FOURTH)]
    lock, pair = threading.Lock(), barrier(2)
    now, most = 0, 0  # actions in progress; the most at once

    def hold(action: Action) -> None:
        nonlocal now, most
        with lock:
            now += 1
            most = max(most, now)
        pair(action)  # at least two at once
        time.sleep(0.05)  # long enough for a third to begin, were one allowed
        with lock:
            now -= 1

    recorder = Recorder(before=hold)
    go(recorder, *actions, concurrency=2)
    assert most == 2
    assert len(set(recorder.threads.values())) == 2
    assert sorted(recorder.performed, key=actions.index) == actions


@pytest.mark.parametrize(
    ("actions", "concurrency"),
    [
        ([act(), act("deactivate", sync_id=OTHER)], 1),  # one at a time
        ([act("activate"), act(), act("deactivate")], 4),  # one sync: nothing to run at once
    ],
)
def test_one_at_a_time_everything_runs_on_this_thread_and_is_reported_as_it_finishes(
    actions: list[Action], concurrency: int
) -> None:
    """An outcome is logged as soon as its action is done, so a timeout keeps what was logged."""
    recorder = Recorder()
    go(recorder, *actions, concurrency=concurrency)
    assert set(recorder.threads.values()) == {MAIN}
    assert recorder.prepared == []
    assert recorder.events == [(kind, a) for a in actions for kind in ("perform", "outcome")]


# -- errors (bugs): raised after the outcomes that were reached ---------------------------------


def test_one_at_a_time_an_error_stops_the_rest_and_is_raised_after_the_outcomes_before_it() -> None:
    first, broken, never = act(), act(sync_id=OTHER), act(sync_id=THIRD)
    bug = RuntimeError("a bug")
    recorder = Recorder({broken: bug})
    with pytest.raises(RuntimeError) as raised:
        run([first, broken, never], recorder.perform, recorder.on_outcome)
    assert raised.value is bug
    assert recorder.performed == [first, broken]
    assert [(a, o.status) for a, o, _ in recorder.emitted] == [(first, "started")]


def test_at_once_an_error_stops_its_sync_and_is_raised_after_every_sync_finished() -> None:
    a1, a2, a3 = act("activate"), act("start"), act("deactivate")
    b1, b2 = act(sync_id=OTHER), act("deactivate", sync_id=OTHER)
    bug = RuntimeError("a bug")
    a2_failed = threading.Event()

    def hold(action: Action) -> None:
        if action == b2:  # the other sync is still running when this one's error happens
            assert a2_failed.wait(timeout=5)

    recorder = Recorder({a2: bug}, before=hold)
    original = recorder.perform

    def perform(action: Action) -> Outcome:
        try:
            return original(action)
        finally:
            if action == a2:
                a2_failed.set()

    with pytest.raises(RuntimeError) as raised:
        run([a1, b1, a2, b2, a3], perform, recorder.on_outcome, concurrency=2)
    assert raised.value is bug
    assert a3 not in recorder.performed
    assert [a for a, _, _ in recorder.emitted] == [a1, b1, b2]  # what was reached, in action order
    assert recorder.emitting_threads == {MAIN}


# -- properties ---------------------------------------------------------------------------------

SYNCS = (SYNC, OTHER, THIRD, FOURTH)


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(st.tuples(st.sampled_from(SYNCS), st.sampled_from(["start", "activate", "deactivate"])), max_size=8),
    concurrency=st.integers(min_value=1, max_value=4),
)
def test_any_plan_is_done_once_per_action_in_order_per_sync(
    plan: list[tuple[str, ActionKind]], concurrency: int
) -> None:
    actions = [act(kind, sync_id=sync, route=f"step-{n}") for n, (sync, kind) in enumerate(plan)]
    recorder = Recorder()
    report = go(recorder, *actions, concurrency=concurrency)
    assert report.outcomes == [Outcome.of(a, SUCCESS[a.kind]) for a in actions]
    assert sorted(recorder.performed, key=actions.index) == actions  # each once
    for sync in SYNCS:
        assert [a for a in recorder.performed if a.sync.id == sync] == [a for a in actions if a.sync.id == sync]
    assert recorder.prepared == ([0] if concurrency > 1 and len({a.sync.id for a in actions}) > 1 else [])
