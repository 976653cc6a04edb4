"""The routes a deployed stack runs, as one record in its table: what `status` and `explain` read by default.

The route wiring (`flows.on_wiring_request`) writes it on every Create and Update, from the routes file
the functions shipped: the file's text, where the build took it from, its SHA-256 and when it was wired.
One item, `routes#deployed`, with no TTL: the next deploy overwrites it, deleting the stack deletes it.

Where the build took the file from is carried from the build to the function by a small sidecar beside
the shipped routes, `routes.source.json` (written by `tools.routes_build` with the name the build was
given, `functions/Makefile`'s `$(ROUTES)`); a routes file with no sidecar was built from itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEPLOYED_ROUTES_KEY = "routes#deployed"  # the item's id; template.yaml's LeadingKeys condition names it too
SOURCE_SUFFIX = ".source.json"
# DynamoDB's item limit is 400 KB: a larger routes file is recorded without its text (its hash still
# tells whether a file is the deployed one), and the commands fall back to the file they are given.
MAX_TEXT_BYTES = 300_000


class RoutesNotRecorded(Exception):
    """The deployed routes could not be written to the table; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class DeployedRoutes:
    built_from: str  # the path the build was given (the user's own file), or the shipped file's
    sha256: str  # of the routes file's bytes
    deployed_at: datetime
    text: str | None  # None: too large to record
    version: str = ""  # the wiring function's version that wrote it

    def item(self) -> dict[str, Any]:
        """The DynamoDB item (wire format)."""
        item: dict[str, Any] = {
            "id": {"S": DEPLOYED_ROUTES_KEY},
            "built_from": {"S": self.built_from},
            "sha256": {"S": self.sha256},
            "deployed_at": {"S": self.deployed_at.astimezone(UTC).isoformat(timespec="seconds")},
        }
        if self.text is not None:
            item["text"] = {"S": self.text}
        if self.version:
            item["version"] = {"S": self.version}
        return item

    def describe(self) -> str:
        """`built from /home/me/routes.yaml, sha256 ab12cd34ef56…, 2026-12-07 10:00 UTC`"""
        return f"built from {self.built_from}, sha256 {self.sha256[:12]}…, {self.deployed_at:%Y-%m-%d %H:%M} UTC"


def from_item(item: dict[str, Any]) -> DeployedRoutes:
    """The record from its item; ValueError when the item is not one (written by something else)."""
    try:
        moment = datetime.fromisoformat(item["deployed_at"]["S"])
        record = DeployedRoutes(
            built_from=item["built_from"]["S"],
            sha256=item["sha256"]["S"],
            deployed_at=(moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC),
            text=item["text"]["S"] if "text" in item else None,
            version=item.get("version", {}).get("S", ""),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"the item {DEPLOYED_ROUTES_KEY} is not a deployed routes record ({error!r})") from None
    if len(record.sha256) != 64:
        raise ValueError(f"the item {DEPLOYED_ROUTES_KEY} has no SHA-256")
    return record


def deployed_routes(routes_file: Path, now: datetime, version: str = "") -> DeployedRoutes:
    """The record of the routes file a function shipped (OSError when it cannot be read)."""
    data = routes_file.read_bytes()
    text = data.decode("utf-8", errors="replace") if len(data) <= MAX_TEXT_BYTES else None
    return DeployedRoutes(built_from(routes_file), sha256_of(data), now.astimezone(UTC), text, version)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_note(routes_file: Path) -> Path:
    """routes.yaml -> routes.source.json, in the same folder."""
    return routes_file.with_name(routes_file.stem + SOURCE_SUFFIX)


def write_source_note(routes_file: Path, built_from: str) -> Path:
    """Record beside the shipped routes where the build took them from (the build step calls it)."""
    note = source_note(routes_file)
    note.write_text(json.dumps({"built_from": built_from}, sort_keys=True) + "\n", encoding="utf-8")
    return note


def built_from(routes_file: Path) -> str:
    """Where the build took this routes file from, from its sidecar; else the file itself."""
    try:
        named = json.loads(source_note(routes_file).read_bytes()).get("built_from")
    except (OSError, ValueError, AttributeError):
        named = None
    return named if isinstance(named, str) and named.strip() else str(routes_file)
