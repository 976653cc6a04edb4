"""The S3 handler as `sam build` built it, invoked against the local stack.

Everything else in the suite runs the sources; this runs what `sam deploy` would upload: the
function's folder (.aws-sam/build/S3TriggerFunction: its code, hash-checked bytecode and routes
cache) and the layer's python/ folder, on python3.13 (the runtime's Python: the bytecode is
3.13's), in a subprocess whose sys.path is Lambda's: the function, then the layer, then a folder
standing in for the runtime's own AWS SDK (the venv's boto3, botocore, s3transfer and their
dependencies, linked; the layer leaves them to the runtime). Nothing else: not the sources, not the
venv. The layer's wheels are for arm64: PyYAML and wrapt have pure-Python fallbacks, and the
handler needs neither's C extension.

What it checks is what a user would see: the fake Polytomic received the starts of the routes'
syncs, with the key, API version and Idempotency-Key headers; and what made the build worth it:
the routes came from routes.validated.json (no YAML parser imported), and every module of the
function and of the layer was loaded from the build's bytecode, none compiled from source.

`make test` builds first (`make build`). Without the build this fails under CI=true and is
skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from local.polytomic import DEFAULT_API_KEY
from local.stack import LocalStack
from tests.integration.support import EVENTS, ORDERS_MODEL, ROOT, WAREHOUSE_BULK, per_sync, posts
from tests.needs import missing

pytestmark = pytest.mark.slow  # a python3.13 process running the built artifact
BUILD = ROOT / ".aws-sam" / "build"
FUNCTION = BUILD / "S3TriggerFunction"
LAYER = BUILD / "DependenciesLayer" / "python"
# The python3.13 runtime's own libraries: the AWS SDK and what it needs.
RUNTIME_LIBRARIES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
EVENT = EVENTS / "eventbridge-object-created.json"
EXPECTED = [
    (f"/api/syncs/{ORDERS_MODEL}/executions", {}),
    (f"/api/bulk/syncs/{WAREHOUSE_BULK}/executions", {"fetch_mode": "incremental"}),
]

# Runs in the subprocess: Lambda's sys.path, the handler the template names, one invocation.
INVOKE = """
import importlib, json, os, sys
function, layer, runtime, handler_name, event_file = sys.argv[1:]
opened = []  # every file Python opens (the audit hook sees the routes loader's reads)
sys.addaudithook(lambda event, args: opened.append(os.fsdecode(args[0]))
                 if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)) else None)
sys.path[:0] = [function, layer]
sys.path.append(runtime)

class Context:
    function_name = "polytrigger-s3"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:polytrigger-s3"
    memory_limit_in_mb = 256
    aws_request_id = "built-artifact-test"
    log_group_name = "/aws/lambda/polytrigger-s3"
    log_stream_name = "built-artifact-test"

    def get_remaining_time_in_millis(self):
        return 60_000

module, _, name = handler_name.rpartition(".")
handler = getattr(importlib.import_module(module), name)
answer = handler(json.load(open(event_file)), Context())
modules = {name: getattr(sys.modules.get(name), "__file__", None) for name in
           ("polytrigger", "aws_lambda_powertools", "urllib3", "jmespath", "boto3", "botocore")}
print("RESULT " + json.dumps({"answer": answer, "yaml": "yaml" in sys.modules, "opened": opened, "modules": modules}))
"""


def runtime_python() -> str | None:
    """The real path of python3.13: on PATH, or pyenv's newest 3.13 (as the Makefile's PYENV_313 picks it)."""
    env = dict(os.environ)
    if "PYENV_VERSION" not in env and shutil.which("pyenv"):
        versions = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True, check=False).stdout
        found = sorted(
            (v for v in versions.split() if re.fullmatch(r"3\.13(\.\d+)?", v)),
            key=lambda v: [int(part) for part in v.split(".")],
        )
        if found:
            env["PYENV_VERSION"] = found[-1]
    try:
        done = subprocess.run(
            ["python3.13", "-c", "import sys; print(sys.executable)"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except FileNotFoundError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@pytest.fixture(scope="module")
def python313() -> str:
    python = runtime_python()
    if python is None:
        missing("python3.13 (the functions' runtime) is not available: the built artifact cannot run")
    assert python is not None
    return python


@pytest.fixture(scope="module")
def artifact() -> Path:
    if not (FUNCTION / "polytrigger").is_dir() or not LAYER.is_dir():
        missing(f"{BUILD.relative_to(ROOT)} has no S3TriggerFunction or DependenciesLayer: run `make build`")
    return FUNCTION


@pytest.fixture(scope="module")
def runtime_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands in for the runtime's libraries (/var/runtime): the venv's copies, linked."""
    folder = tmp_path_factory.mktemp("runtime")
    for name in RUNTIME_LIBRARIES:
        distribution = metadata.distribution(name)
        tops = {Path(str(file)).parts[0] for file in distribution.files or []}
        for top in sorted(tops):
            source = Path(str(distribution.locate_file(top)))
            if source.exists() and not top.endswith((".dist-info", ".pth")) and top not in {"..", "bin"}:
                (folder / top).symlink_to(source)
    assert (folder / "boto3").exists()
    assert (folder / "botocore").exists()
    return folder


