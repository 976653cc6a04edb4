"""Actions and their outcomes: what polytrigger does to one sync, and what came of it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from polytrigger.triggers import Trigger

ActionKind = Literal["start", "activate", "deactivate"]
SyncType = Literal["model", "bulk"]
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
class SyncTarget:
    """One sync a route names, with the options of its start."""

    id: str
    type: SyncType = "model"
    options: tuple[tuple[str, Any], ...] = ()  # start body options, in a hashable form
    activate_first: bool = False

    @property
    def coverable(self) -> bool:
        """Whether any run of the sync does what this start asks: not a resync, a test, a full fetch
        or a chosen set of identities, which a plain run (scheduled, or another route's) would not do."""
        options = dict(self.options)
        return not (
            options.get("resync")
            or options.get("test")
            or options.get("identities")
            or options.get("resync_mode")
            or options.get("fetch_mode") == "full"
        )

    def body(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self.options}


@dataclass(frozen=True, slots=True)
class Action:
    """One thing to do to one sync because of one trigger."""

    route: str
    kind: ActionKind
    sync: SyncTarget
    trigger: Trigger
    debounce: int = 0  # seconds; 0 = start at once
    max_wait: int = 0  # seconds; with debounce: start at least this often during a trickle

    @property
    def dedup_key(self) -> str:
        """SHA-256 of identity + action + sync type + sync id: the DynamoDB record key and the
        Idempotency-Key sent to Polytomic, so both layers agree on what "the same action" is."""
        material = json.dumps([self.trigger.identity, self.kind, self.sync.type, self.sync.id])
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    @property
    def dedup_scope(self) -> tuple[str, str, str]:
        """Within one event, the same (sync, action) reached twice is done once."""
        return (self.kind, self.sync.type, self.sync.id)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one action: the unit of the summary, the logs and the metrics."""

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
