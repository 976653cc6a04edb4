"""template.yaml raw and SAM-transformed, offline, and finding resources, grants and references in it.

The transform is the real aws-sam-translator, run locally the way CloudFormation runs it on
deploy. It needs no AWS credentials: the region comes from an explicit boto3 Session (no
network call), the local ``CodeUri`` / ``ContentUri`` are replaced by S3 locations (what ``sam
package`` does) and the managed-policy map is a stub (the template uses no managed-policy *names*;
SAM's own execution/X-Ray policies are written as ARNs and never looked up).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"

# Values for the parameters that have no default; everything else keeps its template default.
PARAMETER_VALUES: dict[str, str] = {
    "PolytomicSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-AbCdEf",
}
WEBHOOK_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-webhook-AbCdEf"
# Parameter values that turn the optional parts on: the webhook receiver, re-publishing run events.
WEBHOOK_ON = {"WebhookReceiver": "Enabled", "PolytomicWebhookSecretArn": WEBHOOK_SECRET_ARN}
RUN_EVENT_BUS = {"RunEventBusName": "polytrigger-runs"}
EVERYTHING_ON = {
    **WEBHOOK_ON,
    **RUN_EVENT_BUS,
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:polytrigger-alarms",
    "OperatorRoleArn": "arn:aws:iam::123456789012:role/polytrigger-operator",
}


def plain(node: Any) -> Any:
    """cfn-lint's nodes (dict_node, str_node, ...) as plain JSON types."""
    return json.loads(json.dumps(node))


def load_template() -> dict[str, Any]:
    """template.yaml as written, parsed by cfn-lint's loader (understands !Ref, !GetAtt, ...)."""
    loaded = cfn_yaml.load(str(TEMPLATE_PATH))
    assert isinstance(loaded, dict), "template.yaml did not parse to a mapping"
    return dict(plain(loaded))


class OfflineManagedPolicyLoader:
    """Stands in for samtranslator's ManagedPolicyLoader (which calls IAM ListPolicies).

    Empty on purpose: if the template ever names a managed policy, the transform fails here
    instead of silently granting something this suite never looked at.
    """

    def __init__(self) -> None:
        self.calls = 0

    def load(self) -> dict[str, str]:
        self.calls += 1
        return {}


def transform(template: dict[str, Any]) -> dict[str, Any]:
    """The template after the SAM transform: plain CloudFormation, as deployed."""
    sam_template = copy.deepcopy(template)
    function_globals = sam_template.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str):
        function_globals["CodeUri"] = "s3://polytrigger-artifacts/functions.zip"
    for resource in sam_template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = "s3://polytrigger-artifacts/functions.zip"
        if resource.get("Type") == "AWS::Serverless::LayerVersion" and isinstance(properties.get("ContentUri"), str):
            properties["ContentUri"] = "s3://polytrigger-artifacts/layer.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    result = translator.translate(
        sam_template,
        parameter_values=dict(PARAMETER_VALUES),
        get_managed_policy_map=OfflineManagedPolicyLoader().load,
    )
    return dict(plain(result))


def key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def of_type(tpl: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource for logical_id, resource in tpl["Resources"].items() if resource["Type"] == resource_type
    }


def get_att_arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def role_id(tpl: dict[str, Any], function: str) -> str:
    role = tpl["Resources"][function]["Properties"]["Role"]
    assert isinstance(role, dict), f"{function}: Role should be the SAM-generated role, got {role!r}"
    logical_id, attribute = role["Fn::GetAtt"]
    assert attribute == "Arn"
    return str(logical_id)


def role_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in role["Properties"].get("Policies", []):
        found.extend(as_list(policy["PolicyDocument"]["Statement"]))
    return found


def grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (action, key(resource))
        for statement in statements
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }


NO_VALUE = {"Ref": "AWS::NoValue"}


def resolve(node: Any, conditions: dict[str, bool]) -> Any:
    """A template fragment as CloudFormation deploys it with these condition values.

    Each ``Fn::If`` becomes the branch its condition chooses, and ``AWS::NoValue`` removes the key
    or list item that holds it.
    """
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            condition, if_true, if_false = node["Fn::If"]
            return resolve(if_true if conditions[condition] else if_false, conditions)
        resolved = {key: resolve(value, conditions) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value != NO_VALUE}
    if isinstance(node, list):
        return [item for item in (resolve(item, conditions) for item in node) if item != NO_VALUE]
    return node


