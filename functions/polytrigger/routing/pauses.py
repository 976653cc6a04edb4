"""Pauses that fight the routes: what a `deactivate` means for the routes that start the same sync.

A start that meets a paused sync is held until the sync is active again, or for the route's `hold` at
most, then parked. So for each sync some route pauses, `validate` says:

- **held** (a note): the routes whose starts wait while it is paused, and until which route resumes it;
  a warning when the pause can last longer than such a route's `hold` (its files would be parked first);
- **activate_first lifts the pause** (a warning): a start with `activate_first: true` activates the sync
  first, so it ends the pause whenever it fires inside it; for a schedule with fixed times this is
  checked firing by firing, so a nightly schedule that keeps out of a weekend pause is fine;
- **no resume** (a warning): nothing activates the sync again, so held files wait for `hold` to run out.

The pause windows are worked out from the schedules' own firings (cron and at, in their time zones,
daylight saving time included) over the next 400 days from `now`; a rate has no fixed clock time and a
bare schedule's times are not in the file, so with those (or a pause made by a file or a chain) the
lines say what happens without how long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from polytrigger.core.actions import SyncTarget
from polytrigger.routing.durations import say
from polytrigger.routing.model import Route, Routes
from polytrigger.routing.schedules import firings

HORIZON = timedelta(days=400)  # more than a year: every season's pauses, both clock changes
MAX_WINDOWS = 500  # pauses looked at per sync: a pause every few minutes need not be followed for a year

_Next = Callable[[datetime], datetime | None]  # a route's first firing after a time (None: none in the horizon)


@dataclass(frozen=True, slots=True)
class Finding:
    """One line `validate` prints about a pause: a warning (`--strict` fails on it) or a note."""

    warning: bool
    text: str


@dataclass(frozen=True, slots=True)
class _Window:
    start: datetime  # in UTC, as every instant here
    end: datetime | None  # None: no resume within the horizon
    by: Route | None  # the route whose firing ends it


def pause_findings(routes: Routes, now: datetime) -> list[Finding]:
    """Every warning and note about the pauses in `routes`, seen from `now` (aware), sync by sync in file order."""
    found: list[Finding] = []
    for sync in _syncs(routes.routes):
        on = [route for route in routes.routes if any(_same(sync, target) for target in route.syncs)]
        pausers = [route for route in on if route.action == "deactivate"]
        if pausers:
            found.extend(_about(sync, pausers, on, now))
    return found


def _about(sync: SyncTarget, pausers: list[Route], on: list[Route], now: datetime) -> list[Finding]:
    what = f"{sync.type} sync {sync.id}"
    paused_by = _names(pausers)
    first = [route for route in on if route.action == "start" and _activates_first(route, sync)]
    resumers = [route for route in on if route.action == "activate"] + first
    starters = [route for route in on if route.action == "start" and not _activates_first(route, sync)]
    if not resumers:
        return [_no_resume(paused_by, what, starters)]
    until = _times(pausers)
    found = [
        finding
        for route in first
        for finding in _lifted(route, what, paused_by, _windows(until, [r for r in resumers if r is not route], now))
    ]
    windows = _windows(until, resumers, now)
    if windows and windows[-1].end is None:
        return [*found, _no_resume(paused_by, what, starters, since=windows[-1].start)]
    longest = _longest(windows)
    ending = [route for route in resumers if windows is None or any(w.by is route for w in windows)]
    resumed_by = _either(ending or resumers)
    held: list[Route] = []
    for route in starters:
        if not _starts_while_paused(route, windows):
            continue
        if longest is None or longest <= route.hold:
            held.append(route)
            continue
        found.append(
            Finding(
                True,
                f"route {route.name} starts {what}, which {paused_by} pauses for up to {_span(longest)} until"
                f" {resumed_by} resumes it: longer than its hold ({say(route.hold)}), so its files would be parked"
                f" before the resume; give it hold: {_span(longest)} or more",
            )
        )
    if held:
        span = f", at most {_span(longest)} later" if longest is not None else ""
        holds = ", ".join(f"{route.name} (hold {say(route.hold)})" for route in held)
        found.append(
            Finding(
                False,
                f"{paused_by} pauses {what} until {resumed_by} resumes it{span}; meanwhile the starts of"
                f" route{'s' if len(held) > 1 else ''} {holds} are held",
            )
        )
    return found


def _no_resume(paused_by: str, what: str, starters: list[Route], since: datetime | None = None) -> Finding:
    when = f" on {since:%a %Y-%m-%d %H:%M} UTC" if since is not None else ""
    after = " after that" if since is not None else " again"
    waiting = f": the starts of {_names(starters)} would be held until their hold runs out" if starters else ""
    return Finding(
        True, f"{paused_by} pauses {what}{when} and no route activates it{after}{waiting}, unless a person resumes it"
    )


def _lifted(route: Route, what: str, paused_by: str, windows: list[_Window] | None) -> list[Finding]:
    """A warning when `route`'s activate_first ends a pause: at a firing inside one, or whenever it may."""
    lifts = f"route {route.name} activates {what} before starting it (activate_first), so it ends the pause {paused_by} sets"
    fix = "drop activate_first to hold its starts instead, or keep its schedule out of the pause"
    following = _next_of(route)
    if windows is None or following is None:
        return [Finding(True, f"{lifts} whenever it fires in it: {fix}")]
    inside = next((fired for window in windows if (fired := _inside(following, window)) is not None), None)
    if inside is None or route.schedule_spec is None:
        return []
    from zoneinfo import ZoneInfo

    local = inside.astimezone(ZoneInfo(route.schedule_spec.timezone))
    return [Finding(True, f"{lifts}: it fires in it at {local:%a %Y-%m-%d %H:%M %Z}; {fix}")]


