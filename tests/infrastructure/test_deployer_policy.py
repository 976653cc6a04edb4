"""deploy/deployer-policy*.json: what someone running `sam deploy` (and `sam delete`) of this template needs, no more.

The policy is checked against the SAM-transformed template (tests/infrastructure/cfn.py): every
resource type in it must be in ``REQUIRED`` (an unknown type fails, naming what to add), and the
policy must allow each action ``REQUIRED`` lists, on the ARN that resource gets in a stack named
like samconfig.toml's (``polytrigger``), and must not allow it on the same resource of a stack named
otherwise. The actions are those CloudFormation's own handler for the type declares (cfn-lint
ships the registry schemas, with each handler's ``permissions``), narrowed to the properties this
template uses; a test holds the table to those schemas, so it cannot list an action the handler
never calls.

How CloudFormation acts, which decides what the *deployer* needs:

- With no service role (``sam deploy`` passes none), CloudFormation makes every call of a stack
  operation with a session made from the caller's credentials ("CloudFormation service role", in
  the CloudFormation User Guide). So the deployer needs each resource's create/update/delete
  permissions itself.
- That includes a custom resource: CloudFormation invokes its ServiceToken function as the caller,
  so the deployer needs ``lambda:InvokeFunction`` on RouteWiringFunction (AWS's own issue threads
  show "User: ...assumed-role/<deployer> is not authorized to perform: lambda:InvokeFunction" on
  a custom resource's function). What the function then does (create schedules, pass
  ScheduleInvokeRole to EventBridge Scheduler) runs as the function's role, never the deployer.
- The deployer passes roles only where a resource's own property names one: a function's ``Role``
  (to lambda.amazonaws.com). RouteWiring's ``RoleArn`` is data handed to the wiring function, which
  passes it to scheduler.amazonaws.com with its own role.

The deployer's permissions are two customer managed policies, attached together: a managed policy
holds 6,144 characters (whitespace not counted) and deploy/deployer-policy.json is close to that, so
what the run outcomes add (the outcome poller's schedule in the default group and the role it is
passed, the webhook's Function URL) and the dashboard is deploy/deployer-policy-outcomes.json. Each file fits in a
managed policy on its own; the tests read them as one policy (Sids unique across both). Neither uses
a wildcard action or NotAction.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .cfn import as_list
from .conftest import ROOT

POLICY_PATH = ROOT / "deploy" / "deployer-policy.json"
# Attached with deployer-policy.json: what the run outcomes add, which does not fit in it.
OUTCOMES_POLICY_PATH = ROOT / "deploy" / "deployer-policy-outcomes.json"
POLICY_PATHS = (POLICY_PATH, OUTCOMES_POLICY_PATH)
MANAGED_POLICY_MAX_CHARS = 6144  # IAM's limit for a customer managed policy, whitespace not counted

REGION = "eu-west-1"
ACCOUNT = "123456789012"
OTHER_STACK = "someone-else"  # a stack the deployer must not touch
RANDOM = "AbCdEf123456"  # the suffix CloudFormation appends to the names it generates
MANAGED_BUCKET = "aws-sam-cli-managed-default-samclisourcebucket-1x2y3z4w5v6u"  # samcli/lib/bootstrap/bootstrap.py

# Actions a statement may grant on Resource "*": the action has no resource-level permission (or,
# for an event source mapping, the resource's ARN is a UUID that cannot name the stack, so a
# condition on the function it maps to scopes it instead).
STAR_ACTIONS: dict[str, str] = {
    "lambda:CreateEventSourceMapping": "no resource type; scoped by the lambda:FunctionArn condition",
    "lambda:UpdateEventSourceMapping": "its ARN is a UUID; scoped by the lambda:FunctionArn condition",
    "lambda:DeleteEventSourceMapping": "its ARN is a UUID; scoped by the lambda:FunctionArn condition",
    "logs:DescribeLogGroups": "a listing: authorised on log-group:* only",
    "cloudwatch:DescribeAlarms": "read-only; CloudFormation's alarm handler lists alarms by name",
    "scheduler:ListSchedules": "a listing with no resource type (the smoke test's list-schedules)",
}
# Wildcards inside an action name ("lambda:Get*"): none accepted.
WILDCARD_ACTIONS: dict[str, str] = {}
CONDITION_OPERATORS = {"StringEquals", "StringLike", "ArnEquals", "ArnLike"}


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Need:
    """Actions CloudFormation (or the SAM CLI) calls on one target of a resource.

    ``on`` names the target: ``self`` (the resource), ``version`` (a version of it), ``function``
    / ``role`` / ``layers`` / ``roles`` / ``queues`` (what its properties name), ``service-token``
    (a custom resource's function), ``schedules`` (a schedule group's schedules), ``artifact``
    (a package the SAM CLI uploaded) or ``none`` (Resource "*"). ``context`` names request context
    the call carries. ``unscoped`` says why the target's ARN cannot name the stack.
    """

    on: str
    actions: tuple[str, ...]
    context: Mapping[str, str] = field(default_factory=dict)
    unscoped: str = ""


TAGS_LAMBDA = ("lambda:TagResource", "lambda:UntagResource", "lambda:ListTags")
FUNCTION_ARN = {"lambda:FunctionArn": "function"}  # the function the mapping invokes
TO_LAMBDA = {"iam:PassedToService": "lambda.amazonaws.com"}
TO_SCHEDULER = {"iam:PassedToService": "scheduler.amazonaws.com"}

# Resource type -> what a create, update (with tags) and delete of it calls. A type the template
# gains must be added here and to deploy/deployer-policy*.json (the outcomes file once the main one is full).
REQUIRED: dict[str, tuple[Need, ...]] = {
    "AWS::Lambda::Function": (
        Need(
            "self",
            (
                "lambda:CreateFunction",
                "lambda:GetFunction",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:DeleteFunction",
                "lambda:PutFunctionConcurrency",  # S3TriggerConcurrency
                "lambda:DeleteFunctionConcurrency",  # S3TriggerConcurrency 0
                "lambda:GetRuntimeManagementConfig",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:GetFunctionRecursionConfig",
                *TAGS_LAMBDA,
            ),
        ),
        Need("role", ("iam:PassRole",), context=TO_LAMBDA),
        # Lambda reads the package from S3 with the caller's credentials.
        Need("artifact", ("s3:GetObject", "s3:GetObjectVersion"), unscoped="under samconfig's s3_prefix instead"),
        Need("layers", ("lambda:GetLayerVersion",)),
    ),
    "AWS::Lambda::Version": (
        Need("function", ("lambda:PublishVersion", "lambda:GetFunctionConfiguration", "lambda:ListVersionsByFunction")),
        Need(
            "version",
            (
                "lambda:GetFunctionConfiguration",
                "lambda:GetProvisionedConcurrencyConfig",
                "lambda:GetRuntimeManagementConfig",
                "lambda:DeleteFunction",
            ),
        ),
    ),
    "AWS::Lambda::Alias": (
        Need(
            "function",
            (
                "lambda:CreateAlias",
                "lambda:UpdateAlias",
                "lambda:DeleteAlias",
                "lambda:GetAlias",
                "lambda:GetProvisionedConcurrencyConfig",
            ),
        ),
    ),
    "AWS::Lambda::LayerVersion": (
        Need("self", ("lambda:PublishLayerVersion",)),
        Need("version", ("lambda:GetLayerVersion", "lambda:DeleteLayerVersion")),
        Need("artifact", ("s3:GetObject", "s3:GetObjectVersion"), unscoped="under samconfig's s3_prefix instead"),
    ),
    "AWS::Lambda::Permission": (
        Need("function", ("lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy")),
    ),
    # The webhook's URL: authorised on the function it fronts.
    "AWS::Lambda::Url": (
        Need(
            "target-function",
            (
                "lambda:CreateFunctionUrlConfig",
                "lambda:GetFunctionUrlConfig",
                "lambda:UpdateFunctionUrlConfig",
                "lambda:DeleteFunctionUrlConfig",
            ),
        ),
    ),
    "AWS::Lambda::EventInvokeConfig": (
        Need(
            "function",
            (
                "lambda:PutFunctionEventInvokeConfig",
                "lambda:UpdateFunctionEventInvokeConfig",
                "lambda:DeleteFunctionEventInvokeConfig",
                "lambda:GetFunctionEventInvokeConfig",
            ),
        ),
    ),
    "AWS::Lambda::EventSourceMapping": (
        Need("none", ("lambda:CreateEventSourceMapping",), context=FUNCTION_ARN),
        Need("self", ("lambda:UpdateEventSourceMapping", "lambda:DeleteEventSourceMapping"), context=FUNCTION_ARN),
        Need(
            "self",
            ("lambda:GetEventSourceMapping", *TAGS_LAMBDA),
            unscoped="a mapping's ARN is a UUID; reading and tagging one starts nothing",
        ),
    ),
    "AWS::IAM::Role": (
        Need(
            "self",
            (
                "iam:CreateRole",
                "iam:GetRole",
                "iam:DeleteRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:PutRolePolicy",
                "iam:GetRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:ListRoleTags",
            ),
        ),
        # AttachRolePolicy / DetachRolePolicy: test_attaches_only_the_managed_policies_sam_adds.
    ),
    "AWS::IAM::Policy": (Need("roles", ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy")),),
    "AWS::DynamoDB::Table": (
        Need(
            "self",
            (
                "dynamodb:CreateTable",
                "dynamodb:DescribeTable",
                "dynamodb:UpdateTable",
                "dynamodb:DeleteTable",
                "dynamodb:DescribeTimeToLive",
                "dynamodb:UpdateTimeToLive",  # TimeToLiveSpecification
                "dynamodb:DescribeContinuousBackups",
                "dynamodb:UpdateContinuousBackups",  # PointInTimeRecoverySpecification
                "dynamodb:DescribeContributorInsights",
                "dynamodb:DescribeKinesisStreamingDestination",
                "dynamodb:GetResourcePolicy",
                "dynamodb:TagResource",
                "dynamodb:UntagResource",
                "dynamodb:ListTagsOfResource",
            ),
        ),
    ),
    "AWS::SQS::Queue": (
        Need(
            "self",
            (
                "sqs:CreateQueue",
                "sqs:DeleteQueue",
                "sqs:GetQueueUrl",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
                "sqs:TagQueue",
                "sqs:UntagQueue",
                "sqs:ListQueueTags",
            ),
        ),
    ),
    "AWS::SQS::QueuePolicy": (Need("queues", ("sqs:SetQueueAttributes",)),),
    "AWS::Events::Rule": (
        Need(
            "self",
            (
                "events:PutRule",
                "events:DescribeRule",
                "events:DeleteRule",
                "events:PutTargets",
                "events:RemoveTargets",
                "events:ListTargetsByRule",
                "events:TagResource",
                "events:UntagResource",
                "events:ListTagsForResource",
            ),
        ),
    ),
    "AWS::Scheduler::ScheduleGroup": (
        Need(
            "self",
            (
                "scheduler:CreateScheduleGroup",
                "scheduler:GetScheduleGroup",
                "scheduler:DeleteScheduleGroup",
                "scheduler:TagResource",
                "scheduler:UntagResource",
                "scheduler:ListTagsForResource",
            ),
        ),
        # Deleting the group deletes the schedules RouteWiring made in it.
        Need("schedules", ("scheduler:DeleteSchedule",)),
    ),
    # The outcome poller's schedule (in the default group): the deployer passes its role to the Scheduler.
    "AWS::Scheduler::Schedule": (
        Need(
            "self",
            (
                "scheduler:CreateSchedule",
                "scheduler:GetSchedule",
                "scheduler:UpdateSchedule",
                "scheduler:DeleteSchedule",
            ),
        ),
        Need("target-role", ("iam:PassRole",), context=TO_SCHEDULER),
    ),
    "AWS::Logs::LogGroup": (
        Need(
            "self",
            (
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
                "logs:ListTagsForResource",
            ),
        ),
        Need("none", ("logs:DescribeLogGroups",), unscoped=STAR_ACTIONS["logs:DescribeLogGroups"]),
    ),
    "AWS::CloudWatch::Alarm": (
        Need(
            "self",
            (
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
                "cloudwatch:ListTagsForResource",
            ),
        ),
        Need("none", ("cloudwatch:DescribeAlarms",), unscoped=STAR_ACTIONS["cloudwatch:DescribeAlarms"]),
    ),
    # The on-call dashboard: an account's, not a Region's (its ARN has no Region).
    "AWS::CloudWatch::Dashboard": (
        Need(
            "self",
            (
                "cloudwatch:PutDashboard",
                "cloudwatch:GetDashboard",
                "cloudwatch:DeleteDashboards",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
                "cloudwatch:ListTagsForResource",
            ),
        ),
    ),
}
# Every Custom::<Name> (and AWS::CloudFormation::CustomResource): CloudFormation invokes the
# function its ServiceToken names, as the deployer.
CUSTOM_RESOURCE = (Need("service-token", ("lambda:InvokeFunction",)),)

# The SAM CLI's own calls (samcli/lib/deploy/deployer.py, samcli/lib/delete/, s3_uploader.py):
# a change set on the stack, under the SAM transform, the package uploaded and later deleted.
SAM_CLI: dict[str, tuple[str, ...]] = {
    "arn:aws:cloudformation:{region}:{account}:stack/{stack}/{uuid}": (
        "cloudformation:DescribeStacks",
        "cloudformation:GetTemplateSummary",
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DescribeStackEvents",
        "cloudformation:GetTemplate",  # sam delete
        "cloudformation:ListChangeSets",  # sam delete
        "cloudformation:DeleteStack",  # sam delete
    ),
    "arn:aws:cloudformation:{region}:aws:transform/Serverless-2016-10-31": ("cloudformation:CreateChangeSet",),
    "arn:aws:s3:::{bucket}/{prefix}/0f1e2d3c4b5a69788796a5b4c3d2e1f0.template": (
        "s3:PutObject",
        "s3:GetObject",  # CloudFormation reads the uploaded template as the deployer
        "s3:GetObjectVersion",
        "s3:DeleteObject",  # sam delete
    ),
    "arn:aws:s3:::{bucket}": ("s3:ListBucket",),  # sam delete lists the prefix
}
# The first deploy in an account and Region creates the SAM CLI's managed stack (one artifacts
# bucket for every SAM app there): samcli/lib/bootstrap/bootstrap.py, managed_cloudformation_stack.py.
MANAGED_STACK: dict[str, tuple[str, ...]] = {
    "arn:aws:cloudformation:{region}:{account}:stack/aws-sam-cli-managed-default/{uuid}": (
        "cloudformation:DescribeStacks",
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DescribeStackEvents",
    ),
    "arn:aws:s3:::{bucket}": (
        # AWS::S3::Bucket with PublicAccessBlockConfiguration, BucketEncryption, versioning, tags
        "s3:CreateBucket",
        "s3:ListBucket",
        "s3:PutBucketTagging",
        "s3:PutBucketVersioning",
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketPublicAccessBlock",
        # AWS::S3::BucketPolicy (TLS only)
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
    ),
}
MANAGED_STACK_TYPES = {"AWS::S3::Bucket", "AWS::S3::BucketPolicy"}


# --------------------------------------------------------------------------- a small IAM evaluator


def _glob(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _conditions_hold(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        assert operator in CONDITION_OPERATORS, f"this evaluator does not know {operator}: teach it before using it"
        for key, expected in tests.items():
            value = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if value is None:
                return False  # a key the request does not carry: the condition fails
            if operator == "StringEquals":
                held = value in as_list(expected)
            else:  # StringLike, ArnEquals, ArnLike all take * and ?
                held = any(_glob(pattern, value, case_sensitive=True) for pattern in as_list(expected))
            if not held:
                return False
    return True


def allows(policy: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str] | None = None) -> bool:
    """Whether an Allow statement of the policy grants the action on the resource (only Allows exist)."""
    for statement in policy["Statement"]:
        if not any(_glob(pattern, action, case_sensitive=False) for pattern in as_list(statement["Action"])):
            continue
        if not any(_glob(pattern, resource, case_sensitive=True) for pattern in as_list(statement["Resource"])):
            continue
        if _conditions_hold(statement.get("Condition", {}), context or {}):
            return True
    return False


def test_the_evaluator_can_say_no() -> None:
    policy = {
        "Statement": [
            {"Action": "a:B", "Resource": "arn:x:*:polytrigger*"},
            {"Action": "a:C", "Resource": "*", "Condition": {"StringEquals": {"k": "v"}}},
        ]
    }
    assert allows(policy, "a:b", "arn:x:y:polytrigger-1")
    assert not allows(policy, "a:B", "arn:x:y:other")
    assert not allows(policy, "a:D", "arn:x:y:polytrigger-1")
    assert allows(policy, "a:C", "*", {"k": "v"})
    assert not allows(policy, "a:C", "*", {"k": "w"})
    assert not allows(policy, "a:C", "*")


# --------------------------------------------------------------------------- the stack's ARNs


def _sub(value: Any, stack: str) -> str | None:
    """A name the template gives, with ${AWS::StackName} put in; None when CloudFormation makes it up."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"].replace("${AWS::StackName}", stack).replace("${AWS::Region}", REGION)
        assert "${" not in text, f"the test cannot resolve {value}: teach _sub"
        return text
    return None


