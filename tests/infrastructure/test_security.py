"""checkov holds the template to its security checks; every skipped check says why, in place.

Skips live in the template itself, next to the resource they excuse
(``Metadata: checkov: skip: [{id: ..., comment: ...}]``), never in a command-line flag or a
config file where nobody reviewing the resource would see them. ``make security`` (part of
``make test``) installs checkov into its own virtual environment, .venv-checkov/, and scans
template.yaml; these tests scan it again as JSON, plus the SAM-transformed template, so the
roles, permissions and invoke configs SAM generates are checked as well.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.needs import missing

from .cfn import transform
from .conftest import (
    FUNCTIONS,
    OUTCOME_FUNCTIONS,
    POLLER_FUNCTION,
    ROOT,
    S3_FUNCTION,
    TEMPLATE_PATH,
    WEBHOOK_FUNCTION,
    WIRING_FUNCTION,
)

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_FLAGS = ["--framework", "cloudformation", "--compact", "--skip-download", "--output", "json"]
CHECK_ID = re.compile(r"CKV2?_AWS_\d+")
MIN_COMMENT = 20

# checkov decides a resource's Condition by the parameters' defaults, and the webhook is off by
# default (WebhookReceiver Disabled): the template is scanned again with every optional part on,
# so the webhook's function, URL, role and log group are held to the checks too.
EVERYTHING_ON = {
    "WebhookReceiver": "Enabled",
    "PolytomicWebhookSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:polytomic-webhook-AbCdEf",
    "RunEventBusName": "polytrigger-runs",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:polytrigger-alarms",
    "OperatorRoleArn": "arn:aws:iam::123456789012:role/polytrigger-operator",
}
# Resources that exist only with a condition off by default.
OPTIONAL = {WEBHOOK_FUNCTION, "WebhookFunctionUrl", "WebhookLogGroup"}
FUNCTION_CHECKS = ("CKV_AWS_45", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_115", "CKV_AWS_173")
ROLE_CHECKS = ("CKV_AWS_107", "CKV_AWS_108", "CKV_AWS_109", "CKV_AWS_110", "CKV_AWS_111")

# Every accepted exception, so a new skip is a visible, reviewed change here too.
EXPECTED_SKIPS: dict[str, set[str]] = {
    **{function: {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"} for function in FUNCTIONS},
    # The S3 trigger has reserved concurrency (S3TriggerConcurrency): CKV_AWS_115 passes, unskipped.
    S3_FUNCTION: {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"},
    WIRING_FUNCTION: {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"},
    # The outcome functions have reserved concurrency (1; WebhookConcurrency): CKV_AWS_115 passes, unskipped.
    **{function: {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"} for function in OUTCOME_FUNCTIONS},
    # Public on purpose: Polytomic cannot sign a SigV4 request; the handler checks its signature.
    "WebhookFunctionUrl": {"CKV_AWS_258"},
    "RouteWiringLogGroup": {"CKV_AWS_158"},
    "S3TriggerLogGroup": {"CKV_AWS_158"},
    "ScheduleTriggerLogGroup": {"CKV_AWS_158"},
    "DispatcherLogGroup": {"CKV_AWS_158"},
    "PollerLogGroup": {"CKV_AWS_158"},
    "WebhookLogGroup": {"CKV_AWS_158"},
    "IdempotencyTable": {"CKV_AWS_119"},
    "DeadLetterQueue": {"CKV_AWS_27"},
    "DispatchQueue": {"CKV_AWS_27"},
    "DispatchDeadLetterQueue": {"CKV_AWS_27"},
}


def _skips(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for logical_id, resource in template["Resources"].items():
        checkov = resource.get("Metadata", {}).get("checkov")
        if checkov is not None:
            assert isinstance(checkov, dict), f"{logical_id}: Metadata.checkov must be a mapping"
            skips = checkov.get("skip")
            assert isinstance(skips, list), f"{logical_id}: Metadata.checkov.skip must be a list"
            found[logical_id] = skips
    return found


# --------------------------------------------------------------------------- skips are justified


def test_every_skip_names_a_check_and_justifies_it(template: dict[str, Any]) -> None:
    skips = _skips(template)
    assert skips, "no checkov skip found: did the Metadata layout change?"
    for logical_id, entries in skips.items():
        for entry in entries:
            assert isinstance(entry, dict), f"{logical_id}: skip {entry!r} is not {{id, comment}}"
            assert set(entry) == {"id", "comment"}, f"{logical_id}: skip {entry!r} is not {{id, comment}}"
            assert CHECK_ID.fullmatch(str(entry["id"])), f"{logical_id}: {entry['id']!r} is not a checkov AWS check id"
            comment = " ".join(str(entry["comment"]).split())
            assert len(comment) >= MIN_COMMENT, f"{logical_id}: skip of {entry['id']} needs a real justification"
            assert not re.match(r"(todo|fixme|tbd)\b", comment, flags=re.IGNORECASE), f"{logical_id}: {comment!r}"


def test_skips_are_exactly_the_reviewed_ones(template: dict[str, Any]) -> None:
    skips = {logical_id: [str(entry["id"]) for entry in entries] for logical_id, entries in _skips(template).items()}
    for logical_id, ids in skips.items():
        assert len(ids) == len(set(ids)), f"{logical_id}: a check is skipped twice"
    assert {logical_id: set(ids) for logical_id, ids in skips.items()} == EXPECTED_SKIPS


def test_no_inline_or_unjustified_suppressions() -> None:
    """checkov also honours `# checkov:skip=ID:reason` comments: keep to one, justified, form."""
    text = TEMPLATE_PATH.read_text()
    assert re.findall(r"checkov:skip", text, flags=re.IGNORECASE) == []
    for config in (".checkov.yaml", ".checkov.yml"):
        path = ROOT / config
        if path.exists():
            assert not re.search(r"skip[-_]check", path.read_text()), f"{config}: skips belong in the template"


# --------------------------------------------------------------------------- checkov passes


def _checkov() -> Path:
    if not CHECKOV.exists():
        missing(f"{CHECKOV.relative_to(ROOT)} is missing: `make security` (run by `make test`) installs it")
    return CHECKOV


def _scan(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [str(_checkov()), "--file", str(path), *CHECKOV_FLAGS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-4000:]}"
    report = json.loads(result.stdout)
    if isinstance(report, list):  # one report per framework when several ran
        (report,) = [r for r in report if r.get("check_type") == "cloudformation"]
    assert report.get("check_type") == "cloudformation", report
    return dict(report)


def _failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        f" (fix it, or skip it in the resource's Metadata with a justification)"
        for c in report["results"]["failed_checks"]
    ]


def _evaluated(report: dict[str, Any]) -> set[tuple[str, str]]:
    results = report["results"]
    return {(c["check_id"], c["resource"]) for c in results["passed_checks"] + results["skipped_checks"]}


def _everything_on(template: dict[str, Any]) -> dict[str, Any]:
    """The template with defaults that turn every condition on (checkov reads the defaults)."""
    on = copy.deepcopy(template)
    for name, value in EVERYTHING_ON.items():
        on["Parameters"][name]["Default"] = value
    return on


def _skipped(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["check_id"], c["resource"].split(".", 1)[1]) for c in report["results"]["skipped_checks"]}


def _expected_skips(*, optional: bool) -> set[tuple[str, str]]:
    return {
        (check, rid) for rid, checks in EXPECTED_SKIPS.items() if optional or rid not in OPTIONAL for check in checks
    }


def test_checkov_passes_the_template() -> None:
    """What `make security` scans: the template as written, with its defaults."""
    report = _scan(TEMPLATE_PATH)
    assert _failures(report) == []
    assert report["summary"]["parsing_errors"] == 0
    evaluated = _evaluated(report)
    for function in (*FUNCTIONS, POLLER_FUNCTION):
        # checkov reads SAM: the serverless functions themselves are checked, not passed over.
        resource = f"AWS::Serverless::Function.{function}"
        for check in FUNCTION_CHECKS:
            assert (check, resource) in evaluated, f"checkov did not evaluate {check} on {resource}"
    skipped = _skipped(report)
    assert _expected_skips(optional=False) <= skipped <= _expected_skips(optional=True)


def test_checkov_passes_the_template_with_every_option_on(template: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "everything-on.json"
    path.write_text(json.dumps(_everything_on(template), indent=1))
    report = _scan(path)
    assert _failures(report) == []
    assert report["summary"]["parsing_errors"] == 0
    evaluated = _evaluated(report)
    for function in (*FUNCTIONS, *OUTCOME_FUNCTIONS):
        resource = f"AWS::Serverless::Function.{function}"
        for check in FUNCTION_CHECKS:
            assert (check, resource) in evaluated, f"checkov did not evaluate {check} on {resource}"
    assert ("CKV_AWS_258", "AWS::Lambda::Url.WebhookFunctionUrl") in evaluated
    assert _skipped(report) == _expected_skips(optional=True)


def test_checkov_passes_what_sam_deploys(transformed: dict[str, Any], tmp_path: Path) -> None:
    """The transformed template adds SAM's roles, permissions and invoke configs to the scan."""
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(transformed, indent=1))
    report = _scan(path)
    assert _failures(report) == []
    assert report["summary"]["parsing_errors"] == 0
    evaluated = _evaluated(report)
    for function in (*FUNCTIONS, POLLER_FUNCTION):
        role = f"AWS::IAM::Role.{function}Role"
        for check in ROLE_CHECKS:
            assert (check, role) in evaluated, f"checkov did not evaluate {check} on {role}"


def test_checkov_passes_what_sam_deploys_with_every_option_on(template: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "transformed-everything-on.json"
    path.write_text(json.dumps(transform(_everything_on(template)), indent=1))
    report = _scan(path)
    assert _failures(report) == []
    assert report["summary"]["parsing_errors"] == 0
    evaluated = _evaluated(report)
    for function in (*FUNCTIONS, *OUTCOME_FUNCTIONS):
        role = f"AWS::IAM::Role.{function}Role"
        for check in ROLE_CHECKS:
            assert (check, role) in evaluated, f"checkov did not evaluate {check} on {role}"
    for policy in ("PollerPublishesRunEvents", "WebhookPublishesRunEvents"):
        for check in ROLE_CHECKS:
            assert (check, f"AWS::IAM::Policy.{policy}") in evaluated, f"checkov did not evaluate {check} on {policy}"
    # SAM would generate the URL without the skip's Metadata: it is the template's own resource.
    assert ("CKV_AWS_258", "WebhookFunctionUrl") in _skipped(report)
