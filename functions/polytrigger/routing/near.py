"""Near misses: when no route matches a trigger, which routes came closest and why each one missed.

Pure and only for people (`polytrigger explain`); the matching itself stays in `model`. A key in a
bucket some route listens to is compared with that bucket's routes only; a key in any other bucket with
every S3 route, a close bucket name offered. S3 routes are
ranked by how far they got: the bucket matched (or nearly: a close name) > fewer ways of missing (bucket,
event kind, key) > the key glob matched > the key starts with the glob's literal prefix > more glob
segments matched > the event kind is subscribed; ties keep file order. So a route that misses only on
its event kind (the key fits) comes before one whose glob fails, whatever the order of the file.
Schedule routes are ranked by how close their schedule name is to the trigger's.

A glob is analysed segment by segment, each pattern segment compiled alone with `compile_glob`: the
segments before its first `**` are compared from the key's start, those after its last `**` from the
key's end, so a reason can say at which segment the key fails. Key text is echoed only in short,
escaped fragments (a key may be 1,024 bytes and hold control characters).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from polytrigger.core.triggers import Trigger
from polytrigger.routing.globs import DOUBLE_STAR, compile_glob
from polytrigger.routing.model import Route

_ECHO = 40  # characters of a key segment shown in a reason
_CLOSE = 0.6  # difflib ratio from which a name is offered as "did you mean"


def near_misses(routes: Iterable[Route], trigger: Trigger, limit: int = 3) -> list[str]:
    """Up to `limit` one-line reasons, closest route first; routes that match the trigger are left out.

    When some route listens to the trigger's bucket, only that bucket's routes are reasons: the key
    landed where it was meant to, and another bucket's route is no way for it to match.
    """
    candidates = list(routes)
    if trigger.kind == "s3" and any(route.bucket == trigger.bucket for route in candidates):
        candidates = [route for route in candidates if route.bucket == trigger.bucket]
    misses = [
        miss
        for miss in (
            _schedule_miss(route, trigger) if trigger.kind == "schedule" else _s3_miss(route, trigger)
            for route in candidates
        )
        if miss is not None
    ]
    misses.sort(key=lambda miss: miss.score, reverse=True)  # stable: file order among equals
    return [miss.reason for miss in misses[: max(limit, 0)]]


@dataclass(frozen=True, slots=True)
class _Miss:
    score: tuple[float, ...]
    reason: str


def _schedule_miss(route: Route, trigger: Trigger) -> _Miss | None:
    if not route.schedule or route.schedule == trigger.schedule:
        return None
    ratio = difflib.SequenceMatcher(None, route.schedule, trigger.schedule).ratio()
    hint = f" (did you mean {route.schedule}?)" if ratio >= _CLOSE else ""
    return _Miss((ratio,), f"route {route.name}: schedule `{route.schedule}`, not `{_show(trigger.schedule)}`{hint}")


def _s3_miss(route: Route, trigger: Trigger) -> _Miss | None:
    if route.schedule or route.key_pattern is None or route.matches(trigger):
        return None
    problems: list[str] = []
    bucket = 2
    if route.bucket != trigger.bucket:
        close = difflib.SequenceMatcher(None, route.bucket, trigger.bucket).ratio() >= _CLOSE
        bucket = 1 if close else 0
        problems.append(f"other bucket (did you mean {route.bucket}?)" if close else "other bucket")
    subscribed = trigger.event in route.events
    if not subscribed:
        events = ", ".join(sorted(route.events))
        problems.append(f"event kind `{trigger.event}` not subscribed (events: {events})")
    matched, failure = glob_failure(route.key, trigger.key)
    if failure:
        problems.append(f"the key glob `{route.key}` {failure}")
    prefix = trigger.key.startswith(route.key_prefix)
    reason = f"route {route.name} (bucket {route.bucket}): " if bucket < 2 else f"route {route.name}: "
    score = (bucket, -len(problems), not failure, prefix, matched, subscribed)
    return _Miss(score, reason + "; ".join(problems or ["does not match"]))


def glob_failure(pattern: str, key: str) -> tuple[int, str]:
    """How many segments of `pattern` the key matched, and why the key fails it ("" if it does not fail).

    The reason reads after "the key glob `…`": "fails at segment 2 (`2026` vs `*.csv`)", "fails: the key
    has more folders than the glob", ... Segments are counted from 1, in the key.
    """
    texts = pattern.split("/")
    parts = key.split("/")
    if DOUBLE_STAR not in texts:
        for index, (text, part) in enumerate(zip(texts, parts, strict=False)):
            if not _segment_matches(text, part):
                return index, f"fails at segment {index + 1} ({_pair(part, text)})"
        if len(parts) > len(texts):
            return len(texts), "fails: the key has more folders than the glob"
        if len(parts) < len(texts):
            return len(parts), "fails: the key has fewer folders than the glob"
        return len(texts), ""
    first = texts.index(DOUBLE_STAR)
    last = len(texts) - 1 - texts[::-1].index(DOUBLE_STAR)
    head, tail = texts[:first], texts[last + 1 :]
    trailing = not tail  # a trailing `**` stands for at least one segment
    if len(parts) < len(head) + len(tail) + trailing:
        matched = sum(1 for text, part in zip(head, parts, strict=False) if _segment_matches(text, part))
        return matched, "fails: the key has fewer folders than the glob"
    for index, text in enumerate(head):
        if not _segment_matches(text, parts[index]):
            return index, f"fails at segment {index + 1} ({_pair(parts[index], text)})"
    offset = len(parts) - len(tail)
    for index, text in enumerate(tail):
        if not _segment_matches(text, parts[offset + index]):
            return len(head) + index, f"fails at segment {offset + index + 1} ({_pair(parts[offset + index], text)})"
    matched = len(head) + len(tail)
    if compile_glob(pattern).fullmatch(key):
        return matched, ""
    return matched, "fails between its `**` (no place for its middle segments)"


def _segment_matches(text: str, part: str) -> bool:
    if not text or not any(ch in text for ch in "*?{}"):
        return text == part
    return compile_glob(text).fullmatch(part) is not None


def _pair(part: str, text: str) -> str:
    return f"`{_show(part)}` vs `{text}`"


def _show(text: str, limit: int = _ECHO) -> str:
    """A key fragment as one short line: control characters escaped, long text clipped with `…`."""
    clipped = text if len(text) <= limit else text[: limit - 1] + "…"
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in clipped)
