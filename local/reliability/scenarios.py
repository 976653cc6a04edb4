"""The reliability run's first scenarios: duplicates, concurrency, dying holders, faults, rotation, outages.

Each drives the real S3 handler as Lambda invokes it asynchronously (`local.stack.lambda_async`) and
ends with `Harness.count`: executions per action on Polytomic's side, parked events on ours.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local.reliability.harness import MODEL, Harness, Row, Run, s3_event
from local.stack.lambda_async import AsyncInvoker, Delivery


def baseline(h: Harness) -> Row:
    with h.scenario() as run:
        started = time.monotonic()
        invoker = h.invoker()
        run.events = [s3_event("baseline", i) for i in range(h.n(200))]
        for event in run.events:
            run.add(event, invoker.invoke(event))
        return h.count("every trigger once", run, started)


def redelivered(h: Harness) -> Row:
    with h.scenario() as run:
        started = time.monotonic()
        invoker = h.invoker()
        run.events = [s3_event("again", i) for i in range(h.n(100))]
        for _ in range(3):
            for event in run.events:
                run.add(event, invoker.invoke(event))
        return h.count("each trigger delivered 3 times", run, started)


def concurrent_threads(h: Harness, copies: int) -> Row:
    """The same event delivered `copies` times at once; in-progress conflicts retry like AWS does."""
    with h.scenario() as run:
        started = time.monotonic()
        invoker = h.invoker(retry_delays=(1.0, 2.0))
        run.events = [s3_event(f"threads{copies}", i) for i in range(h.n(max(4, 100 // copies), minimum=1))]
        for event in run.events:
            barrier = threading.Barrier(copies)

            def deliver(event: dict[str, Any] = event, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                run.add(event, invoker.invoke(event))

            threads = [threading.Thread(target=deliver) for _ in range(copies)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return h.count(f"{copies} concurrent deliveries (threads)", run, started)


def processes() -> Any:
    """Separate processes, as Lambda's separate containers, each importing polytrigger and making its own clients.

    Forked from a server process that imported this harness (boto3, moto) once: spawning each from
    scratch costs seconds of imports on two cores. The server has no thread and no connection to
    share, and polytrigger is imported by each child, under the environment it is given.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def concurrent_processes(h: Harness, copies: int) -> Row:
    """Separate processes (separate containers) share DynamoDB Local and race for each trigger."""
    with h.scenario() as run:
        started = time.monotonic()
        run.events = [s3_event(f"procs{copies}", i) for i in range(h.n(20, minimum=3))]
        context = processes()
        barrier = context.Barrier(copies)
        results = context.Queue()
        env = dict(os.environ)
        workers = [
            context.Process(
                target=_process_worker,
                args=(env, h.dlq_url, run.events),
                kwargs={"barrier": barrier, "index": index, "results": results},
            )
            for index in range(copies)
        ]
        for worker in workers:
            worker.start()
        for _ in workers:
            for event, (summaries, errors, parked) in zip(run.events, results.get(timeout=600), strict=True):
                run.add(event, Delivery(summaries=summaries, errors=errors, parked=parked))
        for worker in workers:
            worker.join()
        return h.count(f"{copies} concurrent deliveries (processes)", run, started)


def _process_worker(
    env: dict[str, str], dlq_url: str, events: list[dict[str, Any]], *, barrier: Any, index: int, results: Any
) -> None:
    os.environ.clear()
    os.environ.update(env, POWERTOOLS_METRICS_DISABLED="true")
    import boto3

    from polytrigger.handlers import s3

    sqs = boto3.client("sqs")
    invoker = AsyncInvoker(
        s3.handler, function_name=f"polytrigger-s3-{index}", sqs=sqs, dlq_url=dlq_url, retry_delays=(1.0, 2.0)
    )
    found = []
    for event in events:
        barrier.wait(timeout=120)
        delivery = invoker.invoke(event)
        found.append((delivery.summaries, delivery.errors, delivery.parked))
    results.put(found)


def holder_dies(h: Harness) -> Row:
    """The first invocation dies while its call is at Polytomic; its retry must neither lose nor double."""
    with h.scenario() as run:
        started = time.monotonic()
        fake = h.stack.fake
        run.events = [s3_event("dies", i) for i in range(h.n(5, minimum=2))]
        invoker = h.invoker(retry_delays=(2.5, 2.5))
        context = processes()
        for event in run.events:
            hold = fake.inject(hold=True, path_contains=MODEL)
            doomed = context.Process(target=_die_mid_call, args=(dict(os.environ), event))
            doomed.start()
            if not hold.reached.wait(60):
                doomed.kill()
                raise AssertionError("the doomed invocation never reached Polytomic")
            doomed.kill()  # Lambda cuts the invocation off mid-call
            doomed.join()
            hold.release()  # ...but Polytomic had the request and finishes it
            run.add(event, invoker.invoke(event))  # AWS retries once the in-progress record expires
        return h.count("first holder dies mid-call", run, started, "in-progress expiry = its remaining time")


