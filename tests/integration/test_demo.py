"""`make demo`'s runner, as a user runs it: a separate process with its own local stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # a process with its own local stack, and real waits: it must be


def test_demo_runs_every_sample_and_shows_the_replay_as_duplicate() -> None:
    result = _demo()

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    replayed = [line for line in out.splitlines() if "(replayed)" in line]
    assert len(replayed) == 2
    assert all("| duplicate " in line for line in replayed)
    deferred = [line for line in out.splitlines() if line.startswith("dispatch queue (deferred)")]
    assert deferred, "the starts that met a running run were delivered from the dispatch queue"
    assert "| deferred " in out
    assert any("| started " in line or "| covered " in line for line in deferred)
    assert "| already_running |" not in out  # with the dispatch queue, a 409 is never final
    assert "| deactivated " in out
    assert "| activated " in out
    assert "the replay made 0." in out
    assert "route wiring (what sam deploy does with these routes): 3 created\n" in out
    # the loop closed: endings by webhook (half lost on the way) and poller, a chained start, a failed
    # (here canceled: the freeze paused the bulk sync) run the alarm fires on, and status for one file
    assert "\nrun outcomes: the webhook delivered " in out
    assert "<- RunsFailedAlarm fires on this" in out
    assert "chained start | customers-after-orders | model 3c1f0e5d | start  | started" in out
    assert "$ polytrigger status s3://acme-landing/orders/" in out
    # every file answers for itself: held over the freeze and covered after the thaw, waiting, parked,
    # never seen, no route (a deferred one too, while the warehouse's run lasts)
    assert "lands: held, held" in out
    assert "the thaw released the hold: " in out
    assert ": held since " in out
    assert "(covered: it was created after the file landed)" in out
    assert ": waiting — in a debounce window with 2 file(s)" in out
    assert ": parked in the dead-letter queue at " in out
    assert "Polytomic answered 404" in out
    assert "never seen: no event for this object reached polytrigger" in out
    assert "no route matches it: nothing starts for it" in out
    assert "  the S3 rule listens to: acme-landing\n" in out
    assert "  schedule nightly: cron(0 2 ? * TUE-FRI *) Europe/Berlin -> the schedule function with" in out
    assert "Traceback" not in result.stderr
    assert "routes: functions/routes.yaml (the bundled example; set ROUTES or --routes for yours)\n" in result.stderr


def _demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    own = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POLYTOMIC_", "IDEMPOTENCY_", "ROUTES"))}
    return subprocess.run(
        [sys.executable, "-m", "local.demo", *args],
        cwd=ROOT,
        env={**own, **(env or {}), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'functions'}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_runs_your_own_routes_and_events(tmp_path: Path) -> None:
    """`ROUTES=... make demo EVENTS=...`: the local stack on a user's routes (outside the repository) and events."""
    sync = "11111111-2222-4333-8444-555555555555"
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "routes:\n"
        f"  - {{name: mine, s3: {{bucket: acme-landing, key: 'orders/**'}}, syncs: [{{id: {sync}}}]}}\n"
        f"  - {{name: pause-it, schedule: freeze, action: deactivate, syncs: [{{id: {sync}}}]}}\n",
        encoding="utf-8",
    )
    events = tmp_path / "events"
    events.mkdir()
    for name in ("eventbridge-object-created.json", "scheduler-input-freeze.json"):
        (events / name).write_text((ROOT / "events" / name).read_text(encoding="utf-8"), encoding="utf-8")

    result = _demo("--events", str(events), env={"ROUTES": str(routes)})

    assert result.returncode == 0, result.stdout + result.stderr
    assert "the bundled example" not in result.stderr
    rows = [line for line in result.stdout.splitlines() if line.endswith(".json") or ".json " in line]
    assert any("| mine " in line and "| started " in line for line in rows), result.stdout
    assert any("| pause-it " in line and "| deactivated " in line for line in rows), result.stdout
    assert "  the S3 rule listens to: acme-landing\n" in result.stdout
    assert "  made elsewhere (polytrigger does not create them): freeze\n" in result.stdout


def test_demo_names_what_is_wrong_with_your_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("[1, 2]", encoding="utf-8")
    bad_events = _demo("--events", str(tmp_path))
    missing_routes = _demo("--routes", str(tmp_path / "nope.yaml"))
    missing_variable = _demo(env={"ROUTES": str(tmp_path / "gone.yaml")})

    assert bad_events.returncode == 2
    assert "--events: bad.json is not a JSON object" in bad_events.stderr
    assert missing_routes.returncode == 2
    assert "--routes: routes file" in missing_routes.stderr
    assert "cannot be read" in missing_routes.stderr
    assert missing_variable.returncode == 2
    assert f"ROUTES={tmp_path / 'gone.yaml'}: no such routes file" in missing_variable.stderr
    assert "Traceback" not in bad_events.stderr + missing_routes.stderr + missing_variable.stderr
