"""template.yaml: lint-clean, and what the SAM transform deploys is what the design promises.

Most assertions run on the *transformed* template (plain CloudFormation, as deployed), so
they check what SAM actually generates (roles, rules, schedules, invoke configs), not only
what the template asks for. What every function is held to: test_functions.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from polytrigger.flows.on_dispatch_message import MAX_RECEIVES

from .cfn import (
    NO_VALUE,
    WEBHOOK_SECRET_ARN,
    as_list,
    assert_bounded_retry,
    fires_on_any,
    get_att_arn,
    key,
    of_type,
    resolve,
    role_id,
    role_statements,
    rule_for,
)
from .conftest import (
    DISPATCH_DLQ_ARN,
    DISPATCH_QUEUE_ARN,
    DISPATCHER_FUNCTION,
    DLQ_ARN,
    ENQUEUE_STARTS,
    FUNCTIONS,
    METRICS_NAMESPACE,
    ROOT,
    S3_FUNCTION,
    SCHEDULE_FUNCTION,
    SERVICE,
    TEMPLATE_PATH,
)
from .emitted import emitted_metrics

DLQ_URL = {"Ref": "DeadLetterQueue"}
DISPATCH_QUEUE_URL = {"Ref": "DispatchQueue"}
DISPATCH_DLQ_URL = {"Ref": "DispatchDeadLetterQueue"}
QUEUES = {"DeadLetterQueue", "DispatchQueue", "DispatchDeadLetterQueue"}
DEAD_LETTER_QUEUES = ("DeadLetterQueue", "DispatchDeadLetterQueue")

SQS_MAX_DELAY = 900  # seconds, the longest a message can be delayed on the dispatch queue
# The dispatcher parks a message itself, with the reason, on its last receive: it must know which
# receive is the last, so the queue's maxReceiveCount is its constant, never a copy of it.
DISPATCH_MAX_RECEIVES = MAX_RECEIVES


def _cfn_lint() -> str:
    candidate = Path(sys.executable).with_name("cfn-lint")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("cfn-lint")
    assert found, "cfn-lint is not installed (it is a dev dependency: make install)"
    return found


@pytest.fixture(scope="module")
def cfn_lint_findings(transformed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """cfn-lint's findings per file, the template and its transform in one run (its start-up is most of a run)."""
    path = tmp_path_factory.mktemp("cfn-lint") / "transformed.json"
    path.write_text(json.dumps(transformed, indent=1))
    result = subprocess.run(
        [_cfn_lint(), "--format", "parseable", "--", str(TEMPLATE_PATH), str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode == 0 or lines, f"cfn-lint failed without findings:\n{result.stderr}"
    return {
        name: [line for line in lines if line.startswith(str(where))]
        for name, where in (("template", TEMPLATE_PATH), ("transformed", path))
    }


# --------------------------------------------------------------------------- lint and transform


def test_cfn_lint_is_clean_on_the_template(cfn_lint_findings: dict[str, list[str]]) -> None:
    assert cfn_lint_findings["template"] == []


def test_cfn_lint_is_clean_on_the_transformed_template(cfn_lint_findings: dict[str, list[str]]) -> None:
    assert cfn_lint_findings["transformed"] == []


def test_template_is_a_sam_template(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert {function.name for function in FUNCTIONS} <= set(of_type(template, "AWS::Serverless::Function"))


def test_transform_leaves_no_serverless_resources(transformed: dict[str, Any]) -> None:
    leftovers = [r for r in transformed["Resources"].values() if r["Type"].startswith("AWS::Serverless::")]
    assert leftovers == []
    assert "Transform" not in transformed


# --------------------------------------------------------------------------- parameters


def test_api_version_parameter_offers_the_documented_versions(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["PolytomicApiVersion"]
    assert parameter["Default"] == "2025-09-18"
    assert set(parameter["AllowedValues"]) == {
        "2025-09-18",
        "2024-02-08",
        "2023-04-25",
        "2022-12-12",
        "2021-05-23",
    }


def test_parameter_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["PolytomicBaseUrl"]["Default"] == "https://app.polytomic.com"
    assert int(parameters["IdempotencyTtlSeconds"]["Default"]) == 86400
    assert parameters["LogLevel"]["Default"] == "INFO"
    assert parameters["Tracing"]["Default"] == "PassThrough"  # no X-Ray SDK on the cold start unless asked for
    assert parameters["Tracing"]["AllowedValues"] == ["Active", "PassThrough"]
    assert parameters["SchedulesState"]["Default"] == "ENABLED"
    assert "Default" not in parameters["PolytomicSecretArn"], "the secret must be asked for, not defaulted"
    # What fires is the routes file's to say (RouteWiring), never a parameter to keep in step with it.
    assert not {"LandingBucketName", "ScheduleTimezone", "NightlyScheduleExpression"} & set(parameters)


def test_deferral_max_age_parameter_fits_in_the_dispatch_queue(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["DeferralMaxAgeSeconds"]
    assert parameter["Type"] == "Number"
    assert int(parameter["Default"]) == 21600
    assert int(parameter["MinValue"]) == 60
    retention = template["Resources"]["DispatchQueue"]["Properties"]["MessageRetentionPeriod"]
    assert int(parameter["MaxValue"]) == 345600
    assert int(parameter["MaxValue"]) <= retention, "a deferral must never outlive the dispatch queue's retention"


# What each parameter with an AllowedPattern must accept and refuse: (parameter, value, accepted).
PATTERNS = [
    # The IAM grant needs the full ARN: a bare name, a partial ARN or a wildcard would grant too much or nothing.
    ("PolytomicSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-AbCdEf", True),
    ("PolytomicSecretArn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/polytomic/api_key-a1B2c3", True),
    ("PolytomicSecretArn", "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:polytomic-AbCdEf", True),
    ("PolytomicSecretArn", "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:polytomic-AbCdEf", True),
    ("PolytomicSecretArn", "polytomic", False),
    ("PolytomicSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic", False),
    ("PolytomicSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:*", False),
    ("PolytomicSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-*", False),
    ("PolytomicSecretArn", "arn:aws:ssm:us-east-1:123456789012:parameter/polytomic-AbCdEf", False),
    ("PolytomicSecretArn", "", False),
    # Empty (no webhook) or the full ARN of the webhook's signing secret.
    ("PolytomicWebhookSecretArn", "", True),
    ("PolytomicWebhookSecretArn", WEBHOOK_SECRET_ARN, True),
    ("PolytomicWebhookSecretArn", "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:hook-AbCdEf", True),
    ("PolytomicWebhookSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-webhook", False),
    ("PolytomicWebhookSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:*", False),
    ("PolytomicWebhookSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-*", False),
    ("PolytomicWebhookSecretArn", "polytomic-webhook", False),
    # Every request carries the API key: over http anyone on the path reads it. The code allows
    # http only for a loopback host (the local stack), which is never a deployment.
    ("PolytomicBaseUrl", "https://app.polytomic.com", True),
    ("PolytomicBaseUrl", "https://polytomic.internal.example.com", True),
    ("PolytomicBaseUrl", "https://polytomic.example.com:8443/api", True),
    ("PolytomicBaseUrl", "http://app.polytomic.com", False),
    ("PolytomicBaseUrl", "http://127.0.0.1:8080", False),
    ("PolytomicBaseUrl", "HTTP://app.polytomic.com", False),
    ("PolytomicBaseUrl", "ftp://app.polytomic.com", False),
    ("PolytomicBaseUrl", "https://", False),
    ("PolytomicBaseUrl", "https:// app.polytomic.com", False),
    ("PolytomicBaseUrl", "app.polytomic.com", False),
    # Empty (no notifications) or a topic's ARN.
    ("AlarmTopicArn", "", True),
    ("AlarmTopicArn", "arn:aws:sns:us-east-1:123456789012:polytrigger-alarms", True),
    ("AlarmTopicArn", "arn:aws:sns:us-east-1:123456789012:*", False),
    ("AlarmTopicArn", "polytrigger-alarms", False),
    # Empty (no operator) or a role: aws:PrincipalArn of a role session is the role, and
    # ArnNotEquals matches no wildcard, so a user, a session or a pattern is never meant.
    ("OperatorRoleArn", "", True),
    ("OperatorRoleArn", "arn:aws:iam::123456789012:role/polytrigger-operator", True),
    (
        "OperatorRoleArn",
        "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Ops_0123abcd",
        True,
    ),
    ("OperatorRoleArn", "arn:aws-us-gov:iam::123456789012:role/ops", True),
    ("OperatorRoleArn", "arn:aws:iam::123456789012:user/alice", False),
    ("OperatorRoleArn", "arn:aws:sts::123456789012:assumed-role/ops/alice", False),
    ("OperatorRoleArn", "arn:aws:iam::123456789012:role/*", False),
    ("OperatorRoleArn", "arn:aws:iam::123456789012:root", False),
    ("OperatorRoleArn", "ops", False),
    # Empty (nothing re-published) or an event bus's name.
    ("RunEventBusName", "", True),
    ("RunEventBusName", "polytrigger-runs", True),
    ("RunEventBusName", "default", True),
    ("RunEventBusName", "aws.partner/x.com/123/runs", True),
    ("RunEventBusName", "a b", False),
    # The poller's schedule recurs: a one-time at() would poll once.
    ("OutcomePollerSchedule", "rate(1 minute)", True),
    ("OutcomePollerSchedule", "rate(5 minutes)", True),
    ("OutcomePollerSchedule", "cron(* * * * ? *)", True),
    ("OutcomePollerSchedule", "at(2025-01-01T00:00:00)", False),
]
PATTERNED = sorted({parameter for parameter, _, _ in PATTERNS})
DEFAULTED = [parameter for parameter in PATTERNED if parameter != "PolytomicSecretArn"]  # the secret is asked for


@pytest.mark.parametrize(("parameter", "value", "accepted"), PATTERNS)
def test_parameter_accepts_only_what_its_pattern_allows(
    template: dict[str, Any], parameter: str, value: str, accepted: bool
) -> None:
    pattern = template["Parameters"][parameter]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


def test_every_parameter_with_a_pattern_has_cases(template: dict[str, Any]) -> None:
    with_pattern = {name for name, parameter in template["Parameters"].items() if "AllowedPattern" in parameter}
    assert with_pattern == set(PATTERNED)


@pytest.mark.parametrize("parameter", DEFAULTED)
def test_parameter_default_matches_its_own_pattern(template: dict[str, Any], parameter: str) -> None:
    """A default its own pattern refuses would fail every deploy that leaves the parameter out."""
    declared = template["Parameters"][parameter]
    assert re.fullmatch(declared["AllowedPattern"], str(declared["Default"]))


# --------------------------------------------------------------------------- IAM


def test_secret_access_is_not_granted_anywhere_else(transformed: dict[str, Any]) -> None:
    """No role but a function's reads a secret or the table (each function's exact grants: test_functions.py)."""
    function_roles = {role_id(transformed, function.name) for function in FUNCTIONS}
    for logical_id, role in of_type(transformed, "AWS::IAM::Role").items():
        if logical_id in function_roles:
            continue
        actions = {a for s in role_statements(role) for a in as_list(s["Action"])}
        assert not {a for a in actions if a.startswith(("secretsmanager:", "dynamodb:"))}, logical_id


# --------------------------------------------------------------------------- S3 events (EventBridge)


def test_s3_rule_filters_on_the_routes_buckets_and_object_events(transformed: dict[str, Any]) -> None:
    _, rule = rule_for(transformed, S3_FUNCTION)
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert "Object Created" in pattern["detail-type"]
    assert set(pattern["detail-type"]) <= {"Object Created", "Object Deleted"}
    assert pattern["detail"]["bucket"]["name"] == {"Fn::Split": [",", {"Fn::GetAtt": ["RouteWiring", "Buckets"]}]}
    assert rule["Properties"].get("State", "ENABLED") == "ENABLED"


def test_s3_rule_target_has_retry_policy_and_dlq(transformed: dict[str, Any]) -> None:
    rule_id, rule = rule_for(transformed, S3_FUNCTION)
    (target,) = rule["Properties"]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": DLQ_ARN}
    assert_bounded_retry(target["RetryPolicy"], rule_id)


def test_s3_rule_may_invoke_the_function_and_nothing_else_may(transformed: dict[str, Any]) -> None:
    rule_id, _ = rule_for(transformed, S3_FUNCTION)
    permissions = [
        p["Properties"]
        for p in of_type(transformed, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Ref": S3_FUNCTION}
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": S3_FUNCTION},
            "Principal": "events.amazonaws.com",
            "SourceArn": get_att_arn(rule_id),
        }
    ]


def test_dlq_policy_lets_exactly_the_rules_that_use_it_send(transformed: dict[str, Any]) -> None:
    """SAM writes no queue policy for a DeadLetterConfig given by Arn: the template must."""
    rules_using_dlq = {
        rule_id
        for rule_id, rule in of_type(transformed, "AWS::Events::Rule").items()
        if any(t.get("DeadLetterConfig") == {"Arn": DLQ_ARN} for t in rule["Properties"]["Targets"])
    }
    assert rules_using_dlq, "the S3 rule should dead-letter to the DLQ"
    policies = [
        p["Properties"]
        for p in of_type(transformed, "AWS::SQS::QueuePolicy").values()
        if DLQ_URL in p["Properties"]["Queues"]
    ]
    assert len(policies) == 1
    allowed_sources = set()
    for statement in as_list(policies[0]["PolicyDocument"]["Statement"]):
        if statement["Effect"] != "Allow":
            continue
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}, statement
        assert as_list(statement["Action"]) == ["sqs:SendMessage"]
        assert statement["Resource"] == DLQ_ARN
        source = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        allowed_sources.add(source["Fn::GetAtt"][0])
    assert allowed_sources == rules_using_dlq
    for rule_id in allowed_sources:
        assert transformed["Resources"][rule_id]["Type"] == "AWS::Events::Rule"


def test_dlq_policy_denies_insecure_transport(transformed: dict[str, Any]) -> None:
    (policy,) = [
        p["Properties"]
        for p in of_type(transformed, "AWS::SQS::QueuePolicy").values()
        if DLQ_URL in p["Properties"]["Queues"]
    ]
    denies = [s for s in as_list(policy["PolicyDocument"]["Statement"]) if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


# --------------------------------------------------------------------------- state


def test_idempotency_table(transformed: dict[str, Any]) -> None:
    properties = transformed["Resources"]["IdempotencyTable"]["Properties"]
    assert transformed["Resources"]["IdempotencyTable"]["Type"] == "AWS::DynamoDB::Table"
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [
        {"AttributeName": name, "AttributeType": "S"} for name in ("id", "due_in", "due_at", "sync_key", "covers_from")
    ]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True


def test_the_due_index_is_the_one_the_ledger_queries_and_only_the_poller_may_query_it(
    transformed: dict[str, Any],
) -> None:
    from polytrigger.dispatch.table import BY_SYNC_INDEX, DUE_INDEX

    index, by_sync = transformed["Resources"]["IdempotencyTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert by_sync["IndexName"] == BY_SYNC_INDEX  # `polytrigger status`'s: what covers a file, no function queries it
    assert by_sync["KeySchema"] == [
        {"AttributeName": "sync_key", "KeyType": "HASH"},
        {"AttributeName": "covers_from", "KeyType": "RANGE"},
    ]
    assert "index/by_sync" not in json.dumps(transformed["Resources"])  # no function may read it
    assert index["IndexName"] == DUE_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": "due_in", "KeyType": "HASH"},
        {"AttributeName": "due_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}  # a due item is acted on without another read
    querying = {
        name
        for name, resource in transformed["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        and "dynamodb:Query" in json.dumps(resource["Properties"].get("Policies", []))
    }
    assert querying == {"PollerFunctionRole"}


def test_dead_letter_queue_is_encrypted_and_keeps_messages_14_days(transformed: dict[str, Any]) -> None:
    queue = transformed["Resources"]["DeadLetterQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    properties = queue["Properties"]
    assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties
    assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_only_our_queues_exist(transformed: dict[str, Any]) -> None:
    """SAM creates a queue of its own for a DeadLetterConfig by Type: every queue must be ours."""
    assert set(of_type(transformed, "AWS::SQS::Queue")) == QUEUES


def test_every_queue_denies_insecure_transport(transformed: dict[str, Any]) -> None:
    denied: set[str] = set()
    for policy in of_type(transformed, "AWS::SQS::QueuePolicy").values():
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
            if statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}:
                assert statement["Principal"] == "*"
                assert as_list(statement["Action"]) == ["sqs:*"]
                for resource in as_list(statement["Resource"]):
                    denied.add(resource["Fn::GetAtt"][0])
        queues = {queue["Ref"] for queue in policy["Properties"]["Queues"]}
        assert queues <= denied, f"a policy on {queues} lets some of them be used without TLS"
    assert denied == QUEUES


# --------------------------------------------------------------------------- dispatch queue


def _dispatcher_timeout(tpl: dict[str, Any]) -> int:
    return int(tpl["Resources"][DISPATCHER_FUNCTION]["Properties"]["Timeout"])


def _event_source_mappings(tpl: dict[str, Any]) -> list[dict[str, Any]]:
    return [m["Properties"] for m in of_type(tpl, "AWS::Lambda::EventSourceMapping").values()]


def test_dispatcher_consumes_the_dispatch_queue_with_partial_batch_responses(transformed: dict[str, Any]) -> None:
    (mapping,) = _event_source_mappings(transformed)
    assert mapping["FunctionName"] == {"Ref": DISPATCHER_FUNCTION}
    assert mapping["EventSourceArn"] == DISPATCH_QUEUE_ARN
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10
    assert mapping["MaximumBatchingWindowInSeconds"] == 1
    assert mapping.get("Enabled", True) is True
    assert "FilterCriteria" not in mapping, "a filtered-out message is deleted unseen"


def test_nothing_else_invokes_the_dispatcher(transformed: dict[str, Any]) -> None:
    """Only its SQS mapping: no rule, schedule or resource-based permission targets it."""
    dispatcher = get_att_arn(DISPATCHER_FUNCTION)
    for rule in of_type(transformed, "AWS::Events::Rule").values():
        assert all(t["Arn"] != dispatcher for t in rule["Properties"]["Targets"])
    for schedule in of_type(transformed, "AWS::Scheduler::Schedule").values():
        assert schedule["Properties"]["Target"]["Arn"] != dispatcher
    for permission in of_type(transformed, "AWS::Lambda::Permission").values():
        assert permission["Properties"]["FunctionName"] != {"Ref": DISPATCHER_FUNCTION}


def test_s3_trigger_concurrency_is_bounded_by_a_parameter(template: dict[str, Any]) -> None:
    """A burst of uploads must not become as many parallel calls to Polytomic (429s, then the DLQ).

    Reserved concurrency bounds the S3 trigger (and guarantees it that much), at the price of
    carving it out of the account's pool; 0 deploys without a reservation, for accounts whose
    quota cannot spare one. An invocation over the bound is throttled: Lambda keeps the event in its
    asynchronous queue and retries it for up to MaximumEventAgeInSeconds.
    """
    parameter = template["Parameters"]["S3TriggerConcurrency"]
    assert parameter["Type"] == "Number"
    assert int(parameter["Default"]) == 10
    assert int(parameter["MinValue"]) == 0
    description = " ".join(parameter["Description"].split())
    for words in ("0", "account", "MaximumEventAgeInSeconds"):
        assert words in description, f"S3TriggerConcurrency's description should say {words!r}"
    assert template["Conditions"]["ReserveS3TriggerConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "S3TriggerConcurrency"}, "0"]}]
    }


@pytest.mark.parametrize("reserve", [True, False], ids=["reserved", "zero-no-reservation"])
def test_s3_trigger_reserved_concurrency(transformed: dict[str, Any], reserve: bool) -> None:
    declared = transformed["Resources"][S3_FUNCTION]["Properties"].get("ReservedConcurrentExecutions", NO_VALUE)
    deployed = resolve({"ReservedConcurrentExecutions": declared}, {"ReserveS3TriggerConcurrency": reserve})
    if reserve:
        assert deployed == {"ReservedConcurrentExecutions": {"Ref": "S3TriggerConcurrency"}}
    else:
        assert deployed == {}, "0 reserved would throttle every invocation: 0 must mean no reservation"


def test_dispatcher_concurrency_is_bounded_by_a_parameter(
    transformed: dict[str, Any], template: dict[str, Any]
) -> None:
    parameter = template["Parameters"]["DispatcherConcurrency"]
    assert parameter["Type"] == "Number"
    assert int(parameter["Default"]) == 5
    assert int(parameter["MinValue"]) == 2  # ScalingConfig.MaximumConcurrency's own range: 2 to 1000
    assert int(parameter["MaxValue"]) == 1000
    (mapping,) = _event_source_mappings(transformed)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "DispatcherConcurrency"}}


def test_dispatch_queue(transformed: dict[str, Any]) -> None:
    properties = transformed["Resources"]["DispatchQueue"]["Properties"]
    assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties
    assert properties["MessageRetentionPeriod"] == 4 * 24 * 3600
    (mapping,) = _event_source_mappings(transformed)
    # Lambda's advice: at least six times the function timeout, plus the batching window.
    minimum = 6 * _dispatcher_timeout(transformed) + mapping["MaximumBatchingWindowInSeconds"]
    assert properties["VisibilityTimeout"] >= minimum
    assert "DelaySeconds" not in properties, "each message sets its own delay"
    assert "FifoQueue" not in properties, "FIFO queues have no per-message delay"


def test_dispatch_queue_redrives_to_the_dispatch_dead_letter_queue(transformed: dict[str, Any]) -> None:
    """maxReceiveCount is polytrigger.handlers.dispatcher.MAX_RECEIVES: were it larger, the dispatcher
    would park a message that SQS would still have given it again; smaller, SQS would move it to the
    dead-letter queue without the reason before the dispatcher's last attempt."""
    redrive = transformed["Resources"]["DispatchQueue"]["Properties"]["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": DISPATCH_DLQ_ARN, "maxReceiveCount": DISPATCH_MAX_RECEIVES}


def test_dispatch_dead_letter_queue_outlives_the_dispatch_queue(transformed: dict[str, Any]) -> None:
    """SQS keeps a redriven message's first enqueue time: the DLQ must keep it longer."""
    properties = transformed["Resources"]["DispatchDeadLetterQueue"]["Properties"]
    assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties
    assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600
    source = transformed["Resources"]["DispatchQueue"]["Properties"]["MessageRetentionPeriod"]
    assert properties["MessageRetentionPeriod"] > source
    assert "RedrivePolicy" not in properties


def test_dispatch_queues_allow_no_other_principal(transformed: dict[str, Any]) -> None:
    """The functions use the dispatch queues through their roles: the queue policy only denies."""
    policies = [
        p["Properties"]
        for p in of_type(transformed, "AWS::SQS::QueuePolicy").values()
        if DISPATCH_QUEUE_URL in p["Properties"]["Queues"] or DISPATCH_DLQ_URL in p["Properties"]["Queues"]
    ]
    assert policies, "the dispatch queues need a policy denying insecure transport"
    for policy in policies:
        assert all(s["Effect"] == "Deny" for s in as_list(policy["PolicyDocument"]["Statement"]))


def _dispatch_queues_policy(tpl: dict[str, Any]) -> dict[str, Any]:
    (policy,) = [
        p["Properties"]
        for p in of_type(tpl, "AWS::SQS::QueuePolicy").values()
        if DISPATCH_QUEUE_URL in p["Properties"]["Queues"]
    ]
    assert sorted(map(key, policy["Queues"])) == sorted(map(key, [DISPATCH_QUEUE_URL, DISPATCH_DLQ_URL]))
    return dict(policy)


@pytest.mark.parametrize("webhook", [False, True], ids=["no-webhook", "webhook"])
@pytest.mark.parametrize("operator_role", [False, True], ids=["no-operator-role", "operator-role"])
def test_only_the_stacks_roles_and_the_operator_role_may_send_to_the_dispatch_queues(
    transformed: dict[str, Any], operator_role: bool, webhook: bool
) -> None:
    """A dispatch message is an order to start a sync: whoever can send one controls every sync.

    IAM alone would let any principal of the account with sqs:SendMessage on "*" send. The queue
    policy denies every principal but the roles of the functions that send (the three of the
    trigger and dispatch path, the outcome poller and, when it exists, the webhook receiver: chained
    starts) and, when OperatorRoleArn is given, that role, for `polytrigger redrive`. SQS moving a
    message to the dead-letter queue by its redrive policy is no SendMessage by a principal, so it
    is not affected.
    """
    policy = _dispatch_queues_policy(transformed)
    conditions = {"HasOperatorRole": operator_role, "HasWebhook": webhook}
    statements = resolve(as_list(policy["PolicyDocument"]["Statement"]), conditions)
    denials = [
        s for s in statements if s["Effect"] == "Deny" and "aws:SecureTransport" not in json.dumps(s["Condition"])
    ]
    assert len(denials) == 1, denials
    (deny,) = denials
    assert deny["Principal"] == "*"
    assert as_list(deny["Action"]) == ["sqs:SendMessage"]  # also what authorises SendMessageBatch
    assert sorted(map(key, as_list(deny["Resource"]))) == sorted(map(key, [DISPATCH_QUEUE_ARN, DISPATCH_DLQ_ARN]))
    # Every function whose role may send to the dispatch queue (the trigger and dispatch path, the
    # outcome functions' chained starts) and that exists under these conditions.
    senders = [f for f in FUNCTIONS if ENQUEUE_STARTS in f.grants and (f.condition is None or conditions[f.condition])]
    function_roles = [get_att_arn(role_id(transformed, function.name)) for function in senders]
    operator = [{"Ref": "OperatorRoleArn"}] if operator_role else []
    assert list(deny["Condition"]) == ["ArnNotEquals"]
    allowed = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert sorted(map(key, allowed)) == sorted(map(key, function_roles + operator))


def test_operator_role_is_optional_and_only_added_when_given(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["OperatorRoleArn"]
    assert parameter["Type"] == "String"
    assert parameter["Default"] == ""
    assert "redrive" in parameter["Description"]
    assert template["Conditions"]["HasOperatorRole"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OperatorRoleArn"}, ""]}]}


def test_only_the_dispatcher_consumes_and_only_through_its_mapping(transformed: dict[str, Any]) -> None:
    """No role may read or delete SQS messages but the dispatcher's, and no SQS managed policy."""
    dispatcher_role = role_id(transformed, DISPATCHER_FUNCTION)
    consume = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:PurgeQueue"}
    for logical_id, role in of_type(transformed, "AWS::IAM::Role").items():
        assert not any("SQS" in str(arn) for arn in role["Properties"].get("ManagedPolicyArns", [])), logical_id
        if logical_id == dispatcher_role:
            continue
        actions = {a for s in role_statements(role) for a in as_list(s["Action"])}
        assert not actions & consume, logical_id


# --------------------------------------------------------------------------- alarms and outputs


def _alarms(tpl: dict[str, Any], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        alarm["Properties"]
        for alarm in of_type(tpl, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == namespace and alarm["Properties"].get("MetricName") == metric
    ]


@pytest.mark.parametrize("queue", DEAD_LETTER_QUEUES)
def test_alarm_on_messages_in_a_dead_letter_queue(transformed: dict[str, Any], queue: str) -> None:
    alarms = [
        a
        for a in _alarms(transformed, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
        if {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}} in a["Dimensions"]
    ]
    assert len(alarms) == 1
    assert fires_on_any(alarms[0])


def _metric_queries(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The metrics of a metric math alarm, by Id, as {namespace, metric, dimensions, stat, period}."""
    return {
        query["Id"]: {
            "namespace": query["MetricStat"]["Metric"]["Namespace"],
            "metric": query["MetricStat"]["Metric"]["MetricName"],
            "dimensions": query["MetricStat"]["Metric"]["Dimensions"],
            "stat": query["MetricStat"]["Stat"],
            "period": query["MetricStat"]["Period"],
        }
        for query in alarm.get("Metrics", [])
        if "MetricStat" in query
    }


def _redrive_targets(tpl: dict[str, Any]) -> set[str]:
    """Queues SQS moves messages into by a redrive policy (no SendMessage: NumberOfMessagesSent misses them)."""
    return {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in of_type(tpl, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in queue["Properties"]
    }


@pytest.mark.parametrize("queue", DEAD_LETTER_QUEUES)
def test_alarm_fires_again_for_each_new_parked_message(transformed: dict[str, Any], queue: str) -> None:
    """The 'not empty' alarm stays in ALARM, silent, while new messages pile up: this one fires on each arrival.

    NumberOfMessagesSent counts every SendMessage (the Lambda on-failure destination, EventBridge and
    Scheduler dead letters, the functions parking themselves), even when a re-drive deletes messages
    in the same period, which a rise of the queue's depth would hide. It misses what SQS moves by a
    redrive policy: a queue that receives such moves also needs the depth's rise, DIFF of the
    visible messages, and the larger of the two decides (a sum would let deletions cancel arrivals).
    """
    dimension = {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
    candidates = []
    for alarm in of_type(transformed, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        queries = _metric_queries(properties)
        if properties.get("MetricName") == "NumberOfMessagesSent" and dimension in properties["Dimensions"]:
            candidates.append(
                (properties, {"sent": {"metric": "NumberOfMessagesSent", "stat": properties["Statistic"]}})
            )
        elif any(q["metric"] == "NumberOfMessagesSent" and dimension in q["dimensions"] for q in queries.values()):
            candidates.append((properties, queries))
    assert len(candidates) == 1, f"{queue}: expected one alarm on new messages, got {len(candidates)}"
    alarm, queries = candidates[0]
    assert fires_on_any(alarm)
    assert alarm["TreatMissingData"] == "notBreaching"
    sent = [i for i, q in queries.items() if q["metric"] == "NumberOfMessagesSent"]
    assert len(sent) == 1
    assert queries[sent[0]]["stat"] == "Sum"
    if "Metrics" not in alarm:
        assert alarm["Namespace"] == "AWS/SQS"
        assert alarm["Period"] == 300
        assert queue not in _redrive_targets(transformed), f"{queue} receives redriven messages: Sent misses them"
        return
    (expression,) = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    assert all(not q.get("ReturnData", True) for q in alarm["Metrics"] if q is not expression)
    assert {q["period"] for q in queries.values()} == {300}
    assert all(q["namespace"] == "AWS/SQS" and q["dimensions"] == [dimension] for q in queries.values())
    visible = [i for i, q in queries.items() if q["metric"] == "ApproximateNumberOfMessagesVisible"]
    assert len(visible) == 1
    assert queries[visible[0]]["stat"] == "Maximum"
    assert queue in _redrive_targets(transformed), f"{queue}: no redrive into it, NumberOfMessagesSent alone is exact"
    assert expression["Expression"].replace(" ", "") == f"MAX([FILL({sent[0]},0),FILL(DIFF({visible[0]}),0)])"


def test_alarm_on_old_messages_in_the_dispatch_queue(transformed: dict[str, Any], template: dict[str, Any]) -> None:
    """A stuck dispatcher shows as an old message; a healthy queue never holds one that old."""
    alarms = [
        a
        for a in _alarms(transformed, "AWS/SQS", "ApproximateAgeOfOldestMessage")
        if a["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DispatchQueue", "QueueName"]}}]
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] in ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold")
    # Longest a healthy message waits: its delay, then every receive failing until the redrive.
    queue = transformed["Resources"]["DispatchQueue"]["Properties"]
    healthy = SQS_MAX_DELAY + DISPATCH_MAX_RECEIVES * queue["VisibilityTimeout"]
    default_max_age = int(template["Parameters"]["DeferralMaxAgeSeconds"]["Default"])
    assert max(healthy, default_max_age) < alarm["Threshold"] <= default_max_age + 3600
    assert alarm["Threshold"] < queue["MessageRetentionPeriod"], "it must fire before SQS deletes the message"


@pytest.mark.parametrize(
    ("metric", "says"),
    [
        ("failed", ("DeadLetterQueue", "polytrigger redrive")),
        ("unsupported_event", ("DeadLetterQueue", "DispatchDeadLetterQueue")),
    ],
)
def test_alarm_on_outcomes_that_park_an_event(transformed: dict[str, Any], metric: str, says: tuple[str, ...]) -> None:
    """A permanent failure or an unreadable event is acknowledged (no retry would help) and parked:
    the parking must be seen, not only the Lambda Errors, which stay at zero for them."""
    assert metric in emitted_metrics().by_service, f"polytrigger emits no metric {metric!r} (dimension service)"
    alarms = [
        a
        for a in _alarms(transformed, METRICS_NAMESPACE, metric)
        if a["Dimensions"] == [{"Name": "service", "Value": SERVICE}]  # Powertools' one default dimension
    ]
    assert len(alarms) == 1, metric
    alarm = alarms[0]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Period"] == 300
    assert fires_on_any(alarm)
    assert alarm["TreatMissingData"] == "notBreaching"
    for words in says:
        assert words in alarm["AlarmDescription"], f"{metric}: the description should say {words!r}"


def test_every_alarm_on_polytriggers_metrics_names_one_the_code_emits(transformed: dict[str, Any]) -> None:
    """An alarm on a name nothing emits, or with dimensions its metric does not carry, never fires."""
    emitted = emitted_metrics()
    carrying = {("service",): emitted.by_service, ("route", "service"): emitted.by_route}
    for logical_id, alarm in of_type(transformed, "AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        stats = [query["MetricStat"]["Metric"] for query in properties.get("Metrics", []) if "MetricStat" in query]
        for metric in [properties, *stats]:
            if metric.get("Namespace") != METRICS_NAMESPACE:
                continue
            dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            assert dimensions.get("service") == SERVICE, f"{logical_id}: {dimensions}"
            names = carrying.get(tuple(sorted(dimensions)), frozenset())
            assert metric["MetricName"] in names, (
                f"{logical_id}: polytrigger emits no {metric['MetricName']} with the dimensions {sorted(dimensions)}"
            )


def test_every_alarm_notifies_the_alarm_topic_when_one_is_given(transformed: dict[str, Any]) -> None:
    notify = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    alarms = of_type(transformed, "AWS::CloudWatch::Alarm")
    # The two dead-letter queues (not empty, new messages), the dispatch queue's age, the functions'
    # errors, failed and unsupported_event, failed runs and freshness breaches, the poller's cursor age,
    # gated partitions incomplete, missed arrival deadlines, objects found by reconciliation.
    errors = sum(function.errors_alarm for function in FUNCTIONS)
    assert len(alarms) == len(DEAD_LETTER_QUEUES) * 2 + 1 + errors + 2 + 2 + 1 + 1 + 1 + 1
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == notify, logical_id
        assert alarm["Properties"]["OKActions"] == notify, logical_id
        assert alarm["Properties"].get("ActionsEnabled", True) is True, logical_id


def test_outputs(template: dict[str, Any]) -> None:
    outputs = {name: output["Value"] for name, output in template["Outputs"].items()}
    assert outputs["S3TriggerFunctionArn"] == get_att_arn(S3_FUNCTION)
    assert outputs["ScheduleTriggerFunctionArn"] == get_att_arn(SCHEDULE_FUNCTION)
    assert outputs["IdempotencyTableName"] == {"Ref": "IdempotencyTable"}
    assert outputs["DeadLetterQueueUrl"] == DLQ_URL
    assert outputs["DispatcherFunctionArn"] == get_att_arn(DISPATCHER_FUNCTION)
    assert outputs["DispatchQueueUrl"] == DISPATCH_QUEUE_URL
    assert outputs["DispatchDeadLetterQueueUrl"] == DISPATCH_DLQ_URL
