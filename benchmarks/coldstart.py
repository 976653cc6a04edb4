"""Cold start against the floor: each handler's import + `app.get()` vs boto3 and its two clients.

Every figure is a separate process of this interpreter: wall time from spawn until the child says
it is ready (median of N runs, interleaved so that noise spreads over all of them). The child's
exit is not counted: a Lambda container never exits after its init, and interpreter teardown
(50-90 ms here, and noisy) would only blur both sides of the ratio. The floor is what no Python handler
of this shape can beat: `import boto3` and creating the DynamoDB and Secrets Manager clients.
A handler's cold start is importing its module and building the container's App (settings,
routes, the DynamoDB and Secrets Manager clients, Polytomic client, dedup, dispatch queue) from a
valid environment. The handlers run from the code as the build ships it (functions/Makefile's
offline part, into a temporary folder: hash-checked bytecode and the pre-validated routes cache);
the dependencies from the venv, with the bytecode pip compiled at install (as on Lambda, where
the layer and the runtime's own boto3 come after the code on sys.path).

`--layouts` compares how the dependencies ship instead, on the runtime's Python (python3.13, and
the package registry: it builds them): one package per function with botocore bundled (before the
layer), the layer with the AWS SDK's tree, and the layer as built (without it), each against the
floor on the same Python, with a folder standing in for the runtime's SDK (pip's bytecode).

No child may touch the network: every child runs with socket connect and name resolution
replaced by a guard that fails the run, and dummy credentials (creating a boto3 client makes
no call). Run `python -m benchmarks.coldstart --help`.
"""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from benchmarks.report import Row, against, arguments, show

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
HANDLERS = ("polytrigger.handlers.s3", "polytrigger.handlers.schedule", "polytrigger.handlers.dispatcher")
TARGET_RATIO = 1.25
DEFAULT_REPEATS = 15
FLOOR_BASELINE = "(boto3 + 2 clients)"  # what the floor's baseline cell says it is

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


_package: Path | None = None