NAME_PROPERTY = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::IAM::Role": "RoleName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Events::Rule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
}


@dataclass(frozen=True)
class Stack:
    """The transformed template, deployed as a stack of this name."""

    tpl: Mapping[str, Any]
    name: str
    s3_prefix: str

    def resource(self, logical_id: str) -> Mapping[str, Any]:
        return self.tpl["Resources"][logical_id]

    def physical_name(self, logical_id: str) -> str:
        resource = self.resource(logical_id)
        prop = NAME_PROPERTY.get(resource["Type"])
        given = _sub(resource.get("Properties", {}).get(prop), self.name) if prop else None
        # What CloudFormation generates for a resource the template does not name.
        return given if given is not None else f"{self.name}-{logical_id}-{RANDOM}"

    def arn(self, logical_id: str) -> str:
        kind = self.resource(logical_id)["Type"]
        name = self.physical_name(logical_id)
        arns: dict[str, Callable[[], str]] = {
            "AWS::Lambda::Function": lambda: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::Lambda::LayerVersion": lambda: f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}",
            "AWS::Lambda::EventSourceMapping": lambda: (
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
            ),
            "AWS::IAM::Role": lambda: f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::DynamoDB::Table": lambda: f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::SQS::Queue": lambda: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::Events::Rule": lambda: f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
            "AWS::Scheduler::ScheduleGroup": lambda: f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{name}",
            "AWS::Scheduler::Schedule": lambda: (
                f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{self._schedule_group(logical_id)}/{name}"
            ),
            "AWS::Logs::LogGroup": lambda: f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}",
            "AWS::CloudWatch::Alarm": lambda: f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
            "AWS::CloudWatch::Dashboard": lambda: f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{name}",
        }
        assert kind in arns, f"the test does not know the ARN of a {kind}: add it to Stack.arn"
        return arns[kind]()

    def _schedule_group(self, logical_id: str) -> str:
        group = self.resource(logical_id)["Properties"].get("GroupName", "default")
        assert isinstance(group, str), f"{logical_id}: the test cannot resolve GroupName {group!r}: teach Stack.arn"
        return group

    def referenced(self, value: Any) -> str:
        """The logical id a Ref or Fn::GetAtt [id, Arn] names."""
        if isinstance(value, dict) and "Ref" in value:
            return str(value["Ref"])
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
        raise AssertionError(f"expected a Ref or Fn::GetAtt, got {value!r}")

    def targets(self, logical_id: str, need: Need) -> Iterator[tuple[str, dict[str, str]]]:
        """(ARN, request context) for each resource the need is about."""
        properties = self.resource(logical_id).get("Properties", {})
        context = dict(need.context)
        if "lambda:FunctionArn" in context:
            context["lambda:FunctionArn"] = self.arn(self.referenced(properties["FunctionName"]))
        if need.on == "self":
            yield self.arn(logical_id), context
        elif need.on == "version":
            yield (
                self.arn(self.referenced(properties["FunctionName"]) if "FunctionName" in properties else logical_id)
                + ":1",
                context,
            )
        elif need.on == "function":
            yield self.arn(self.referenced(properties["FunctionName"])), context
        elif need.on == "service-token":
            yield self.arn(self.referenced(properties["ServiceToken"])), context
        elif need.on == "role":
            yield self.arn(self.referenced(properties["Role"])), context
        elif need.on == "target-role":
            yield self.arn(self.referenced(properties["Target"]["RoleArn"])), context
        elif need.on == "target-function":
            yield self.arn(self.referenced(properties["TargetFunctionArn"])), context
        elif need.on == "roles":
            for role in properties["Roles"]:
                yield self.arn(self.referenced(role)), context
        elif need.on == "queues":
            for queue in properties["Queues"]:
                yield self.arn(self.referenced(queue)), context
        elif need.on == "layers":
            for layer in properties.get("Layers", []):
                yield self.arn(self.referenced(layer)) + ":1", context
        elif need.on == "schedules":
            yield self.arn(logical_id).replace(":schedule-group/", ":schedule/") + "/nightly", context
        elif need.on == "artifact":
            yield f"arn:aws:s3:::{MANAGED_BUCKET}/{self.s3_prefix}/0f1e2d3c4b5a69788796a5b4c3d2e1f0", context
        elif need.on == "none":
            yield "*", context
        else:
            raise AssertionError(f"unknown Need.on {need.on!r}")


