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
    from polytrigger.routing import load_routes
    from polytrigger.runs.dynamo_ledger import run_from_item
    from polytrigger.settings import routes_file
    from polytrigger.tools.fate import Records, fate_of
    from polytrigger.tools.status import render

    report = stack.fake.deliver_webhooks()
    polled = poller.handler({"poll": "demo"}, LocalContext(function_name="polytrigger-poller"))
    chained = [
        ("chained start", outcome)
        for answer in pump(sqs, dispatch_queue, dispatcher.handler, timeout=60)
        for outcome in answer.get("outcomes", [])
    ]
    scan = stack.dynamodb_client().scan(TableName=stack.table_name)["Items"]  # the demo's few items
    runs = sorted(
        (run_from_item(item) for item in scan if item["id"]["S"].startswith("run#")),
        key=lambda run: run.started_at.isoformat() if run.started_at else "",
    )
    lines = [
        "",
        f"run outcomes: the webhook delivered {len(report.delivered)} events ({len(report.dropped)} lost on the way);"
        f" the poller read {polled['events']} and settled {polled['ended']} more",
    ]
    for run in runs:
        status = run.status or "no ending heard yet"
        mark = "  <- RunsFailedAlarm fires on this" if status in ("failed", "completed_with_errors", "canceled") else ""
        lines.append(f"  {run.sync_type} sync {run.sync_id[:8]} run {run.execution_id[:8]}: {status}{mark}")
    if chained:
        lines += ["", table(chained)]
    first = next((run for run in runs if run.first_trigger.startswith("s3://")), None)
    if first is not None:
        place = first.first_trigger.rsplit(" (", 1)[0]
        bucket, _, key = place.removeprefix("s3://").partition("/")
        fate = fate_of(bucket, key, load_routes(routes_file()), Records(stack.dynamodb_client(), stack.table_name))
        lines += ["", f"$ polytrigger status {place}", render(fate, [])]
    return lines
