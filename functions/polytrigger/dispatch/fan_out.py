"""The actions of one event: one sync after another or several syncs at once, outcomes in action order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome, Report

Perform = Callable[[Action], Outcome]
OutcomeSink = Callable[[Action, Outcome, str], None]  # the key is the Idempotency-Key the action used


def run(
    actions: Sequence[Action],
    perform: Perform,
    on_outcome: OutcomeSink,
    *,
    concurrency: int = 1,
    prepare: Callable[[], None] | None = None,
) -> Report:
    """Perform every action; outcomes (and `on_outcome`) come in action order, whatever ran first.

    Actions on one sync (same type and id) run one after another, in action order, so a start
    with `activate_first` always follows its activate; different syncs run in parallel, at most
    `concurrency` at a time (`prepare` runs first, on this thread). With `concurrency` 1 (or one
    sync) everything runs on this thread. An unexpected error is raised once every sync has finished,
    after the outcomes that were reached.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for index, action in enumerate(actions):
        groups.setdefault((action.sync.type, action.sync.id), []).append(index)
    outcomes: list[Outcome | None] = [None] * len(actions)
    report = Report()

    def emit(index: int) -> None:
        outcome = outcomes[index]
        if outcome is not None:  # None only after an unexpected error, raised below
            report.add(outcome)
            on_outcome(actions[index], outcome, actions[index].dedup_key)

    if concurrency <= 1 or len(groups) <= 1:  # as each finishes: a timeout keeps what was logged
        error = _run_group(actions, range(len(actions)), perform, outcomes, emit)
    else:  # all finished: in action order, from this thread
        if prepare is not None:
            prepare()
        workers = min(concurrency, len(groups))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="polytrigger-run") as pool:
            futures = [pool.submit(_run_group, actions, group, perform, outcomes) for group in groups.values()]
            errors = [future.result() for future in futures]  # every group finishes: nothing runs past the answer
        error = next((error for error in errors if error is not None), None)
        for index in range(len(actions)):
            emit(index)
    if error is not None:
        raise error
    return report


def _run_group(
    actions: Sequence[Action],
    indices: Iterable[int],
    perform: Perform,
    outcomes: list[Outcome | None],
    done: Callable[[int], None] | None = None,
) -> BaseException | None:
    """One sync's actions in order; a start is not tried once activating its sync first has failed."""
    not_activated: dict[tuple[str, str], Outcome] = {}
    try:
        for index in indices:
            action = actions[index]
            target = (action.sync.type, action.sync.id)
            blocked = not_activated.get(target) if action.kind == "start" and action.sync.activate_first else None
            if blocked is not None:
                outcome = Outcome.of(
                    action,
                    "failed",
                    reason="not started: activating the sync first failed",
                    retryable=blocked.retryable,
                )
            else:
                outcome = perform(action)
            if action.kind == "activate" and outcome.status == "failed":
                not_activated[target] = outcome
            outcomes[index] = outcome
            if done is not None:
                done(index)
    except Exception as error:  # reported after the outcomes that were reached
        return error
    return None
