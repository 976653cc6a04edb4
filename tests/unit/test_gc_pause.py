"""The collector is paused while a Lambda container initialises, and only then."""

from __future__ import annotations

import gc

import pytest

from benchmarks import coldstart
from polytrigger import gc_pause

PROBE = """
import gc
import polytrigger.handlers.s3
print(gc.isenabled())
from polytrigger import bootstrap
try:
    bootstrap.triggers()
except Exception as error:
    print(type(error).__name__)
print(gc.isenabled(), gc.get_freeze_count() > 0)
"""


def test_outside_lambda_the_collector_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    gc_pause.pause()
    assert gc.isenabled()
    assert not gc_pause.paused()


def test_a_collector_already_off_is_left_to_its_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    gc.disable()
    try:
        gc_pause.pause()
        assert not gc_pause.paused()
        gc_pause.resume()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_lambda_container_initialises_without_collections_then_freezes_what_it_made() -> None:
    _, stdout, _ = coldstart.run_child(PROBE)
    assert stdout.split() == ["False", "True", "True"]  # paused by the import; on, with init frozen, after


def test_a_failed_initialisation_switches_the_collector_back_on() -> None:
    env = coldstart.child_env()
    del env["IDEMPOTENCY_TABLE"]
    _, stdout, _ = coldstart.run_child(PROBE, env=env)
    printed = [line for line in stdout.splitlines() if not line.startswith("{")]  # not the configuration_error line
    assert printed == ["False", "ConfigError", "True True"]