def needs_of(resource_type: str) -> tuple[Need, ...]:
    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return CUSTOM_RESOURCE
    assert resource_type in REQUIRED, (
        f"{resource_type} is new in the template: add what CloudFormation calls to create, update, tag and "
        "delete it to deploy/deployer-policy*.json and to REQUIRED in tests/infrastructure/test_deployer_policy.py"
    )
    return REQUIRED[resource_type]


def calls(stack: Stack) -> Iterator[tuple[str, str, str, dict[str, str], Need]]:
    """(logical id, action, ARN, context, need) for every call deploying the stack makes as the deployer."""
    for logical_id, resource in stack.tpl["Resources"].items():
        for need in needs_of(resource["Type"]):
            for arn, context in stack.targets(logical_id, need):
                for action in need.actions:
                    yield logical_id, action, arn, context, need


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def policies() -> dict[str, dict[str, Any]]:
    """Each policy file, by its name."""
    found = {}
    for path in POLICY_PATHS:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(loaded, dict), path.name
        found[path.name] = loaded
    return found


@pytest.fixture(scope="module")
def policy(policies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The deployer's permissions: every file's statements, as one policy."""
    return {
        "Version": "2012-10-17",
        "Statement": [statement for loaded in policies.values() for statement in loaded["Statement"]],
    }


@pytest.fixture(scope="module")
def samconfig_deploy() -> dict[str, Any]:
    with (ROOT / "samconfig.toml").open("rb") as handle:
        return dict(tomllib.load(handle)["default"]["deploy"]["parameters"])


@pytest.fixture(scope="module")
def stack_name() -> str:
    with (ROOT / "samconfig.toml").open("rb") as handle:
        return str(tomllib.load(handle)["default"]["global"]["parameters"]["stack_name"])


@pytest.fixture(scope="module")
def stack(transformed: dict[str, Any], stack_name: str, samconfig_deploy: dict[str, Any]) -> Stack:
    return Stack(transformed, stack_name, str(samconfig_deploy["s3_prefix"]))


@pytest.fixture(scope="module")
def other_stack(transformed: dict[str, Any], samconfig_deploy: dict[str, Any]) -> Stack:
    return Stack(transformed, OTHER_STACK, str(samconfig_deploy["s3_prefix"]))


def _schema_permissions(resource_type: str) -> set[str]:
    """Every permission CloudFormation's registry schema for the type declares (cfn-lint's copy)."""
    import cfnlint.data.schemas

    schemas = Path(cfnlint.data.schemas.__file__).parent
    providers = json.loads((schemas / "providers" / "us-east-1.json").read_text(encoding="utf-8"))
    schema = json.loads((schemas / "resources" / f"{providers[resource_type]}.json").read_text(encoding="utf-8"))
    found = set(schema.get("tagging", {}).get("permissions", []))
    for handler in schema.get("handlers", {}).values():
        found.update(handler.get("permissions", []))
    return found


# --------------------------------------------------------------------------- the policy's shape


@pytest.mark.parametrize("path", POLICY_PATHS, ids=[path.name for path in POLICY_PATHS])
def test_each_file_is_iam_policy_json(policies: dict[str, dict[str, Any]], path: Path) -> None:
    assert path.read_text(encoding="utf-8").endswith("\n")
    loaded = policies[path.name]
    assert set(loaded) == {"Version", "Statement"}
    assert loaded["Version"] == "2012-10-17"
    assert isinstance(loaded["Statement"], list)
    assert loaded["Statement"]


def test_is_iam_policy_json(policy: dict[str, Any]) -> None:
    """The statements of both files, as one: Sids unique across them, each statement of one shape."""
    sids = [statement.get("Sid") for statement in policy["Statement"]]
    assert all(isinstance(sid, str) and re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids), sids
    assert len(set(sids)) == len(sids), f"Sids repeat: {sids}"
    for statement in policy["Statement"]:
        sid = statement["Sid"]
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, (
            f"{sid}: only Sid, Effect, Action, Resource, Condition (no NotAction, NotResource, Principal)"
        )
        assert statement["Effect"] == "Allow", f"{sid}: only Allow statements (the evaluator here knows no Deny)"
        for key in ("Action", "Resource"):
            values = as_list(statement[key])
            assert values, f"{sid}: empty {key}"
            assert all(isinstance(value, str) for value in values), f"{sid}: {key} must be strings"
            assert len(set(values)) == len(values), f"{sid}: {key} repeats an entry"
        for operator in statement.get("Condition", {}):
            assert operator in CONDITION_OPERATORS, f"{sid}: condition operator {operator}"


def test_no_wildcard_actions(policy: dict[str, Any]) -> None:
    for statement in policy["Statement"]:
        for action in as_list(statement["Action"]):
            assert action != "*", f'{statement["Sid"]}: Action "*"'
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9*]+", action), f"{statement['Sid']}: {action!r} is no action"
            if "*" in action:
                assert action in WILDCARD_ACTIONS, (
                    f"{statement['Sid']}: {action} is a wildcard; name the actions (or justify it in WILDCARD_ACTIONS)"
                )


@pytest.mark.parametrize("path", POLICY_PATHS, ids=[path.name for path in POLICY_PATHS])
def test_fits_in_a_managed_policy(policies: dict[str, dict[str, Any]], path: Path) -> None:
    size = len(json.dumps(policies[path.name], separators=(",", ":")))
    assert size <= MANAGED_POLICY_MAX_CHARS, (
        f"deploy/{path.name} is {size} characters without whitespace; a customer managed policy holds "
        f"{MANAGED_POLICY_MAX_CHARS}"
    )


def test_resource_star_only_for_actions_without_resource_level_permissions(policy: dict[str, Any]) -> None:
    for statement in policy["Statement"]:
        if "*" not in as_list(statement["Resource"]):
            continue
        for action in as_list(statement["Action"]):
            assert action in STAR_ACTIONS, (
                f'{statement["Sid"]}: {action} on Resource "*"; scope it to the stack\'s resources '
                "(or say in STAR_ACTIONS why it cannot be)"
            )
        if any(action.endswith("EventSourceMapping") for action in as_list(statement["Action"])):
            function_arns = statement.get("Condition", {}).get("ArnLike", {}).get("lambda:FunctionArn")
            assert function_arns == "arn:aws:lambda:*:*:function:polytrigger*", statement


def test_every_resource_names_the_stack_or_sams_own(policy: dict[str, Any], stack_name: str) -> None:
    """Each resource pattern is the stack's (its name starts it), the SAM CLI's own, or "*"."""
    sams_own = (
        "arn:aws:cloudformation:*:aws:transform/Serverless-2016-10-31",
        "arn:aws:cloudformation:*:*:stack/aws-sam-cli-managed-default/*",
        "arn:aws:s3:::aws-sam-cli-managed-default-*",
        "arn:aws:lambda:*:*:event-source-mapping:*",  # UUIDs; see MappingTags
    )
    for statement in policy["Statement"]:
        for resource in as_list(statement["Resource"]):
            if resource == "*" or resource in sams_own:
                continue
            if resource.startswith("arn:aws:s3:::aws-sam-cli-managed-default-*/"):
                continue  # the artifacts: test_sam_cli_calls
            assert re.search(rf"[:/]{re.escape(stack_name)}\*", resource), (
                f"{statement['Sid']}: {resource} does not start the resource name with the stack name {stack_name}*"
            )


# --------------------------------------------------------------------------- what CloudFormation calls


def test_every_resource_type_is_known(transformed: dict[str, Any]) -> None:
    unknown = sorted(
        {
            resource["Type"]
            for resource in transformed["Resources"].values()
            if resource["Type"] not in REQUIRED
            and not resource["Type"].startswith("Custom::")
            and resource["Type"] != "AWS::CloudFormation::CustomResource"
        }
    )
    assert not unknown, (
        f"resource types new in the template: {unknown}. Add what CloudFormation calls to create, update, tag and "
        "delete each to deploy/deployer-policy*.json and to REQUIRED in tests/infrastructure/test_deployer_policy.py"
    )


def test_table_lists_only_what_cloudformations_handlers_call() -> None:
    """Each action in REQUIRED is one the type's registry handler declares: no invented action."""
    for resource_type, needs in REQUIRED.items():
        declared = _schema_permissions(resource_type)
        listed = {action for need in needs for action in need.actions}
        assert listed <= declared, f"{resource_type}: {sorted(listed - declared)} are not in its handler permissions"
    managed = set().union(*(_schema_permissions(resource_type) for resource_type in MANAGED_STACK_TYPES))
    s3_actions = {action for actions in MANAGED_STACK.values() for action in actions if action.startswith("s3:")}
    assert s3_actions <= managed, f"the managed stack's handlers never call {sorted(s3_actions - managed)}"


