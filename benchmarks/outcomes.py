"""Run outcomes: what the poller costs when nothing is new or promises are pending, and the webhook receiver's
cold and warm times.

- **Poller, nothing new.** The real poller handler on the local stack, polled as its schedule
  does (each poll is a minute later: its clock is the fake Polytomic's, `harness_time`), after a
  first poll that set the cursor. Polytomic calls are counted at the fake (`fake.calls`), AWS calls
  at botocore's `Endpoint.make_request` (`benchmarks.budget.aws_calls`). Three states:
  nothing at all happened; runs are open but none is due for reconciliation; and runs ended just
  before the last event read (within the five minutes every poll reads again), then nothing. A
  conditional write whose condition fails (an ending settled already) is still a write:
  DynamoDB bills it. Target each: 1 Polytomic call and 0 DynamoDB writes a poll (a minute).
- **Poller with 10,000 freshness promises pending** (500 in a smoke run), written as the S3
  function writes them, one item each: ten polls while none is due, then ten with 100 falling due
  before each. DynamoDB calls counted as above, and the capacity units DynamoDB reports for them
  (`benchmarks.budget.dynamodb_capacity`). Targets: none due, the reads of an idle poll (the due
  index's queries and the cursor: they do not grow with what is pending) and 0 writes; 100 due,
  100 writes (a delete each) and at most one more page a shard of reads (the items due come in the
  queries' pages: their read units grow with them, the calls do not).
- **Webhook cold start** against the floor, as `benchmarks.coldstart` measures the other handlers:
  importing `polytrigger.handlers.webhook` and building its container
  (`polytrigger.bootstrap.webhook()`) in a child process that cannot reach the
  network, the shipped code, interleaved rounds; target <= 1.25x.
- **Webhook warm p50 / p99.** A signed delivery of a run's ending (a distinct execution each time,
  recorded in the ledger first) through the real handler on the local stack (DynamoDB Local,
  moto's Secrets Manager), as a Function URL hands it over; against the ledger's own work for an
  ending (`settle`: the conditional update and the open run's removal) on the same container,
  the two interleaved.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks import coldstart
from benchmarks.budget import DYNAMODB_READS, DYNAMODB_WRITES, aws_calls, dynamodb_capacity, service_calls
from benchmarks.fanout import BUCKET, FANOUT_PREFIX, FANOUT_SYNCS, SINGLE_SYNC, Bench, bench_stack, s3_event
from benchmarks.report import Row, against, arguments, count, ms, per_unit, reference, show
from local.polytomic.webhooks import sign
from local.reliability.outcomes import harness_time
from local.stack import LocalStack
from local.stack.lambda_context import LocalContext
from polytrigger.dispatch.table import DUE_SHARDS

POLLS = 10  # minutes of polling in each state
PENDING = 10_000  # freshness promises on the book (QUICK_PENDING in a smoke run)
QUICK_PENDING = 500
DUE = 100  # of them falling due before each poll
ENDED = 5  # fan-out events (20 runs each) that end just before the poller goes quiet
WARM_DELIVERIES = 300
WARM_UPS = 30
SECRET = "whsec-bench-0123456789"  # noqa: S105 - the local stack's, signs the bench's deliveries
WEBHOOK_CODE = "import polytrigger.handlers.webhook\nfrom polytrigger import bootstrap\nbootstrap.webhook()\n"
WEBHOOK_SECRET_ID = "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-webhook"  # noqa: S105 - a name


@contextlib.contextmanager
def container(bench: Bench) -> Iterator[Callable[[str, dict[str, Any]], dict[str, Any]]]:
    """A fresh container of every handler, the webhook secret stored; yields `invoke(handler, event)`, logs discarded."""
    from aws_lambda_powertools.utilities import parameters

    from polytrigger import bootstrap
    from polytrigger.handlers import poller, s3, webhook
    from polytrigger.observability import logger

    handlers = {"s3": s3.handler, "poller": poller.handler, "webhook": webhook.handler}
    secrets = bench.stack.secrets_client()
    arn = secrets.create_secret(Name=f"polytomic-webhook-{uuid.uuid4().hex[:8]}", SecretString=SECRET)["ARN"]
    env = {"ROUTES_FILE": str(bench.routes), "POLYTOMIC_WEBHOOK_SECRET_ID": arn}
    stream = logger.registered_handler
    try:
        with bench.stack.environ(**env), contextlib.redirect_stdout(io.StringIO()), harness_time(bench.stack.fake):
            previous = stream.setStream(io.StringIO())  # type: ignore[attr-defined]
            _fresh(bootstrap, parameters)
            try:

                def invoke(name: str, event: dict[str, Any]) -> dict[str, Any]:
                    answer: dict[str, Any] = handlers[name](event, LocalContext(function_name=f"polytrigger-{name}"))
                    return answer

                yield invoke
            finally:
                stream.setStream(previous)  # type: ignore[attr-defined]
                _fresh(bootstrap, parameters)
    finally:
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def _fresh(*modules: Any) -> None:
    """No container built yet, no secret cached: the next invocation is a cold one."""
    bootstrap, parameters = modules
    bootstrap.reset()
    parameters.clear_caches()


def quiet_polls(stack: LocalStack, state: str, polls: int, ended: int = ENDED) -> dict[str, int]:
    """Totals over `polls` polls a minute apart, each with nothing new, after `state` was set up and polled once
    (`ended`: how many fan-out events' runs end first, in state "ended")."""
    fake = stack.fake
    with bench_stack(stack) as bench, container(bench) as invoke:
        invoke("poller", {})  # the schedule has been running: the cursor is set
        if state == "open":  # 20 runs running for an hour: open, not due for reconciliation for 15 min
            for sync in FANOUT_SYNCS:
                fake.add_sync(sync, kind="model", run_seconds=3600)
            invoke("s3", s3_event(f"{FANOUT_PREFIX}open.csv"))
        elif state == "ended":  # 20 runs an event ended (their endings read by the poller), then nothing
            for number in range(ended):
                invoke("s3", s3_event(f"{FANOUT_PREFIX}ended-{number}.csv"))
        fake.advance_clock(60)
        invoke("poller", {})  # what there was to read is read
        totals = {"polls": polls, "polytomic": 0, "writes": 0, "reads": 0, "ended": 0}
        for _ in range(polls):
            fake.advance_clock(60)
            fake.reset_calls()
            with aws_calls() as counts:
                summary = invoke("poller", {})
            totals["polytomic"] += len(fake.calls)
            totals["writes"] += service_calls(counts, "dynamodb", DYNAMODB_WRITES)
            totals["reads"] += service_calls(counts, "dynamodb", DYNAMODB_READS)
            totals["ended"] += int(summary.get("ended", 0))
    return totals


def promise_polls(stack: LocalStack, pending: int, polls: int, due: int = DUE) -> dict[str, dict[str, float]]:
    """Totals over `polls` polls a minute apart with `pending` freshness promises on the book: first while
    none is due ("quiet"), then while `due` of them fall due before each poll ("due").

    The promises are written as the S3 function writes them (`DynamoPromises`, one item each, on
    `SINGLE_SYNC`, which has no run: each promise due is told as a breach and closed). DynamoDB calls
    are counted at botocore's `Endpoint.make_request`, capacity units as DynamoDB reports them.
    """
    from concurrent.futures import ThreadPoolExecutor

    from polytrigger.runs.freshness import Promise
    from polytrigger.runs.promises import DynamoPromises

    fake, totals = stack.fake, {}
    with bench_stack(stack) as bench, container(bench) as invoke:
        invoke("poller", {})  # the schedule has been running: the cursor is set
        book, base = DynamoPromises(stack.dynamodb_client(), stack.table_name), fake.now()
        falling = base + timedelta(hours=1)  # the due polls begin here, long after the quiet ones

        def promise(number: int) -> None:
            wave = number // due + 1
            at = falling + timedelta(minutes=wave, seconds=-30) if wave <= polls else base + timedelta(days=2)
            trigger = f"s3://{BUCKET}/bench/{number:06d}.csv (created)"
            book.promise(Promise(f"bench-{number}", "bench-single", SINGLE_SYNC, "model", trigger, at, at))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(promise, range(pending)))
        for phase in ("quiet", "due"):
            if phase == "due":
                fake.advance_clock(max(0.0, (falling - fake.now()).total_seconds()))
            figures = {"reads": 0.0, "writes": 0.0, "rcu": 0.0, "wcu": 0.0, "checked": 0.0}
            for _ in range(polls):
                fake.advance_clock(60)
                with aws_calls() as counts, dynamodb_capacity() as units:
                    summary = invoke("poller", {})
                figures["reads"] += service_calls(counts, "dynamodb", DYNAMODB_READS)
                figures["writes"] += service_calls(counts, "dynamodb", DYNAMODB_WRITES)
                figures["rcu"] += units["read"]
                figures["wcu"] += units["write"]
                figures["checked"] += int(summary["promises_kept"]) + int(summary["freshness_breaches"])
            totals[phase] = figures
    return totals


