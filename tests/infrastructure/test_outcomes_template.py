"""The template's run outcomes: the outcome poller, its schedule, the optional webhook receiver, their alarms.

What became of the runs polytrigger started: PollerFunction reads Polytomic's events API every minute
(an EventBridge Scheduler schedule in the default group, not the stack's ScheduleGroup, which the
route wiring empties of whatever the routes do not define), and WebhookFunction, when
WebhookReceiver is Enabled, takes the same outcomes behind a public Function URL. Each role grants
exactly what its function needs (test_functions.py, as for every function): the webhook, which
takes unauthenticated requests, can read its own signing secret and never the API key; the poller,
never the webhook's secret. Assertions run on the SAM-transformed template (what is deployed), with
the template's conditions decided from parameter values the way CloudFormation decides them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from polytrigger.dispatch.dedup import KEY_PREFIX
from polytrigger.dispatch.messages import WINDOW_PREFIX
from polytrigger.dispatch.table import DUE_INDEX
from polytrigger.runs.dynamo_ledger import CURSOR, run_key
from polytrigger.runs.promises import PREFIX as PROMISES

from .cfn import (
    RUN_EVENT_BUS,
    WEBHOOK_ON,
    WEBHOOK_SECRET_ARN,
    as_list,
    assert_bounded_retry,
    decide,
    deployed,
    evaluate,
    fires_on_any,
    get_att_arn,
    grants,
    key,
    of_type,
    parameter_values,
    role_grants,
    role_id,
    role_statements,
)
from .conftest import (
    API_KEY_SECRET,
    DLQ_ARN,
    METRICS_NAMESPACE,
    POLLER_FUNCTION,
    PUBLISH_RUN_EVENTS,
    SERVICE,
    WEBHOOK_FUNCTION,
    WEBHOOK_SECRET,
    grant,
)

SERVICE_DIMENSION = [{"Name": "service", "Value": SERVICE}]
UNSUCCESSFUL_RUN_METRICS = ("run_failed", "run_completed_with_errors", "run_canceled")


# --------------------------------------------------------------------------- parameters, conditions, rules


def test_parameter_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["RunEventBusName"]["Default"] == ""  # no bus: nothing re-published, no PutEvents granted
    assert parameters["OutcomePollerSchedule"]["Default"] == "rate(1 minute)"
    assert int(parameters["RunReconcileAfterSeconds"]["Default"]) == 900
    assert int(parameters["RunReconcileAfterSeconds"]["MinValue"]) == 60
    assert parameters["WebhookReceiver"]["Default"] == "Disabled"  # an organization's one webhook may be taken
    assert parameters["WebhookReceiver"]["AllowedValues"] == ["Enabled", "Disabled"]
    assert parameters["PolytomicWebhookSecretArn"]["Default"] == ""
    assert parameters["WebhookSignatureEncoding"]["Default"] == "either"  # Polytomic does not document it
    assert set(parameters["WebhookSignatureEncoding"]["AllowedValues"]) == {"hex", "base64", "either"}
    assert int(parameters["WebhookConcurrency"]["Default"]) == 5
    assert int(parameters["WebhookConcurrency"]["MinValue"]) >= 1  # 0 reserved would throttle every request


@pytest.mark.parametrize(
    ("given", "webhook", "bus"),
    [
        ({}, False, False),
        (RUN_EVENT_BUS, False, True),
        (WEBHOOK_ON, True, False),
        ({**WEBHOOK_ON, **RUN_EVENT_BUS}, True, True),
        # Enabled without a secret is refused by WebhookNeedsItsSecret; the condition never creates it either.
        ({"WebhookReceiver": "Enabled"}, False, False),
        ({"PolytomicWebhookSecretArn": WEBHOOK_SECRET_ARN}, False, False),
    ],
)
def test_conditions(transformed: dict[str, Any], given: dict[str, str], webhook: bool, bus: bool) -> None:
    conditions = decide(transformed, **given)
    assert conditions["HasWebhook"] is webhook
    assert conditions["HasRunEventBus"] is bus
    assert conditions["HasWebhookAndRunEventBus"] is (webhook and bus)


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({}, False),
        ({"WebhookReceiver": "Enabled"}, True),
        ({"WebhookReceiver": "Enabled", "PolytomicWebhookSecretArn": ""}, True),
        (WEBHOOK_ON, False),
        ({"PolytomicWebhookSecretArn": WEBHOOK_SECRET_ARN}, False),
    ],
)
def test_an_enabled_webhook_needs_its_secret(transformed: dict[str, Any], given: dict[str, str], refused: bool) -> None:
    """CloudFormation's Rules refuse the parameters before anything is created."""
    parameters = parameter_values(transformed, **given)
    (rule,) = transformed["Rules"].values()
    applies = evaluate(rule["RuleCondition"], transformed, parameters)
    holds = all(evaluate(a["Assert"], transformed, parameters) for a in rule["Assertions"])
    assert (applies and not holds) is refused
    assert all("PolytomicWebhookSecretArn" in a["AssertDescription"] for a in rule["Assertions"])


