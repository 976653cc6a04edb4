"""Cost per million triggers at the template's MemorySize: the arithmetic, from a measured CPU time.

Measured: the CPU time a warm trigger (one sync) costs the handler (`time.thread_time` of the
invoking thread, POLYTOMIC_CONCURRENCY=1 so all its work is on that thread; median of N) against
the local stack. Loopback has no TLS and no distance, so the waiting is assumed, not measured:
WAIT_MS below, for Polytomic's answer and four DynamoDB writes.

Model (AWS prices, us-east-1, arm64, at the time of writing):
- Lambda bills duration = waiting + CPU time x 1,769 MB / MemorySize (a function gets a full vCPU
  at 1,769 MB and a proportional share below), at $0.0000133334 per GB-second, plus $0.20 per
  million requests;
- DynamoDB on demand: 6 write request units per one-sync trigger started, items under 1 KB, at
  $0.625 per million: the file's landing (`dispatch.landings`, one per file, whatever its syncs),
  the dedup record's in-progress put and completed update, the run ledger's run item at the start
  (it carries its own place among the open runs), and when the run ends its settle (which enters
  the outbox) and its `told` (which leaves it). The writes to the table's indexes are not counted.
Secrets Manager is read once per container per 5 minutes ($0.05 per 10,000 calls): negligible.
CloudWatch Logs ingestion for the one outcome line (about 0.7 KB with its metric) is listed apart.
The development machine's x86 core and a Graviton vCPU are taken as equal.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.fanout import SINGLE_PREFIX, bench_stack, timed
from benchmarks.report import REFERENCE, Row, arguments, reference, show
from local.stack import LocalStack

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
FULL_VCPU_MB = 1769
WAIT_MS = 250 + 4 * 10  # assumed: Polytomic's answer, and each DynamoDB write on the invocation's path
GB_SECOND = 0.0000133334
PER_REQUEST = 0.20 / 1_000_000
WRITE_UNIT = 0.625 / 1_000_000
WRITES_PER_SYNC = 6  # landing 1; dedup 2; run ledger 1 at the start, 2 when it ends (settle, told)
LOG_BYTES = 700
LOG_GB = 0.50
SIZES = (128, 256, 512)
FANOUT_SYNCS = 20


def memory_size() -> int:
    """Globals.Function.MemorySize of template.yaml."""
    match = re.search(r"^    MemorySize: (\d+)\b", TEMPLATE.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError("template.yaml has no Globals.Function.MemorySize")
    return int(match.group(1))


def cpu_ms_per_trigger(runs: int, stack: LocalStack | None = None) -> float:
    """Median CPU milliseconds of one warm one-sync trigger on the invoking thread."""
    with bench_stack(stack) as bench, bench.container(POLYTOMIC_CONCURRENCY="1") as invoke:
        return timed(invoke, SINGLE_PREFIX, runs, clock=time.thread_time) * 1000


def per_million(cpu_ms: float, memory_mb: int) -> dict[str, float]:
    """Dollars per million one-sync triggers, by part."""
    billed_ms = WAIT_MS + cpu_ms * FULL_VCPU_MB / memory_mb
    lambda_cost = (billed_ms / 1000 * memory_mb / 1024 * GB_SECOND + PER_REQUEST) * 1_000_000
    return {
        "billed_ms": billed_ms,
        "lambda": lambda_cost,
        "dynamodb": WRITES_PER_SYNC * WRITE_UNIT * 1_000_000,
        "logs": LOG_BYTES / 1024**3 * LOG_GB * 1_000_000,
    }


def to_rows(cpu_ms: float, chosen: int) -> list[Row]:
    cheapest = min(sum(per_million(cpu_ms, size)[part] for part in ("lambda", "dynamodb")) for size in SIZES)
    rows = [reference("CPU per warm trigger (1 sync), handler thread", f"{cpu_ms:.1f} ms", "measured")]
    for size in sorted({*SIZES, chosen}):
        template = " (template)" if size == chosen else ""
        cpu_bound = FANOUT_SYNCS * cpu_ms * FULL_VCPU_MB / size
        rows.append(
            reference(
                f"{FANOUT_SYNCS}-sync event, CPU time at {size} MB's vCPU share{template}",
                f"{cpu_bound:.0f} ms",
                f"{WAIT_MS} ms waiting (one wave)",
                f"{cpu_bound / WAIT_MS:.2f}x",
            )
        )
        parts = per_million(cpu_ms, size)
        total = parts["lambda"] + parts["dynamodb"]
        rows.append(
            reference(
                f"cost per million triggers, {size} MB{template}",
                f"${total:.2f}",
                f"Lambda ${parts['lambda']:.2f} ({parts['billed_ms']:.0f} ms) + DynamoDB ${parts['dynamodb']:.2f}",
                f"{total / cheapest:.2f}x",
                "chosen" if size == chosen else REFERENCE,
            )
        )
    return rows


def rows(quick: bool = False, stack: LocalStack | None = None) -> list[Row]:
    return to_rows(cpu_ms_per_trigger(3 if quick else 31, stack), memory_size())


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments("benchmarks.cost", __doc__, "three runs: a smoke run, not figures").parse_args(argv)
    cpu_ms = cpu_ms_per_trigger(3 if args.quick else 31)
    status = show(to_rows(cpu_ms, memory_size()))
    parts = per_million(cpu_ms, memory_size())
    print(
        f"\nassumed waiting {WAIT_MS} ms per trigger; CloudWatch Logs for the outcome line: about ${parts['logs']:.2f} per million"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