def test_grants_what_cloudformation_calls_for_every_resource(policy: dict[str, Any], stack: Stack) -> None:
    missing = sorted(
        {
            f"{logical_id} ({stack.resource(logical_id)['Type']}): {action} on {arn}"
            + (f" with {context}" if context else "")
            for logical_id, action, arn, context, _ in calls(stack)
            if not allows(policy, action, arn, context)
        }
    )
    assert not missing, "deploy/deployer-policy*.json do not allow:\n" + "\n".join(missing)


def test_grants_nothing_on_another_stacks_resources(policy: dict[str, Any], stack: Stack, other_stack: Stack) -> None:
    """The same calls on a stack named otherwise are refused: the policy is scoped by the stack's name."""
    ours = {
        (logical_id, action, arn, json.dumps(context, sort_keys=True))
        for logical_id, action, arn, context, _ in calls(stack)
    }
    granted = []
    for logical_id, action, arn, context, need in calls(other_stack):
        if need.unscoped:
            continue  # says why its target cannot name the stack
        assert (logical_id, action, arn, json.dumps(context, sort_keys=True)) not in ours, (
            f"{logical_id}: {action} on {arn} does not depend on the stack's name; say why in Need.unscoped"
        )
        if allows(policy, action, arn, context):
            granted.append(f"{logical_id}: {action} on {arn}" + (f" with {context}" if context else ""))
    assert not granted, f"granted on the resources of a stack named {OTHER_STACK}:\n" + "\n".join(sorted(granted))


