"""A trigger is one real-world occurrence that may start syncs, whatever shape the event had."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

TriggerKind = Literal["s3", "schedule", "polytomic"]
S3EventKind = Literal["created", "deleted"]
TRIGGER_KINDS: tuple[TriggerKind, ...] = ("s3", "schedule", "polytomic")
S3_EVENT_KINDS: tuple[S3EventKind, ...] = ("created", "deleted")
# How an S3 object reached polytrigger: its event, or a listing that found it (no event had come, or the
# user asked to replay it). A listing knows no sequencer: its identity is the object's LastModified.
FoundBy = Literal["event", "reconciliation", "replay"]
LISTINGS: tuple[FoundBy, ...] = ("reconciliation", "replay")
# How a Polytomic run can end: the statuses a `polytomic` trigger carries and a chained route follows.
# `interrupted` is taken as an ending (Polytomic's docs imply it; a run does not resume from it).
RUN_ENDINGS: tuple[str, ...] = ("completed", "completed_with_errors", "failed", "canceled", "interrupted")
# A schedule's name, as routes name it and events carry it (EventBridge's own rule for rule and schedule names).
SCHEDULE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class Trigger:
    """Normalised "something happened"; routes match on it, dedup keys derive from its identity."""

    kind: TriggerKind
    time: datetime
    bucket: str = ""
    key: str = ""  # decoded object key
    event: S3EventKind = "created"
    sequencer: str = ""
    schedule: str = ""
    upstream: str = ""  # polytomic: the sync whose run ended
    execution: str = ""  # polytomic: that run
    status: str = ""  # polytomic: how it ended
    # polytomic, a join's start: every (upstream sync, execution) whose endings it waited for, sorted;
    # the fields above are then the latest of those endings
    after: tuple[tuple[str, str], ...] = ()
    size: int = field(default=0, compare=False)  # s3: the object's bytes, as the event says (gates count them)
    etag: str = field(default="", compare=False)  # s3: its ETag (a manifest's entries may be checked against it)
    found_by: FoundBy = field(default="event", compare=False)  # s3: its event, or a listing (no sequencer)

    @classmethod
    def s3(
        cls, *, bucket: str, key: str, event: S3EventKind, sequencer: str, time: datetime, size: int = 0, etag: str = ""
    ) -> Trigger:
        return cls(kind="s3", bucket=bucket, key=key, event=event, sequencer=sequencer, time=time, size=size, etag=etag)

    @classmethod
    def listed(
        cls, *, bucket: str, key: str, last_modified: datetime, etag: str, size: int, found_by: FoundBy
    ) -> Trigger:
        """An object a listing found (reconciliation, replay): its identity is its LastModified, to the
        second, so reconciliation and replay agree on it; the landing item keeps its event from counting
        it again (`dispatch.landings`)."""
        moment = last_modified.astimezone(UTC).replace(microsecond=0)
        return cls(
            kind="s3",
            bucket=bucket,
            key=key,
            event="created",
            time=moment,
            size=size,
            etag=etag.strip('"'),
            found_by=found_by,
        )

    @classmethod
    def scheduled(cls, *, schedule: str, time: datetime) -> Trigger:
        return cls(kind="schedule", schedule=schedule, time=time)

    @classmethod
    def polytomic(
        cls, *, sync_id: str, execution: str, status: str, time: datetime, after: tuple[tuple[str, str], ...] = ()
    ) -> Trigger:
        """A Polytomic run ending: chained routes start their syncs on it (`after`: a join's whole set)."""
        return cls(
            kind="polytomic",
            upstream=sync_id,
            execution=execution,
            status=status,
            time=time,
            after=tuple(sorted(after)),
        )

    @property
    def identity(self) -> str:
        """Same occurrence ⇒ same identity, whichever shape or delivery carried it.

        S3: the object's sequencer orders writes to one key, so a redelivered upload keeps it and a new
        upload of the same key gets a new one (the event time is only a fallback: its precision
        differs between shapes). A listed object has its LastModified instead. Schedules: name and scheduled time, normalised to UTC seconds.
        """
        if self.kind == "s3":
            listed = self.found_by != "event"  # a listing's LastModified, never mistaken for an event's time
            occurrence = self.sequencer or (f"listed {iso(self.time)}" if listed else iso(self.time))
            return json.dumps(["s3", self.bucket, self.key, self.event, occurrence], ensure_ascii=False)
        if self.kind == "polytomic" and self.after:  # a join's set, whichever of its endings came last
            return json.dumps(["polytomic", "after", [list(pair) for pair in self.after]], ensure_ascii=False)
        if self.kind == "polytomic":  # one run ends once however often its event arrives
            return json.dumps(["polytomic", self.execution, self.status], ensure_ascii=False)
        return json.dumps(["schedule", self.schedule, iso(self.time)], ensure_ascii=False)

    def describe(self) -> str:
        """Short human label for logs and the explain table."""
        if self.kind == "s3":
            return f"s3://{self.bucket}/{self.key} ({self.event})"
        if self.kind == "polytomic" and self.after:
            runs = ", ".join(f"sync {sync} run {execution}" for sync, execution in self.after)
            return f"{runs} ended ({self.status} last)"
        if self.kind == "polytomic":
            return f"sync {self.upstream} run {self.execution} {self.status}"
        return f"schedule {self.schedule} @ {iso(self.time)}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime:
    """Parse an AWS ISO-8601 timestamp (`Z` or offset, optional fraction); naive means UTC."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected an ISO-8601 time, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
