"""The `DedupStore` port on Powertools Idempotency: one DynamoDB record per action.

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
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.core.outcomes import Outcome
from polytrigger.dispatch.ports import DedupBusy, DedupUnavailable
from polytrigger.observability import error_code

KEY_PREFIX = "polytrigger"


class _NotRemembered(Exception):
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


class PowertoolsDedup:
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
            boto3_client=boto3_client,  # bootstrap.client_config: fails fast when the table is unreachable
        )
        self._idempotent = idempotent_function(
            _settle,
            data_keyword_argument="request",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=KEY_PREFIX,
        )

    def once(self, key: str, perform: Callable[[], Outcome]) -> Outcome:
        """At most once per key: an action's dedup key, or a queued message's id."""
        called: list[bool] = []
        done: list[Outcome] = []

        def performed() -> Outcome:
            called.append(True)
            done.append(perform())
            return done[-1]

        try:
            stored = self._idempotent(request={"dedup_key": key}, perform=performed)
        except _NotRemembered as signal:
            return signal.outcome
        except IdempotencyAlreadyInProgressError:
            raise DedupBusy(key) from None
        except IdempotencyPersistenceLayerError as error:  # before the call, or saving its outcome after it
            raise DedupUnavailable(_first_line(error), called=bool(called)) from None
        return done[-1] if done else Outcome.from_dict(stored)  # this call's own outcome keeps what is not stored

    def next_attempt(self, key: str) -> int:
        """Count fresh attempts of one action (after a replayed 500), atomically, in the dedup table."""
        update = "ADD attempts :one SET expiration = :expiration"
        return int(self._update_attempts(key, update, {":one": {"N": "1"}}, "attempts"))

    def first_sent(self, key: str, sent: float) -> float:
        """When the first request with this key went out (kept on the attempts record: one item per action)."""
        update = "SET first_sent = if_not_exists(first_sent, :sent), expiration = :expiration"
        return float(self._update_attempts(key, update, {":sent": {"N": repr(sent)}}, "first_sent"))

    def _update_attempts(self, key: str, update: str, values: dict[str, Any], read: str) -> str:
        """Update the action's attempts record atomically (`update` renews its `:expiration`), read one number back."""
        expiration = int(time.time()) + self.config.expires_after_seconds
        try:
            answer = self.persistence.client.update_item(
                TableName=self.persistence.table_name,
                Key={"id": {"S": f"{KEY_PREFIX}#{key}#attempts"}},
                UpdateExpression=update,
                ExpressionAttributeValues={**values, ":expiration": {"N": str(expiration)}},
                ReturnValues="UPDATED_NEW",
            )
        except (BotoCoreError, ClientError) as error:
            raise DedupUnavailable(error_code(error)) from None
        return str(answer["Attributes"][read]["N"])

    def register(self, context: LambdaContext | None) -> None:
        """A timed-out invocation's in-progress record expires with it, so its retry is not blocked."""
        if context is not None:
            self.config.register_lambda_context(context)

    def prepare(self) -> None:
        """Configure the persistence layer on this thread, before any fan-out thread can race to.

        Powertools configures it inside every idempotent call, and its first `configure` sets
        `configured = True` before the JMESPath key expression: a second thread in that gap would
        hash the whole request and write a record under another key. Configuring it here first
        makes every later `configure` a no-op (it only re-assigns the same prefix).
        """
        if not self.persistence.configured:
            self.persistence.configure(self.config, key_prefix=KEY_PREFIX)


def _settle(request: dict[str, str], perform: Callable[[], Outcome]) -> dict[str, Any]:
    outcome = perform()
    if outcome.status == "failed":
        raise _NotRemembered(outcome)
    return outcome.to_dict()


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__
