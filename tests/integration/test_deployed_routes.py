"""The deployed stack records its routes, and `status` and `explain` read them: on the local stack.

A team's routes file kept outside the repository is built (the real build step, `routes_build --as`,
which notes where it came from beside the shipped copy) and deployed: the real wiring function runs
as CloudFormation calls it and writes the `routes#deployed` item into DynamoDB Local. Then the
commands, told the table (IDEMPOTENCY_TABLE, as the local stack's env file sets it), read that item
without `--routes`, name it in one stderr line, warn when the file they are given differs, and fall
back (saying so) when the table holds none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack
from local.stack.cfn_answers import Answers
from polytrigger import bootstrap
from polytrigger.handlers import route_wiring
from polytrigger.routing.deployed import DEPLOYED_ROUTES_KEY, sha256_of
from polytrigger.tools import routes_build
from polytrigger.tools.cli import main
from tests.integration.support import captured_logs
from tests.integration.wiring_support import Deployment, context

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
TEAM_ROUTES = f"""\
routes:
  - name: team-landing
    s3: {{bucket: team-bucket, key: "in/*.csv"}}
    syncs: [{{id: {SYNC}}}]
"""


@dataclass
class Team:
    """A team's routes file kept outside the repository, and a stack it builds and deploys them to."""

    stack: LocalStack
    deployment: Deployment
    answers: Answers
    routes: Path
    builds: Path
    monkeypatch: pytest.MonkeyPatch

    def deploy(self, kind: str) -> Any:
        """Build the routes as they are now, then have the function built with them answer CloudFormation."""
        shipped = build(self.routes, self.builds / f"build-{len(self.answers.received)}")
        self.monkeypatch.setenv("ROUTES_FILE", str(shipped))
        bootstrap.reset()  # a new deploy: a new container
        try:
            route_wiring.handler(self.deployment.request(kind, self.answers), context(self.deployment.version))
        finally:
            self.monkeypatch.delenv("ROUTES_FILE")  # the deploy's, not the commands'
            bootstrap.reset()
        return self.answers.last()


def build(source: Path, into: Path) -> Path:
    """What `sam build` ships for the routes: the copy, validated, with the note of where it came from."""
    into.mkdir()
    shipped = into / "routes.yaml"
    shipped.write_bytes(source.read_bytes())
    assert routes_build.main(["--as", str(source), str(shipped)]) == 0
    return shipped


@pytest.fixture
def team(
    clean: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Team]:
    """A schedule group and dead-letter queue in moto; the team's routes in a folder of their own; no
    routes named in the environment."""
    routes = tmp_path_factory.mktemp("team-routes") / "routes.yaml"
    routes.write_text(TEAM_ROUTES, encoding="utf-8")
    builds = tmp_path_factory.mktemp("builds")
    group = f"polytrigger-{builds.name[-20:].replace('_', '-')}"
    clean.client("scheduler").create_schedule_group(Name=group)
    sqs = clean.client("sqs")
    queue = sqs.create_queue(QueueName=f"dlq-{group}")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for name in ("ROUTES", "ROUTES_FILE"):
        monkeypatch.delenv(name, raising=False)
    with Answers() as answers:
        yield Team(
            clean, Deployment(group=group, dead_letter_arn=dead_letter_arn), answers, routes, builds, monkeypatch
        )
    bootstrap.reset()
    clean.reset()


def recorded(stack: LocalStack) -> dict[str, Any] | None:
    item = stack.dynamodb_client().get_item(TableName=stack.table_name, Key={"id": {"S": DEPLOYED_ROUTES_KEY}})
    return {name: next(iter(value.values())) for name, value in item["Item"].items()} if "Item" in item else None


