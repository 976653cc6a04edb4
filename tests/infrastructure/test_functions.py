"""Every function of the template, held to the same checks: one case per row of conftest.FUNCTIONS.

Runtime, handler, environment, role, log group, asynchronous failure handling, alarm and reserved
concurrency are checked once here, on the SAM-transformed template (what is deployed), and the
function's row says what sets it apart. What only one function does (the S3 rule, the dispatcher's
queue, the poller's schedule, the webhook's URL, the wiring's schedules) is tested where its
subject lives: test_template.py, test_outcomes_template.py, test_wiring_template.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from .cfn import (
    RUN_EVENT_BUS,
    WEBHOOK_ON,
    as_list,
    decide,
    fires_on_any,
    get_att_arn,
    grants,
    of_type,
    role_grants,
    role_id,
    role_statements,
)
from .conftest import FUNCTIONS, METRICS_NAMESPACE, PARK, PUBLISH_RUN_EVENTS, ROOT, SERVICE, Function, each_function

# Globals.Function.Environment: every function's, as the functions' settings read them.
ENVIRONMENT = {
    "POLYTOMIC_SECRET_ID": {"Ref": "PolytomicSecretArn"},
    "POLYTOMIC_BASE_URL": {"Ref": "PolytomicBaseUrl"},
    "POLYTOMIC_API_VERSION": {"Ref": "PolytomicApiVersion"},
    "IDEMPOTENCY_TABLE": {"Ref": "IdempotencyTable"},
    "IDEMPOTENCY_TTL_SECONDS": {"Ref": "IdempotencyTtlSeconds"},
    "DEAD_LETTER_QUEUE_URL": {"Ref": "DeadLetterQueue"},  # where a function parks an event that failed for good
    "DISPATCH_QUEUE_URL": {"Ref": "DispatchQueue"},
    "DISPATCH_DEAD_LETTER_QUEUE_URL": {"Ref": "DispatchDeadLetterQueue"},
    "DEFERRAL_MAX_AGE_SECONDS": {"Ref": "DeferralMaxAgeSeconds"},
    "POWERTOOLS_SERVICE_NAME": SERVICE,
    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
    # Tracing off must also keep Powertools' Tracer (and the X-Ray SDK import) out: observability.NoTracer.
    "POWERTOOLS_TRACE_DISABLED": {"Fn::If": ["TracingActive", "false", "true"]},
}
SAM_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",  # CloudWatch Logs
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",  # SAM attaches it for any Tracing value other than Disabled
}
LAMBDA_MAX_EVENT_AGE = 21600  # seconds, Lambda's own ceiling for async events
# SAM's grant for the on-failure destination of Globals.EventInvokeConfig (one inline policy).
SAM_ON_FAILURE_POLICY = re.compile(r"EventInvokeConfigOnFailure\w*Policy$")


def _properties(tpl: dict[str, Any], function: Function) -> dict[str, Any]:
    return dict(tpl["Resources"][function.name]["Properties"])


def test_every_function_of_the_template_has_a_row(template: dict[str, Any]) -> None:
    """A new function is held to every check below as soon as it has a row in conftest.FUNCTIONS."""
    assert set(of_type(template, "AWS::Serverless::Function")) == {function.name for function in FUNCTIONS}


# --------------------------------------------------------------------------- code and configuration


@each_function()
def test_function_runtime_architecture_handler_and_timeout(transformed: dict[str, Any], function: Function) -> None:
    resource = transformed["Resources"][function.name]
    assert resource["Type"] == "AWS::Lambda::Function"
    assert resource.get("Condition") == function.condition
    properties = resource["Properties"]
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == function.handler
    assert properties["TracingConfig"] == {"Mode": {"Ref": "Tracing"}}
    assert properties["Timeout"] == function.timeout
    assert 0 < properties["Timeout"] <= 900
    assert properties["MemorySize"] >= 128


@each_function()
def test_function_code_is_the_functions_directory(template: dict[str, Any], function: Function) -> None:
    code_uri = _properties(template, function).get("CodeUri") or template["Globals"]["Function"].get("CodeUri")
    assert code_uri.rstrip("/") == "functions"


@each_function()
def test_handler_exists_in_the_shipped_code(template: dict[str, Any], function: Function) -> None:
    handler = _properties(template, function)["Handler"]
    module, _, attribute = handler.rpartition(".")
    source = ROOT / "functions" / Path(*module.split(".")).with_suffix(".py")
    assert source.is_file(), f"{handler}: {source.relative_to(ROOT)} does not exist"
    names = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    assert attribute in names, f"{source.relative_to(ROOT)} defines no top-level {attribute!r}"


@each_function()
def test_function_environment(transformed: dict[str, Any], function: Function) -> None:
    variables = _properties(transformed, function)["Environment"]["Variables"]
    assert variables == {**ENVIRONMENT, **function.environment}
    credential_like = [v for v in variables if re.search(r"API_KEY|DEPLOYMENT_KEY|TOKEN|PASSWORD|SIGNING_KEY", v)]
    assert credential_like == [], "secrets belong in Secrets Manager, not in the environment"


@each_function()
def test_function_reserved_concurrency(transformed: dict[str, Any], function: Function) -> None:
    """A reservation where a burst must be bounded; none where something else bounds it (a schedule's
    rate, the dispatcher's mapping, whose SQS pollers a reservation below it would throttle)."""
    assert _properties(transformed, function).get("ReservedConcurrentExecutions") == function.reserved


# --------------------------------------------------------------------------- IAM


@pytest.mark.parametrize("bus", [False, True], ids=["no-bus", "bus"])
@each_function()
def test_function_role_grants_exactly_what_it_needs(transformed: dict[str, Any], function: Function, bus: bool) -> None:
    """Its role's own policies and every policy attached to it, with the webhook on and a run event bus or not."""
    decided = decide(transformed, **WEBHOOK_ON, **(RUN_EVENT_BUS if bus else {}))
    expected = function.grants | ({PUBLISH_RUN_EVENTS} if bus and function.publishes else set())
    assert role_grants(transformed, function.name, decided) == expected


@each_function()
def test_function_parks_events_by_its_own_policy_or_not_at_all(
    transformed: dict[str, Any], template: dict[str, Any], function: Function
) -> None:
    """A function that sends what failed for good to DeadLetterQueue itself says so in its own policy.

    SAM grants the same through the on-failure destination, but only as long as that destination
    stays: the code's need is stated in the function's own policy (Sid ParkEvents). The dispatcher
    parks in DispatchDeadLetterQueue instead, and the wiring answers CloudFormation: neither is
    given anything for DeadLetterQueue of its own.
    """
    role = transformed["Resources"][role_id(transformed, function.name)]
    own = [
        statement
        for policy in role["Properties"]["Policies"]
        if not SAM_ON_FAILURE_POLICY.search(policy["PolicyName"])
        for statement in as_list(policy["PolicyDocument"]["Statement"])
    ]
    parking = [s for s in own if s.get("Sid") == "ParkEvents"]
    if function.parks:
        assert len(parking) == 1, f"{function.name}: no ParkEvents statement of its own"
        assert grants(parking) == {PARK}
    else:
        assert parking == []
        assert PARK not in grants(own)
    declared = _properties(template, function)["Policies"]
    sids = {s.get("Sid") for policy in declared for s in as_list(policy["Statement"])}
    assert ("ParkEvents" in sids) is function.parks


@each_function()
def test_function_role_has_no_wildcards(transformed: dict[str, Any], function: Function) -> None:
    role = transformed["Resources"][role_id(transformed, function.name)]
    for statement in role_statements(role):
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{function.name}: wildcard action {action}"
            for resource in as_list(statement["Resource"]):
                if resource == "*":
                    assert action in function.any_resource, f"{function.name}: {action} on Resource '*'"
                else:
                    assert not (isinstance(resource, str) and resource.endswith("*")), resource


@each_function()
def test_function_role_has_only_sams_managed_policies_and_lambdas_trust(
    transformed: dict[str, Any], function: Function
) -> None:
    role = transformed["Resources"][role_id(transformed, function.name)]["Properties"]
    assert set(role["ManagedPolicyArns"]) == SAM_MANAGED_POLICIES
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}}
    ]


