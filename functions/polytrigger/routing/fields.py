"""The checks the routes file's levels share: `events`, which both an S3 trigger and a chain carry, and bucket
names, which an S3 trigger and a gate's keys in another bucket carry."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from polytrigger.routing.suggest import close_to

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def is_bucket_name(value: object) -> bool:
    """S3's rule for bucket names (3-63 lowercase letters, digits, dots and hyphens, no `..`)."""
    return isinstance(value, str) and _BUCKET.fullmatch(value) is not None and ".." not in value


# What people write for an S3 event kind or a run ending, and the one they mean (lower case).
EVENT_ALIASES = {
    "s3": {
        "complete": "created", "completed": "created", "create": "created", "put": "created", "upload": "created",
        "uploaded": "created", "new": "created", "objectcreated": "created", "s3:objectcreated:*": "created",
        "delete": "deleted", "remove": "deleted", "removed": "deleted", "objectremoved": "deleted",
        "s3:objectremoved:*": "deleted",
    },
    "polytomic": {
        "complete": "completed", "success": "completed", "succeeded": "completed", "successful": "completed",
        "done": "completed", "finished": "completed", "error": "failed", "errored": "failed", "failure": "failed",
        "cancelled": "canceled", "cancel": "canceled", "partial": "completed_with_errors",
        "completed with errors": "completed_with_errors", "interrupt": "interrupted",
    },
}  # fmt: skip


def events_field(
    raw: Mapping[Any, Any], where: str, default: str, allowed: Collection[str], problems: list[str]
) -> frozenset[str]:
    """`<where>.events`: a non-empty list of distinct allowed values (one value alone may be given bare)."""
    value = raw.get("events", [default])
    chosen = [value] if isinstance(value, str) else value
    if (
        not isinstance(chosen, list)
        or not chosen
        or any(item not in allowed for item in chosen)
        or len(set(chosen)) != len(chosen)
    ):
        described = " and/or ".join(allowed) if len(allowed) == 2 else ", ".join(allowed)
        problems.append(
            f"{where}.events: must be a list of {described} (got {chosen!r}){_meant(chosen, where, allowed)}"
        )
        return frozenset()
    return frozenset(chosen)


def _meant(chosen: Any, where: str, allowed: Collection[str]) -> str:
    """`; did you mean created?` (one unknown value) or `; did you mean created for 'put', deleted for 'rm'?`."""
    unknown = [item for item in chosen if item not in allowed] if isinstance(chosen, list) else []
    aliases = EVENT_ALIASES.get(where, {})
    meant = [(item, close_to(item, sorted(allowed), aliases)) for item in unknown]
    found = [(item, choice) for item, choice in meant if choice is not None]
    if not found:
        return ""
    if len(unknown) == 1:
        return f"; did you mean {found[0][1]}?"
    return "; did you mean " + ", ".join(f"{choice} for {item!r}" for item, choice in found) + "?"