def _inside(following: _Next, window: _Window) -> datetime | None:
    fired = following(window.start)
    return fired if fired is not None and (window.end is None or fired < window.end) else None


def _starts_while_paused(route: Route, windows: list[_Window] | None) -> bool:
    """Whether `route` may start the sync while it is paused (a file or chain: any time; a schedule: a firing
    in a pause)."""
    following = _next_of(route)
    if windows is None or following is None:
        return True
    return any(_inside(following, window) is not None for window in windows)


def _windows(pauses: _Next | None, resumers: Sequence[Route], now: datetime) -> list[_Window] | None:
    """From each pause to the first resume after it, over the horizon; None when some time is not fixed."""
    resumes = [(route, _next_of(route)) for route in resumers]
    if pauses is None or any(following is None for _, following in resumes):
        return None
    found: list[_Window] = []
    moment = now
    while len(found) < MAX_WINDOWS and (start := pauses(moment)) is not None and start < now + HORIZON:
        ends = [(end, route) for route, following in resumes if following and (end := following(start)) is not None]
        end, by = min(ends, key=lambda pair: pair[0], default=(None, None))
        found.append(_Window(start, end, by))
        if end is None:
            break
        moment = end
    return found


def _longest(windows: list[_Window] | None) -> int | None:
    """The longest pause in seconds (None: not known)."""
    ends = [(window.start, window.end) for window in windows or () if window.end is not None]
    return max((int((end - start).total_seconds()) for start, end in ends), default=None)


def _times(routes: list[Route]) -> _Next | None:
    """The first firing of any of `routes` after a time, or None when some route's times are not fixed."""
    each = [_next_of(route) for route in routes]
    if any(following is None for following in each):
        return None

    def following(after: datetime) -> datetime | None:
        return min((fired for each_next in each if each_next and (fired := each_next(after))), default=None)

    return following


def _next_of(route: Route) -> _Next | None:
    """How to find `route`'s first firing after a time; None when its times are not fixed (an S3 route, a chain,
    a bare schedule, a rate)."""
    spec = route.schedule_spec
    if spec is None or spec.expression.startswith("rate("):
        return None

    def following(after: datetime) -> datetime | None:
        fired = [firing.at for firing in firings(spec, after, 1) if firing.at is not None]
        return fired[0].astimezone(UTC) if fired else None  # in UTC: instants in one zone compare as wall times

    return following


def _syncs(routes: Sequence[Route]) -> list[SyncTarget]:
    seen: dict[tuple[str, str], SyncTarget] = {}
    for route in routes:
        for sync in route.syncs:
            seen.setdefault((sync.type, sync.id), sync)
    return list(seen.values())


def _same(one: SyncTarget, other: SyncTarget) -> bool:
    return (one.type, one.id) == (other.type, other.id)


def _activates_first(route: Route, sync: SyncTarget) -> bool:
    return any(_same(sync, target) and target.activate_first for target in route.syncs)


def _either(routes: Sequence[Route]) -> str:
    """`route a`, `route a or b`, `route a, b or c`: whichever comes first."""
    names = [route.name for route in routes]
    return "route " + (", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0])


def _names(routes: Sequence[Route]) -> str:
    names = ", ".join(route.name for route in routes)
    return f"route{'s' if len(routes) > 1 else ''} {names}"


def _span(seconds: int) -> str:
    """A pause's length, to the minute, in hours when it has no odd minutes."""
    minutes = -(-seconds // 60)
    return say(minutes * 60) if minutes % 60 else f"{minutes // 60} hour{'s' if minutes != 60 else ''}"