OPTIONAL_WEBHOOK = {
    WEBHOOK_FUNCTION,
    "WebhookFunctionRole",
    "WebhookFunctionUrl",
    "WebhookFunctionUrlPublicPermissions",
    "WebhookFunctionInvokeViaUrl",
    "WebhookFunctionEventInvokeConfig",
    "WebhookLogGroup",
    "WebhookErrorsAlarm",
    "WebhookPublishesRunEvents",
}


@pytest.mark.parametrize(
    ("given", "webhook"), [({}, False), ({**WEBHOOK_ON, **RUN_EVENT_BUS}, True)], ids=["defaults", "webhook"]
)
def test_the_webhook_exists_only_when_enabled_and_the_poller_always(
    transformed: dict[str, Any], given: dict[str, str], webhook: bool
) -> None:
    resources = deployed(transformed, decide(transformed, **given))
    named_webhook = {logical_id for logical_id in transformed["Resources"] if "Webhook" in logical_id}
    assert named_webhook == OPTIONAL_WEBHOOK
    assert OPTIONAL_WEBHOOK & set(resources) == (OPTIONAL_WEBHOOK if webhook else set())
    for always in (POLLER_FUNCTION, "PollerFunctionRole", "PollerSchedule", "PollerScheduleRole", "PollerLogGroup"):
        assert always in resources
        assert "Condition" not in transformed["Resources"][always], always
    outputs = transformed["Outputs"]
    assert outputs["WebhookUrl"]["Condition"] == "HasWebhook"
    assert outputs["WebhookUrl"]["Value"] == {"Fn::GetAtt": ["WebhookFunctionUrl", "FunctionUrl"]}
    assert "POST /api/webhooks" in outputs["WebhookUrl"]["Description"]
    assert outputs["PollerFunctionArn"]["Value"] == get_att_arn(POLLER_FUNCTION)
    assert "Condition" not in outputs["PollerFunctionArn"]


# --------------------------------------------------------------------------- IAM


def test_the_webhook_cannot_read_the_api_key_nor_the_poller_the_webhook_secret(transformed: dict[str, Any]) -> None:
    """The webhook takes unauthenticated requests: a flaw in it must not reach the API key."""
    decided = decide(transformed, **WEBHOOK_ON, **RUN_EVENT_BUS)
    webhook = role_grants(transformed, WEBHOOK_FUNCTION, decided)
    poller = role_grants(transformed, POLLER_FUNCTION, decided)
    assert not {g for g in webhook if g[0].startswith("secretsmanager:") and g[1] == key(API_KEY_SECRET)}
    assert not {g for g in poller if g[0].startswith("secretsmanager:") and g[1] == key(WEBHOOK_SECRET)}
    readers = {
        logical_id
        for logical_id, role in of_type(transformed, "AWS::IAM::Role").items()
        if any(resource == key(WEBHOOK_SECRET) for _, resource in grants(role_statements(role)))
    }
    assert readers == {role_id(transformed, WEBHOOK_FUNCTION)}


