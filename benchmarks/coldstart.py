"""Cold start against the floor: each handler's import + `app.get()` vs boto3 and its two clients.

Every figure is a separate process of this interpreter (wall time from spawn to exit, median of
N runs, interleaved so that noise spreads over all of them). The floor is what no Python handler
of this shape can beat: `import boto3` and creating the DynamoDB and Secrets Manager clients.
A handler's cold start is importing its module and building the container's App (settings,
routes, credentials, Polytomic client, dedup, dispatch queue) from a valid environment.

No child may touch the network: every child runs with socket connect and name resolution
replaced by a guard that fails the run, and dummy credentials (creating a boto3 client makes
no call). Run `python -m benchmarks.coldstart --help`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.run import render

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
HANDLERS = ("polytrigger.handlers.s3", "polytrigger.handlers.schedule", "polytrigger.handlers.dispatcher")
TARGET_RATIO = 1.25
DEFAULT_REPEATS = 7

Row = tuple[str, str, str, str, str, bool]

# Fails the child if anything tries to reach the network (AWS, X-Ray daemon, Polytomic, IMDS).
GUARD = """
import socket as _socket
def _no_network(*args, **kwargs):
    raise RuntimeError(f"network access during cold start: {args[:2]!r}")
_socket.socket.connect = _no_network
_socket.socket.connect_ex = _no_network
_socket.create_connection = _no_network
_socket.getaddrinfo = _no_network
"""
FLOOR = "import boto3\nboto3.client('dynamodb')\nboto3.client('secretsmanager')\n"


def handler_code(module: str) -> str:
    return f"import {module}\nfrom polytrigger import app\napp.get()\n"


def child_env(**extra: str) -> dict[str, str]:
    """A valid, offline environment: dummy credentials, the bundled routes, tracing off."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_", "POLYTOMIC_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(FUNCTIONS), str(ROOT)]),
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",  # botocore reads this one; Lambda sets both
        AWS_ACCESS_KEY_ID="AKIDBENCHMARK",
        AWS_SECRET_ACCESS_KEY="benchmark",  # noqa: S106 - a dummy: nothing is signed or sent
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        POLYTOMIC_SECRET_ID="arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic",  # noqa: S106
        IDEMPOTENCY_TABLE="polytrigger-idempotency",
        ROUTES_FILE=str(FUNCTIONS / "routes.yaml"),
        DISPATCH_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/polytrigger-dispatch",
        DISPATCH_DEAD_LETTER_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/polytrigger-dispatch-dlq",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_SERVICE_NAME="polytrigger",
        POWERTOOLS_METRICS_NAMESPACE="Polytrigger",
    )
    env.update(extra)
    return env


def run_child(code: str, env: dict[str, str] | None = None, flags: Sequence[str] = ()) -> tuple[float, str, str]:
    """Wall seconds of one child process, with its stdout and stderr; a failing child is an error."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", GUARD + code],
        env=env or child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout, done.stderr


def measure(repeats: int = DEFAULT_REPEATS) -> dict[str, float]:
    """Median wall seconds: 'floor' and one entry per handler module (after one unmeasured warm-up each unless repeats == 1)."""
    programs = {"floor": FLOOR, **{module: handler_code(module) for module in HANDLERS}}
    if repeats > 1:  # a smoke run (one repeat) skips the warm-up
        for code in programs.values():
            run_child(code)  # warm the page cache and .pyc files: every measured run starts equal
    samples: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(repeats):
        for name, code in programs.items():
            samples[name].append(run_child(code)[0])
    return {name: statistics.median(values) for name, values in samples.items()}


def import_costs(module: str = HANDLERS[0], top: int = 10) -> list[tuple[int, str]]:
    """The `top` largest cumulative import times (µs, module) of one handler's cold start."""
    _, _, stderr = run_child(handler_code(module), flags=("-X", "importtime"))
    costs: list[tuple[int, str]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        costs.append((int(cumulative), name.strip()))
    return sorted(costs, reverse=True)[:top]


def to_rows(medians: dict[str, float]) -> list[Row]:
    floor = medians["floor"]
    rows: list[Row] = []
    for module in HANDLERS:
        ratio = medians[module] / floor
        rows.append(
            (
                f"cold start {module.rsplit('.', 1)[-1]} (import + app.get())",
                f"{medians[module] * 1000:.0f} ms",
                f"{floor * 1000:.0f} ms (boto3 + 2 clients)",
                f"{ratio:.2f}x",
                f"<= {TARGET_RATIO:.2f}x",
                ratio <= TARGET_RATIO,
            )
        )
    return rows


def rows(quick: bool = False, repeats: int | None = None) -> list[Row]:
    return to_rows(measure(1 if quick else repeats or DEFAULT_REPEATS))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coldstart", description=__doc__)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="one run each: a smoke run, not figures")
    args = parser.parse_args(argv)
    medians = measure(1 if args.quick else args.repeats)
    table = to_rows(medians)
    print(render(table))
    print(f"\ntop import costs, {HANDLERS[0]} (python -X importtime, cumulative):")
    for micros, module in import_costs():
        print(f"{micros:>9} µs  {module}")
    return 0 if all(row[5] for row in table) else 1


if __name__ == "__main__":
    sys.exit(main())