def promise_rows(idle_reads: float, figures: dict[str, dict[str, float]], pending: int, polls: int) -> list[Row]:
    """Reads do not grow with the promises pending (the same as an idle poll's: the index queries and the
    cursor), no write while none is due; one delete for each promise due, reads as the items due."""
    quiet, due = figures["quiet"], figures["due"]
    each = int(due["checked"]) // polls
    name, idle = f"poller, {pending:,} promises pending", round(idle_reads)

    def units(total: float) -> str:
        return f"{total / polls:g} ({total:g}/{polls})"

    return [
        per_unit(f"{name}, none due: DynamoDB reads per poll (as idle)", int(quiet["reads"]), polls, idle),
        per_unit(f"{name}, none due: DynamoDB writes per poll", int(quiet["writes"]), polls, 0),
        reference(f"{name}, none due: read capacity units per poll", units(quiet["rcu"]), "measured"),
        per_unit(f"{name}, {each} due: DynamoDB writes per poll (a delete each)", int(due["writes"]), polls, each),
        per_unit(
            f"{name}, {each} due: DynamoDB reads per poll", int(due["reads"]), polls, idle + DUE_SHARDS, at_most=True
        ),
        reference(
            f"{name}, {each} due: read capacity units per poll", units(due["rcu"]), f"{quiet['rcu'] / polls:g} none due"
        ),
        reference(f"{name}, {each} due: write capacity units per poll", units(due["wcu"]), "measured"),
    ]


