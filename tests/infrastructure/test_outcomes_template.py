"""The template's run outcomes: the outcome poller, its schedule, the optional webhook receiver, their alarms.

What became of the runs polytrigger started: PollerFunction reads Polytomic's events API every minute
(an EventBridge Scheduler schedule in the default group, not the stack's ScheduleGroup, which the
route wiring empties of whatever the routes do not define), and WebhookFunction, when
WebhookReceiver is Enabled, takes the same outcomes behind a public Function URL. Each role grants
exactly what its function needs: the webhook, which takes unauthenticated requests, can read its own
signing secret and never the API key; the poller, never the webhook's secret. Assertions run on the
SAM-transformed template (what is deployed), with the template's conditions decided from parameter
values the way CloudFormation decides them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest

from .cfn import (
    PARAMETER_VALUES,
    as_list,
    assert_bounded_retry,
    get_att_arn,
    grants,
    key,
    of_type,
    resolve,
    role_id,
    role_statements,
)
from .conftest import (
    FUNCTIONS,
    OUTCOME_FUNCTIONS,
    POLLER_FUNCTION,
    ROOT,
    WEBHOOK_FUNCTION,
)

API_KEY_SECRET = {"Ref": "PolytomicSecretArn"}
WEBHOOK_SECRET = {"Ref": "PolytomicWebhookSecretArn"}
TABLE_ARN = get_att_arn("IdempotencyTable")
DLQ_ARN = get_att_arn("DeadLetterQueue")
DISPATCH_QUEUE_ARN = get_att_arn("DispatchQueue")
RUN_EVENT_BUS_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${RunEventBusName}"
}
WEBHOOK_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-webhook-AbCdEf"

HANDLERS = {
    POLLER_FUNCTION: "polytrigger.handlers.poller.handler",
    WEBHOOK_FUNCTION: "polytrigger.handlers.webhook.handler",
}
SAM_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
POWERTOOLS_NAMESPACE = "Polytrigger"
SERVICE_DIMENSION = [{"Name": "service", "Value": "polytrigger"}]
UNSUCCESSFUL_RUN_METRICS = ("run_failed", "run_completed_with_errors", "run_canceled")


def _grant(action: str, resource: Any) -> tuple[str, str]:
    return (action, key(resource))


TABLE_GRANTS = {
    _grant(f"dynamodb:{action}", TABLE_ARN) for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
}
# Chained routes' starts go to the dispatch queue; what fails for good is parked in the dead-letter
# queue (SAM grants the same for the on-failure destination; the function's own policy states it).
SEND_GRANTS = {_grant("sqs:SendMessage", DISPATCH_QUEUE_ARN), _grant("sqs:SendMessage", DLQ_ARN)}
PUBLISH_GRANT = _grant("events:PutEvents", RUN_EVENT_BUS_ARN)
GRANTS = {
    POLLER_FUNCTION: {_grant("secretsmanager:GetSecretValue", API_KEY_SECRET)} | TABLE_GRANTS | SEND_GRANTS,
    WEBHOOK_FUNCTION: {_grant("secretsmanager:GetSecretValue", WEBHOOK_SECRET)} | TABLE_GRANTS | SEND_GRANTS,
}


# --------------------------------------------------------------------------- conditions, as CloudFormation decides them


def _value(node: Any, tpl: dict[str, Any], parameters: dict[str, str]) -> Any:
    if isinstance(node, dict) and len(node) == 1:
        ((function, argument),) = node.items()
        if function == "Ref":
            return parameters[argument]
        if function == "Condition":
            return _value(tpl["Conditions"][argument], tpl, parameters)
        if function == "Fn::Equals":
            left, right = (_value(item, tpl, parameters) for item in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not _value(argument[0], tpl, parameters)
        if function == "Fn::And":
            return all(_value(item, tpl, parameters) for item in argument)
        if function == "Fn::Or":
            return any(_value(item, tpl, parameters) for item in argument)
        raise AssertionError(f"the test cannot evaluate {function}: teach _value")
    return node


def _parameters(tpl: dict[str, Any], **given: str) -> dict[str, str]:
    defaults = {name: str(p["Default"]) for name, p in tpl["Parameters"].items() if "Default" in p}
    return {**defaults, **PARAMETER_VALUES, **given}


def _conditions(tpl: dict[str, Any], **given: str) -> dict[str, bool]:
    parameters = _parameters(tpl, **given)
    return {name: bool(_value(node, tpl, parameters)) for name, node in tpl["Conditions"].items()}


ON = {"WebhookReceiver": "Enabled", "PolytomicWebhookSecretArn": WEBHOOK_SECRET_ARN}
BUS = {"RunEventBusName": "polytrigger-runs"}


def _deployed(tpl: dict[str, Any], conditions: dict[str, bool]) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation creates with these conditions, their Fn::If decided."""
    return {
        logical_id: resolve(resource, conditions)
        for logical_id, resource in tpl["Resources"].items()
        if "Condition" not in resource or conditions[resource["Condition"]]
    }


