"""``LocalStack``: moto + DynamoDB Local (or moto's DynamoDB) + the fake Polytomic API, wired together.

Why one object: the handlers only read environment variables, so the stack's
job is to start the servers, create what polytrigger expects to exist (the
idempotency table with TTL on ``expiration``, the Polytomic credentials secret)
and hand back the environment that points the handlers at them (``env()``).
Per-service ``AWS_ENDPOINT_URL_<SERVICE>`` variables are honoured by botocore
since 1.31 (service ids upper-cased, spaces to ``_``: ``SECRETS_MANAGER``);
``AWS_ENDPOINT_URL`` (moto) catches every other service so nothing can reach
real AWS.

    with LocalStack() as stack, stack.environ():
        stack.fake.add_sync(...)
        handler(event, context)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import boto3
from botocore.config import Config

from local.polytomic import DEFAULT_API_KEY, FakePolytomic
from local.service import LocalService
from local.stack.dynamodb_local import (
    DUMMY_CREDENTIALS,
    DynamoDBLocal,
    DynamoDBLocalUnavailable,
    moto_dynamodb_fallback,
)
from local.stack.moto_server import MotoServer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

DEFAULT_TABLE = "polytrigger-idempotency"
DEFAULT_SECRET = "polytrigger/polytomic"
DEFAULT_REGION = "us-east-1"
API_VERSION = "2025-09-18"

Engine = Literal["dynamodb-local", "moto"]
#: botocore service ids (as used in AWS_ENDPOINT_URL_<ID>) served by moto.
MOTO_SERVICES = ("SECRETS_MANAGER", "S3", "SQS", "SNS", "EVENTBRIDGE", "SCHEDULER")
SecretValue = str | Mapping[str, Any]


def _encode_secret(value: SecretValue) -> str:
    """A plain string is stored as is (an API key); a mapping as JSON (``{"api_key"}`` or deployment key)."""
    return value if isinstance(value, str) else json.dumps(dict(value))


class LocalStack(LocalService):
    """Start with ``start()`` or ``with``; everything binds 127.0.0.1 and is stopped by ``stop()``."""

    def __init__(
        self,
        *,
        table_name: str = DEFAULT_TABLE,
        secret_name: str = DEFAULT_SECRET,
        secret_value: SecretValue | None = None,
        api_keys: tuple[str, ...] = (DEFAULT_API_KEY,),
        deployment_keys: tuple[tuple[str, str], ...] = (),
        region: str = DEFAULT_REGION,
        api_version: str = API_VERSION,
        dynamodb: Literal["auto", "dynamodb-local", "moto"] = "auto",
        dynamodb_local_root: Path | None = None,
    ) -> None:
        """``secret_value`` defaults to the fake's first API key (plain string).

        ``dynamodb="auto"`` uses DynamoDB Local and falls back to moto only when
        Java or the jar is missing and ``CI`` is not ``true``; "dynamodb-local"
        never falls back; "moto" skips DynamoDB Local on purpose.
        ``dynamodb_local_root`` is where ``node_modules/`` is looked for (default: the repository).
        """
        if secret_value is None and not api_keys:
            raise ValueError("secret_value is required when there are no api_keys")
        self.table_name = table_name
        self.secret_name = secret_name
        self.initial_secret: str = _encode_secret(secret_value if secret_value is not None else api_keys[0])
        self.region = region
        self.api_version = api_version
        self.dynamodb_mode = dynamodb
        self.dynamodb_local_root = dynamodb_local_root
        self.fake = FakePolytomic(api_keys=api_keys, deployment_keys=deployment_keys)
        self.moto = MotoServer()
        self.dynamodb_local: DynamoDBLocal | None = None
        self.dynamodb_engine: Engine | None = None
        self.dynamodb_endpoint: str | None = None
        self._current_secret: str | None = None
        self._exit: ExitStack | None = None
        self._own: dict[str, Any] = {}  # the stack's own clients (reset runs between every two tests)
        self.dead_letter_queue_url = ""  # the stack's DeadLetterQueue: where a trigger function parks an event
        self.dispatch_queue_url = ""  # the DispatchQueue: deferred and debounced starts wait there
        self.dispatch_dead_letter_queue_url = ""  # where the dispatcher parks a message

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        if self._exit is not None:
            raise RuntimeError("the local stack is already running")
        with ExitStack() as stack:  # stops whatever started if a later step fails
            stack.enter_context(self.moto)
            self._start_dynamodb(stack)
            stack.enter_context(self.fake)
            self.create_table()
            self.put_secret(self.initial_secret)
            sqs = self.client("sqs")
            self.dead_letter_queue_url = sqs.create_queue(QueueName="polytrigger-dead-letters")["QueueUrl"]
            self.dispatch_dead_letter_queue_url = sqs.create_queue(QueueName="polytrigger-dispatch-dlq")["QueueUrl"]
            self.dispatch_queue_url = sqs.create_queue(QueueName="polytrigger-dispatch")["QueueUrl"]
            self._exit = stack.pop_all()
        return self

    def _start_dynamodb(self, stack: ExitStack) -> None:
        if self.dynamodb_mode != "moto":
            try:
                self.dynamodb_local = stack.enter_context(DynamoDBLocal(self.dynamodb_local_root, region=self.region))
                self.dynamodb_engine, self.dynamodb_endpoint = "dynamodb-local", self.dynamodb_local.endpoint_url
                return
            except DynamoDBLocalUnavailable as missing:
                if self.dynamodb_mode == "dynamodb-local":
                    raise
                self.dynamodb_endpoint = moto_dynamodb_fallback(self.moto.endpoint_url, missing)
        self.dynamodb_engine, self.dynamodb_endpoint = "moto", self.moto.endpoint_url

    def stop(self) -> None:
        exit_stack, self._exit = self._exit, None
        if exit_stack is not None:
            exit_stack.close()
        self.dynamodb_local = None
        self.dynamodb_engine = self.dynamodb_endpoint = None
        self._current_secret = None
        self._own.clear()

    @property
    def running(self) -> bool:
        return self._exit is not None

    # -- environment ----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment variables that point the handlers (and plain boto3) at this stack."""
        if self.dynamodb_endpoint is None:
            raise RuntimeError("the local stack is not running")
        moto = self.moto.endpoint_url
        return {
            "AWS_ENDPOINT_URL": moto,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
            **{f"AWS_ENDPOINT_URL_{service}": moto for service in MOTO_SERVICES},
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "POLYTOMIC_SECRET_ID": self.secret_name,
            "POLYTOMIC_BASE_URL": self.fake.url,
            "POLYTOMIC_API_VERSION": self.api_version,
            "IDEMPOTENCY_TABLE": self.table_name,
            "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue_url,
            "DISPATCH_QUEUE_URL": self.dispatch_queue_url,
            "DISPATCH_DEAD_LETTER_QUEUE_URL": self.dispatch_dead_letter_queue_url,
            "POWERTOOLS_SERVICE_NAME": "polytrigger",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "Polytrigger",
        }

    @contextlib.contextmanager
    def environ(self, **overrides: str) -> Iterator[dict[str, str]]:
        """Apply ``env()`` (plus overrides) to ``os.environ``; restore the previous values on exit.

        ``AWS_PROFILE`` is hidden meanwhile so a developer's profile cannot leak in.
        """
        values = {**self.env(), **overrides}
        hidden = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
        saved = {name: os.environ.get(name) for name in (*values, *hidden)}
        for name in hidden:
            os.environ.pop(name, None)
        os.environ.update(values)
        try:
            yield values
        finally:
            for name, old in saved.items():
                if old is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = old

    # -- AWS clients (explicit endpoints: they do not depend on os.environ) ----------------

    def _client_kwargs(self, endpoint: str) -> dict[str, Any]:
        config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
        return {"endpoint_url": endpoint, "region_name": self.region, "config": config, **DUMMY_CREDENTIALS}

    def dynamodb_client(self) -> DynamoDBClient:
        if self.dynamodb_endpoint is None:
            raise RuntimeError("the local stack is not running")
        return boto3.client("dynamodb", **self._client_kwargs(self.dynamodb_endpoint))

    def secrets_client(self) -> SecretsManagerClient:
        return boto3.client("secretsmanager", **self._client_kwargs(self.moto.endpoint_url))

    def client(self, service: str) -> Any:
        """A boto3 client for any moto-served service (``s3``, ``sqs``, ``sns``, ``events``, ``scheduler``...)."""
        if service == "dynamodb":
            return self.dynamodb_client()
        return boto3.client(service, **self._client_kwargs(self.moto.endpoint_url))  # type: ignore[call-overload]

    def _client(self, service: str) -> Any:
        """A client the stack keeps for its own housekeeping (boto3 clients are thread-safe; making one costs ms)."""
        if service not in self._own:
            self._own[service] = self.client(service)
        return self._own[service]

    # -- resources ------------------------------------------------------------------------

    def create_table(self) -> None:
        """The idempotency table as template.yaml defines it: ``id`` (S) hash key, the ``due`` and ``by_sync`` indexes, on demand,
        TTL ``expiration``."""
        ddb = self.dynamodb_client()
        with contextlib.suppress(ddb.exceptions.ResourceInUseException):
            ddb.create_table(
                TableName=self.table_name,
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": "S"}
                    for name in ("id", "due_in", "due_at", "sync_key", "covers_from")
                ],
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "due",
                        "KeySchema": [
                            {"AttributeName": "due_in", "KeyType": "HASH"},
                            {"AttributeName": "due_at", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    },
                    {
                        "IndexName": "by_sync",
                        "KeySchema": [
                            {"AttributeName": "sync_key", "KeyType": "HASH"},
                            {"AttributeName": "covers_from", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    },
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        ddb.get_waiter("table_exists").wait(TableName=self.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        ttl = ddb.describe_time_to_live(TableName=self.table_name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(
                TableName=self.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
            )

    def clear_table(self) -> int:
        """Delete every item of the idempotency table (between tests), 25 a request; returns how many."""
        ddb = self._client("dynamodb")
        deleted = 0
        for page in ddb.get_paginator("scan").paginate(TableName=self.table_name, ProjectionExpression="id"):
            items = page.get("Items", [])
            for start in range(0, len(items), 25):
                requests: list[Any] = [
                    {"DeleteRequest": {"Key": {"id": item["id"]}}} for item in items[start : start + 25]
                ]
                while requests:  # what DynamoDB did not get to is handed back: send it again
                    answer = ddb.batch_write_item(RequestItems={self.table_name: requests})
                    requests = answer.get("UnprocessedItems", {}).get(self.table_name, [])
            deleted += len(items)
        return deleted

    def table_items(self) -> list[dict[str, Any]]:
        """Every item of the idempotency table, in DynamoDB's JSON form (for assertions)."""
        ddb = self.dynamodb_client()
        items: list[dict[str, Any]] = []
        for page in ddb.get_paginator("scan").paginate(TableName=self.table_name):
            items.extend(page.get("Items", []))
        return items

    def put_secret(self, value: SecretValue) -> str:
        """Create the secret, or store a new current version (key rotation); returns the version id."""
        encoded = _encode_secret(value)
        secrets = self.secrets_client()
        try:
            version = secrets.put_secret_value(SecretId=self.secret_name, SecretString=encoded)["VersionId"]
        except secrets.exceptions.ResourceNotFoundException:
            version = secrets.create_secret(Name=self.secret_name, SecretString=encoded)["VersionId"]
        self._current_secret = encoded
        return version

    def secret_value(self) -> str:
        """The secret's current value as Secrets Manager returns it."""
        return self.secrets_client().get_secret_value(SecretId=self.secret_name)["SecretString"]

    def parked_events(self) -> list[dict[str, Any]]:
        """Take every message from the dead-letter queue (the records a trigger function parked)."""
        return [json.loads(body) for body in self.take(self.dead_letter_queue_url)]

    def take(self, queue_url: str) -> list[str]:
        """Receive and delete every message of a queue: their bodies (drained, not purged: SQS allows one
        purge a minute)."""
        sqs = self.client("sqs")
        taken: list[str] = []
        while True:
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = answer.get("Messages", [])
            if not messages:
                return taken
            for message in messages:
                taken.append(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def empty(self, queue_url: str) -> None:
        """Empty a queue (between tests): purged, or drained when SQS refuses a second purge within a minute."""
        sqs = self._client("sqs")
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        found = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
        if not any(int(found.get(name, "0")) for name in names):
            return
        try:
            sqs.purge_queue(QueueUrl=queue_url)
        except sqs.exceptions.PurgeQueueInProgress:
            self.take(queue_url)

    def reset(self) -> None:
        """Between tests: fresh fake, empty table and queues, the initial secret back (if it changed)."""
        self.fake.reset()
        self.clear_table()
        for url in (self.dead_letter_queue_url, self.dispatch_queue_url, self.dispatch_dead_letter_queue_url):
            if url:
                self.empty(url)
        if self._current_secret != self.initial_secret:
            self.put_secret(self.initial_secret)
