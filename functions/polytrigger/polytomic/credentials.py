"""Polytomic credentials from Secrets Manager, cached per container by Powertools Parameters.

The key itself never reaches a log line, an exception message or a repr. Every value must be
printable ASCII without spaces (0x21-0x7E): it goes into an HTTP header, where urllib3 fails on
anything else at request time (U+200B raised UnicodeEncodeError) or sends it inside the key.
Only ASCII whitespace around a value is trimmed; any other stray character is reported, by field.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from polytrigger.core.keys import is_uuid
from polytrigger.observability import error_code
from polytrigger.polytomic.contract import CredentialsError

_ASCII_SPACE = " \t\n\r\x0b\x0c"  # str.strip() would also drop non-ASCII spaces, silently changing a key
_UNSAFE = (
    "contains whitespace, a non-printable or a non-ASCII character (a key is ASCII letters, digits and punctuation)"
)


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
    if not isinstance(value, str) or not value.strip(_ASCII_SPACE):
        raise CredentialsError("the Polytomic secret is empty or not a string")
    text = value.strip(_ASCII_SPACE)
    if not text.startswith("{"):
        return _bearer(_safe(text, "the Polytomic secret (a plain API key)"))
    try:
        document = json.loads(text)
    except ValueError:
        raise CredentialsError("the Polytomic secret starts with '{' but is not valid JSON") from None
    if not isinstance(document, dict):
        raise CredentialsError("the Polytomic secret JSON must be an object")
    if "api_key" in document:
        return _bearer(_field(document, "api_key"))
    if "deployment_key" in document or "organization_id" in document:
        key = _field(document, "deployment_key")
        organization = document.get("organization_id")
        if isinstance(organization, str):
            organization = _safe(organization.strip(_ASCII_SPACE), 'the Polytomic secret field "organization_id"')
        if not isinstance(organization, str) or not is_uuid(organization):
            raise CredentialsError('the Polytomic secret field "organization_id" must be an organisation UUID')
        token = base64.b64encode(f"{organization}:{key}".encode()).decode("ascii")
        return Credentials(scheme="deployment_key", authorization=f"Basic {token}")
    # Only how many fields: their names are chosen by whoever wrote the secret and may hold a key.
    count = len(document)
    found = "no fields" if not count else f"{count} other field{'s' if count > 1 else ''}"
    raise CredentialsError(
        f'the Polytomic secret JSON needs "api_key" or "deployment_key" + "organization_id" (it has {found})'
    )


def _field(document: dict[str, Any], name: str) -> str:
    """A key field of the JSON secret: a non-empty string of header-safe characters, trimmed."""
    value = document.get(name)
    if not isinstance(value, str) or not value.strip(_ASCII_SPACE):
        raise CredentialsError(f'the Polytomic secret field "{name}" must be a non-empty string')
    return _safe(value.strip(_ASCII_SPACE), f'the Polytomic secret field "{name}"')


def _safe(value: str, what: str) -> str:
    """`value` if every character is printable ASCII but space; the error names `what`, never the value."""
    if any(not "\x21" <= ch <= "\x7e" for ch in value):
        raise CredentialsError(f"{what} {_UNSAFE}")
    return value


def _bearer(key: str) -> Credentials:
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