def _role_grants(tpl: dict[str, Any], function: str, conditions: dict[str, bool]) -> set[tuple[str, str]]:
    """What the function's role may do: its own policies and every AWS::IAM::Policy attached to it."""
    deployed = _deployed(tpl, conditions)
    role = role_id(tpl, function)
    statements = role_statements(deployed[role])
    for resource in deployed.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]:
            statements.extend(as_list(resource["Properties"]["PolicyDocument"]["Statement"]))
    assert all(s["Effect"] == "Allow" for s in statements), function
    assert not any({"NotAction", "NotResource", "Condition"} & set(s) for s in statements), function
    return grants(statements)


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
    ("arn", "accepted"),
    [
        ("", True),  # no webhook
        (WEBHOOK_SECRET_ARN, True),
        ("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:hook-AbCdEf", True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-webhook", False),  # partial ARN
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:*", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-*", False),
        ("polytomic-webhook", False),
    ],
)
def test_webhook_secret_parameter_is_empty_or_a_full_secret_arn(
    template: dict[str, Any], arn: str, accepted: bool
) -> None:
    pattern = template["Parameters"]["PolytomicWebhookSecretArn"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, arn)) is accepted


@pytest.mark.parametrize(
    ("name", "accepted"),
    [("", True), ("polytrigger-runs", True), ("default", True), ("aws.partner/x.com/123/runs", True), ("a b", False)],
)
def test_run_event_bus_parameter_is_empty_or_a_bus_name(template: dict[str, Any], name: str, accepted: bool) -> None:
    pattern = template["Parameters"]["RunEventBusName"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, name)) is accepted


@pytest.mark.parametrize(
    ("expression", "accepted"),
    [
        ("rate(1 minute)", True),
        ("rate(5 minutes)", True),
        ("cron(* * * * ? *)", True),
        ("at(2025-01-01T00:00:00)", False),
    ],
)
def test_poller_schedule_parameter_is_a_recurring_expression(
    template: dict[str, Any], expression: str, accepted: bool
) -> None:
    pattern = template["Parameters"]["OutcomePollerSchedule"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, expression)) is accepted


