"""Exactly-once actions with Powertools Idempotency, one DynamoDB record per action.

The record key is `polytrigger#<dedup key>`, and the dedup key is also the Idempotency-Key sent
to Polytomic, so an operator can go from a log line to the record and to Polytomic's own replay.
Only actions that reached a settled answer are remembered: a failed action's record is removed,
so a retry (by AWS, or a re-drive) does it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.actions import Action, Outcome

KEY_PREFIX = "polytrigger"


class NotRemembered(Exception):
    """Raised inside the idempotent call so Powertools deletes the record; carries the outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason or outcome.status)
        self.outcome = outcome


class _DedupKeyPersistence(DynamoDBPersistenceLayer):
    """Use the action's dedup key (already a SHA-256 digest) as the record key, not a hash of it."""

    def _generate_hash(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        return str(super()._generate_hash(data))


def _as_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools returned a stored outcome instead of running the action: say so."""
    if isinstance(response, dict) and "status" in response:
        earlier = response.get("status")
        return {**response, "status": "duplicate", "reason": f"already {earlier} for this trigger"}
    return response


class Dedup:
    def __init__(self, table_name: str, ttl_seconds: int, *, boto3_client: Any) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="dedup_key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_seconds,
            response_hook=_as_duplicate,
        )
        self.persistence = _DedupKeyPersistence(
            table_name=table_name,
            key_attr="id",
            expiry_attr="expiration",
            boto3_client=boto3_client,  # polytrigger.aws: fails fast when the table is unreachable
        )
        self._once = idempotent_function(
            _run,
            data_keyword_argument="request",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=KEY_PREFIX,
        )

    def next_attempt(self, dedup_key: str) -> int:
        """Count fresh attempts of one action (after a replayed 500), atomically, in the dedup table."""
        expiration = int(time.time()) + self.config.expires_after_seconds
        answer = self.persistence.client.update_item(
            TableName=self.persistence.table_name,
            Key={"id": {"S": f"{KEY_PREFIX}#{dedup_key}#attempts"}},
            UpdateExpression="ADD attempts :one SET expiration = :expiration",
            ExpressionAttributeValues={":one": {"N": "1"}, ":expiration": {"N": str(expiration)}},
            ReturnValues="UPDATED_NEW",
        )
        return int(answer["Attributes"]["attempts"]["N"])

    def register(self, context: LambdaContext | None) -> None:
        """A timed-out invocation's in-progress record expires with it, so its retry is not blocked."""
        if context is not None:
            self.config.register_lambda_context(context)

    def once(self, action: Action, perform: Callable[[], Outcome]) -> Outcome:
        return self.once_key(action.dedup_key, perform)

    def once_key(self, key: str, perform: Callable[[], Outcome]) -> Outcome:
        """At most once per key: a queued message's own id, or an action's dedup key."""
        try:
            stored = self._once(request={"dedup_key": key}, perform=perform)
        except NotRemembered as signal:
            return signal.outcome
        return Outcome.from_dict(stored)


def _run(request: dict[str, str], perform: Callable[[], Outcome]) -> dict[str, Any]:
    outcome = perform()
    if outcome.status == "failed":
        raise NotRemembered(outcome)
    return outcome.to_dict()
