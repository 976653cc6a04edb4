"""What happened to one file, for each route it matches and each of that route's syncs: one state each.

Coverage, not bookkeeping: a run of the sync created after the file landed has its data, whoever
started it. So the file's run is the first run of its sync (in the `by_sync` index of the dedup
table, sorted by the time from which each run covers files) created since the file landed, and no
list of files is kept anywhere. What is read for one file, whatever the size of the table: its
landing (`file#…`), then for each (route, sync) one index query, and only where no run covers it
yet a few items by key — the hold, the debounce window, the action's dedup record, the promise.

The states, in the order they are decided:
- `covered` / `started`: a run of the sync created since the file landed has it (`started`: the
  file's own start made that run); with the run's outcome, or `running` while no ending is heard.
- `held`: the sync is paused; the file waits in its hold for the sync to be active again.
- `waiting`: in a debounce window, which starts once about `until`; or, on a gated route, in a
  partition whose gate still waits (`reason` says for what: "38 of 40 objects, marker … missing").
- `parked`: a start for it was refused or gave up, with the reason; `polytrigger redrive` sends it back.
- `deferred`: its start met a running run and waits on the dispatch queue, or its window closed and
  its run is not recorded yet.
- `unknown`: polytrigger has no record of what became of it (older than the records are kept?).
A file with no landing is `never seen`: no event for it reached polytrigger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from polytrigger.core.actions import Action
from polytrigger.core.keys import digest
from polytrigger.core.triggers import Trigger
from polytrigger.dispatch.dedup import KEY_PREFIX
from polytrigger.dispatch.deferrals import SKEW_SECONDS, coverage_since, window_id
from polytrigger.dispatch.holds import DynamoHolds, hold_id
from polytrigger.dispatch.landings import DynamoLandings, Landing
from polytrigger.dispatch.table import BY_SYNC_INDEX, iso, sync_key
from polytrigger.dispatch.windows import DynamoWindows
from polytrigger.gating.state import GateState, partition_text, read_gate
from polytrigger.routing import Routes
from polytrigger.routing.gates import Gate
from polytrigger.runs.dynamo_ledger import run_from_item
from polytrigger.runs.ledger import Run
from polytrigger.runs.promises import DynamoPromises

COVERING_READ = 20  # index items read after the file landed: its run is among the first few


@dataclass(slots=True)
class SyncFate:
    route: str
    sync_id: str
    sync_type: str
    state: str  # covered, started, held, waiting, parked, deferred, unknown
    execution_id: str = ""
    run_status: str = ""  # completed, failed, ... or running
    since: str = ""  # held since / waiting since / parked at
    until: str = ""  # waiting until about / held at most until
    reason: str = ""
    parked_in: str = ""
    freshness: dict[str, str] = field(default_factory=dict)  # due, verdict (kept / what broke it / pending)

    @property
    def synced(self) -> bool:
        return self.state in ("covered", "started") and self.run_status == "completed"


@dataclass(slots=True)
class FileFate:
    url: str
    landing: Landing | None
    routes: list[str]
    syncs: list[SyncFate]

    @property
    def synced(self) -> bool:
        """Every matched sync has a completed run covering the file (exit status 0)."""
        return self.landing is not None and bool(self.syncs) and all(fate.synced for fate in self.syncs)

    def to_dict(self) -> dict[str, Any]:
        landing = self.landing
        return {
            "object": self.url,
            "seen": landing is not None,
            "landed_at": landing.landed_at.isoformat() if landing else None,
            "received_at": landing.received_at.isoformat() if landing else None,
            "routes": self.routes,
            "syncs": [asdict(fate) for fate in self.syncs],
            "synced": self.synced,
        }


class Records:
    """The dedup table as `status` reads it: by key and through the `by_sync` index, never a scan."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.landings = DynamoLandings(client, table)
        self.holds = DynamoHolds(client, table)
        self.windows = DynamoWindows(client, table, 0)
        self.promises = DynamoPromises(client, table)

    def after(self, sync_type: str, sync_id: str, since: datetime) -> Iterator[dict[str, Any]]:
        """The sync's runs and parked starts that cover files from `since` on, earliest first."""
        answer = self.client.query(
            TableName=self.table,
            IndexName=BY_SYNC_INDEX,
            KeyConditionExpression="sync_key = :sync AND covers_from >= :since",
            ExpressionAttributeValues={":sync": {"S": sync_key(sync_type, sync_id)}, ":since": {"S": iso(since)}},
            Limit=COVERING_READ,
        )
        yield from answer.get("Items", [])

    def outcome(self, action: Action) -> dict[str, Any] | None:
        """The action's outcome as its dedup record keeps it (a failed one is not kept)."""
        key = {"id": {"S": f"{KEY_PREFIX}#{action.dedup_key}"}}
        item = self.client.get_item(TableName=self.table, Key=key).get("Item")
        if not item or "data" not in item:
            return None
        try:
            data = json.loads(item["data"]["S"])
        except (KeyError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def run(self, execution_id: str) -> Run | None:
        item = self.client.get_item(TableName=self.table, Key={"id": {"S": f"run#{execution_id}"}}).get("Item")
        return run_from_item(item) if item else None


def fate_of(bucket: str, key: str, routes: Routes, records: Records, *, route: str = "", sync: str = "") -> FileFate:
    url = f"s3://{bucket}/{key}"
    landing = records.landings.get(bucket, key)
    trigger = (
        landing.trigger()
        if landing
        else Trigger.s3(bucket=bucket, key=key, event="created", sequencer="", time=datetime.now(UTC))
    )
    matched = [found.name for found in routes.matching(trigger)]
    gated = {arrival.route.name: arrival for arrival in routes.arrivals([trigger]) if arrival.counted}
    made = routes.actions_for([trigger]) + [a for arrival in gated.values() for a in arrival.route.actions_for(trigger)]
    actions = [
        action
        for action in made
        if action.kind == "start" and (not route or action.route == route) and (not sync or action.sync.id == sync)
    ]
    if landing is None:
        never = [SyncFate(a.route, a.sync.id, a.sync.type, "never seen") for a in actions]
        return FileFate(url, None, matched, never)
    since = coverage_since(landing.landed_at, landing.received_at.timestamp())
    fates = [_sync_fate(action, landing, since, routes, records) for action in actions]
    for fate in fates:
        arrival = gated.get(fate.route)
        if arrival is not None and fate.state == "unknown":
            _gate_fate(
                fate, arrival.route.gate, read_gate(records.client, records.table, fate.route, arrival.partition)
            )
    return FileFate(url, landing, matched, fates)


def _gate_fate(fate: SyncFate, gate: Gate | None, state: GateState | None) -> None:
    """A file of a gated route that no run covers yet: what its partition's gate still waits for."""
    if gate is None or state is None:
        return
    where = f"partition {partition_text(state.partition)}"
    if not state.complete:
        fate.state, fate.since = "waiting", state.first_at
        fate.reason = (
            f"for the gate of {where}: {', '.join(state.missing(gate, datetime.now(UTC))) or 'its quiet period'}"
        )
        return
    fate.state, fate.since = "deferred", state.completed_at
    fate.reason = f"the gate of {where} completed (version {state.fired}): its start is on its way"


def _sync_fate(action: Action, landing: Landing, since: float, routes: Routes, records: Records) -> SyncFate:
    fate = SyncFate(action.route, action.sync.id, action.sync.type, "unknown")
    fate.freshness = _freshness(action, routes, records)
    received = landing.received_at.timestamp()
    options = digest(action.sync.option_pairs())
    parks: list[dict[str, Any]] = []
    for item in records.after(action.sync.type, action.sync.id, datetime.fromtimestamp(since, UTC)):
        name = item["id"]["S"]
        if name.startswith("run#"):
            covering = run_from_item(item)
            started = (records.outcome(action) or {}).get("execution_id") == covering.execution_id
            fate.state = "started" if started else "covered"
            fate.execution_id, fate.run_status = covering.execution_id, covering.status or "running"
            fate.since = covering.started_at.isoformat() if covering.started_at else ""
            return fate
        if name.startswith("parked#") and item.get("options", {}).get("S") == options:
            parks.append(item)
    hold = records.holds.get(hold_id(action))
    if hold is not None and hold.last_at + SKEW_SECONDS >= received:
        fate.state, fate.reason = "held", f"the sync is paused ({hold.reason}); {hold.count} file(s) held"
        fate.since, fate.until = _at(hold.held_at), _at(hold.deadline)
        return fate
    window = records.windows.get(window_id(action)) if action.debounce else None
    if window is not None and window.opened_at <= received + SKEW_SECONDS:
        fate.state, fate.since = "waiting", _at(window.opened_at)
        fate.until = _at(min(window.last_arrival + action.debounce, window.deadline))
        fate.reason = f"in a debounce window with {window.count} file(s)"
        return fate
    if parks:
        park = parks[-1]
        fate.state, fate.reason = "parked", park.get("reason", {}).get("S", "")
        fate.since, fate.parked_in = park.get("parked_at", {}).get("S", ""), park.get("parked_in", {}).get("S", "")
        return fate
    own = records.outcome(action)
    if own is not None:
        status = str(own.get("status", ""))
        fate.reason = str(own.get("reason", ""))
        if status in ("started", "covered") and own.get("execution_id"):
            run = records.run(str(own["execution_id"]))
            fate.state, fate.execution_id = status, str(own["execution_id"])
            fate.run_status = (run.status or "running") if run else "not in the run ledger"
        elif status in ("deferred", "coalesced", "held"):
            fate.state = "deferred"
            if status != "deferred" or fate.reason.startswith("debounced"):
                fate.reason = "its debounce window closed or its hold was released: its start is on its way"
    return fate


def _freshness(action: Action, routes: Routes, records: Records) -> dict[str, str]:
    route = routes.named(action.route)
    if route is None or not route.freshness:
        return {}
    key = digest(["promise", action.route, action.sync.type, action.sync.id, action.trigger.identity])
    found = records.promises.verdict(key)
    if found is None:
        return {"verdict": "no promise recorded"}
    due, verdict = found
    return {"due": due.isoformat(), "verdict": verdict or "pending"}


def _at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
