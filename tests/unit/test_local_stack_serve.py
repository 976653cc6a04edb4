"""`make stack`'s pieces that need no server: the env file, the example object, the status form it prints.

The stack itself, its printed commands and Ctrl-C: tests/integration/test_ask_the_stack.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.stack.serve import (
    EXAMPLE_PLACEHOLDER,
    PID_VARIABLE,
    StackRunning,
    env_file,
    example_url,
    owner,
    read_env,
    render_env,
    status_args,
)
from polytrigger.routing import load_routes

ROOT = Path(__file__).resolve().parents[2]


def test_the_env_file_reads_back_what_it_exports_whatever_the_characters(tmp_path: Path) -> None:
    env = {"A": "plain", "B": "with space", "C": 'it\'s "quoted" $HOME `x`', "D": "", "E": "a=b"}
    text = render_env(env)
    assert text.splitlines()[0] == "export A=plain"
    path = tmp_path / "stack.env"
    path.write_text("# a comment\n\n" + text, encoding="utf-8")
    assert read_env(path) == env
    sourced = subprocess.run(
        ["bash", "-c", f'source {path} && printf "%s|" "$A" "$B" "$C" "$D" "$E"'],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert sourced.stdout == "|".join(env.values()) + "|"  # the shell reads the same values


def test_the_env_file_lives_as_long_as_the_stack(tmp_path: Path) -> None:
    path = tmp_path / "stack.env"
    with env_file(path, {"X": "1", PID_VARIABLE: str(os.getpid())}):
        assert read_env(path) == {"X": "1", PID_VARIABLE: str(os.getpid())}
        assert owner(path) == os.getpid()
    assert not path.exists()


def test_a_running_stack_keeps_its_env_file_a_dead_ones_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stack.env"
    path.write_text(render_env({PID_VARIABLE: "1"}), encoding="utf-8")  # pid 1 is always there
    with pytest.raises(StackRunning, match=r"pid 1"), env_file(path, {"X": "1"}):
        pass
    assert read_env(path) == {PID_VARIABLE: "1"}

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    path.write_text(render_env({PID_VARIABLE: ended.stdout.decode().strip()}), encoding="utf-8")
    assert owner(path) is None
    with env_file(path, {PID_VARIABLE: str(os.getpid())}):
        assert owner(path) == os.getpid()
    assert not path.exists()


def test_the_example_object_is_one_a_route_acts_on(tmp_path: Path) -> None:
    assert (
        example_url(load_routes(ROOT / "functions" / "routes.yaml"))
        == "s3://acme-landing/orders/2026/06/01/example.csv"
    )
    routes = tmp_path / "routes.yaml"
    sync = "11111111-2222-4333-8444-555555555555"
    routes.write_text(
        "routes:\n"
        f"  - {{name: gone, s3: {{bucket: b-1, key: 'x/*', events: [deleted]}}, syncs: [{{id: {sync}}}]}}\n"
        f"  - {{name: odd, s3: {{bucket: b-2, key: 'in/day-??/*.tsv'}}, syncs: [{{id: {sync}}}]}}\n",
        encoding="utf-8",
    )
    assert example_url(load_routes(routes)) == "s3://b-2/in/day-xx/example.tsv"
    routes.write_text(f"routes:\n  - {{name: n, schedule: nightly, syncs: [{{id: {sync}}}]}}\n", encoding="utf-8")
    assert example_url(load_routes(routes)) == EXAMPLE_PLACEHOLDER


def test_the_printed_status_command_is_one_the_cli_takes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Parsed without a usage error (argparse exits); with no table, the command itself answers 2."""
    from polytrigger.tools import cli

    monkeypatch.delenv("IDEMPOTENCY_TABLE", raising=False)
    args = status_args("s3://acme-landing/orders/a.csv")
    assert args[0] == "status"
    assert args[-1] == "s3://acme-landing/orders/a.csv"
    assert cli.main([*args, "--table", ""]) == 2
    assert "usage:" not in capsys.readouterr().err
