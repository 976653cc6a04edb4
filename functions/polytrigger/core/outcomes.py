"""Outcomes: what came of one action. The unit of the handlers' summary, the logs and the metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from polytrigger.core.actions import Action, ActionKind, SyncType

Status = Literal[
    "started", "activated", "deactivated", "duplicate", "already_running", "deferred", "coalesced", "covered", "failed"
]

STATUSES: tuple[Status, ...] = (
    "started",
    "activated",
    "deactivated",
    "duplicate",
    "already_running",
    "deferred",
    "coalesced",
    "covered",
    "failed",
)


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

    @classmethod
    def of(
        cls,
        action: Action,
        status: Status,
        *,
        execution_id: str | None = None,
        reason: str | None = None,
        retryable: bool = False,
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
        )


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

    def summary(self) -> dict[str, Any]:
        return {"outcomes": [outcome.to_dict() for outcome in self.outcomes]}
