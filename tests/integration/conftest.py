"""Shared fixtures of the integration tests: one local stack per session, reset per test."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from local.polytomic import FakePolytomic
from local.reliability.run import Row
from local.stack import LocalStack
from local.stack.dispatch_pump import DispatchPump, DispatchQueue, SentLog, StackClock
from tests.integration import dispatch_support
from tests.integration.reliability_support import rows_of
from tests.integration.support import (
    CUSTOMERS_MODEL,
    ORDERS_MODEL,
    ROUTES,
    WAREHOUSE_BULK,
    Invoker,
    LeakGuard,
    captured_logs,
)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """moto + DynamoDB Local (moto's DynamoDB outside CI if Java is missing) + the fake Polytomic API.

    ``stack.env()`` is applied to ``os.environ`` for the whole session and the
    previous values are restored at the end; every server is stopped. moto lets a queue be purged
    again within a minute here: ``reset`` empties the queues between every two tests.
    """
    with LocalStack() as stack, stack.environ(MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR="false"):
        yield stack


@pytest.fixture
def fake(local_stack: LocalStack) -> FakePolytomic:
    """The stack's fake Polytomic API, reset: no calls, faults, syncs or stored Idempotency-Keys."""
    local_stack.fake.reset()
    return local_stack.fake


@pytest.fixture
def clean(local_stack: LocalStack) -> LocalStack:
    """The stack with a reset fake, an empty idempotency table and the initial secret value."""
    local_stack.reset()
    return local_stack


@pytest.fixture(scope="session")
def leak_guard() -> Iterator[LeakGuard]:
    """After every handler test: no secret in any log line (debug included), metric, answer or error."""
    guard = LeakGuard()
    yield guard
    assert guard.said, "the leak guard saw nothing: is it wired to the handlers?"
    leaks = guard.leaks()
    assert not leaks, f"secrets leaked into what the handlers said: {leaks}"


@pytest.fixture
def polytrigger(clean: LocalStack, monkeypatch: pytest.MonkeyPatch, leak_guard: LeakGuard) -> Iterator[Invoker]:
    """The handlers, configured with the bundled routes and a fresh container, their logs captured.

    The example routes' three syncs exist (active, instant runs) and nothing has been called yet.
    """
    from aws_lambda_powertools.utilities import parameters

    from polytrigger import bootstrap

    clean.fake.add_sync(ORDERS_MODEL, kind="model")
    clean.fake.add_sync(WAREHOUSE_BULK, kind="bulk")
    clean.fake.add_sync(CUSTOMERS_MODEL, kind="model")
    monkeypatch.setenv("ROUTES_FILE", str(ROUTES))
    bootstrap.reset()
    parameters.clear_caches()
    from polytrigger.observability import logger

    logger.setLevel("DEBUG")  # the most a log line can say
    with captured_logs() as buffer:
        yield Invoker(clean, buffer, leak_guard)
        leak_guard.said.append(buffer.getvalue())
        leak_guard.remember_secrets(clean)
    logger.setLevel("INFO")
    bootstrap.reset()
    parameters.clear_caches()
    clean.reset()  # leave the session's stack as the next test expects it


@pytest.fixture
def dispatch(
    polytrigger: Invoker, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> Iterator[dispatch_support.Dispatch]:
    """``polytrigger`` with a dispatch queue: debounce and deferral on, driven by the stack's pump.

    Fresh moto queues (the dispatch queue, with the template's redrive policy, and its dead-letter
    queue), the dispatch tests' routes (``dispatch_support.ROUTES_YAML``) and their syncs (instant
    runs), ``DEFERRAL_FIRST_DELAY_SECONDS=1``, ``DEFERRAL_MAX_AGE_SECONDS=60`` and a fresh container.
    A log records every message polytrigger queues or parks; the pump delivers them to the dispatcher.

    On the stack's clock unless the test asks for ``dispatch_support.REAL_TIME`` (indirect
    parametrisation): polytrigger, the fake Polytomic and the pump then share one clock, and a
    delay is a jump of it.
    """
    from polytrigger import bootstrap

    mode = getattr(request, "param", dispatch_support.STACK_CLOCK)
    queues = DispatchQueue.create(polytrigger.stack.client("sqs"), region=polytrigger.stack.region)
    routes = tmp_path / "routes.yaml"
    routes.write_text(dispatch_support.ROUTES_YAML, encoding="utf-8")
    environment = {
        **queues.env(),
        "ROUTES_FILE": str(routes),
        "DEFERRAL_FIRST_DELAY_SECONDS": "1",
        "DEFERRAL_MAX_AGE_SECONDS": str(dispatch_support.MAX_AGE_SECONDS),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    fake = polytrigger.stack.fake
    fake.add_sync(dispatch_support.BURST_SYNC, kind="model")
    fake.add_sync(dispatch_support.BURST_BULK, kind="bulk")
    fake.add_sync(dispatch_support.TRICKLE_SYNC, kind="model")
    fake.add_sync(dispatch_support.BUSY_SYNC, kind="model")
    clock = StackClock(fake) if mode == dispatch_support.STACK_CLOCK else None
    if clock is not None:
        bootstrap.use_clock(clock.now, clock.sleep)
        log = SentLog(clock.now, virtual=True)
    else:
        bootstrap.reset()
        log = SentLog()
    pump = DispatchPump(
        queues, lambda event, _: polytrigger.dispatcher(event), log, clock, returned_after=1, errors="raise"
    )
    try:
        with log.recording():
            yield dispatch_support.Dispatch(polytrigger, queues, log, pump, clock)
    finally:
        bootstrap.use_clock()
        queues.delete()


@pytest.fixture(scope="module")
def reliability_rows(local_stack: LocalStack, request: pytest.FixtureRequest) -> list[Row]:
    """The reliability run's rows for the test module's `GROUP` of scenarios, at the test's scale."""
    return rows_of(local_stack, request.module.GROUP)


@pytest.fixture(scope="module")
def reliability_by_name(reliability_rows: list[Row]) -> dict[str, Row]:
    return {row.scenario: row for row in reliability_rows}