def package() -> Path:
    """functions/ as `sam build` ships it, built once per process (removed at exit)."""
    global _package  # noqa: PLW0603 - one build per benchmark run
    if _package is None:
        folder = Path(tempfile.mkdtemp(prefix="polytrigger-package-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        command = ["make", "--no-print-directory", "-C", str(FUNCTIONS), "code", f"PYTHON={sys.executable}"]
        done = subprocess.run(
            command, env={**os.environ, "ARTIFACTS_DIR": str(folder)}, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"building the package failed:\n{done.stderr[-2000:]}")
        _package = folder
    return _package


def handler_code(module: str) -> str:
    """What a cold start runs before its first answer: the import, and the flow its role builds."""
    role = "dispatcher" if module.endswith(".dispatcher") else "triggers"
    return f"import {module}\nfrom polytrigger import bootstrap\nbootstrap.{role}()\n"


def child_env(**extra: str) -> dict[str, str]:
    """A valid, offline environment: the shipped code, dummy credentials, the bundled routes, tracing off."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_", "POLYTOMIC_"))}
    shipped = package()
    env.update(
        PYTHONPATH=os.pathsep.join([str(shipped), str(ROOT)]),
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",  # botocore reads this one; Lambda sets both
        AWS_ACCESS_KEY_ID="AKIDBENCHMARK",
        AWS_SECRET_ACCESS_KEY="benchmark",  # noqa: S106 - a dummy: nothing is signed or sent
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        POLYTOMIC_SECRET_ID="arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic",  # noqa: S106
        IDEMPOTENCY_TABLE="polytrigger-idempotency",
        ROUTES_FILE=str(shipped / "routes.yaml"),
        DISPATCH_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/polytrigger-dispatch",
        DISPATCH_DEAD_LETTER_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/polytrigger-dispatch-dlq",
        LAMBDA_TASK_ROOT=str(shipped),  # as in Lambda: polytrigger.gc_pause pauses the collector during init
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


READY = "polytrigger-benchmark-ready"


def time_to_ready(code: str, env: dict[str, str] | None = None, python: str = sys.executable) -> float:
    """Wall seconds from spawning a child until it prints READY (after `code` ran); it must then exit 0."""
    started = time.perf_counter()
    with subprocess.Popen(
        [python, "-c", GUARD + code + f"\nprint({READY!r}, flush=True)\n"],
        env=env or child_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        line = child.stdout.readline()
        ready = time.perf_counter() - started
        _, stderr = child.communicate(timeout=120)
    if child.returncode != 0 or line.strip() != READY:
        raise RuntimeError(f"benchmark child failed ({child.returncode}):\n{stderr[-2000:]}")
    return ready


TRACED = "polytrigger.handlers.s3 traced"  # the S3 handler with Tracing: Active (a reference row)
# The floor with the collector paused as polytrigger.gc_pause pauses it: the handlers' own overhead
# is their time against this one (a reference row: the target is against the floor as defined).
FLOOR_PAUSED = "floor, collector paused"


def traced_env() -> dict[str, str]:
    """As deployed with the template's Tracing parameter set to Active: Powertools' Tracer and the X-Ray SDK."""
    return child_env(
        POWERTOOLS_TRACE_DISABLED="false",
        AWS_LAMBDA_FUNCTION_NAME="polytrigger-s3",
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
    )


Programs = dict[str, tuple[str, dict[str, str] | None]]  # name: (code, environment; None for child_env())


def rounds(
    programs: Programs, repeats: int, python: str = sys.executable, warm_up: bool | None = None
) -> dict[str, list[float]]:
    """Wall seconds to ready of each program per round, the programs run back to back in every round.

    Interleaving spreads the machine's noise over all of them, so a round's ratios are fair. One
    unmeasured run of each first (unless `warm_up` is False; by default, unless repeats == 1, a
    smoke run): every measured run starts from a warm page cache.
    """
    if warm_up is None:
        warm_up = repeats > 1
    if warm_up:
        for code, env in programs.values():
            time_to_ready(code, env, python)
    samples: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(repeats):
        for name, (code, env) in programs.items():
            samples[name].append(time_to_ready(code, env, python))
    return samples


def measure(repeats: int = DEFAULT_REPEATS) -> dict[str, list[float]]:
    """Wall seconds per round: 'floor', each handler module and TRACED (see `rounds`)."""
    programs: Programs = {
        "floor": (FLOOR, None),
        FLOOR_PAUSED: ("import gc\ngc.disable()\n" + FLOOR, None),
        **{module: (handler_code(module), None) for module in HANDLERS},
        TRACED: (handler_code(HANDLERS[0]), traced_env()),
    }
    return rounds(programs, repeats)


def import_costs(module: str = HANDLERS[0], top: int = 10) -> list[tuple[int, str]]:
    """The `top` largest import costs (self µs, module) of one handler's cold start beyond the floor's imports."""

    def self_times(code: str) -> dict[str, int]:
        _, _, stderr = run_child(code, flags=("-X", "importtime"))
        costs: dict[str, int] = {}
        for line in stderr.splitlines():
            if line.startswith("import time:") and "cumulative" not in line:
                own, _, name = line.removeprefix("import time:").split("|")
                costs[name.strip()] = int(own)
        return costs

    floor = self_times(FLOOR)
    beyond = [(micros, name) for name, micros in self_times(handler_code(module)).items() if name not in floor]
    return sorted(beyond, reverse=True)[:top]


def to_rows(samples: dict[str, list[float]]) -> list[Row]:
    """Each handler against the floor (target TARGET_RATIO), then the two references."""
    floor = samples["floor"]
    return [
        *(
            against(
                f"cold start {name.rsplit('.', 1)[-1]} (import + app.get())",
                samples[name],
                floor,
                FLOOR_BASELINE,
                TARGET_RATIO,
            )
            for name in HANDLERS
        ),
        against(
            "cold start s3 with Tracing: Active (X-Ray SDK)",
            samples[TRACED],
            floor,
            FLOOR_BASELINE,
            "reference (template default: off)",
        ),
        against(
            "floor with the collector paused, as the handlers pause it", samples[FLOOR_PAUSED], floor, FLOOR_BASELINE
        ),
    ]


def rows(quick: bool = False, repeats: int | None = None) -> list[Row]:
    return to_rows(measure(1 if quick else repeats or DEFAULT_REPEATS))


LAYER = ROOT / "layer"
LAYOUT_FLOOR = "floor on the runtime's Python"
LAYOUTS = (
    "one package per function, botocore bundled (before)",
    "code + layer with the SDK's tree",
    "code + layer without it (as built)",
)


def _make(folder: Path, *args: str) -> None:
    done = subprocess.run(["make", "--no-print-directory", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building {folder.name} failed:\n{done.stderr[-2000:]}")


def build_layouts(python: str, root: Path) -> dict[str, list[Path]]:
    """sys.path of each layout (code first, the runtime's SDK last), built for this machine with `python`."""
    local = f"PLATFORM=manylinux2014_{platform.machine()}"
    code, layer, with_sdk, runtime, bundled = (root / name for name in ("code", "layer", "sdk", "runtime", "bundled"))
    code.mkdir()
    _make(code, "-C", str(FUNCTIONS), "code", f"PYTHON={python}", f"ARTIFACTS_DIR={code}")
    _make(layer, "-C", str(LAYER), "build-DependenciesLayer", f"PYTHON={python}", local, f"ARTIFACTS_DIR={layer}")
    _make(
        with_sdk,
        "-C",
        str(LAYER),
        "build-DependenciesLayer",
        f"PYTHON={python}",
        local,
        "RUNTIME_PROVIDED=",
        f"ARTIFACTS_DIR={with_sdk}",
    )
    # The runtime's SDK: the venv's boto3 version, with pip's (timestamp) bytecode.
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(runtime),
            f"boto3=={metadata.version('boto3')}",
        ],
        check=True,
        capture_output=True,
    )
    shutil.copytree(code, bundled)
    shutil.copytree(with_sdk / "python", bundled, dirs_exist_ok=True)
    return {
        LAYOUT_FLOOR: [runtime],
        LAYOUTS[0]: [bundled, runtime],
        LAYOUTS[1]: [code, with_sdk / "python", runtime],
        LAYOUTS[2]: [code, layer / "python", runtime],
    }


def measure_layouts(python: str, repeats: int) -> dict[str, list[float]]:
    """Wall seconds per round of the floor and of the S3 handler's cold start in each layout, on `python`."""
    with tempfile.TemporaryDirectory(prefix="polytrigger-layouts-") as folder:
        paths = build_layouts(python, Path(folder))
        programs: Programs = {}
        for name, path in paths.items():
            task_root = path[0]  # where the handler's code (and its routes) is, as /var/task
            env = child_env(
                PYTHONPATH=os.pathsep.join(map(str, path)),
                ROUTES_FILE=str(task_root / "routes.yaml"),
                LAMBDA_TASK_ROOT=str(task_root),
            )
            programs[name] = (FLOOR if name == LAYOUT_FLOOR else handler_code(HANDLERS[0]), env)
        return rounds(programs, repeats, python, warm_up=True)


def layout_rows(samples: dict[str, list[float]]) -> list[Row]:
    floor = samples[LAYOUT_FLOOR]
    return [against(f"cold start s3, {name}", samples[name], floor, FLOOR_BASELINE) for name in LAYOUTS]


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments("benchmarks.coldstart", __doc__, "one run each: a smoke run, not figures")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="runs per figure (median)")
    parser.add_argument("--layouts", action="store_true", help="compare how the dependencies ship (builds them)")
    parser.add_argument("--python", default="python3.13", help="the runtime's Python, for --layouts")
    args = parser.parse_args(argv)
    if args.layouts:
        return show(layout_rows(measure_layouts(args.python, 1 if args.quick else args.repeats)))
    status = show(to_rows(measure(1 if args.quick else args.repeats)))
    print(f"\ntop import costs beyond the floor, {HANDLERS[0]} (python -X importtime, self time):")
    for micros, module in import_costs():
        print(f"{micros:>9} µs  {module}")
    return status


if __name__ == "__main__":
    sys.exit(main())
