"""What a route wiring test needs of CloudFormation: its answer URL, its requests, and its template values.

Nothing is deployed. The template is the real one after the real SAM transform; the few values
CloudFormation would resolve (a Ref, a GetAtt, Fn::Split of the custom resource's answer) are
resolved here from the local stack's resources, and the wiring function is invoked as
CloudFormation invokes it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.stack.cfn_answers import Answers
from local.stack.lambda_context import LocalContext
from tests.infrastructure.cfn import load_template, transform

ACCOUNT = "123456789012"
FUNCTION = "polytrigger-RouteWiringFunction-Ab12Cd34"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}"
TARGET_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:polytrigger-ScheduleTriggerFunction-Ef56Gh78"
POLLER_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:polytrigger-PollerFunction-Ij90Kl12"
RECONCILER_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:polytrigger-ReconcilerFunction-Mn34Op56"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/polytrigger-ScheduleInvokeRole-Ij90Kl12"
STACK_ID = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/polytrigger/0d5c8a40-0000-11ef-9d1e-0a1b2c3d4e5f"


@dataclass
class Deployment:
    """One stack's values as CloudFormation resolves them, from the transformed template."""

    group: str
    dead_letter_arn: str
    version: int = 1
    state: str = "ENABLED"
    template: dict[str, Any] = field(default_factory=lambda: transform(load_template()))

    @property
    def version_arn(self) -> str:
        return f"{FUNCTION_ARN}:{self.version}"

    def values(self) -> dict[tuple[str, str], Any]:
        resources = self.template["Resources"]
        (version_id,) = [k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Version" and "RouteWiring" in k]
        return {
            ("Ref", "ScheduleGroup"): self.group,
            ("Ref", version_id): self.version_arn,
            ("Ref", "SchedulesState"): self.state,
            ("GetAtt", "RouteWiringFunction.Arn"): FUNCTION_ARN,
            ("GetAtt", "ScheduleTriggerFunction.Arn"): TARGET_ARN,
            ("GetAtt", "PollerFunction.Arn"): POLLER_ARN,
            ("GetAtt", "ReconcilerFunction.Arn"): RECONCILER_ARN,
            ("GetAtt", "ScheduleInvokeRole.Arn"): ROLE_ARN,
            ("GetAtt", "DeadLetterQueue.Arn"): self.dead_letter_arn,
        }

    def request(self, kind: str, answers: Answers, *, old: dict[str, Any] | None = None) -> dict[str, Any]:
        """The request CloudFormation sends the wiring function for RouteWiring."""
        (resource,) = [r for r in self.template["Resources"].values() if r["Type"] == "Custom::RouteWiring"]
        properties = resolve(resource["Properties"], self.values())
        request = {
            "RequestType": kind,
            "ServiceToken": properties["ServiceToken"],
            "ResponseURL": answers.url,
            "StackId": STACK_ID,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": "RouteWiring",
            "ResourceType": "Custom::RouteWiring",
            "ResourceProperties": properties,
        }
        if kind != "Create":
            request["PhysicalResourceId"] = self.group
        if old is not None:
            request["OldResourceProperties"] = old
        return request

    def s3_pattern(self, answer: dict[str, Any]) -> dict[str, Any]:
        """The S3 rule's event pattern, with RouteWiring's answer where the template takes it."""
        rules = [r for r in self.template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
        (rule,) = [r for r in rules if r["Properties"]["EventPattern"].get("source") == ["aws.s3"]]
        values: dict[tuple[str, str], Any] = self.values()
        values.update({("GetAtt", f"RouteWiring.{k}"): v for k, v in answer["Data"].items()})
        pattern: dict[str, Any] = resolve(rule["Properties"]["EventPattern"], values)
        return pattern


def resolve(node: Any, values: dict[tuple[str, str], Any]) -> Any:
    """Ref, GetAtt and Fn::Split as CloudFormation resolves them; anything else unresolved fails the test."""
    if isinstance(node, list):
        return [resolve(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return values[("Ref", node["Ref"])]
    if set(node) == {"Fn::GetAtt"}:
        return values[("GetAtt", ".".join(node["Fn::GetAtt"]))]
    if set(node) == {"Fn::Split"}:
        separator, text = node["Fn::Split"]
        return str(resolve(text, values)).split(separator)
    assert not any(k.startswith("Fn::") for k in node), f"unresolved intrinsic in {node}"
    return {k: resolve(v, values) for k, v in node.items()}


def context(version: int | None) -> Any:
    """How CloudFormation calls the function (unqualified), or how a forwarded request reaches a version."""
    return LocalContext(
        function_name=FUNCTION, qualifier=str(version) if version is not None else "", timeout_seconds=300
    )


def write_routes(
    path: Path, buckets: list[str], schedules: list[dict[str, Any]], elsewhere: tuple[str, ...] = ()
) -> Path:
    """A routes file with one route per bucket, one per schedule definition, one per schedule made elsewhere."""
    sync = {"id": "248df4b7-aa70-47b8-a036-33ac447e668d"}
    routes: list[dict[str, Any]] = [
        {"name": f"land-{bucket}", "s3": {"bucket": bucket, "key": "**"}, "syncs": [sync]} for bucket in buckets
    ]
    routes += [{"name": f"on-{s['name']}", "schedule": s, "syncs": [sync]} for s in schedules]
    routes += [{"name": f"on-{name}", "schedule": name, "syncs": [sync]} for name in elsewhere]
    path.write_text(json.dumps({"routes": routes}), encoding="utf-8")
    return path
