"""Outcomes: what came of one action. The unit of the handlers' summary, the logs and the metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from polytrigger.core.actions import Action, ActionKind, SyncType

Status = Literal[
    "started",
    "activated",
    "deactivated",
    "duplicate",
    "already_running",
    "deferred",
    "coalesced",
    "covered",
    "held",
    "failed",
]

STATUSES: tuple[Status, ...] = get_args(Status)


@dataclass(frozen=True, slots=True)
class Outcome:
    route: str
    sync_id: str
    sync_type: SyncType
    action: ActionKind
    status: Status
    execution_id: str | None = None
    reason: str | None = None
    retryable: bool = field(default=False, compare=False)  # failed, and a later attempt can fix it
    parked: bool = field(default=False, compare=False)  # failed, and put where a person looks, with the reason
    # epoch seconds: the run this outcome names was created at or after it (the coverage bound of the
    # start's triggers), so a file that landed by then is in that run; set by the dispatch policy
    since: float | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        action: Action,
        status: Status,
        *,
        execution_id: str | None = None,
        reason: str | None = None,
        retryable: bool = False,
        parked: bool = False,
        since: float | None = None,
    ) -> Outcome:
        return cls(
            route=action.route,
            sync_id=action.sync.id,
            sync_type=action.sync.type,
            action=action.kind,
            status=status,
            execution_id=execution_id,
            reason=reason,
            retryable=retryable,
            parked=parked,
            since=since,
        )

    def to_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "route": self.route,
            "sync_id": self.sync_id,
            "sync_type": self.sync_type,
            "action": self.action,
            "status": self.status,
        }
        if self.execution_id:
            summary["execution_id"] = self.execution_id
        if self.reason:
            summary["reason"] = self.reason
        if self.parked:
            summary["parked"] = True
        return summary

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            route=data["route"],
            sync_id=data["sync_id"],
            sync_type=data["sync_type"],
            action=data["action"],
            status=data["status"],
            execution_id=data.get("execution_id"),
            reason=data.get("reason"),
            parked=data.get("parked") is True,
        )

    def as_parked(self, where: str) -> Outcome:
        """This failure, parked: the reason says where, so the on-call engineer knows where to look."""
        return replace(self, reason=f"{self.reason}; parked in {where}", parked=True, retryable=False)


@dataclass(slots=True)
class Report:
    """The outcomes of one event (or one queued message), in action order, and which of them a retry can fix."""

    outcomes: list[Outcome] = field(default_factory=list)
    retryable: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.retryable:
            self.retryable.append(outcome)

    def extend(self, other: Report) -> None:
        self.outcomes.extend(other.outcomes)
        self.retryable.extend(other.retryable)

    @property
    def to_park(self) -> list[Outcome]:
        """The failures a retry cannot fix and that are not parked yet: they must be, before acknowledging."""
        return [o for o in self.outcomes if o.status == "failed" and not o.retryable and not o.parked]

    def parked_in(self, where: str, which: Callable[[Outcome], bool]) -> Report:
        """This report once its outcomes `which` selects are parked in `where` (the rest as they were)."""
        parked = Report()
        for outcome in self.outcomes:
            parked.add(outcome.as_parked(where) if which(outcome) else outcome)
        return parked

    def summary(self) -> dict[str, Any]:
        return {"outcomes": [outcome.to_dict() for outcome in self.outcomes]}


def reasons(outcomes: list[Outcome]) -> str:
    """What went wrong, one action after another: `start <sync> (<route>): <reason>; ...`."""
    return "; ".join(f"{o.action} {o.sync_id} ({o.route}): {o.reason}" for o in outcomes)


class ActionsFailed(RuntimeError):
    """Raised so AWS retries the event (or returns the SQS record); only the failed actions run again."""

    def __init__(self, report: Report) -> None:
        message = f"{len(report.retryable)} action(s) failed and will be retried: {reasons(report.retryable)}"
        if report.to_park:  # done again by the retry, and parked with the event if they still fail
            message += f"; and {len(report.to_park)} refused: {reasons(report.to_park)}"
        super().__init__(message)
        self.report = report
