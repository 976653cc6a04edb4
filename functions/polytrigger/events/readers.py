"""What the parsers share: the one exception they raise and the careful field readers behind it.

Events come from outside; any field may be missing or of the wrong type. Every reader here turns such
a surprise into `UnsupportedEvent` naming the shape and the field, so callers catch exactly one type
and the handler logs one clear line instead of a stack trace (a retry cannot fix a malformed event).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from polytrigger.core.triggers import parse_time

_MAX_TEXT = 60  # an echoed value is a hint, never the payload
_MAX_KEYS = 8


class UnsupportedEvent(ValueError):
    """The event is not a shape polytrigger acts on; the message names the shape it saw, briefly."""


def clip(value: object, limit: int = _MAX_TEXT) -> str:
    """A short rendering of an untrusted value for an error message: strings truncated, others by type only."""
    if not isinstance(value, str):
        return json_type(value)
    return repr(value) if len(value) <= limit else repr(value[: limit - 1] + "…")


def json_type(value: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return "an object" if isinstance(value, Mapping) else f"a JSON {names.get(type(value), type(value).__name__)}"


def shape_of(value: object) -> str:
    """Name a JSON value's shape without echoing it: top-level key names only, never values."""
    if isinstance(value, Mapping):
        keys = sorted(str(key)[:30] for key in value)
        shown = ", ".join(keys[:_MAX_KEYS]) + (f", … ({len(keys)} keys)" if len(keys) > _MAX_KEYS else "")
        return f"object with keys [{shown}]"
    return json_type(value)


def unsupported_shape(value: object) -> UnsupportedEvent:
    return UnsupportedEvent(f"unsupported event shape: {shape_of(value)}")


def read(getter: Callable[[], Any], where: str, field: str) -> Any:
    """Read through a Powertools data class property; a missing or mistyped branch names the field."""
    try:
        return getter()
    except (KeyError, IndexError, TypeError, AttributeError):
        raise UnsupportedEvent(f"{where}: field {field} is missing") from None


def text(getter: Callable[[], Any], where: str, field: str) -> str:
    """A required, non-empty string field."""
    value = read(getter, where, field)
    if not isinstance(value, str) or not value:
        raise UnsupportedEvent(f"{where}: field {field} must be a non-empty string, got {clip(value)}")
    return value


def optional_text(getter: Callable[[], Any], where: str, field: str) -> str:
    """An optional string field: absent or null reads as ""."""
    try:
        value = getter()
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UnsupportedEvent(f"{where}: field {field} must be a string, got {clip(value)}")
    return value


def optional_size(getter: Callable[[], Any]) -> int:
    """An object's size in bytes; 0 when absent or not a whole number (it only informs: gates count bytes)."""
    try:
        value = getter()
    except (KeyError, IndexError, TypeError, AttributeError):
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def moment(getter: Callable[[], Any], where: str, field: str) -> datetime:
    """A required ISO-8601 time, normalised to UTC (so identities and comparisons never depend on offsets)."""
    value = text(getter, where, field)
    try:
        return parse_time(value).astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise UnsupportedEvent(f"{where}: field {field} is not an ISO-8601 time: {clip(value)}") from error


def load_json(body: object, where: str) -> Any:
    """Decode a JSON document carried as a string (an SQS body, an SNS Message)."""
    if not isinstance(body, str):
        raise UnsupportedEvent(f"{where} is not a string but {json_type(body)}")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise UnsupportedEvent(f"{where} is not JSON ({len(body)} characters)") from None
