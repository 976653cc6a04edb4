"""Reconciliation in the routes file: an S3 route's `reconcile:`, how often its prefix is listed.

```yaml
s3: {bucket: acme-landing, key: "orders/**/*.csv", reconcile: 15m}
s3:
  bucket: acme-landing
  key: "orders/**/*.csv"
  reconcile: {every: 15m, overlap: 1h}   # overlap: how far before the last pass's start to look again
```

Every `every` (5 minutes to 24 hours) the route's prefix is listed, and each object that landed since
the last complete pass started, less `overlap` (0 to 7 days, default 1 hour), and that polytrigger has
no record of, takes the path its event would have (`reconciliation`). This is the routes file's side;
the deployment makes the schedule (`route_wiring.reconcile_schedules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from polytrigger.routing.durations import duration_field, say
from polytrigger.routing.suggest import close_to

RECONCILE_FIELDS = ("every", "overlap")
MIN_EVERY, MAX_EVERY = 300, 86400
DEFAULT_OVERLAP, MAX_OVERLAP = 3600, 7 * 86400
_ALIASES = {"period": "every", "rate": "every", "interval": "every", "frequency": "every", "lookback": "overlap"}


@dataclass(frozen=True, slots=True)
class Reconcile:
    """How often a route's prefix is listed, and how far before the last pass it looks again (seconds)."""

    every: int
    overlap: int = DEFAULT_OVERLAP

    @property
    def rate(self) -> str:
        """The Scheduler's expression for `every` (whole minutes: the field is checked so)."""
        minutes = self.every // 60
        if minutes % 60 == 0:
            hours = minutes // 60
            return f"rate({hours} hour{'' if hours == 1 else 's'})"
        return f"rate({minutes} minute{'' if minutes == 1 else 's'})"

    def describe(self) -> str:
        return f"listed every {say(self.every)}, looking back {say(self.overlap)} before the last pass"


def parse_reconcile(raw: Any, problems: list[str]) -> Reconcile | None:
    """`s3.reconcile`: a duration (how often), or `{every, overlap}`; one problem per fault, naming the field."""
    if isinstance(raw, Mapping):
        unknown = sorted(set(map(str, raw)) - set(RECONCILE_FIELDS))
        for field in unknown:
            meant = close_to(field, list(RECONCILE_FIELDS), _ALIASES)
            hint = f"; did you mean {meant}?" if meant else f" (fields: {', '.join(RECONCILE_FIELDS)})"
            problems.append(f"s3.reconcile.{field}: unknown field{hint}")
        if "every" not in raw:
            problems.append("s3.reconcile.every: required, how often the prefix is listed, such as 15m")
            return None
        every = _every(raw["every"], "s3.reconcile.every", problems)
        overlap = DEFAULT_OVERLAP
        if raw.get("overlap") is not None:
            found = duration_field(raw["overlap"], "s3.reconcile.overlap", problems, low=0, high=MAX_OVERLAP)
            overlap = found.seconds if found is not None else -1
        if every is None or overlap < 0 or unknown:
            return None
        return Reconcile(every=every, overlap=overlap)
    every = _every(raw, "s3.reconcile", problems, otherwise="{every: 15m, overlap: 1h} or ")
    return Reconcile(every=every) if every is not None else None


def _every(raw: Any, field: str, problems: list[str], otherwise: str = "") -> int | None:
    found = duration_field(
        raw, field, problems, low=MIN_EVERY, high=MAX_EVERY, bare=None, whole_minutes=True, otherwise=otherwise
    )
    return found.seconds if found is not None else None