@pytest.mark.parametrize(
    ("given", "webhook", "bus"),
    [
        ({}, False, False),
        (BUS, False, True),
        (ON, True, False),
        ({**ON, **BUS}, True, True),
        # Enabled without a secret is refused by WebhookNeedsItsSecret; the condition never creates it either.
        ({"WebhookReceiver": "Enabled"}, False, False),
        ({"PolytomicWebhookSecretArn": WEBHOOK_SECRET_ARN}, False, False),
    ],
)
def test_conditions(transformed: dict[str, Any], given: dict[str, str], webhook: bool, bus: bool) -> None:
    conditions = _conditions(transformed, **given)
    assert conditions["HasWebhook"] is webhook
    assert conditions["HasRunEventBus"] is bus
    assert conditions["HasWebhookAndRunEventBus"] is (webhook and bus)


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({}, False),
        ({"WebhookReceiver": "Enabled"}, True),
        ({"WebhookReceiver": "Enabled", "PolytomicWebhookSecretArn": ""}, True),
        (ON, False),
        ({"PolytomicWebhookSecretArn": WEBHOOK_SECRET_ARN}, False),
    ],
)
def test_an_enabled_webhook_needs_its_secret(transformed: dict[str, Any], given: dict[str, str], refused: bool) -> None:
    """CloudFormation's Rules refuse the parameters before anything is created."""
    parameters = _parameters(transformed, **given)
    (rule,) = transformed["Rules"].values()
    applies = _value(rule["RuleCondition"], transformed, parameters)
    holds = all(_value(a["Assert"], transformed, parameters) for a in rule["Assertions"])
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


@pytest.mark.parametrize(("given", "webhook"), [({}, False), ({**ON, **BUS}, True)], ids=["defaults", "webhook"])
def test_the_webhook_exists_only_when_enabled_and_the_poller_always(
    transformed: dict[str, Any], given: dict[str, str], webhook: bool
) -> None:
    deployed = _deployed(transformed, _conditions(transformed, **given))
    named_webhook = {logical_id for logical_id in transformed["Resources"] if "Webhook" in logical_id}
    assert named_webhook == OPTIONAL_WEBHOOK
    assert OPTIONAL_WEBHOOK & set(deployed) == (OPTIONAL_WEBHOOK if webhook else set())
    for always in (POLLER_FUNCTION, "PollerFunctionRole", "PollerSchedule", "PollerScheduleRole", "PollerLogGroup"):
        assert always in deployed
        assert "Condition" not in transformed["Resources"][always], always
    outputs = transformed["Outputs"]
    assert outputs["WebhookUrl"]["Condition"] == "HasWebhook"
    assert outputs["WebhookUrl"]["Value"] == {"Fn::GetAtt": ["WebhookFunctionUrl", "FunctionUrl"]}
    assert "POST /api/webhooks" in outputs["WebhookUrl"]["Description"]
    assert outputs["PollerFunctionArn"]["Value"] == get_att_arn(POLLER_FUNCTION)
    assert "Condition" not in outputs["PollerFunctionArn"]


# --------------------------------------------------------------------------- functions


@pytest.mark.parametrize("function", OUTCOME_FUNCTIONS)
def test_function_runtime_handler_and_environment(transformed: dict[str, Any], function: str) -> None:
    properties = transformed["Resources"][function]["Properties"]
    assert properties["Handler"] == HANDLERS[function]
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    variables = properties["Environment"]["Variables"]
    for name, value in {
        "IDEMPOTENCY_TABLE": {"Ref": "IdempotencyTable"},  # the cursor and the open runs
        "DISPATCH_QUEUE_URL": {"Ref": "DispatchQueue"},
        "DEAD_LETTER_QUEUE_URL": {"Ref": "DeadLetterQueue"},
        "POLYTOMIC_BASE_URL": {"Ref": "PolytomicBaseUrl"},
        "POWERTOOLS_METRICS_NAMESPACE": POWERTOOLS_NAMESPACE,
        "RUN_EVENT_BUS_NAME": {"Ref": "RunEventBusName"},
    }.items():
        assert variables.get(name) == value, f"{function}: {name}"
    credential_like = [v for v in variables if re.search(r"API_KEY|DEPLOYMENT_KEY|TOKEN|PASSWORD|SIGNING_KEY", v)]
    assert credential_like == [], "secrets belong in Secrets Manager, not in the environment"


def test_poller_configuration(transformed: dict[str, Any]) -> None:
    properties = transformed["Resources"][POLLER_FUNCTION]["Properties"]
    variables = properties["Environment"]["Variables"]
    assert variables["RUN_RECONCILE_AFTER_SECONDS"] == {"Ref": "RunReconcileAfterSeconds"}
    assert variables["POLYTOMIC_SECRET_ID"] == API_KEY_SECRET
    # One poll at a time: the cursor is read and advanced by one invocation only.
    assert properties["ReservedConcurrentExecutions"] == 1