def delivery(execution: str, status: str = "completed") -> dict[str, Any]:
    """A Function URL request carrying Polytomic's signed event of a run's ending (as local.stack.function_url builds it)."""
    body = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": f"sync.{status}",
            "organization_id": "0b0e6f6e-1d2c-4b5a-8f7e-6d5c4b3a2f10",
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "event": {"execution_id": execution, "sync_id": SINGLE_SYNC, "status": status},
        },
        separators=(",", ":"),
    ).encode()
    return {
        "version": "2.0",
        "rawPath": "/",
        "headers": {"content-type": "application/json", "polytomic-signature": sign(body, SECRET)},
        "requestContext": {"http": {"method": "POST", "path": "/", "sourceIp": "127.0.0.1"}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def warm_webhook(stack: LocalStack, deliveries: int, warm_ups: int) -> tuple[list[float], list[float]]:
    """Seconds of each delivery through the handler, and of each ending settled by the ledger alone (interleaved)."""
    from polytrigger import bootstrap
    from polytrigger.runs.endings import run_event
    from polytrigger.runs.ledger import Run

    with bench_stack(stack) as bench, container(bench) as invoke:
        ledger = bootstrap.webhook().ledger
        runs = [str(uuid.uuid4()) for _ in range(warm_ups + 2 * deliveries)]
        for execution in runs:
            ledger.record(
                Run(execution, SINGLE_SYNC, "model"), "bench-single", "s3://bench", datetime.now(UTC), datetime.now(UTC)
            )
        for execution in runs[:warm_ups]:
            invoke("webhook", delivery(execution))
        handler, alone = [], []
        for through, direct in zip(runs[warm_ups::2], runs[warm_ups + 1 :: 2], strict=True):
            request = delivery(through)
            started = time.perf_counter()
            answer = invoke("webhook", request)
            handler.append(time.perf_counter() - started)
            if answer["statusCode"] != 200 or json.loads(answer["body"])["message"] != "settled":
                raise RuntimeError(f"a delivery was not settled: {answer}")
            event = run_event(json.loads(base64.b64decode(delivery(direct)["body"])))
            assert event is not None
            started = time.perf_counter()
            if ledger.settle(event, "webhook") is None:
                raise RuntimeError("the ledger did not settle a run it had recorded")
            alone.append(time.perf_counter() - started)
    return handler, alone


def percentile(samples: Sequence[float], share: float) -> float:
    """The `share` quantile (0.5, 0.99) of the samples, interpolated; the value itself for one sample."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(share * 100) - 1]


def cold_webhook(repeats: int) -> tuple[list[float], list[float]]:
    """Wall seconds per round of the floor and of the webhook's cold start (import + its container)."""
    env = coldstart.child_env(POLYTOMIC_WEBHOOK_SECRET_ID=WEBHOOK_SECRET_ID)
    samples = coldstart.rounds({"floor": (coldstart.FLOOR, None), "webhook": (WEBHOOK_CODE, env)}, repeats)
    return samples["floor"], samples["webhook"]


def overlap_calls(endings: int, total: int, polls: int) -> Row:
    """Just after a burst, each poll reads the last 5 minutes again (late events): a page per 100 of
    its events (a running and an ending per run), until the overlap is quiet; then one call."""
    ceiling = -(-2 * endings // 100) + 1
    name = f"poller, nothing new after {endings} endings: Polytomic calls per poll (5-minute overlap re-read)"
    return per_unit(name, total, polls, ceiling, at_most=True)


def rows(quick: bool, stack: LocalStack | None = None) -> list[Row]:
    polls = 1 if quick else POLLS
    with contextlib.ExitStack() as exits:
        if stack is None:
            stack = exits.enter_context(LocalStack())
        idle, open_, ended = (quiet_polls(stack, state, polls) for state in ("idle", "open", "ended"))
        pending = QUICK_PENDING if quick else PENDING
        promised = promise_polls(stack, pending, polls)
        through, alone = warm_webhook(stack, 3 if quick else WARM_DELIVERIES, 1 if quick else WARM_UPS)
    floor, webhook = cold_webhook(1 if quick else coldstart.DEFAULT_REPEATS)
    endings = ENDED * len(FANOUT_SYNCS)
    table = [
        per_unit("poller idle: Polytomic calls per poll (a minute)", idle["polytomic"], polls, 1),
        per_unit("poller idle: DynamoDB writes per poll", idle["writes"], polls, 0),
        reference("poller idle: DynamoDB reads per poll", count(idle["reads"], polls), "measured"),
        per_unit("poller, 20 runs open, none due: Polytomic calls per poll", open_["polytomic"], polls, 1),
        per_unit("poller, 20 runs open, none due: DynamoDB writes per poll", open_["writes"], polls, 0),
        overlap_calls(endings, ended["polytomic"], polls),
        per_unit(f"poller, nothing new after {endings} endings: DynamoDB writes per poll", ended["writes"], polls, 0),
        *promise_rows(idle["reads"] / polls, promised, pending, polls),
        against(
            "cold start webhook (import + bootstrap.webhook())",
            webhook,
            floor,
            coldstart.FLOOR_BASELINE,
            coldstart.TARGET_RATIO,
        ),
    ]
    for share in (0.5, 0.99):
        mine, base = percentile(through, share), percentile(alone, share)
        table.append(
            reference(
                f"webhook warm p{share * 100:g}: a signed ending settled ({len(through)} deliveries)",
                ms(mine, 1),
                f"{ms(base, 1)} (the ledger's settle alone)",
                f"{mine / base:.2f}x",
            )
        )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments("benchmarks.outcomes", __doc__, "one poll, three deliveries, one cold start: a smoke run")
    return show(rows(parser.parse_args(argv).quick))


if __name__ == "__main__":
    sys.exit(main())