# --------------------------------------------------------------------------- failures, logs and alarms


@each_function()
def test_async_invocations_retry_a_bounded_number_of_times_then_go_to_the_dlq(
    transformed: dict[str, Any], function: Function
) -> None:
    """Globals.EventInvokeConfig on every function, even those never invoked asynchronously (the
    dispatcher's SQS mapping, the webhook's URL): a manual async invoke that fails is parked, not lost."""
    configs = {
        logical_id: config
        for logical_id, config in of_type(transformed, "AWS::Lambda::EventInvokeConfig").items()
        if config["Properties"]["FunctionName"] == {"Ref": function.name}
    }
    assert len(configs) == 1, f"{function.name}: expected one EventInvokeConfig, got {configs}"
    (config,) = configs.values()
    assert config.get("Condition") == function.condition
    properties = config["Properties"]
    assert properties["MaximumRetryAttempts"] == function.async_retries
    assert 0 <= properties["MaximumRetryAttempts"] <= 2
    assert 60 <= properties["MaximumEventAgeInSeconds"] <= LAMBDA_MAX_EVENT_AGE
    assert properties["Qualifier"] == function.qualifier
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == get_att_arn("DeadLetterQueue")


@each_function()
def test_function_logs_to_its_own_bounded_log_group(transformed: dict[str, Any], function: Function) -> None:
    group_id = _properties(transformed, function)["LoggingConfig"]["LogGroup"]["Ref"]
    assert group_id == function.log_group
    group = transformed["Resources"][group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["DeletionPolicy"] == "Delete"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{function.log}"}
    assert group.get("Condition") == function.condition
    groups = [_properties(transformed, f)["LoggingConfig"]["LogGroup"]["Ref"] for f in FUNCTIONS]
    assert groups.count(group_id) == 1, "each function logs to a group of its own"


@each_function()
def test_alarm_on_function_errors(transformed: dict[str, Any], function: Function) -> None:
    """Every function but the wiring, whose failures CloudFormation shows on the stack's events."""
    alarms = [
        alarm
        for alarm in of_type(transformed, "AWS::CloudWatch::Alarm").values()
        if (alarm["Properties"].get("Namespace"), alarm["Properties"].get("MetricName")) == ("AWS/Lambda", "Errors")
        and alarm["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function.name}}]
    ]
    assert len(alarms) == function.errors_alarm, function.name
    if not alarms:
        return
    (alarm,) = alarms
    assert alarm.get("Condition") == function.condition
    properties = alarm["Properties"]
    assert (properties["Statistic"], properties["Period"]) == ("Sum", 300)
    assert fires_on_any(properties)
    assert properties["TreatMissingData"] == "notBreaching"
