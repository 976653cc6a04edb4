"""One reconciliation pass over a route's prefix: what landed that no event told polytrigger of.

A pass lists the route's prefix a page at a time from its cursor (`cursor`), and of each page keeps
the objects the route matches that landed since the checkpoint less the overlap (older ones cost
nothing more than their line in the listing), and that are not too young for their event to be on
its way. Their landings are read in batches (`get_many`); an object whose landing has it (its event
came, or a listing handled it) costs nothing more. The rest are claimed (their landings kept: an
event arriving after this acts on nothing), each told as found late, and handed to the trigger path
as a live event is (`handle`); each is marked handled once its actions are done, the last first: a
start is keyed by its first trigger, so a pass that dies while marking leaves the page's first objects,
which the next pass hands on as the same start (dedup answers `duplicate`). Then the cursor
moves past the page. A failure a retry can fix stops the pass at its page (nothing is marked
handled: the next pass claims the page's objects again, and dedup answers `duplicate` for what was
done); a pass out of time stops before its next page. At the end of the prefix the checkpoint
becomes the pass's start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal, Protocol

from polytrigger.core.outcomes import Report
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.landings import Landing
from polytrigger.observability import record_found_late
from polytrigger.reconciliation.cursor import Cursor
from polytrigger.reconciliation.listing import PAGE, Page
from polytrigger.routing.model import Route

MARGIN_SECONDS = 60.0  # the time a page's actions may take: no page is listed with less left
SETTLE_SECONDS = 300  # an object younger than this may still have its event on the way: the next pass looks
State = Literal["complete", "paused", "retry", "busy"]


class Listing(Protocol):
    def page(self, bucket: str, prefix: str, after: str = "", size: int = PAGE) -> Page: ...


class Cursors(Protocol):
    def take(self, route: str, now: float, lease_seconds: float) -> Cursor | None: ...
    def advance(self, cursor: Cursor, after: str, now: float, lease_seconds: float) -> Cursor: ...
    def finish(self, cursor: Cursor) -> None: ...
    def release(self, cursor: Cursor) -> None: ...


class Landings(Protocol):
    def get_many(self, objects: list[tuple[str, str]]) -> dict[tuple[str, str], Landing]: ...
    def handled(self, trigger: Trigger) -> None: ...


@dataclass(slots=True)
class Result:
    """What one invocation's pass did: how far it got, and what came of the objects it found."""

    route: str
    state: State  # complete: the prefix is done; paused: out of time; retry: stopped at a failing page; busy
    pages: int = 0
    listed: int = 0  # objects on those pages
    looked_at: int = 0  # of them, the route's and recent enough: their landings read
    found: list[Trigger] = field(default_factory=list)  # of those, no record: handed to the trigger path
    report: Report = field(default_factory=Report)

    def summary(self) -> dict[str, object]:
        return {
            "route": self.route,
            "state": self.state,
            "pages": self.pages,
            "listed": self.listed,
            "looked_at": self.looked_at,
            "found": len(self.found),
            **self.report.summary(),
        }


@dataclass(slots=True)
class Passes:
    listing: Listing
    cursors: Cursors
    landings: Landings
    claim: Callable[[list[Trigger], float], list[Trigger]]  # keep their landings; those still to act on
    handle: Callable[[list[Trigger], int], Report]  # claimed triggers down the live event's path
    clock: Callable[[], float] = time.time  # epoch seconds: the pass's start, the leases
    margin: float = MARGIN_SECONDS
    settle: int = SETTLE_SECONDS
    page_size: int = PAGE

    def run(self, route: Route, remaining: Callable[[], float]) -> Result:
        """A pass over `route`'s prefix from its cursor, while `remaining()` (seconds) exceeds the margin."""
        assert route.reconcile is not None
        cursor = self.cursors.take(route.name, self.clock(), remaining())
        if cursor is None:
            return Result(route.name, "busy")
        result = Result(route.name, "paused")
        try:
            result.state = self._pages(route, cursor, remaining, result)
        except BaseException:
            self._let_go(cursor)
            raise
        return result

    def _pages(self, route: Route, cursor: Cursor, remaining: Callable[[], float], result: Result) -> State:
        assert route.reconcile is not None
        since = cursor.since - timedelta(seconds=route.reconcile.overlap)
        until = cursor.started - timedelta(seconds=min(self.settle, route.reconcile.overlap))
        while True:
            if remaining() <= self.margin:
                self.cursors.release(cursor)
                return "paused"
            page = self.listing.page(route.bucket, route.key_prefix, cursor.after, self.page_size)
            result.pages += 1
            result.listed += len(page.objects)
            recent = [
                listed.trigger("reconciliation")
                for listed in page.objects
                if since <= listed.last_modified <= until and route.matches(listed.trigger("reconciliation"))
            ]
            result.looked_at += len(recent)
            kept = self.landings.get_many([(one.bucket, one.key) for one in recent]) if recent else {}
            unknown = [one for one in recent if not _has(kept.get((one.bucket, one.key)), one)]
            found = self.claim(unknown, self.clock()) if unknown else []
            for trigger in found:
                url = f"s3://{trigger.bucket}/{trigger.key}"
                record_found_late(url, trigger.time.isoformat(), route.name)
            report = self.handle(found, int(remaining() * 1000)) if found else Report()
            result.found.extend(found)
            result.report.extend(report)
            if report.retryable:
                self.cursors.release(cursor)
                return "retry"
            for trigger in reversed(found):  # last first: what a failure here leaves is a prefix, the same start's
                self.landings.handled(trigger)
            if not page.after:
                self.cursors.finish(cursor)
                return "complete"
            cursor = self.cursors.advance(cursor, page.after, self.clock(), remaining())

    def _let_go(self, cursor: Cursor) -> None:
        """Free the lease of a pass that failed, if the table answers (else it runs out by itself)."""
        try:
            self.cursors.release(cursor)
        except Exception:  # the failure itself is what the caller must see
            return


def _has(landing: Landing | None, listed: Trigger) -> bool:
    return landing is not None and landing.has(listed)
