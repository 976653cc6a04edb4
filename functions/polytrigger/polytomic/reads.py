"""`contract.RunReads` on the Polytomic client: the events API and one execution's status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from polytrigger.core.keys import is_uuid
from polytrigger.polytomic.client import PolytomicClient
from polytrigger.polytomic.contract import Rejected, UnreadableAnswer, sync_path

MAX_EXECUTION_PAGES = 50  # a sync with more runs than this since a promise's trigger has kept it many times over


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

    def executions(self, sync_type: str, sync_id: str, since: datetime) -> list[dict[str, Any]]:
        """The sync's executions back to one created before `since`, page after page (newest first), so a
        run that counts cannot have scrolled off the first page; none for a sync Polytomic does not know."""
        found: list[dict[str, Any]] = []
        token = ""
        for _ in range(MAX_EXECUTION_PAGES):
            path = f"{sync_path(sync_type, sync_id)}/executions" + (
                f"?{urlencode({'page_token': token})}" if token else ""
            )
            try:
                data, token = self.client.get_page(path)
            except Rejected as error:
                if error.status == 404:
                    return found
                raise
            page = [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []
            found.extend(page)
            if not token or not page or any(_created_before(item, since) for item in page):
                break
        return found

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

    def active(self, sync_type: str, sync_id: str) -> bool | None:
        try:
            return self.client.active(sync_type, sync_id)
        except Rejected as error:
            if error.status == 404:
                return None
            raise


def _created_before(execution: dict[str, Any], since: datetime) -> bool:
    created = execution.get("created_at")
    if not isinstance(created, str):
        return False
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) < since


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