def rule_for(tpl: dict[str, Any], function: str) -> tuple[str, dict[str, Any]]:
    rules = [
        (logical_id, rule)
        for logical_id, rule in of_type(tpl, "AWS::Events::Rule").items()
        if any(target["Arn"] == get_att_arn(function) for target in rule["Properties"]["Targets"])
    ]
    assert len(rules) == 1, f"expected exactly one EventBridge rule targeting {function}, got {rules}"
    return rules[0]


def assert_bounded_retry(retry_policy: dict[str, Any], where: str) -> None:
    attempts = retry_policy["MaximumRetryAttempts"]
    age = retry_policy["MaximumEventAgeInSeconds"]
    assert 0 <= attempts <= 10, f"{where}: unbounded-looking MaximumRetryAttempts {attempts}"
    assert 60 <= age <= 6 * 3600, f"{where}: MaximumEventAgeInSeconds {age} outside 1 min..6 h"


def fires_on_any(alarm: dict[str, Any]) -> bool:
    """One datapoint over zero is enough: not 'two periods in a row', not 'more than one'."""
    threshold, operator = alarm["Threshold"], alarm["ComparisonOperator"]
    one_datapoint = alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]) == 1
    return one_datapoint and (
        (threshold == 0 and operator == "GreaterThanThreshold")
        or (threshold == 1 and operator == "GreaterThanOrEqualToThreshold")
    )


# --------------------------------------------------------------------------- conditions, as CloudFormation decides them


def evaluate(node: Any, tpl: dict[str, Any], parameters: dict[str, str]) -> Any:
    """A condition or rule expression evaluated with these parameter values."""
    if isinstance(node, dict) and len(node) == 1:
        ((function, argument),) = node.items()
        if function == "Ref":
            return parameters[argument]
        if function == "Condition":
            return evaluate(tpl["Conditions"][argument], tpl, parameters)
        if function == "Fn::Equals":
            left, right = (evaluate(item, tpl, parameters) for item in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not evaluate(argument[0], tpl, parameters)
        if function == "Fn::And":
            return all(evaluate(item, tpl, parameters) for item in argument)
        if function == "Fn::Or":
            return any(evaluate(item, tpl, parameters) for item in argument)
        raise AssertionError(f"the test cannot evaluate {function}: teach cfn.evaluate")
    return node


def parameter_values(tpl: dict[str, Any], **given: str) -> dict[str, str]:
    """Every parameter's value: its default, PARAMETER_VALUES, then `given`."""
    defaults = {name: str(p["Default"]) for name, p in tpl["Parameters"].items() if "Default" in p}
    return {**defaults, **PARAMETER_VALUES, **given}


def decide(tpl: dict[str, Any], **given: str) -> dict[str, bool]:
    """Every condition of the template, decided with these parameter values."""
    values = parameter_values(tpl, **given)
    return {name: bool(evaluate(node, tpl, values)) for name, node in tpl["Conditions"].items()}


def deployed(tpl: dict[str, Any], decided: dict[str, bool]) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation creates with these conditions, their Fn::If decided."""
    return {
        logical_id: resolve(resource, decided)
        for logical_id, resource in tpl["Resources"].items()
        if "Condition" not in resource or decided[resource["Condition"]]
    }


def role_grants(tpl: dict[str, Any], function: str, decided: dict[str, bool]) -> set[tuple[str, str]]:
    """What the function's role may do: its own policies and every AWS::IAM::Policy attached to it.

    Every statement allows; none says NotAction or NotResource, and only passing a role (the service
    it may be passed to) and reaching a table's items (the keys, test_outcomes_template.py) carry a
    condition, so the (action, resource) pairs are all it grants, those two narrowed.
    """
    resources = deployed(tpl, decided)
    role = role_id(tpl, function)
    statements = role_statements(resources[role])
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]:
            statements.extend(as_list(resource["Properties"]["PolicyDocument"]["Statement"]))
    assert all(s["Effect"] == "Allow" for s in statements), function
    assert not any({"NotAction", "NotResource"} & set(s) for s in statements), function
    conditioned = {action for s in statements if "Condition" in s for action in as_list(s["Action"])}
    keyed = {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchGetItem",
    }
    assert conditioned <= {"iam:PassRole", *keyed}, f"{function}: a condition on {conditioned}"
    return grants(statements)
