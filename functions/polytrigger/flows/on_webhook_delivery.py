"""What happens when Polytomic's webhook delivers an event (through a Lambda Function URL).

1. The signature is checked before anything is read: a bad or missing one is answered 401 at once
   (checked again against a fresh read of the secret once, for a secret just rotated).
2. The body is read as a run event. One of a type polytrigger does not follow is answered 200 and
   ignored; one it follows but cannot read is parked with the reason and answered 200 (a retry
   would bring the same bytes).
3. The run it ends is settled in the run ledger, once whoever brings the ending (`runs.settle`), and
   told at once (`runs.telling.tell`: one line and one metric); the settle leaves it in the ledger's
   outbox until it is told, so if this function dies in between, the poller tells it.
4. What the event sets off happens once (`runs.set_off`: handed on to the bus, chained starts). A
   ledger, bus or queue it cannot reach is answered 503, so Polytomic delivers again (it retries
   non-2xx up to 5 times); the poller reads the same event from the events API anyway.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polytrigger.dispatch.ports import QueueUnavailable
from polytrigger.dispatch.queue import EventParking
from polytrigger.events.function_url import Encoding, NotADelivery, delivery, signed
from polytrigger.observability import logger, record_problem, record_unsupported
from polytrigger.runs.bus import BusUnavailable, RunEventBus
from polytrigger.runs.endings import MalformedRunEvent, run_event
from polytrigger.runs.ledger import LedgerUnavailable, RunLedger, settle
from polytrigger.runs.set_off import QueuedChains, set_off
from polytrigger.runs.telling import tell

Answer = tuple[int, str]  # the HTTP status, and a word for Polytomic's delivery log


@dataclass(slots=True)
class WebhookFlow:
    ledger: RunLedger
    webhook_secret: Callable[[bool], str]  # (force a re-read) -> the secret
    encoding: Encoding
    parking: EventParking
    bus: RunEventBus | None = None  # where every Polytomic event received is handed on, if anywhere
    chains: QueuedChains | None = None  # the routes that start syncs when another sync's run ends

    def delivery(self, event: Any, function_arn: str = "", request_id: str = "") -> Answer:
        try:
            body, signature = delivery(event)
        except NotADelivery as error:
            logger.warning(f"webhook: {error}")
            return 400, "bad request"
        if not self.verified(body, signature):
            message = "webhook: refused a delivery with a bad or missing Polytomic-Signature"
            record_problem(message, "unauthorized", metric="webhook_unauthorized", warning=True)
            return 401, "unauthorized"
        try:
            document = json.loads(body)
            run = run_event(document)
        except (ValueError, MalformedRunEvent) as error:  # JSONDecodeError is a ValueError
            why = f"webhook delivery polytrigger cannot read: {str(error)[:200]}"
            self.parking.park(
                {"webhook_body": body.decode("utf-8", "replace")},
                f"unsupported event: {why}",
                function_arn=function_arn,
                request_id=request_id,
            )
            record_unsupported(why, "the dead-letter queue")
            return 200, "parked"
        try:
            ended = settle([run], self.ledger, "webhook") if run is not None else []
            for item in ended:
                tell(item, self.ledger, self.chains)
            set_off([document], self.ledger, self.bus.publish if self.bus else None, self.chains)
        except (LedgerUnavailable, BusUnavailable, QueueUnavailable) as error:
            logger.error(f"webhook: {error}; answered 503 so that Polytomic delivers it again")
            return 503, "try again"
        if run is None:
            return 200, "ignored: not a sync run event"
        return 200, "settled" if ended else "nothing to settle"

    def verified(self, body: bytes, signature: str) -> bool:
        """Signed with the webhook secret; checked again against a fresh read once (a rotated secret)."""
        if signed(body, signature, self.webhook_secret(False), self.encoding):
            return True
        return bool(signature) and signed(body, signature, self.webhook_secret(True), self.encoding)
