"""Actions: what polytrigger does to one sync because of one trigger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from polytrigger.core.keys import digest
from polytrigger.core.triggers import Trigger

ActionKind = Literal["start", "activate", "deactivate"]
SyncType = Literal["model", "bulk"]
ACTION_KINDS: tuple[ActionKind, ...] = ("start", "activate", "deactivate")
SYNC_TYPES: tuple[SyncType, ...] = ("model", "bulk")


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

    def option_pairs(self) -> list[list[Any]]:
        """The options as JSON: `[[name, value], ...]`, in route order (lists where the route had lists)."""
        return [[name, list(value) if isinstance(value, tuple) else value] for name, value in self.options]

    def body(self) -> dict[str, Any]:
        """The start's request body."""
        return dict(self.option_pairs())


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
        """SHA-256 of identity + action + sync type + sync id (+ the start's options, when it has any):
        the DynamoDB record key and the Idempotency-Key sent to Polytomic, so both layers agree on what
        "the same action" is. A plain start keeps the key it always had; a resync of the same sync for
        the same trigger is another action, never a duplicate of the plain one."""
        parts: list[Any] = [self.trigger.identity, self.kind, self.sync.type, self.sync.id]
        if self.sync.options:
            parts.append(self.sync.option_pairs())
        return digest(parts)

    @property
    def dedup_scope(self) -> tuple[str, str, str, str]:
        """Within one event, the same (action, sync, options) reached by two routes is done once."""
        return (self.kind, self.sync.type, self.sync.id, digest(self.sync.option_pairs()))