# The run ledger's items each outcome role reads and writes, as the code names them, and the dedup
# table's other items (the start path's: idempotency records, their attempts, debounce windows),
# which neither may reach: a flaw in the webhook, which takes unauthenticated requests, must not
# be able to forge or erase "this action was done".
EXECUTION = "0d6c3c9e-2b1f-4f7e-9a51-6b0f4a1e2c3d"
LEDGER_ITEMS = {
    WEBHOOK_FUNCTION: {run_key(EXECUTION), f"event#{EXECUTION}"},
    POLLER_FUNCTION: {
        run_key(EXECUTION),
        CURSOR,
        f"event#{EXECUTION}",
        PROMISES + "a" * 64,
        "deadline#orders-daily",  # the arrival deadlines' items, and what they read
        "late#orders-daily#2026-03-30",
        "file#s3://acme-landing/exports/orders/dt=2026-03-30/_SUCCESS",
        "gate#orders-daily#date=2026-03-30",
    },
}
DEDUP_ITEMS = {
    f"{KEY_PREFIX}#{'a' * 64}",
    f"{KEY_PREFIX}#{'a' * 64}#attempts",
    f"{WINDOW_PREFIX}{'b' * 64}",
    "run",  # no prefix of the ledger's: nothing else either
}
LEDGER_ACTIONS = {
    WEBHOOK_FUNCTION: {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
    POLLER_FUNCTION: {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchGetItem",  # a gate's timeout report: its missing parts and manifest entries
    },
}
DUE = {"Fn::Sub": f"${{IdempotencyTable.Arn}}/index/{DUE_INDEX}"}  # only ledger items carry its key


def _string_like(pattern: str, value: str) -> bool:
    """IAM's StringLike: `*` any run of characters, `?` one; nothing else is special."""
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), value) is not None


def _reaches(statement: dict[str, Any], item: str) -> bool:
    """Whether the statement lets a request on the item with this key through (its LeadingKeys patterns)."""
    patterns = statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
    return patterns is None or any(_string_like(pattern, item) for pattern in as_list(patterns))


@pytest.mark.parametrize("function", [WEBHOOK_FUNCTION, POLLER_FUNCTION])
def test_the_outcome_roles_reach_the_run_ledgers_items_and_never_a_dedup_record(
    transformed: dict[str, Any], function: str
) -> None:
    decided = decide(transformed, **WEBHOOK_ON, **RUN_EVENT_BUS)
    resources = deployed(transformed, decided)
    dynamodb = [
        statement
        for statement in role_statements(resources[role_id(transformed, function)])
        if any(action.startswith("dynamodb:") for action in as_list(statement["Action"]))
    ]
    on_index = [statement for statement in dynamodb if statement["Resource"] == DUE]
    statements = [statement for statement in dynamodb if statement not in on_index]
    assert [as_list(statement["Action"]) for statement in on_index] == (
        [["dynamodb:Query"]] if function == POLLER_FUNCTION else []
    )  # the poller reads what is due; the webhook never needs to
    assert statements, f"{function} reaches no item"
    for statement in statements:
        assert set(as_list(statement["Action"])) <= LEDGER_ACTIONS[function], "no more than the code does"
        # ForAllValues holds for a request naming no key at all; Null makes one key required.
        assert statement.get("Condition", {}).get("Null") == {"dynamodb:LeadingKeys": "false"}, function
    reached = {item for item in LEDGER_ITEMS[function] | DEDUP_ITEMS if any(_reaches(s, item) for s in statements)}
    assert reached == LEDGER_ITEMS[function]


@pytest.mark.parametrize(
    ("policy", "function", "condition"),
    [
        ("PollerPublishesRunEvents", POLLER_FUNCTION, "HasRunEventBus"),
        ("WebhookPublishesRunEvents", WEBHOOK_FUNCTION, "HasWebhookAndRunEventBus"),
    ],
)
def test_publishing_is_granted_only_with_a_bus_and_only_on_it(
    transformed: dict[str, Any], policy: str, function: str, condition: str
) -> None:
    resource = transformed["Resources"][policy]
    assert resource["Type"] == "AWS::IAM::Policy"
    assert resource["Condition"] == condition
    assert resource["Properties"]["Roles"] == [{"Ref": role_id(transformed, function)}]
    assert grants(as_list(resource["Properties"]["PolicyDocument"]["Statement"])) == {PUBLISH_RUN_EVENTS}


