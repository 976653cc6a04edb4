"""Strict request bodies of the fake Polytomic API: a client bug shows up as a 400 here, not in production.

Unknown fields and fields of the wrong type are rejected by name; bulk-sync
options follow the ``X-Polytomic-Version`` (``resync_mode`` from 2025-09-18,
the boolean ``resync`` before).
"""

from __future__ import annotations

import json
from typing import Any

from local.polytomic.records import ApiError

FETCH_MODES = ("none", "incremental", "full")
RESYNC_MODES = ("refetch", "resync", "rebuild")


def json_object(raw: bytes, *, required: bool) -> dict[str, Any]:
    if not raw.strip():
        if required:
            raise ApiError(400, "invalid_request", "a JSON request body is required")
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "invalid_request", f"request body is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "invalid_request", "request body must be a JSON object")
    return parsed


def bad_field(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", f'"{name}" {message}', {"field": name})


def check_fields(body: dict[str, Any], allowed: dict[str, str]) -> None:
    """Reject unknown fields and fields of the wrong type (allowed: name -> bool|str|list[str])."""
    for name, value in body.items():
        expected = allowed.get(name)
        if expected is None:
            raise bad_field(name, "is not an accepted field")
        if expected == "bool" and not isinstance(value, bool):
            raise bad_field(name, "must be a boolean")
        if expected == "str" and not isinstance(value, str):
            raise bad_field(name, "must be a string")
        if expected == "list[str]" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise bad_field(name, "must be a list of strings")


def model_options(body: dict[str, Any]) -> dict[str, Any]:
    check_fields(body, {"identities": "list[str]", "resync": "bool", "test": "bool"})
    return dict(body)


def bulk_options(body: dict[str, Any], version: str) -> dict[str, Any]:
    modern = version >= "2025-09-18"
    if modern and "resync" in body:
        raise bad_field("resync", f"is not accepted with X-Polytomic-Version {version}; use resync_mode")
    if not modern and "resync_mode" in body:
        raise bad_field("resync_mode", f"is not accepted with X-Polytomic-Version {version}; use resync")
    allowed = {"fetch_mode": "str", "schemas": "list[str]", "test": "bool"}
    allowed.update({"resync_mode": "str"} if modern else {"resync": "bool"})
    check_fields(body, allowed)
    if "fetch_mode" in body and body["fetch_mode"] not in FETCH_MODES:
        raise bad_field("fetch_mode", f"must be one of {', '.join(FETCH_MODES)}")
    if "resync_mode" in body and body["resync_mode"] not in RESYNC_MODES:
        raise bad_field("resync_mode", f"must be one of {', '.join(RESYNC_MODES)}")
    if body.get("test") is True and "resync_mode" in body:
        raise bad_field("test", "cannot be combined with resync_mode")
    return dict(body)
