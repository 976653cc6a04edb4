"""The demo's last step: the loop closed. Endings arrive by webhook and poller, a chained sync starts,
a failed run is what the alarm would fire on, and `polytrigger status` answers for one file."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from local.stack.dispatch_pump import pump
from local.stack.function_url import FunctionUrl
from local.stack.lambda_context import LocalContext

WEBHOOK_SECRET = "demo-webhook-secret"


def open_webhook(stack: Any) -> FunctionUrl:
    """The webhook receiver on a loopback Function URL, subscribed before any run starts."""
    from polytrigger import bootstrap
    from polytrigger.handlers import webhook

    secret = stack.secrets_client().create_secret(Name="polytomic-webhook-demo", SecretString=WEBHOOK_SECRET)["ARN"]
    os.environ["POLYTOMIC_WEBHOOK_SECRET_ID"] = secret
    bootstrap.reset()
    url = FunctionUrl(webhook.handler)
    stack.fake.subscribe_webhook(url.url, WEBHOOK_SECRET)
    stack.fake.configure_webhooks(drop=0.5, seed=7)  # Polytomic delivers at most once: half are lost here
    return url


def close_the_loop(
    stack: Any, sqs: Any, dispatch_queue: str, table: Callable[[list[tuple[str, dict[str, Any]]]], str]
) -> list[str]:
    """Deliver the webhook, poll, deliver the chained starts; the lines to print."""
    from polytrigger.handlers import dispatcher, poller
    from polytrigger.runs.status import Query, find, render, row

    report = stack.fake.deliver_webhooks()
    polled = poller.handler({"poll": "demo"}, LocalContext(function_name="polytrigger-poller"))
    chained = [
        ("chained start", outcome)
        for answer in pump(sqs, dispatch_queue, dispatcher.handler, timeout=60)
        for outcome in answer.get("outcomes", [])
    ]
    runs = find(stack.dynamodb_client(), stack.table_name, Query(sync="", route="", object="", since=None))
    lines = [
        "",
        f"run outcomes: the webhook delivered {len(report.delivered)} events ({len(report.dropped)} lost on the way);"
        f" the poller read {polled['events']} and settled {polled['ended']} more",
    ]
    for item in map(row, runs):
        mark = (
            "  <- RunsFailedAlarm fires on this"
            if item["status"] in ("failed", "completed_with_errors", "canceled")
            else ""
        )
        lines.append(
            f"  {item['sync_type']} sync {item['sync_id'][:8]} run {item['execution_id'][:8]}: {item['status']}{mark}"
        )
    if chained:
        lines += ["", table(chained)]
    first = next((item for item in map(row, runs) if any(t.startswith("s3://") for t in item["triggers"])), None)
    if first is not None:
        place = first["triggers"][0].rsplit(" (", 1)[0]
        lines += ["", f"$ polytrigger status --object {place}"]
        lines.append(
            render(
                [row(r) for r in find(stack.dynamodb_client(), stack.table_name, Query(object=place))],
                Query(object=place),
            )
        )
    return lines
