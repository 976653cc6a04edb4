"""Hypothesis strategies and helpers the property tests share: random JSON, and paths into it."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

# Words AWS events are made of: random documents built from them reach deeper into the parsers.
EVENT_WORDS = [
    "Records", "eventSource", "EventSource", "aws:s3", "aws:sns", "aws:sqs", "eventName", "ObjectCreated:Put",
    "ObjectRemoved:Delete", "eventTime", "s3", "bucket", "name", "object", "key", "sequencer", "Sns", "Message",
    "Type", "Notification", "TopicArn", "Event", "s3:TestEvent", "source", "aws.s3", "aws.events", "aws.scheduler",
    "detail-type", "Object Created", "Object Deleted", "Scheduled Event", "detail", "time", "resources", "schedule",
    "nightly", "acme-landing", "orders/a.csv", "2026-11-23T02:00:00Z",
    "arn:aws:scheduler:us-east-1:1:schedule/default/nightly", "body", "messageId", "id",
]  # fmt: skip


def json_values(words: list[str] = EVENT_WORDS, *, max_leaves: int = 25) -> st.SearchStrategy[Any]:
    """Any JSON value (NaN and infinities included, as json.loads accepts them), leaning on `words`."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=30)
        | st.sampled_from(words)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.sampled_from(words) | st.text(max_size=10), children, max_size=5)
        ),
        max_leaves=max_leaves,
    )


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value, so one field anywhere can be broken."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def replaced(value: Any, path: tuple[Any, ...], replacement: Any, *, delete: bool = False) -> Any:
    """A copy of a JSON value with the field at `path` replaced (or deleted)."""
    if not path:
        return replacement
    value = copy.deepcopy(value)
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return value