# --------------------------------------------------------------------------- the poller's schedule


def _poller_schedule(tpl: dict[str, Any]) -> dict[str, Any]:
    schedules = of_type(tpl, "AWS::Scheduler::Schedule")
    assert list(schedules) == ["PollerSchedule"], "the routes' schedules are RouteWiring's, not the template's"
    return dict(schedules["PollerSchedule"]["Properties"])


def test_poller_schedule_fires_the_poller_in_the_default_group(transformed: dict[str, Any]) -> None:
    """Not in ScheduleGroup: the route wiring deletes there whatever the routes do not define."""
    schedule = _poller_schedule(transformed)
    assert schedule.get("GroupName", "default") == "default"
    assert schedule["Name"] == {"Fn::Sub": "${AWS::StackName}-poller"}
    assert schedule["ScheduleExpression"] == {"Ref": "OutcomePollerSchedule"}
    assert schedule["State"] == {"Ref": "SchedulesState"}
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert target["Arn"] == get_att_arn(POLLER_FUNCTION)
    assert json.loads(target["Input"]) == {"poll": "<aws.scheduler.scheduled-time>"}
    assert_bounded_retry(target["RetryPolicy"], "PollerSchedule")
    assert target["DeadLetterConfig"] == {"Arn": DLQ_ARN}
    assert target["RoleArn"] == get_att_arn("PollerScheduleRole")


def test_only_the_poller_schedule_may_use_its_role_to_invoke_the_poller_and_park(transformed: dict[str, Any]) -> None:
    role = transformed["Resources"]["PollerScheduleRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    name = _poller_schedule(transformed)["Name"]["Fn::Sub"]
    schedule_arn = f"arn:${{AWS::Partition}}:scheduler:${{AWS::Region}}:${{AWS::AccountId}}:schedule/default/{name}"
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnEquals": {"aws:SourceArn": {"Fn::Sub": schedule_arn}},
    }
    assert "ManagedPolicyArns" not in role
    assert grants(role_statements({"Properties": role})) == {
        grant("lambda:InvokeFunction", get_att_arn(POLLER_FUNCTION)),
        grant("sqs:SendMessage", DLQ_ARN),
    }


def test_nothing_but_its_schedule_and_the_deadlines_schedules_invokes_the_poller(transformed: dict[str, Any]) -> None:
    poller = get_att_arn(POLLER_FUNCTION)
    for rule in of_type(transformed, "AWS::Events::Rule").values():
        assert all(t["Arn"] != poller for t in rule["Properties"]["Targets"])
    for permission in of_type(transformed, "AWS::Lambda::Permission").values():
        assert permission["Properties"]["FunctionName"] != {"Ref": POLLER_FUNCTION}
    invokers = {
        logical_id
        for logical_id, role in of_type(transformed, "AWS::IAM::Role").items()
        if grant("lambda:InvokeFunction", poller) in grants(role_statements(role))
    }
    assert invokers == {"PollerScheduleRole", "ScheduleInvokeRole"}  # the latter: the routes' arrival deadlines


# --------------------------------------------------------------------------- the webhook's URL