def _die_mid_call(env: dict[str, str], event: dict[str, Any]) -> None:
    os.environ.clear()
    os.environ.update(env, POWERTOOLS_METRICS_DISABLED="true")
    from local.stack.lambda_context import LocalContext
    from polytrigger.handlers import s3

    s3.handler(event, LocalContext(function_name="polytrigger-s3-doomed", timeout_seconds=2.0))


def _in_parallel(h: Harness, run: Run, label: str, count: int) -> None:
    """Deliver `count` fresh uploads from 8 threads: many invocations at once, as in a busy hour."""
    invoker = h.invoker()
    run.events = [s3_event(label, i) for i in range(count)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for event, delivery in zip(run.events, pool.map(invoker.invoke, run.events), strict=True):
            run.add(event, delivery)


def transient_faults(h: Harness) -> Row:
    """30% of calls: 429/502/503/504, a dropped connection, or an answer after the client gave up."""
    read_timeout = 0.25
    with h.scenario(POLYTOMIC_READ_TIMEOUT=str(read_timeout)) as run:
        started = time.monotonic()
        h.stack.fake.set_random_faults(0.3, seed=h.seed, drop=True, timeout=read_timeout * 2)
        _in_parallel(h, run, "faults", h.n(1000, minimum=40))
        return h.count("30% transient faults", run, started, f"seed {h.seed}")


def replayed_500s(h: Harness) -> Row:
    """30% of calls answer 500, stored under the key and replayed: fresh derived keys must get through."""
    with h.scenario() as run:
        started = time.monotonic()
        h.stack.fake.set_random_faults(0.3, seed=h.seed + 1, statuses=(500,), drop=False)
        _in_parallel(h, run, "500s", h.n(200, minimum=20))
        return h.count("30% replayed 500s", run, started, f"seed {h.seed + 1}")


def started_despite_500(h: Harness) -> Row:
    """A 500 after Polytomic created the run: the run is found, not started again."""
    with h.scenario() as run:
        started = time.monotonic()
        invoker = h.invoker()
        run.events = [s3_event("500-ran", i) for i in range(h.n(50, minimum=5))]
        for event in run.events:
            h.stack.fake.inject(500, method="POST", path_contains=f"{MODEL}/executions", side_effects=True)
            run.add(event, invoker.invoke(event))
        return h.count("500 after the run was created", run, started)


def rotation(h: Harness) -> Row:
    """The key is rotated mid-run: the new key is stored, then the old one revoked."""
    with h.scenario() as run:
        started = time.monotonic()
        fake, old, new = h.stack.fake, "fake-polytomic-api-key", f"rotated-{uuid.uuid4().hex}"
        invoker = h.invoker()
        run.events = [s3_event("rotation", i) for i in range(h.n(200, minimum=10))]
        half = len(run.events) // 2
        for index, event in enumerate(run.events):
            if index == half:
                fake.set_api_keys([old, new])
                h.stack.put_secret(new)
                fake.set_api_keys([new])
            run.add(event, invoker.invoke(event))
        refused = sum(1 for call in fake.calls if call.status == 401)
        return h.count("key rotated mid-run", run, started, f"{refused} call(s) answered 401")


def table_outage(h: Harness) -> Row:
    """The dedup table is gone: no call is made without a record; parked events are re-driven later."""
    with h.scenario() as run:
        started = time.monotonic()
        dynamodb = h.stack.dynamodb_client()
        dynamodb.delete_table(TableName=h.stack.table_name)
        invoker = h.invoker()
        run.events = [s3_event("outage", i) for i in range(h.n(20, minimum=4))]
        for event in run.events:
            run.add(event, invoker.invoke(event))
        calls_during_outage = len(h.stack.fake.calls)
        parked = h.take_parked(run)
        h.stack.create_table()
        for record in parked:  # the operator's re-drive
            run.add(record["requestPayload"], invoker.invoke(record["requestPayload"]))
        notes = f"{len(parked)} parked, {calls_during_outage} calls during the outage, then re-driven"
        return h.count("dedup table missing", run, started, notes)


SCENARIOS: tuple[Callable[[Harness], Row], ...] = (
    baseline,
    redelivered,
    lambda h: concurrent_threads(h, 2),
    lambda h: concurrent_threads(h, 10),
    lambda h: concurrent_threads(h, 50),
    lambda h: concurrent_processes(h, 2),
    lambda h: concurrent_processes(h, 10),
    holder_dies,
    transient_faults,
    replayed_500s,
    started_despite_500,
    rotation,
    table_outage,
)


# 50 Python processes cost a minute of start-up on two cores: the full run only.
FULL_SCALE_ONLY: tuple[Callable[[Harness], Row], ...] = (lambda h: concurrent_processes(h, 50),)
