"""Polytomic API paths, built only from validated parts: a crafted id can never change the path."""

from __future__ import annotations

from polytrigger.core.keys import is_uuid


def base(sync_type: str) -> str:
    if sync_type == "model":
        return "/api/syncs"
    if sync_type == "bulk":
        return "/api/bulk/syncs"
    raise ValueError(f"unknown sync type {sync_type!r}")


def sync(sync_id: str) -> str:
    """A sync's id, once it is a UUID."""
    if not is_uuid(sync_id):
        raise ValueError(f"sync id {sync_id!r} is not a UUID")
    return sync_id
