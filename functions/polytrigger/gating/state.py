"""A gate's state in the dedup table: one item per (route, partition), one per object seen in it.

- `gate#<route>#<partition>`: the partition's current *version* (1 from its first object; a new object
  after a completion opens the next), what has landed in that version (objects, bytes, the marker, the
  listed keys and manifest entries seen), which version last fired (`fired`) and whether a fired
  start is still owed (`owed`), and when the poller must look at it (`due_in`/`due_at`: a quiet
  period's end, the timeout, an owed start's safety net).
- `part#<gate id>#<key>`: one object of the partition, with its sequencer, size, ETag and the version
  it was counted in: the write that makes it is what lets the count move once per object.
- `need#<gate id>#<key>`: one entry of a read manifest (its size/ETag to check; `arrived`, a hint that it
  was counted). Written again by every read of the manifest (a retry, a duplicate delivery), so it is not
  what makes the count move once:
- `got#<gate id>#<key>`: the entry counted, written with the count in one transaction whose condition
  is that it does not exist yet.

Nothing here is a list that grows inside one item.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from polytrigger.core.triggers import Trigger
from polytrigger.routing.gates import Gate, fill
from polytrigger.routing.globs import Partition

GATE_PREFIX = "gate#"
PART_PREFIX = "part#"
NEED_PREFIX = "need#"
GOT_PREFIX = "got#"
MAX_ID_BYTES = 1024


def partition_text(partition: Partition) -> str:
    """`date=2026-12-06/region=eu`: a partition as people read it (and as its item id has it)."""
    return "/".join(f"{name}={value}" for name, value in partition) or "(whole route)"


def gate_id(route: str, partition: Partition) -> str:
    """The partition's item: readable when it fits a DynamoDB key, else a digest of it."""
    text = f"{GATE_PREFIX}{route}#{partition_text(partition)}"
    try:
        if len(text.encode("utf-8")) <= MAX_ID_BYTES:
            return text
    except UnicodeEncodeError:
        pass
    raw = json.dumps([route, list(map(list, partition))], ensure_ascii=False)
    return f"{GATE_PREFIX}{route[:200]}#sha256:{hashlib.sha256(raw.encode('utf-8', 'surrogatepass')).hexdigest()}"


def member_id(prefix: str, gate: str, url: str) -> str:
    """A part or manifest entry of the gate `gate`: `part#<gate id>#s3://bucket/key`, or its digest."""
    text = f"{prefix}{gate}#{url}"
    try:
        if len(text.encode("utf-8")) <= MAX_ID_BYTES:
            return text
    except UnicodeEncodeError:
        pass
    return f"{prefix}sha256:{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}"


def seconds(text: str) -> float:
    """An item's sortable time (`dispatch.table.iso`) as epoch seconds; 0 when the item has none."""
    return datetime.fromisoformat(text).timestamp() if text else 0.0


def _number(item: dict[str, Any], name: str) -> int:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else 0


def _text(item: dict[str, Any], name: str) -> str:
    value = item.get(name)
    return str(value["S"]) if value and "S" in value else ""


