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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.needs import missing

from .cfn import EVERYTHING_ON, transform
from .conftest import FUNCTIONS, ROOT, TEMPLATE_PATH, Function, each_function

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_FLAGS = ["--framework", "cloudformation", "--compact", "--skip-download", "--output", "json"]
CHECK_ID = re.compile(r"CKV2?_AWS_\d+")
MIN_COMMENT = 20

FUNCTION_CHECKS = ("CKV_AWS_45", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_115", "CKV_AWS_173")
ROLE_CHECKS = ("CKV_AWS_107", "CKV_AWS_108", "CKV_AWS_109", "CKV_AWS_110", "CKV_AWS_111")
# The policies attached to a function's role beside its own, with the condition each exists under.
ATTACHED_POLICIES = {
    "RouteWiringInvokesItsVersions": None,
    "PollerPublishesRunEvents": "HasRunEventBus",
    "WebhookPublishesRunEvents": "HasWebhookAndRunEventBus",
}

# Every accepted exception, so a new skip is a visible, reviewed change here too. Every function
# skips the dead-letter queue (failed asynchronous invocations go to the on-failure destination),
# the VPC and the environment's customer managed key, and reserved concurrency where its row
# reserves none (where it does, CKV_AWS_115 passes unskipped); every log group, its key.
FUNCTION_SKIPS = {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}
EXPECTED_SKIPS: dict[str, set[str]] = {
    **{f.name: FUNCTION_SKIPS | ({"CKV_AWS_115"} if f.reserved is None else set()) for f in FUNCTIONS},
    **{f.log_group: {"CKV_AWS_158"} for f in FUNCTIONS},
    # Public on purpose: Polytomic cannot sign a SigV4 request; the handler checks its signature.
    "WebhookFunctionUrl": {"CKV_AWS_258"},
    "IdempotencyTable": {"CKV_AWS_119"},
    "DeadLetterQueue": {"CKV_AWS_27"},
    "DispatchQueue": {"CKV_AWS_27"},
    "DispatchDeadLetterQueue": {"CKV_AWS_27"},
}
# Resources that exist only with a condition off by default: with the defaults, checkov may pass them over.
OPTIONAL = {*(name for f in FUNCTIONS if f.condition for name in (f.name, f.log_group)), "WebhookFunctionUrl"}


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


@dataclass(frozen=True)
class Scan:
    """One template checkov scans: as written or as SAM deploys it, with the defaults or every option on.

    checkov decides a resource's Condition by the parameters' defaults, and the webhook is off by
    default (WebhookReceiver Disabled): the template is scanned again with every optional part on,
    so the webhook's function, URL, role and log group are held to the checks too. The transformed
    template adds SAM's roles, permissions and invoke configs to the scan.
    """

    name: str
    deployed: bool  # the SAM-transformed template; else the template as written (what `make security` scans)
    everything_on: bool  # defaults that turn every condition on

    def resource(self, kind: str, logical_id: str) -> str:
        """How checkov names a resource in this scan's report."""
        if kind == "function":
            return f"AWS::{'Lambda' if self.deployed else 'Serverless'}::Function.{logical_id}"
        return f"AWS::IAM::{kind}.{logical_id}"

    def may_pass_over(self, condition: str | None) -> bool:
        """A resource that the defaults leave out may not be evaluated (checkov versions differ)."""
        return condition is not None and not self.everything_on


SCANS = (
    Scan("template", deployed=False, everything_on=False),
    Scan("template-everything-on", deployed=False, everything_on=True),
    Scan("deployed", deployed=True, everything_on=False),
    Scan("deployed-everything-on", deployed=True, everything_on=True),
)


def _checkov() -> Path:
    if not CHECKOV.exists():
        missing(f"{CHECKOV.relative_to(ROOT)} is missing: `make security` (run by `make test`) installs it")
    return CHECKOV


def _everything_on(template: dict[str, Any]) -> dict[str, Any]:
    """The template with defaults that turn every condition on (checkov reads the defaults)."""
    on = copy.deepcopy(template)
    for name, value in EVERYTHING_ON.items():
        on["Parameters"][name]["Default"] = value
    return on


@pytest.fixture(scope="module", params=SCANS, ids=[scan.name for scan in SCANS])
def scan(request: pytest.FixtureRequest) -> Scan:
    scan: Scan = request.param
    return scan


@pytest.fixture(scope="module")
def reports(template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """checkov's report on each scan's template, by scan name: one checkov run for all four (its start-up,
    not the scanning, is most of its time), split by the file each result names."""
    checkov = _checkov()
    folder = tmp_path_factory.mktemp("checkov")
    files: dict[str, Path] = {}
    for scan in SCANS:
        if not scan.deployed and not scan.everything_on:
            files[TEMPLATE_PATH.name] = TEMPLATE_PATH
            continue
        document = _everything_on(template) if scan.everything_on else template
        path = folder / f"{scan.name}.json"
        path.write_text(json.dumps(transform(document) if scan.deployed else document, indent=1))
        files[path.name] = path
    result = subprocess.run(
        [str(checkov), *(arg for path in files.values() for arg in ("--file", str(path))), *CHECKOV_FLAGS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-4000:]}"
    found = json.loads(result.stdout)
    if isinstance(found, list):  # one report per framework when several ran
        (found,) = [r for r in found if r.get("check_type") == "cloudformation"]
    assert found.get("check_type") == "cloudformation", found
    split: dict[str, dict[str, Any]] = {}
    for scan, name in zip(SCANS, files, strict=True):
        results = {
            kind: [check for check in checks if Path(check["file_path"]).name == name]
            for kind, checks in found["results"].items()
            if isinstance(checks, list)
        }
        split[scan.name] = {**found, "results": results}
    return split


@pytest.fixture(scope="module")
def report(scan: Scan, reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """checkov's report on the scan's template."""
    return reports[scan.name]


def _evaluated(report: dict[str, Any]) -> set[tuple[str, str]]:
    results = report["results"]
    return {(c["check_id"], c["resource"]) for c in results["passed_checks"] + results["skipped_checks"]}


def _assert_checked(
    scan: Scan, report: dict[str, Any], resource: str, checks: tuple[str, ...], condition: str | None
) -> None:
    """checkov evaluated every check on the resource (passed, or skipped with its reason), or, where
    the scan's defaults leave the resource out, none of them."""
    evaluated = {check for check, name in _evaluated(report) if name == resource}
    if scan.may_pass_over(condition) and not evaluated:
        return
    missed = [check for check in checks if check not in evaluated]
    assert missed == [], f"checkov did not evaluate {missed} on {resource}"


def test_checkov_finds_nothing_to_fix(report: dict[str, Any]) -> None:
    failures = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        f" (fix it, or skip it in the resource's Metadata with a justification)"
        for c in report["results"]["failed_checks"]
    ]
    assert failures == []
    assert report["summary"]["parsing_errors"] == 0


@each_function()
def test_checkov_holds_the_function_and_its_role_to_their_checks(
    scan: Scan, report: dict[str, Any], function: Function
) -> None:
    """checkov reads SAM: the serverless functions themselves are checked, not passed over, and in
    the deployed template the roles SAM generates for them."""
    _assert_checked(scan, report, scan.resource("function", function.name), FUNCTION_CHECKS, function.condition)
    if scan.deployed:
        _assert_checked(scan, report, scan.resource("Role", f"{function.name}Role"), ROLE_CHECKS, function.condition)


@pytest.mark.parametrize("policy", list(ATTACHED_POLICIES))
def test_checkov_holds_the_policies_attached_to_function_roles_to_the_role_checks(
    scan: Scan, report: dict[str, Any], policy: str
) -> None:
    _assert_checked(scan, report, scan.resource("Policy", policy), ROLE_CHECKS, ATTACHED_POLICIES[policy])


def test_checkov_skips_exactly_the_reviewed_checks(scan: Scan, report: dict[str, Any]) -> None:
    """The template's skips, as written and as SAM carries them into what it deploys."""
    skipped = {(c["check_id"], c["resource"].split(".", 1)[1]) for c in report["results"]["skipped_checks"]}
    expected = {(check, rid) for rid, checks in EXPECTED_SKIPS.items() for check in checks}
    if not scan.everything_on:  # the resources the defaults leave out may be passed over (OPTIONAL)
        expected_anyway = {(check, rid) for check, rid in expected if rid not in OPTIONAL}
        assert expected_anyway <= skipped <= expected
    else:
        assert skipped == expected
