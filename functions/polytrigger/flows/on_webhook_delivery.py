"""What happens when Polytomic's webhook delivers an event (through a Lambda Function URL).

1. The signature is checked before anything is read: a bad or missing one is answered 401 at once.
   A header of no possible shape costs nothing; one that does not verify is checked again against
   a fresh read of the secret (just rotated?), at most once every few minutes however many come;
   the secret it replaced still verifies for an hour (`events.function_url.SigningSecrets`).
2. A signed body over what EventBridge takes (`runs.bus.MAX_ENTRY_BYTES`; a larger one, over
   `events.function_url.MAX_BODY_BYTES`, was answered 413 unchecked) is parked with the reason (or
   ignored if dated out of the window, 4.) and answered 200: it could not be handed on, and
   Polytomic must not send it again. The poller reads the same event from Polytomic's events API
   and settles its run.
3. The body is read as a run event. One of a type polytrigger does not follow is answered 200 and
   ignored; one it follows but cannot read is parked with the reason and answered 200 (a retry
   would bring the same bytes).
4. Its date is checked: an event older than its hand-on marker lives (`HANDED_ON_SECONDS`, less the
   clock-skew margin), dated past the margin ahead, or undated is answered 200 and ignored, with a
   warning and metric `webhook_out_of_window`. The marker stops a replay only while it lives, so
   a signed delivery captured earlier and sent again would otherwise be handed on and chained
   again; the poller reads every event Polytomic still keeps (48 h) anyway.
5. The run it ends is settled in the run ledger, once whoever brings the ending (`runs.ledger.settle`),
   and told at once (`runs.telling.tell`: one line and one metric); the settle leaves it in the
   ledger's outbox until it is told, so if this function dies in between, the poller tells it.
6. What the event sets off happens once (`runs.set_off`: handed on to the bus, chained starts). A
   ledger, bus or queue it cannot reach is answered 503, so Polytomic delivers again (it retries
   non-2xx up to 5 times); the poller reads the same event from the events API anyway.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from polytrigger.dispatch.ports import QueueUnavailable
from polytrigger.dispatch.queue import EventParking
from polytrigger.events.function_url import (
    Encoding,
    NotADelivery,
    SigningSecrets,
    TooLarge,
    delivery,
    signed,
    well_formed,
)
from polytrigger.observability import logger, record_parked, record_problem, record_unsupported
from polytrigger.runs.bus import MAX_ENTRY_BYTES, BusUnavailable, RunEventBus
from polytrigger.runs.dynamo_ledger import HANDED_ON_SECONDS
from polytrigger.runs.endings import MalformedRunEvent, RunEvent, run_event, timestamp
from polytrigger.runs.ledger import LedgerUnavailable, RunLedger, settle
from polytrigger.runs.set_off import QueuedChains, set_off
from polytrigger.runs.telling import tell

Answer = tuple[int, str]  # the HTTP status, and a word for Polytomic's delivery log
CLOCK_SKEW = timedelta(minutes=5)  # how far Polytomic's clock may run ahead of ours
# Older than this, an event's hand-on marker may be gone: a replay would be handed on and chained again.
MAX_AGE = timedelta(seconds=HANDED_ON_SECONDS) - CLOCK_SKEW


@dataclass(slots=True)
class WebhookFlow:
    ledger: RunLedger
    secrets: SigningSecrets  # the webhook's signing secret (and the one before it, a while)
    encoding: Encoding
    parking: EventParking
    bus: RunEventBus | None = None  # where every Polytomic event received is handed on, if anywhere
    chains: QueuedChains | None = None  # the routes that start syncs when another sync's run ends
    clock: Callable[[], float] = time.time  # epoch seconds: the window an event's date must lie in

    def delivery(self, event: Any, function_arn: str = "", request_id: str = "") -> Answer:
        try:
            body, signature = delivery(event)
        except NotADelivery as error:
            logger.warning(f"webhook: {error}")
            return (413, "too large") if isinstance(error, TooLarge) else (400, "bad request")
        if not self.verified(body, signature):
            message = "webhook: refused a delivery with a bad or missing Polytomic-Signature"
            record_problem(message, "unauthorized", metric="webhook_unauthorized", warning=True)
            return 401, "unauthorized"
        if len(body) > MAX_ENTRY_BYTES:
            return self.too_large(body, function_arn=function_arn, request_id=request_id)
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
        refused = self.out_of_window(document, run)
        if refused:
            return 200, f"ignored: {refused}"
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

    def too_large(self, body: bytes, *, function_arn: str, request_id: str) -> Answer:
        """Parked: what a person needs to find the event (not the body: a queue message takes 256 KiB too).

        Unless it is dated out of the window (a replay would park it again and again).
        """
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        event = document if isinstance(document, Mapping) else {}
        refused = self.out_of_window(event, None) if event else ""
        if refused:
            return 200, f"ignored: {refused}"
        inner = event.get("event")
        inner = inner if isinstance(inner, Mapping) else {}
        what = {
            "id": str(event.get("id"))[:80],
            "type": str(event.get("type"))[:80],
            "created_at": str(event.get("created_at"))[:40],
            "execution_id": str(inner.get("execution_id"))[:80],
            "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        reason = (
            f"webhook delivery of {len(body)} bytes, over the {MAX_ENTRY_BYTES} EventBridge takes: event"
            f" {what['id']} ({what['type']}, execution {what['execution_id']}) was neither settled nor handed on"
            " here. The poller reads it from Polytomic's events API and settles its run; a consumer of the bus"
            " reads it with GET /api/events (kept 48 h)"
        )
        self.parking.park(
            {"webhook_body_too_large": {**what, "head": body[:2048].decode("utf-8", "replace")}},
            reason,
            function_arn=function_arn,
            request_id=request_id,
        )
        record_parked(reason, "the dead-letter queue", first_word=True)
        return 200, "parked: too large"

    def out_of_window(self, event: Mapping[str, Any], run: RunEvent | None) -> str:
        """Why the event is ignored (warned and counted), or "" when its date lies where its marker stops a replay."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        try:
            created = run.created_at if run is not None else timestamp(event.get("created_at"), "created_at")
        except MalformedRunEvent:
            created = None
        if created is None:
            refused = "undated"
        elif created < now - MAX_AGE:
            refused = "too old"
        elif created > now + CLOCK_SKEW:
            refused = "dated in the future"
        else:
            return ""
        record_problem(
            f"webhook: ignored a signed delivery {refused}: event {str(event.get('id'))[:80]}"
            f" ({str(event.get('type'))[:80]}) created at {str(event.get('created_at'))[:40]}, taken from"
            f" {(now - MAX_AGE).isoformat()} to {(now + CLOCK_SKEW).isoformat()}. A replay, or a clock off;"
            " the poller reads every event Polytomic still keeps",
            "webhook_out_of_window",
            warning=True,
        )
        return refused

    def verified(self, body: bytes, signature: str) -> bool:
        """Signed with the webhook's secret (or the one it replaced, a while); a rotation is read again, bounded."""
        if not well_formed(signature, self.encoding):
            return False
        if any(signed(body, signature, secret, self.encoding) for secret in self.secrets.accepted()):
            return True
        return self.secrets.reread() and any(
            signed(body, signature, secret, self.encoding) for secret in self.secrets.accepted()
        )