def test_the_custom_resource_is_invoked_as_the_deployer(policy: dict[str, Any], stack: Stack) -> None:
    """lambda:InvokeFunction on RouteWiringFunction only: not on the functions that start syncs."""
    customs = [lid for lid, res in stack.tpl["Resources"].items() if res["Type"].startswith("Custom::")]
    assert customs, "no custom resource left: drop InvokeRouteWiring from the policy"
    tokens = {stack.referenced(stack.resource(lid)["Properties"]["ServiceToken"]) for lid in customs}
    for logical_id, resource in stack.tpl["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            invokable = allows(policy, "lambda:InvokeFunction", stack.arn(logical_id))
            assert invokable == (logical_id in tokens), f"{logical_id}: lambda:InvokeFunction {invokable}"


# --------------------------------------------------------------------------- roles


ROLE_PROPERTIES: dict[str, tuple[str, str]] = {
    # resource type -> (the property path that names a role it runs as, the service it is passed to)
    "AWS::Lambda::Function": ("Role", "lambda.amazonaws.com"),
    "AWS::Events::Rule": ("Targets[].RoleArn", "events.amazonaws.com"),
    "AWS::Scheduler::Schedule": ("Target.RoleArn", "scheduler.amazonaws.com"),
}
ROLE_KEY = re.compile(r"(Role|RoleArn|RoleARN)$")


def _role_keys(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if ROLE_KEY.search(key) and not key.startswith("aws:"):
                yield here
            yield from _role_keys(value, here)
    elif isinstance(node, list):
        for item in node:
            yield from _role_keys(item, f"{path}[]")


def passed_roles(tpl: Mapping[str, Any]) -> set[str]:
    """The services the deployer passes roles to: where a resource's own property names one."""
    services = set()
    for logical_id, resource in tpl["Resources"].items():
        kind = resource["Type"]
        if kind.startswith(("AWS::IAM::", "Custom::")):
            continue  # IAM resources name roles without passing them; a custom resource's are data
        for path in _role_keys(resource.get("Properties", {})):
            known_path, service = ROLE_PROPERTIES.get(kind, ("", ""))
            assert known_path == path, (
                f"{logical_id} ({kind}) names a role at {path}: the deployer passes it; add it to ROLE_PROPERTIES "
                "and to the PassRolesToLambda statement's iam:PassedToService"
            )
            services.add(service)
    return services


def _schedule_roles(tpl: Mapping[str, Any]) -> set[str]:
    """The logical ids of the roles the template's own schedules run as (Target.RoleArn)."""
    return {
        str(resource["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0])
        for resource in tpl["Resources"].values()
        if resource["Type"] == "AWS::Scheduler::Schedule"
    }


def test_pass_role_only_the_stacks_roles_to_the_services_the_template_passes_them_to(
    policy: dict[str, Any], stack: Stack, transformed: dict[str, Any]
) -> None:
    """Any of the stack's roles to Lambda (a function's Role); to the Scheduler, only the roles the
    template's own schedules name (the outcome poller's), never ScheduleInvokeRole or a function's."""
    services = passed_roles(transformed)
    assert services == {"lambda.amazonaws.com", "scheduler.amazonaws.com"}, services
    schedule_roles = _schedule_roles(transformed)
    assert schedule_roles == {"PollerScheduleRole"}, schedule_roles
    statements = [
        s
        for s in policy["Statement"]
        if any(_glob(a, "iam:PassRole", case_sensitive=False) for a in as_list(s["Action"]))
    ]
    passed_to_any: set[str] = set()
    for statement in statements:
        passed_to = set(as_list(statement["Condition"]["StringEquals"]["iam:PassedToService"]))
        assert len(passed_to) == 1, f"{statement['Sid']}: one service per statement, each with its own roles"
        passed_to_any |= passed_to
        if passed_to == {"lambda.amazonaws.com"}:
            assert as_list(statement["Resource"]) == ["arn:aws:iam::*:role/polytrigger*"], statement
        else:
            assert passed_to == {"scheduler.amazonaws.com"}, f"{statement['Sid']}: passes to {passed_to}"
            expected = sorted(f"arn:aws:iam::*:role/polytrigger*-{role}-*" for role in schedule_roles)
            assert sorted(as_list(statement["Resource"])) == expected, statement
    assert passed_to_any == services, f"the policy passes roles to {passed_to_any}, the template to {services}"
    role = stack.arn("S3TriggerFunctionRole")
    assert allows(policy, "iam:PassRole", role, TO_LAMBDA)
    assert allows(policy, "iam:PassRole", stack.arn("PollerScheduleRole"), TO_SCHEDULER)
    # ScheduleInvokeRole goes to EventBridge Scheduler from RouteWiringFunction's role, not from the deployer.
    assert not allows(policy, "iam:PassRole", stack.arn("ScheduleInvokeRole"), TO_SCHEDULER)
    assert not allows(policy, "iam:PassRole", role, TO_SCHEDULER)
    assert not allows(policy, "iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not allows(policy, "iam:PassRole", role)
    assert not allows(policy, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin", TO_LAMBDA)


def test_the_webhook_url_is_the_only_function_url(policy: dict[str, Any], stack: Stack) -> None:
    """A Function URL with AuthType NONE makes a function public: the deployer may make one only for
    the webhook receiver, never for a function that starts syncs."""
    urls = [lid for lid, res in stack.tpl["Resources"].items() if res["Type"] == "AWS::Lambda::Url"]
    fronted = {stack.referenced(stack.resource(lid)["Properties"]["TargetFunctionArn"]) for lid in urls}
    assert fronted == {"WebhookFunction"}, fronted
    for logical_id, resource in stack.tpl["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            may = allows(policy, "lambda:CreateFunctionUrlConfig", stack.arn(logical_id))
            assert may == (logical_id in fronted), f"{logical_id}: lambda:CreateFunctionUrlConfig {may}"


def test_attaches_only_the_managed_policies_sam_adds(policy: dict[str, Any], stack: Stack) -> None:
    managed = {
        arn
        for resource in stack.tpl["Resources"].values()
        if resource["Type"] == "AWS::IAM::Role"
        for arn in resource["Properties"].get("ManagedPolicyArns", [])
    }
    assert managed, "SAM attaches no managed policy any more: drop AttachSamPolicies"
    assert all(isinstance(arn, str) for arn in managed), f"a managed policy ARN the test cannot read: {managed}"
    for role in (lid for lid, res in stack.tpl["Resources"].items() if res["Type"] == "AWS::IAM::Role"):
        for action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy"):
            for arn in managed:
                assert allows(policy, action, stack.arn(role), {"iam:PolicyARN": arn}), f"{action} {arn} on {role}"
            admin = "arn:aws:iam::aws:policy/AdministratorAccess"
            assert not allows(policy, action, stack.arn(role), {"iam:PolicyARN": admin}), f"{action} {admin}"


# --------------------------------------------------------------------------- the SAM CLI


def _fill(template: str, stack_name: str, s3_prefix: str) -> str:
    return template.format(
        region=REGION,
        account=ACCOUNT,
        stack=stack_name,
        uuid="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        bucket=MANAGED_BUCKET,
        prefix=s3_prefix,
    )


def test_sam_cli_calls(policy: dict[str, Any], stack_name: str, samconfig_deploy: dict[str, Any]) -> None:
    prefix = str(samconfig_deploy["s3_prefix"])
    missing = [
        f"{action} on {_fill(arn, stack_name, prefix)}"
        for table in (SAM_CLI, MANAGED_STACK)
        for arn, actions in table.items()
        for action in actions
        if not allows(policy, action, _fill(arn, stack_name, prefix))
    ]
    assert not missing, "the SAM CLI would be refused:\n" + "\n".join(missing)
    # Another stack, another app's artifacts, and the managed stack's deletion stay out of reach.
    assert not allows(policy, "cloudformation:ExecuteChangeSet", _fill(next(iter(SAM_CLI)), OTHER_STACK, prefix))
    assert not allows(policy, "s3:PutObject", _fill(f"arn:aws:s3:::{{bucket}}/{OTHER_STACK}/x", stack_name, prefix))
    managed = _fill(next(iter(MANAGED_STACK)), stack_name, prefix)
    assert not allows(policy, "cloudformation:DeleteStack", managed)


def test_uploads_where_samconfig_puts_them(samconfig_deploy: dict[str, Any], stack_name: str) -> None:
    """The artifacts statement names samconfig's s3_prefix; the stack's resources, its stack_name."""
    assert samconfig_deploy["s3_prefix"] == "polytrigger"
    assert stack_name == "polytrigger"
    assert samconfig_deploy["resolve_s3"] is True  # the managed bucket, which the policy names
    assert "role_arn" not in samconfig_deploy  # no CloudFormation service role: the deployer's own credentials