@dataclass(frozen=True)
class Invocation:
    """One invocation of the built S3 handler: its result, what Python said (-v), and what Polytomic saw."""

    result: dict[str, Any]
    said: str
    calls: list[Any]  # the POSTs that reached the fake
    execution_ids: set[str]


@pytest.fixture(scope="module")
def invoked(
    local_stack: LocalStack, python313: str, artifact: Path, runtime_sdk: Path, built_template: dict[str, Any]
) -> Iterator[Invocation]:
    """One invocation of the built S3 handler, as Lambda runs it (once: every test reads the same one)."""
    local_stack.reset()
    local_stack.fake.add_sync(ORDERS_MODEL, kind="model")
    local_stack.fake.add_sync(WAREHOUSE_BULK, kind="bulk")
    handler = built_template["Resources"]["S3TriggerFunction"]["Properties"]["Handler"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        **local_stack.env(),
        "LAMBDA_TASK_ROOT": str(artifact),  # as in Lambda (the collector is paused during init)
        "AWS_LAMBDA_FUNCTION_NAME": "polytrigger-s3",
    }
    done = subprocess.run(
        # -I: no PYTHONPATH, no user site: only the artifact and the runtime's SDK; -B: the build stays as built.
        [python313, "-I", "-B", "-v", "-c", INVOKE, str(artifact), str(LAYER), str(runtime_sdk), handler, str(EVENT)],
        env=env,
        cwd=artifact,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    executions = {execution.id for execution in local_stack.fake.executions()}
    yield Invocation(json.loads(line.removeprefix("RESULT ")), done.stderr, posts(local_stack.fake), executions)
    local_stack.reset()


@pytest.fixture(scope="module")
def built_template() -> dict[str, Any]:
    """The built template (what `sam deploy` reads): which handler the function runs."""
    from cfnlint.decode import cfn_yaml

    built = BUILD / "template.yaml"
    if not built.is_file():
        missing(f"{built.relative_to(ROOT)} is missing: run `make build`")
    loaded = cfn_yaml.load(str(built))
    assert isinstance(loaded, dict)
    return json.loads(json.dumps(loaded))


def test_the_built_handler_starts_the_routes_syncs_at_polytomic(local_stack: LocalStack, invoked: Invocation) -> None:
    calls = invoked.calls
    assert per_sync([(call.path, call.body or {}) for call in calls]) == per_sync(EXPECTED)
    for call in calls:
        assert call.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
        assert call.headers["x-polytomic-version"] == local_stack.api_version
        assert call.headers["user-agent"].startswith("polytrigger/")
        assert call.headers["idempotency-key"]
        assert call.status == 200
    outcomes = invoked.result["answer"]["outcomes"]
    assert [outcome["status"] for outcome in outcomes] == ["started"] * len(EXPECTED)
    assert {outcome["execution_id"] for outcome in outcomes} == invoked.execution_ids


def test_it_ran_from_the_artifact_with_the_runtimes_sdk(invoked: Invocation, runtime_sdk: Path) -> None:
    modules = invoked.result["modules"]
    assert modules["polytrigger"].startswith(str(FUNCTION))
    for name in ("aws_lambda_powertools", "urllib3", "jmespath"):  # the layer's, ahead of the runtime's
        assert modules[name].startswith(str(LAYER)), (name, modules[name])
    for name in ("boto3", "botocore"):  # not in the layer: the runtime's
        assert modules[name].startswith(str(runtime_sdk)), (name, modules[name])


def test_the_routes_came_from_the_builds_cache(invoked: Invocation) -> None:
    result = invoked.result
    assert str(FUNCTION / "routes.validated.json") in result["opened"]
    assert result["yaml"] is False  # no YAML parser at cold start


def test_every_module_of_the_artifact_was_loaded_from_its_bytecode(invoked: Invocation) -> None:
    """python -v says where each module's code object came from: the build's .pyc, or compiled from source."""
    origins = re.findall(r"^# code object from '?([^'\n]+)'?$", invoked.said, flags=re.MULTILINE)
    built = [origin for origin in origins if origin.startswith((str(FUNCTION), str(LAYER)))]
    from_source = [origin for origin in built if not origin.endswith(".cpython-313.pyc")]
    assert not from_source, f"compiled from source at cold start: {from_source[:5]}"
    assert sum(origin.startswith(str(FUNCTION / "polytrigger")) for origin in built) >= 20
    assert sum(origin.startswith(str(LAYER / "aws_lambda_powertools")) for origin in built) >= 20