@dataclass(frozen=True, slots=True)
class GateState:
    """One partition's gate as the table has it (a partition nothing has landed in has no item)."""

    route: str
    partition: Partition
    version: int = 0  # 1 from the partition's first object; +1 for each change after a completion
    fired: int = 0  # the last version that completed (and fired); 0: never complete
    owed: int = 0  # a fired version whose start is not known to be made yet (0: none)
    objects: int = 0  # objects landed in this version (each key once)
    bytes: int = 0  # their bytes
    marker_at: str = ""  # when this version's marker landed ("" : not yet)
    keys_seen: int = 0  # the gate's listed keys that have landed (ever)
    manifest_key: str = ""  # the manifest read in this version ("" : none yet)
    manifest_total: int = -1  # entries it lists (-1: no manifest read yet)
    manifest_present: int = 0  # of which have landed (and match their size/ETag where checked)
    first_at: str = ""  # this version's first object
    last_at: str = ""  # this version's latest object
    first_key: str = ""  # this version's first object's key: the fired trigger's key
    completed_at: str = ""  # when the last fired version completed
    reported: int = 0  # the version whose timeout was reported (0: none)
    manifest_error: str = ""  # why this version's manifest could not be read

    @property
    def complete(self) -> bool:
        """The current version has fired: nothing is missing until a new object lands."""
        return self.version > 0 and self.fired == self.version

    @classmethod
    def from_item(cls, item: dict[str, Any], route: str, partition: Partition) -> GateState:
        return cls(
            route=route,
            partition=partition,
            version=_number(item, "version"),
            fired=_number(item, "fired"),
            owed=_number(item, "owed"),
            objects=_number(item, "objects"),
            bytes=_number(item, "bytes"),
            marker_at=_text(item, "marker_at"),
            keys_seen=_number(item, "keys_seen"),
            manifest_key=_text(item, "manifest_key"),
            manifest_total=_number(item, "manifest_total") if "manifest_total" in item else -1,
            manifest_present=_number(item, "manifest_present"),
            first_at=_text(item, "first_at"),
            last_at=_text(item, "last_at"),
            first_key=_text(item, "first_key"),
            completed_at=_text(item, "completed_at"),
            reported=_number(item, "reported"),
            manifest_error=_text(item, "manifest_error"),
        )

    def ready(self, gate: Gate, now: float) -> bool:
        """Every condition of the gate holds for the current version, which has not fired yet."""
        if self.version == 0 or self.fired >= self.version:
            return False
        return not self.missing(gate, datetime.fromtimestamp(now, UTC)) and (
            not gate.quiet or (bool(self.last_at) and now - seconds(self.last_at) >= gate.quiet)
        )

    def trigger(self, bucket: str) -> Trigger:
        """The trigger of this partition's fired version: the same for every caller (the winner, the poller),
        so its starts have one dedup key; a later version is another trigger, so another start."""
        return Trigger.s3(
            bucket=bucket,
            key=self.first_key,
            event="created",
            sequencer=f"gate:{partition_text(self.partition)}:v{self.fired}",
            time=datetime.fromisoformat(self.completed_at) if self.completed_at else datetime.now(UTC),
        )

    def missing(self, gate: Gate, now: datetime | None = None) -> list[str]:
        """What the current version still waits for, as people read it ([] : complete, or only quiet).

        `now` (with a quiet period): also whether the partition has been quiet long enough.
        """
        if self.complete:
            return []
        partition = self.partition
        said: list[str] = [self.manifest_error] if self.manifest_error else []
        if gate.marker and not self.marker_at:
            said.append(f"marker {fill(gate.marker, partition)} missing")
        if gate.keys and self.keys_seen < len(gate.keys):
            said.append(f"{self.keys_seen} of {len(gate.keys)} listed keys")
        if gate.manifest is not None:
            if self.manifest_total < 0:
                said.append(f"manifest {fill(gate.manifest.key, partition)} missing")
            elif self.manifest_present < self.manifest_total:
                said.append(f"{self.manifest_present} of {self.manifest_total} files of the manifest")
        if gate.objects and self.objects < gate.objects:
            said.append(f"{self.objects} of {gate.objects} objects")
        if gate.bytes and self.bytes < gate.bytes:
            said.append(f"{self.bytes} of {gate.bytes} bytes")
        if gate.quiet and now is not None and self.last_at:
            quiet_for = (now - datetime.fromisoformat(self.last_at)).total_seconds()
            if quiet_for < gate.quiet:
                said.append(f"quiet for {int(quiet_for)} of {gate.quiet} s")
        return said


def read_gate(client: Any, table: str, route: str, partition: Partition) -> GateState | None:
    """The partition's gate (a strongly consistent read), or None when nothing has landed in it."""
    answer = client.get_item(TableName=table, Key={"id": {"S": gate_id(route, partition)}}, ConsistentRead=True)
    item = answer.get("Item")
    return GateState.from_item(item, route, partition) if item else None