def test_the_webhook_url_is_public_and_only_its_url_may_invoke_it(transformed: dict[str, Any]) -> None:
    """AuthType NONE (Polytomic cannot sign a SigV4 request; the handler checks its signature), with
    the two permissions Lambda requires for it: InvokeFunctionUrl, and InvokeFunction only via the URL."""
    urls = of_type(transformed, "AWS::Lambda::Url")
    assert list(urls) == ["WebhookFunctionUrl"], "only the webhook is public"
    url = urls["WebhookFunctionUrl"]
    assert url["Condition"] == "HasWebhook"
    assert url["Properties"] == {"TargetFunctionArn": get_att_arn(WEBHOOK_FUNCTION), "AuthType": "NONE"}
    permissions = sorted(
        (
            p["Properties"]
            for p in of_type(transformed, "AWS::Lambda::Permission").values()
            if p["Properties"]["FunctionName"] == {"Ref": WEBHOOK_FUNCTION}
        ),
        key=lambda p: str(p["Action"]),
    )
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": WEBHOOK_FUNCTION},
            "Principal": "*",
            "InvokedViaFunctionUrl": True,
        },
        {
            "Action": "lambda:InvokeFunctionUrl",
            "FunctionName": {"Ref": WEBHOOK_FUNCTION},
            "Principal": "*",
            "FunctionUrlAuthType": "NONE",
        },
    ]
    public = [
        lid for lid, p in of_type(transformed, "AWS::Lambda::Permission").items() if p["Properties"]["Principal"] == "*"
    ]
    assert all(transformed["Resources"][lid]["Condition"] == "HasWebhook" for lid in public)
    assert "FunctionUrlConfig" not in transformed["Resources"][WEBHOOK_FUNCTION]["Properties"]


# --------------------------------------------------------------------------- alarms


def test_runs_failed_alarm_sums_the_unsuccessful_run_metrics(transformed: dict[str, Any]) -> None:
    alarm = transformed["Resources"]["RunsFailedAlarm"]["Properties"]
    assert fires_on_any(alarm)
    assert alarm["TreatMissingData"] == "notBreaching"
    (expression,) = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    queries = {q["Id"]: q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q}
    assert all(not q.get("ReturnData", True) for q in alarm["Metrics"] if q is not expression)
    by_metric = {stat["Metric"]["MetricName"]: query_id for query_id, stat in queries.items()}
    assert set(by_metric) == set(UNSUCCESSFUL_RUN_METRICS)
    for stat in queries.values():
        assert stat["Metric"]["Namespace"] == METRICS_NAMESPACE
        assert stat["Metric"]["Dimensions"] == SERVICE_DIMENSION
        assert stat["Stat"] == "Sum"
        assert stat["Period"] == 300
    filled = ",".join(f"FILL({by_metric[metric]},0)" for metric in UNSUCCESSFUL_RUN_METRICS)
    assert expression["Expression"].replace(" ", "") == f"SUM([{filled}])"


def test_freshness_breach_alarm(transformed: dict[str, Any]) -> None:
    alarm = transformed["Resources"]["FreshnessBreachAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (METRICS_NAMESPACE, "freshness_breach")
    assert alarm["Dimensions"] == SERVICE_DIMENSION
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
    assert fires_on_any(alarm)
    assert alarm["TreatMissingData"] == "notBreaching"


def test_deadline_missed_alarm_fires_on_any_missed_partition(transformed: dict[str, Any]) -> None:
    alarm = transformed["Resources"]["DeadlineMissedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (METRICS_NAMESPACE, "deadline_missed")
    assert alarm["Dimensions"] == SERVICE_DIMENSION
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
    assert fires_on_any(alarm)
    assert alarm["TreatMissingData"] == "notBreaching"


def test_cursor_age_alarm_fires_when_the_poller_falls_behind(
    transformed: dict[str, Any], template: dict[str, Any]
) -> None:
    """Polls that succeed but never catch up raise no error: the age of what the poller handled shows them."""
    alarm = transformed["Resources"]["PollerCursorAgeAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (METRICS_NAMESPACE, "cursor_age_seconds")
    assert alarm["Dimensions"] == SERVICE_DIMENSION
    assert (alarm["Statistic"], alarm["Period"]) == ("Maximum", 300)
    assert alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]) == 1
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    # Over the overlap a poll reads again and a burst read on over a few polls; at most the time after
    # which a silent run is looked up anyway, far before Polytomic drops the events (48 h).
    reconcile_after = int(template["Parameters"]["RunReconcileAfterSeconds"]["Default"])
    assert 5 * 60 < alarm["Threshold"] <= reconcile_after
    assert alarm["TreatMissingData"] == "notBreaching"  # no poll completed: PollerErrorsAlarm says so
    assert "cursor_age_seconds" in alarm["AlarmDescription"]
