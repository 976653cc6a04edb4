"""Shared loading of template.yaml: raw (cfn-lint's YAML loader) and SAM-transformed, offline.

The transform is the real aws-sam-translator, run locally the way CloudFormation runs it on
deploy. It needs no AWS credentials: the region comes from an explicit boto3 Session (no
network call), the local ``CodeUri`` is replaced by an S3 location (what ``sam package`` does)
and the managed-policy map is a stub (the template uses no managed-policy *names*; SAM's own
execution/X-Ray policies are written as ARNs and never looked up).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"

# Values for the parameters that have no default; everything else keeps its template default.
PARAMETER_VALUES: dict[str, str] = {
    "PolytomicSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-AbCdEf",
    "LandingBucketName": "acme-landing",
}

S3_FUNCTION = "S3TriggerFunction"
SCHEDULE_FUNCTION = "ScheduleTriggerFunction"
DISPATCHER_FUNCTION = "DispatcherFunction"
TRIGGER_FUNCTIONS = (S3_FUNCTION, SCHEDULE_FUNCTION)  # invoked by events; enqueue deferred starts
FUNCTIONS = (*TRIGGER_FUNCTIONS, DISPATCHER_FUNCTION)


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


def plain(node: Any) -> Any:
    """cfn-lint's nodes (dict_node, str_node, ...) as plain JSON types."""
    return json.loads(json.dumps(node))


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """template.yaml as written, parsed by cfn-lint's loader (understands !Ref, !GetAtt, ...)."""
    loaded = cfn_yaml.load(str(TEMPLATE_PATH))
    assert isinstance(loaded, dict), "template.yaml did not parse to a mapping"
    return plain(loaded)


@pytest.fixture(scope="session")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """template.yaml after the SAM transform: plain CloudFormation, as deployed."""
    sam_template = copy.deepcopy(template)
    function_globals = sam_template.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str):
        function_globals["CodeUri"] = "s3://polytrigger-artifacts/functions.zip"
    for resource in sam_template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = "s3://polytrigger-artifacts/functions.zip"

    loader = OfflineManagedPolicyLoader()
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    result = translator.translate(
        sam_template,
        parameter_values=dict(PARAMETER_VALUES),
        get_managed_policy_map=loader.load,
    )
    return plain(result)
