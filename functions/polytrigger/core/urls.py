"""Where a URL may point: https anywhere, http only on this machine (the local stack)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (urlsplit has lowercased the name and dropped IPv6 brackets)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name: it could resolve anywhere
