"""`make demo`'s runner, as a user runs it: a separate process with its own local stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_every_sample_and_shows_the_replay_as_duplicate() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POLYTOMIC_", "IDEMPOTENCY_", "ROUTES_"))}
    result = subprocess.run(
        [sys.executable, "-m", "local.demo"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'functions'}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

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
    assert "Traceback" not in result.stderr
