"""The demo's deploy step: what `sam deploy` wires for the routes, by the real wiring function against moto."""

from __future__ import annotations

import json
from typing import Any

from local.stack.cfn_answers import Answers
from local.stack.lambda_context import LocalContext

ACCOUNT = "123456789012"
FUNCTION = "polytrigger-demo-RouteWiringFunction"
GROUP = "polytrigger-demo-schedules"


def wire(stack: Any) -> list[str]:
    """Run RouteWiring's Create for ROUTES_FILE; the lines say what it wired (or why it refused)."""
    from polytrigger.handlers import route_wiring

    region = stack.region
    stack.client("scheduler").create_schedule_group(Name=GROUP)
    with Answers() as answers:
        request = {
            "RequestType": "Create",
            "ResponseURL": answers.url,
            "StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/polytrigger-demo/1",
            "RequestId": "demo",
            "LogicalResourceId": "RouteWiring",
            "ResourceProperties": {
                "ScheduleGroup": GROUP,
                "TargetArn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:polytrigger-demo-ScheduleTriggerFunction",
                "DeadlineTargetArn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:polytrigger-demo-PollerFunction",
                "ReconcileTargetArn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:polytrigger-demo-ReconcilerFunction",
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/polytrigger-demo-ScheduleInvokeRole",
                "DeadLetterArn": f"arn:aws:sqs:{region}:{ACCOUNT}:polytrigger-demo-dlq",
                "State": "ENABLED",
                "CodeVersion": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}:1",
            },
        }
        context: Any = LocalContext(function_name=FUNCTION, qualifier="1")  # as a forwarded request reaches version 1
        route_wiring.handler(request, context)
        answer = answers.last()
    if answer["Status"] != "SUCCESS":
        return [f"route wiring FAILED (sam deploy would roll back): {answer['Reason']}"]
    data = answer["Data"]
    lines = [f"route wiring (what sam deploy does with these routes): {data['Changes']}"]
    lines.append(
        f"  the S3 rule listens to: {', '.join(data['Buckets'].split(',')) if data['Buckets'] else '(no bucket)'}"
    )
    scheduler = stack.client("scheduler")
    for item in sorted(scheduler.list_schedules(GroupName=GROUP)["Schedules"], key=lambda s: s["Name"]):
        schedule = scheduler.get_schedule(GroupName=GROUP, Name=item["Name"])
        payload = json.loads(schedule["Target"]["Input"])
        window = schedule["FlexibleTimeWindow"].get("MaximumWindowInMinutes")
        lines.append(
            f"  schedule {schedule['Name']}: {schedule['ScheduleExpression']} {schedule['ScheduleExpressionTimezone']}"
            + (f" (within {window} min)" if window else "")
            + f" -> the schedule function with {json.dumps(payload)}"
        )
    if data.get("SchedulesMadeElsewhereCount", "0") != "0":
        from polytrigger.route_wiring.plan import plan
        from polytrigger.routing import load_routes
        from polytrigger.settings import routes_file

        elsewhere = ", ".join(plan(load_routes(routes_file())).elsewhere)  # the answer counts them, never names them
        lines.append(f"  made elsewhere (polytrigger does not create them): {elsewhere}")
    return lines