def test_a_deploy_records_the_routes_it_wired_and_status_and_explain_read_them(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    answer = team.deploy("Create")

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    item = recorded(team.stack)
    assert item is not None
    assert item["text"] == TEAM_ROUTES
    assert item["built_from"] == str(team.routes)  # the team's own path, not the build's copy
    assert item["sha256"] == sha256_of(team.routes.read_bytes())
    assert item["version"] == str(team.deployment.version)
    assert before <= datetime.fromisoformat(item["deployed_at"]) <= datetime.now(UTC) + timedelta(seconds=1)
    assert "ttl" not in item  # kept until the next deploy overwrites it

    # status, with no routes named: the deployed ones, said in one line (the team's route, not the example's)
    assert main(["status", "s3://team-bucket/in/a.csv"]) == 1  # never seen: not synced
    out, err = capsys.readouterr()
    when = datetime.fromisoformat(item["deployed_at"]).strftime("%Y-%m-%d %H:%M")
    assert err == (
        f"routes: as deployed to table {team.stack.table_name}"
        f" (built from {team.routes}, sha256 {item['sha256'][:12]}…, {when} UTC)\n"
    )
    assert "route team-landing" in out

    assert main(["explain", "s3://team-bucket/in/a.csv"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith(f"routes: as deployed to table {team.stack.table_name} (built from {team.routes}, ")
    assert "route team-landing" in out

    # the next deploy, of an edited file, overwrites the record
    team.routes.write_text(TEAM_ROUTES.replace('"in/*.csv"', '"in/**"'), encoding="utf-8")
    team.deployment.version += 1
    assert team.deploy("Update")["Status"] == "SUCCESS"
    again = recorded(team.stack)
    assert again is not None
    assert again["sha256"] == sha256_of(team.routes.read_bytes()) != item["sha256"]
    assert again["version"] == str(team.deployment.version)


def test_a_routes_file_that_differs_from_the_deployed_one_is_a_warning(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert team.deploy("Create")["Status"] == "SUCCESS"
    table = team.stack.table_name
    draft = tmp_path / "draft.yaml"
    draft.write_text(TEAM_ROUTES.replace("team-landing", "draft-landing"), encoding="utf-8")

    # --routes wins, with a warning: the answer follows the draft, not what the stack runs
    assert main(["status", "s3://team-bucket/in/a.csv", "--routes", str(draft)]) == 1
    out, err = capsys.readouterr()
    (warning,) = err.splitlines()
    assert warning.startswith(f"routes: warning: --routes {draft} differs from the routes deployed to table {table}")
    assert f"deployed: built from {team.routes}, sha256 " in warning
    assert "route draft-landing" in out

    # ROUTES does not win over the deployed routes: they are used, and the difference is said
    monkeypatch.setenv("ROUTES", str(draft))
    assert main(["status", "s3://team-bucket/in/a.csv"]) == 1
    out, err = capsys.readouterr()
    deployed, warning = err.splitlines()
    assert deployed.startswith(f"routes: as deployed to table {table} (built from {team.routes}")
    assert warning.startswith(f"routes: warning: ROUTES={draft} differs from the routes deployed")
    assert "route team-landing" in out

    # the same file as deployed: not a word
    assert main(["status", "s3://team-bucket/in/a.csv", "--routes", str(team.routes)]) == 1
    assert capsys.readouterr().err == ""


def test_without_a_record_status_falls_back_and_says_so(
    team: Team, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTES", str(team.routes))
    assert recorded(team.stack) is None  # nothing deployed yet

    assert main(["status", "s3://team-bucket/in/a.csv"]) == 1

    out, err = capsys.readouterr()
    assert err == f"routes: ROUTES={team.routes} (no routes recorded as deployed in table {team.stack.table_name})\n"
    assert "route team-landing" in out

    # a table that is not there: the same fall back for the routes, then status's own one line (exit 2)
    assert main(["status", "s3://team-bucket/in/a.csv", "--table", "no-such-table"]) == 2
    err = capsys.readouterr().err
    first, second = err.splitlines()
    assert first.startswith(f"routes: ROUTES={team.routes} (the routes deployed to table no-such-table cannot be read:")
    assert "ResourceNotFoundException" in first
    assert second.startswith("polytrigger status: cannot read the table: ResourceNotFoundException")
    assert "Traceback" not in err


def test_a_table_that_refuses_the_record_leaves_the_deploy_wired_and_says_so(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring is done and is what fires: the deploy succeeds, with an ERROR line and the reason saying why
    the routes were not recorded (failing it would roll back a correct wiring into the same refusal)."""
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "no-such-table")
    with captured_logs() as logs:
        answer = team.deploy("Create")

    assert answer["Status"] == "SUCCESS"
    assert answer["Data"]["Buckets"] == "team-bucket"
    assert re.search(
        r"; the deployed routes were not recorded in the table \(ResourceNotFoundException: .*\);"
        r" status and explain will read the routes file they are given instead$",
        answer["Reason"],
    ), answer["Reason"]
    errors = [json.loads(line) for line in logs.getvalue().splitlines() if '"level":"ERROR"' in line]
    assert [line["message"].split(" (")[0] for line in errors] == [
        "route wiring: the deployed routes were not recorded in the table"
    ]
    assert recorded(team.stack) is None


def test_a_delete_leaves_the_record_alone(team: Team) -> None:
    """Deleting the stack deletes its table; until then the record says what ran last."""
    assert team.deploy("Create")["Status"] == "SUCCESS"
    item = recorded(team.stack)

    assert team.deploy("Delete")["Status"] == "SUCCESS"

    assert recorded(team.stack) == item