def test_webhook_configuration(transformed: dict[str, Any]) -> None:
    properties = transformed["Resources"][WEBHOOK_FUNCTION]["Properties"]
    variables = properties["Environment"]["Variables"]
    assert variables["POLYTOMIC_WEBHOOK_SECRET_ID"] == WEBHOOK_SECRET
    assert variables["WEBHOOK_SIGNATURE"] == {"Ref": "WebhookSignatureEncoding"}
    # A flood of unauthenticated requests runs at most this many at once, never the account's pool.
    assert properties["ReservedConcurrentExecutions"] == {"Ref": "WebhookConcurrency"}
    assert properties["Timeout"] == 10


@pytest.mark.parametrize("function", OUTCOME_FUNCTIONS)
def test_function_is_built_by_the_makefile(template: dict[str, Any], function: str) -> None:
    assert template["Resources"][function]["Metadata"]["BuildMethod"] == "makefile"
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT / "functions"), f"build-{function}"],
        env={**os.environ, "ARTIFACTS_DIR": "/build"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("function", OUTCOME_FUNCTIONS)
def test_function_logs_to_its_own_bounded_log_group(transformed: dict[str, Any], function: str) -> None:
    properties = transformed["Resources"][function]["Properties"]
    group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
    group = transformed["Resources"][group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["DeletionPolicy"] == "Delete"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    suffix = {POLLER_FUNCTION: "poller", WEBHOOK_FUNCTION: "webhook"}[function]
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{suffix}"}
    assert group.get("Condition") == transformed["Resources"][function].get("Condition")
    others = {transformed["Resources"][f]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in FUNCTIONS}
    assert group_id not in others


# --------------------------------------------------------------------------- IAM


@pytest.mark.parametrize("bus", [False, True], ids=["no-bus", "bus"])
@pytest.mark.parametrize("function", OUTCOME_FUNCTIONS)
def test_role_grants_exactly_what_the_function_needs(transformed: dict[str, Any], function: str, bus: bool) -> None:
    conditions = _conditions(transformed, **ON, **(BUS if bus else {}))
    expected = GRANTS[function] | ({PUBLISH_GRANT} if bus else set())
    assert _role_grants(transformed, function, conditions) == expected


def test_the_webhook_cannot_read_the_api_key_nor_the_poller_the_webhook_secret(transformed: dict[str, Any]) -> None:
    """The webhook takes unauthenticated requests: a flaw in it must not reach the API key."""
    conditions = _conditions(transformed, **ON, **BUS)
    webhook = _role_grants(transformed, WEBHOOK_FUNCTION, conditions)
    poller = _role_grants(transformed, POLLER_FUNCTION, conditions)
    assert not {g for g in webhook if g[0].startswith("secretsmanager:") and g[1] == key(API_KEY_SECRET)}
    assert not {g for g in poller if g[0].startswith("secretsmanager:") and g[1] == key(WEBHOOK_SECRET)}
    readers = {
        logical_id
        for logical_id, role in of_type(transformed, "AWS::IAM::Role").items()
        if any(resource == key(WEBHOOK_SECRET) for _, resource in grants(role_statements(role)))
    }
    assert readers == {role_id(transformed, WEBHOOK_FUNCTION)}


@pytest.mark.parametrize("function", OUTCOME_FUNCTIONS)
def test_role_has_only_sams_managed_policies_and_lambdas_trust(transformed: dict[str, Any], function: str) -> None:
    role = transformed["Resources"][role_id(transformed, function)]["Properties"]
    assert set(role["ManagedPolicyArns"]) == SAM_MANAGED_POLICIES
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}}
    ]


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
    assert grants(as_list(resource["Properties"]["PolicyDocument"]["Statement"])) == {PUBLISH_GRANT}


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
        _grant("lambda:InvokeFunction", get_att_arn(POLLER_FUNCTION)),
        _grant("sqs:SendMessage", DLQ_ARN),
    }


