"""Re-publishing Polytomic's events to an EventBridge bus, so others can follow them too.

An organisation has one webhook; polytrigger may hold it, so it hands every Polytomic event it
receives on, once (the ledger remembers which it handed on), as `source: polytrigger.polytomic`,
`detail-type`: the event's type, `detail`: the event exactly as Polytomic sent it.

An event whose entry is over what EventBridge takes (MAX_ENTRY_BYTES) would be refused every time it
is tried: it is not sent, but told once (ERROR, metric `run_event_too_large`) and counted as handed
on, so neither the webhook nor every poll fails on it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.observability import error_code, record_problem

SOURCE = "polytrigger.polytomic"
MAX_ENTRY_BYTES = 256 * 1024  # one PutEvents entry: its Source, DetailType and Detail (UTF-8)


class BusUnavailable(Exception):
    """The bus did not take the event; it is handed on again by the next delivery or poll."""


class RunEventBus:
    def __init__(self, bus_name: str, make_client: Callable[[], Any]) -> None:
        self.bus_name = bus_name
        self._make_client = make_client

    def publish(self, event: Mapping[str, Any]) -> None:
        entry = {
            "Source": SOURCE,
            "DetailType": str(event.get("type") or "polytomic.event")[:128],
            "Detail": json.dumps(event),
            "EventBusName": self.bus_name,
        }
        size = sum(len(entry[name].encode("utf-8")) for name in ("Source", "DetailType", "Detail"))
        if size > MAX_ENTRY_BYTES:
            record_problem(
                f"run event bus {self.bus_name}: event {str(event.get('id'))[:80]} ({entry['DetailType']}) not"
                f" handed on: {size} bytes, over the {MAX_ENTRY_BYTES} EventBridge takes; read it from Polytomic's"
                " events API (GET /api/events, kept 48 h)",
                "run_event_too_large",
            )
            return
        try:
            answer = self._make_client().put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as error:
            raise BusUnavailable(f"EventBridge bus {self.bus_name}: {error_code(error)}") from None
        if answer.get("FailedEntryCount"):
            code = (answer.get("Entries") or [{}])[0].get("ErrorCode", "failed")
            raise BusUnavailable(f"EventBridge bus {self.bus_name}: {code}")
