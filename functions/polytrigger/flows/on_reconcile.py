"""What happens when a route's reconciliation schedule fires (`{"reconcile": "<route>"}`, every `s3.reconcile`
period): the objects that landed under the route's prefix and that no event told polytrigger of are found,
and take the path their event would have.

1. The route is looked up: one the routes do not have, or one without `reconcile`, is one ERROR line
   and nothing else (a retry cannot fix it; the next deploy removes its schedule).
2. The route's cursor (`reconciliation.cursor`) is leased to this invocation; while another holds it,
   this one does nothing. The pass goes on where the last one stopped, or starts now.
3. The prefix is listed a page at a time (`reconciliation.listing`); of each page, the objects the route
   matches that landed since the checkpoint less the overlap have their landings read in one batch
   (`dispatch.landings`), and those polytrigger has a record of cost nothing more
   (`reconciliation.passes`).
4. The rest are claimed (each one's landing kept, so an event that arrives after this starts nothing),
   each told in one WARNING line "found by reconciliation, no event had arrived" and counted
   (`found_by_reconciliation`, by route: the alarm), and handed to the trigger path a live S3 event
   takes (routing, gates, debounce, dedup, fan-out: `flows.on_triggers`'s `handle`, given here as a
   callable). Each is marked handled once its actions are done; then the cursor moves past the page.
5. A failure a retry can fix stops the pass at that page; so does the time budget (the invocation's
   time less a margin), before the next page. Either way the next firing goes on from the cursor. At
   the end of the prefix the checkpoint becomes the pass's start. One INFO line says what the pass did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polytrigger.observability import count_by_route, logger
from polytrigger.reconciliation.passes import Passes
from polytrigger.routing import Routes

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@dataclass(slots=True)
class ReconcileFlow:
    routes: Routes
    passes: Passes
    register: Callable[[LambdaContext | None], None]  # an invocation's dedup records expire with it

    def reconcile(self, name: str, remaining: Callable[[], float]) -> dict[str, Any]:
        """One pass (or its part) over route `name`'s prefix, while `remaining()` seconds allow."""
        route = next((route for route in self.routes.routes if route.name == name), None)
        if route is None or route.reconcile is None:
            why = "no such route" if route is None else "the route has no s3.reconcile"
            logger.error(f"reconciliation of route {name!r} refused: {why}", extra={"status": "ignored"})
            return {"route": name, "state": "refused", "reason": why}
        result = self.passes.run(route, remaining)
        logger.info(
            f"reconciliation of route {name}: {result.state}; {result.pages} page(s), {result.listed} object(s)"
            f" listed, {result.looked_at} recent, {len(result.found)} found with no event",
            extra={"status": f"reconciliation_{result.state}", "route": name},
        )
        count_by_route("reconciliation_listed", name, result.listed)
        return result.summary()