def test_nothing_but_its_schedule_invokes_the_poller(transformed: dict[str, Any]) -> None:
    poller = get_att_arn(POLLER_FUNCTION)
    for rule in of_type(transformed, "AWS::Events::Rule").values():
        assert all(t["Arn"] != poller for t in rule["Properties"]["Targets"])
    for permission in of_type(transformed, "AWS::Lambda::Permission").values():
        assert permission["Properties"]["FunctionName"] != {"Ref": POLLER_FUNCTION}
    invokers = {
        logical_id
        for logical_id, role in of_type(transformed, "AWS::IAM::Role").items()
        if _grant("lambda:InvokeFunction", poller) in grants(role_statements(role))
    }
    assert invokers == {"PollerScheduleRole"}


def test_a_failed_poll_is_not_retried_but_parked(transformed: dict[str, Any]) -> None:
    """The next firing polls again from the same cursor; a failed one still shows in the dead-letter queue."""
    (config,) = [
        c["Properties"]
        for c in of_type(transformed, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": POLLER_FUNCTION}
    ]
    assert config["MaximumRetryAttempts"] == 0
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == DLQ_ARN


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


def _one_datapoint_over_zero(alarm: dict[str, Any]) -> bool:
    return (
        alarm["Threshold"] == 0
        and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        and alarm["EvaluationPeriods"] == 1
        and alarm.get("DatapointsToAlarm", 1) == 1
        and alarm["TreatMissingData"] == "notBreaching"
    )


def _notifies_the_topic(alarm: dict[str, Any]) -> bool:
    notify = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    return alarm["AlarmActions"] == notify and alarm["OKActions"] == notify


def test_runs_failed_alarm_sums_the_unsuccessful_run_metrics(transformed: dict[str, Any]) -> None:
    alarm = transformed["Resources"]["RunsFailedAlarm"]["Properties"]
    assert _one_datapoint_over_zero(alarm)
    assert _notifies_the_topic(alarm)
    (expression,) = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    queries = {q["Id"]: q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q}
    assert all(not q.get("ReturnData", True) for q in alarm["Metrics"] if q is not expression)
    by_metric = {stat["Metric"]["MetricName"]: query_id for query_id, stat in queries.items()}
    assert set(by_metric) == set(UNSUCCESSFUL_RUN_METRICS)
    for stat in queries.values():
        assert stat["Metric"]["Namespace"] == POWERTOOLS_NAMESPACE
        assert stat["Metric"]["Dimensions"] == SERVICE_DIMENSION
        assert stat["Stat"] == "Sum"
        assert stat["Period"] == 300
    filled = ",".join(f"FILL({by_metric[metric]},0)" for metric in UNSUCCESSFUL_RUN_METRICS)
    assert expression["Expression"].replace(" ", "") == f"SUM([{filled}])"


def test_freshness_breach_alarm(transformed: dict[str, Any]) -> None:
    alarm = transformed["Resources"]["FreshnessBreachAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (POWERTOOLS_NAMESPACE, "freshness_breach")
    assert alarm["Dimensions"] == SERVICE_DIMENSION
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
    assert _one_datapoint_over_zero(alarm)
    assert _notifies_the_topic(alarm)


@pytest.mark.parametrize(
    ("alarm_id", "function"), [("PollerErrorsAlarm", POLLER_FUNCTION), ("WebhookErrorsAlarm", WEBHOOK_FUNCTION)]
)
def test_function_errors_alarm(transformed: dict[str, Any], alarm_id: str, function: str) -> None:
    resource = transformed["Resources"][alarm_id]
    assert resource.get("Condition") == transformed["Resources"][function].get("Condition")
    alarm = resource["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
    assert _one_datapoint_over_zero(alarm)
    assert _notifies_the_topic(alarm)
