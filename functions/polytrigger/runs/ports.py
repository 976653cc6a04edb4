"""What the run-outcome logic needs from the world: a ledger of runs and Polytomic's reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from polytrigger.core.runs import RunEvent


class LedgerUnavailable(Exception):
    """The ledger could not be read or written (a retry may work); nothing was recorded."""


@dataclass(frozen=True, slots=True)
class Run:
    """One execution as the ledger knows it: what polytrigger started it for, and how it ended."""

    execution_id: str
    sync_id: str
    sync_type: str
    status: str = ""
    routes: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()  # what it covers, as `Trigger.describe()` says it (the first ones)
    trigger_count: int = 0
    first_trigger_at: datetime | None = None  # the earliest trigger it covers: freshness counts from there
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OpenRun:
    """A run polytrigger started and has heard no end of yet."""

    execution_id: str
    sync_id: str
    sync_type: str
    started_at: datetime
    checked_at: datetime | None = None  # its execution status was last looked up then


class RunLedger(Protocol):
    def record(self, run: Run, route: str, trigger: str, trigger_at: datetime) -> None:
        """A run polytrigger started (or found covering) for a trigger of a route; open until it ends."""
        ...

    def settle(self, event: RunEvent) -> Run | None:
        """Mark the run ended by `event`, once: the run as settled, or None when it had ended already."""
        ...

    def open_runs(self) -> list[OpenRun]: ...

    def checked(self, execution_id: str, at: datetime) -> None:
        """Its execution status was looked up and it has not ended yet."""
        ...

    def forget(self, execution_id: str) -> None:
        """Stop watching a run whose outcome can no longer be learnt (older than Polytomic keeps events)."""
        ...

    def cursor(self) -> tuple[datetime | None, bool]:
        """Where the events were read up to, and whether the last poll stopped short of the newest (behind)."""
        ...

    def advance(self, before: datetime | None, after: datetime, *, behind: bool = False) -> bool:
        """Move the events cursor from `before` to `after`; False if someone else moved it meanwhile."""
        ...


class RunReads(Protocol):
    """Polytomic's reads: the events API and one execution's status."""

    def events(self, starting_after: datetime, ending_before: datetime | None, limit: int) -> list[Any]: ...

    def execution(self, sync_type: str, sync_id: str, execution_id: str) -> dict[str, Any] | None:
        """The execution, or None when Polytomic does not know it (404)."""
        ...

    def executions(self, sync_type: str, sync_id: str) -> list[dict[str, Any]]:
        """The sync's most recent executions, newest first."""
        ...


@dataclass(frozen=True, slots=True)
class Promise:
    """A route's freshness promise for one trigger and one sync: its data in a completed run by `due`."""

    key: str  # the same for every delivery of the trigger: written once, reported once
    route: str
    sync_id: str
    sync_type: str
    trigger: str  # as `Trigger.describe()` says it
    at: datetime  # when the object landed (or the schedule fired)
    due: datetime


class PromiseBook(Protocol):
    def promise(self, promise: Promise) -> None:
        """Note the promise (again: nothing changes)."""
        ...

    def due(self, now: datetime) -> list[Promise]: ...

    def close(self, key: str) -> bool:
        """Take the promise off the book; False if it was gone already (another poll reported it)."""
        ...
