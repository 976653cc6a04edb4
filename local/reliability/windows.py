"""Reliability scenario: debounce windows whose message was never sent.

Two ways a window ends up open with nothing on the queue to flush it:

- its opener died between opening it and sending its message (the window item is written, back-dated
  past `UNCONFIRMED_WINDOW_SECONDS`, and nothing is sent);
- its opener's send failed and so did the close that should have undone the open (both injected
  once per window); Lambda retries the opener later.

Then more files land on every window. Each window must still start once, and every file be covered
by a run created after it landed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from local.reliability.dispatch import dispatcher, finish
from local.reliability.harness import BUCKET, Harness, Row, s3_event
from local.reliability.queue import DispatchQueues

DEBOUNCE = 2
MAX_WAIT = 60


def window_sync(index: int) -> str:
    return f"c0de{index:04x}-0000-4000-8000-{index:012x}"


def window_routes(count: int) -> str:
    """One debounced route (and sync) per window: a window is one per (action, sync, options)."""
    lines = ["routes:"]
    for index in range(count):
        lines += [
            f"  - name: window-{index}",
            f'    s3: {{bucket: {BUCKET}, key: "window-{index}/**"}}',
            f"    debounce: {DEBOUNCE}",
            f"    max_wait: {MAX_WAIT}",
            f"    syncs: [{{id: {window_sync(index)}}}]",
        ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def failing_once(windows: set[str]) -> Iterator[dict[str, set[str]]]:
    """The first send of each window's message fails, and so does the close that would undo the open."""
    from polytrigger.dispatch.ports import QueueUnavailable, WindowsUnavailable
    from polytrigger.dispatch.queue import SqsQueue
    from polytrigger.dispatch.windows import DynamoWindows

    send, close, lock = SqsQueue.send, DynamoWindows.close, threading.Lock()
    failed: dict[str, set[str]] = {"send": set(), "close": set()}

    def first(kind: str, wid: Any) -> bool:
        with lock:
            if wid in windows and wid not in failed[kind]:
                failed[kind].add(wid)
                return True
            return False

    def failing_send(self: SqsQueue, message: Any, delay_seconds: int) -> None:
        if first("send", getattr(message, "window", None)):
            raise QueueUnavailable("injected: the send of the window's message failed")
        send(self, message, delay_seconds)

    def failing_close(self: DynamoWindows, window_id: str, opened_at: float) -> Any:
        if first("close", window_id):
            raise WindowsUnavailable("injected: the close failed too")
        return close(self, window_id, opened_at)

    SqsQueue.send = failing_send  # type: ignore[method-assign]
    DynamoWindows.close = failing_close  # type: ignore[method-assign]
    try:
        yield failed
    finally:
        SqsQueue.send = send  # type: ignore[method-assign]
        DynamoWindows.close = close  # type: ignore[method-assign]


def windows_without_a_message(h: Harness) -> Row:
    from polytrigger.dispatch.deferrals import UNCONFIRMED_WINDOW_SECONDS, window_id
    from polytrigger.dispatch.ports import Window
    from polytrigger.dispatch.windows import DynamoWindows
    from polytrigger.events import s3_triggers

    crashed, failed = h.n(10, minimum=2), h.n(10, minimum=2)
    files = h.n(10, minimum=2)  # landing on each window after it lost its message
    queues = DispatchQueues.create(h.sqs)
    try:
        with h.scenario(window_routes(crashed + failed), **queues.env()) as run:
            started = time.monotonic()
            for index in range(crashed + failed):
                h.stack.fake.add_sync(window_sync(index), kind="model")
            routes, landed, lock = h.routes(), [], threading.Lock()
            retry = float(UNCONFIRMED_WINDOW_SECONDS + 1)  # Lambda retries an asynchronous event after a minute or more
            invoker, opener = h.invoker(), h.invoker(retry_delays=(retry,))

            def land(event: dict[str, Any], at: float, how: Any = invoker) -> None:
                with lock:
                    run.events.append(event)
                    landed.extend(h.landed(event, at))
                run.add(event, how.invoke(event))

            # 1. openers that died after opening their window, before sending its message
            store = DynamoWindows(h.stack.dynamodb_client(), h.stack.table_name, ttl_seconds=3600)
            then = float(int(time.time()) - UNCONFIRMED_WINDOW_SECONDS - 1)
            dead = [
                s3_event(f"crashed-{h.seed}", 0, prefix=f"window-{i}", at=datetime.fromtimestamp(then, UTC))
                for i in range(crashed)
            ]
            for event in dead:
                (action,) = routes.actions_for(s3_triggers(event))
                assert store.open(Window(window_id(action), then, then, then + MAX_WAIT, 1))
            # 2. openers whose send failed, and whose close failed too: Lambda retries them later
            failing = [s3_event(f"failed-{h.seed}", 0, prefix=f"window-{crashed + i}") for i in range(failed)]
            wids = {window_id(routes.actions_for(s3_triggers(event))[0]) for event in failing}
            with failing_once(wids) as broke, ThreadPoolExecutor(max_workers=8) as pool:
                retried = [pool.submit(land, event, time.time(), opener) for event in failing]
                time.sleep(0.5)  # their first attempts have failed
                # 3. more files land on every window
                later = [
                    s3_event(f"later-{h.seed}", n, prefix=f"window-{i}")
                    for n in range(files)
                    for i in range(crashed + failed)
                ]
                for future in [pool.submit(land, event, time.time()) for event in later] + retried:
                    future.result()
                # 4. and Lambda retries the dead openers' events
                for event in dead:
                    land(event, then)
            queues.pump(dispatcher(), timeout=120, quiet=DEBOUNCE + 1)
            row, tally = finish(h, "windows without a message", run, queues, landed, started=started, windows=True)
            again = sum(1 for o in run.outcomes() if (o.get("reason") or "").endswith("not confirmed: sent it again"))
            runs = len(h.stack.fake.executions())
            row.facts = {"windows": crashed + failed, "runs": runs, "resent": again, "covered": tally.covered}
            row.notes = (
                f"{crashed} openers died before sending, {len(broke['send'])} sends and {len(broke['close'])} closes"
                f" failed; {again} files re-sent the message; {runs} runs for {crashed + failed} windows,"
                f" {tally.covered} files covered by a run created after they landed"
            )
            return row
    finally:
        queues.delete()
