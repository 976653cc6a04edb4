"""Polytomic credentials from Secrets Manager, cached per container by Powertools Parameters.

The key itself never reaches a log line, an exception message or a repr.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from polytrigger.adapters.aws import error_code
from polytrigger.core.keys import is_uuid
from polytrigger.dispatch.ports import CredentialsError


@dataclass(frozen=True, slots=True)
class Credentials:
    scheme: str  # "api_key" or "deployment_key": safe to log
    authorization: str = field(repr=False)

    def __str__(self) -> str:
        return f"Credentials({self.scheme})"


def parse_secret(value: Any) -> Credentials:
    """Accept the three documented formats: a plain key, {"api_key"}, {"deployment_key", "organization_id"}."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str) or not value.strip():
        raise CredentialsError("the Polytomic secret is empty or not a string")
    text = value.strip()
    if not text.startswith("{"):
        return _bearer(text)
    try:
        document = json.loads(text)
    except ValueError:
        raise CredentialsError("the Polytomic secret starts with '{' but is not valid JSON") from None
    if not isinstance(document, dict):
        raise CredentialsError("the Polytomic secret JSON must be an object")
    if "api_key" in document:
        key = document["api_key"]
        if not isinstance(key, str) or not key.strip():
            raise CredentialsError('the Polytomic secret field "api_key" must be a non-empty string')
        return _bearer(key.strip())
    if "deployment_key" in document or "organization_id" in document:
        key, organization = document.get("deployment_key"), document.get("organization_id")
        if not isinstance(key, str) or not key.strip():
            raise CredentialsError('the Polytomic secret field "deployment_key" must be a non-empty string')
        if not isinstance(organization, str) or not is_uuid(organization.strip()):
            raise CredentialsError('the Polytomic secret field "organization_id" must be an organisation UUID')
        token = base64.b64encode(f"{organization.strip()}:{key.strip()}".encode()).decode("ascii")
        return Credentials(scheme="deployment_key", authorization=f"Basic {token}")
    fields = ", ".join(sorted(map(str, document))) or "none"
    raise CredentialsError(
        f'the Polytomic secret JSON needs "api_key" or "deployment_key" + "organization_id" (fields found: {fields})'
    )


def _bearer(key: str) -> Credentials:
    if any(ch.isspace() or ord(ch) < 32 for ch in key):
        raise CredentialsError("the Polytomic API key in the secret contains whitespace or control characters")
    return Credentials(scheme="api_key", authorization=f"Bearer {key}")


class SecretCredentials:
    """Reads the secret through Powertools Parameters; `refresh=True` bypasses the cache (after a 401).

    The provider (and its cache) belongs to this object, so it lives as long as the container's App.
    """

    def __init__(self, secret_id: str, max_age: int, client: Any) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self.secret_id = secret_id
        self.max_age = max_age
        self._provider = SecretsProvider(boto3_client=client)

    def __call__(self, refresh: bool = False) -> Credentials:
        from aws_lambda_powertools.utilities.parameters import GetParameterError

        try:
            value = self._provider.get(self.secret_id, max_age=self.max_age, force_fetch=refresh)
        except GetParameterError as error:
            raise CredentialsError(
                f"cannot read the Polytomic secret {self.secret_id!r} from Secrets Manager: {_cause(error)}"
            ) from None
        return parse_secret(value)


def _cause(error: BaseException) -> str:
    """The AWS error code of a failed read: enough to act on, never the value."""
    cause = error.__cause__ or error.__context__
    return error_code(cause) if cause is not None else "unknown error"
