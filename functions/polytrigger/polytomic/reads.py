"""`contract.RunReads` on the Polytomic client: the events API and one execution's status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from polytrigger.core.keys import is_uuid
from polytrigger.polytomic.client import PolytomicClient
from polytrigger.polytomic.contract import Rejected, UnreadableAnswer, sync_path


class PolytomicReads:
    def __init__(self, client: PolytomicClient) -> None:
        self.client = client

    def events(self, starting_after: datetime, ending_before: datetime | None, limit: int) -> list[Any]:
        query = {"starting_after": _stamp(starting_after), "limit": str(limit)}
        if ending_before is not None:
            query["ending_before"] = _stamp(ending_before)
        data = self.client.get(f"/api/events?{urlencode(query)}")
        if data is None:
            return []
        if not isinstance(data, list):
            raise UnreadableAnswer("GET /api/events: Polytomic answered but `data` is not a list of events")
        return data

    def executions(self, sync_type: str, sync_id: str) -> list[dict[str, Any]]:
        """The sync's recent executions; none for a sync Polytomic does not know (404)."""
        try:
            return self.client.executions(sync_type, sync_id)
        except Rejected as error:
            if error.status == 404:
                return []
            raise

    def execution(self, sync_type: str, sync_id: str, execution_id: str) -> dict[str, Any] | None:
        if not is_uuid(execution_id):
            return None  # never put an id that is not one into a path
        try:
            data = self.client.get(f"{sync_path(sync_type, sync_id)}/executions/{execution_id}")
        except Rejected as error:
            if error.status == 404:
                return None
            raise
        return data if isinstance(data, dict) else None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
