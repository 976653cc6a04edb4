"""The facts every layer checks or derives the same way: what a sync id looks like, how a key is hashed,
where a URL may point."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid(value: object) -> bool:
    """Polytomic ids (syncs, executions, organisations) are UUIDs; nothing else may reach a URL or a header."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def digest(value: object) -> str:
    """SHA-256 hex of a value's JSON: dedup keys, queued message ids and window ids.

    The JSON is `json.dumps` with its defaults (ASCII, no sorting): records written by earlier
    versions keep their keys, so changing this changes every key in flight.
    """
    return hashlib.sha256(json.dumps(value).encode("utf-8")).hexdigest()


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (urlsplit has lowercased the name and dropped IPv6 brackets)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name: it could resolve anywhere
