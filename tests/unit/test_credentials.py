"""parse_secret: the three secret formats, and errors that never quote the key."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from polytrigger.polytomic.contract import CredentialsError
from polytrigger.polytomic.credentials import Credentials, parse_secret

KEY = "pk_live_S3CRETkeyMaterial0123456789"
ORG = "c0ffee00-1234-4abc-8def-0123456789ab"
DEPLOYMENT_KEY = "dk-SECRETdeploymentKey-987654321"


def test_a_plain_string_is_an_api_key_sent_as_bearer() -> None:
    credentials = parse_secret(KEY)
    assert credentials.authorization == f"Bearer {KEY}"
    assert credentials.scheme == "api_key"


def test_a_plain_key_is_trimmed() -> None:
    assert parse_secret(f"  {KEY}\n").authorization == f"Bearer {KEY}"


def test_bytes_are_accepted() -> None:
    assert parse_secret(KEY.encode()).authorization == f"Bearer {KEY}"


def test_api_key_json() -> None:
    credentials = parse_secret(json.dumps({"api_key": KEY}))
    assert credentials.authorization == f"Bearer {KEY}"
    assert credentials.scheme == "api_key"


def test_api_key_json_with_extra_fields_and_whitespace() -> None:
    text = "\n  " + json.dumps({"api_key": f" {KEY} ", "note": "rotated 2026-11"}) + "  \n"
    assert parse_secret(text).authorization == f"Bearer {KEY}"


def test_deployment_key_is_basic_with_organisation_then_key() -> None:
    credentials = parse_secret(json.dumps({"deployment_key": DEPLOYMENT_KEY, "organization_id": ORG}))
    scheme, _, token = credentials.authorization.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token, validate=True).decode() == f"{ORG}:{DEPLOYMENT_KEY}"
    assert credentials.scheme == "deployment_key"


def test_deployment_key_values_are_trimmed() -> None:
    credentials = parse_secret(json.dumps({"deployment_key": f" {DEPLOYMENT_KEY} ", "organization_id": f" {ORG} "}))
    token = credentials.authorization.removeprefix("Basic ")
    assert base64.b64decode(token).decode() == f"{ORG}:{DEPLOYMENT_KEY}"


MALFORMED: list[tuple[Any, str]] = [
    ("", "the Polytomic secret is empty or not a string"),
    ("   \n", "the Polytomic secret is empty or not a string"),
    (None, "the Polytomic secret is empty or not a string"),
    (12345, "the Polytomic secret is empty or not a string"),
    ({"api_key": KEY}, "the Polytomic secret is empty or not a string"),  # a dict, not the secret text
    (
        f"{KEY} {KEY}",
        "the Polytomic secret (a plain API key) contains whitespace, a non-printable or a non-ASCII character",
    ),
    (
        f"{KEY}\x00",
        "the Polytomic secret (a plain API key) contains whitespace, a non-printable or a non-ASCII character",
    ),
    (
        f"Bearer {KEY}",
        "the Polytomic secret (a plain API key) contains whitespace, a non-printable or a non-ASCII character",
    ),
    (f"{{api_key: {KEY}}}", "the Polytomic secret starts with '{' but is not valid JSON"),
    (json.dumps({"api_key": KEY})[:-1], "the Polytomic secret starts with '{' but is not valid JSON"),
    (json.dumps({"api_key": ""}), 'the Polytomic secret field "api_key" must be a non-empty string'),
    (json.dumps({"api_key": "  "}), 'the Polytomic secret field "api_key" must be a non-empty string'),
    (json.dumps({"api_key": None}), 'the Polytomic secret field "api_key" must be a non-empty string'),
    (json.dumps({"api_key": [KEY]}), 'the Polytomic secret field "api_key" must be a non-empty string'),
    (
        json.dumps({"api_key": f"{KEY}\t{KEY}"}),
        'the Polytomic secret field "api_key" contains whitespace, a non-printable or a non-ASCII character',
    ),
    (json.dumps({"deployment_key": DEPLOYMENT_KEY}), '"organization_id" must be an organisation UUID'),
    (json.dumps({"organization_id": ORG}), 'the Polytomic secret field "deployment_key" must be a non-empty string'),
    (
        json.dumps({"deployment_key": "", "organization_id": ORG}),
        'the Polytomic secret field "deployment_key" must be a non-empty string',
    ),
    (
        json.dumps({"deployment_key": DEPLOYMENT_KEY, "organization_id": "acme"}),
        'the Polytomic secret field "organization_id" must be an organisation UUID',
    ),
    (
        json.dumps({"deployment_key": DEPLOYMENT_KEY, "organization_id": 42}),
        'the Polytomic secret field "organization_id" must be an organisation UUID',
    ),
    (
        json.dumps({"token": KEY, "org": ORG}),
        'the Polytomic secret JSON needs "api_key" or "deployment_key" + "organization_id" (it has 2 other fields)',
    ),
    (
        json.dumps({"S3CRET-as-a-name": KEY}),
        'the Polytomic secret JSON needs "api_key" or "deployment_key" + "organization_id" (it has 1 other field)',
    ),
    ("{}", 'the Polytomic secret JSON needs "api_key" or "deployment_key" + "organization_id" (it has no fields)'),
]


@pytest.mark.parametrize(("secret", "expected"), MALFORMED)
def test_malformed_secrets_raise_without_quoting_the_key(secret: Any, expected: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        parse_secret(secret)
    message = str(caught.value)
    assert expected in message
    for material in (KEY, DEPLOYMENT_KEY, "S3CRET", "SECRET"):
        assert material not in message
        assert material not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


@pytest.mark.parametrize(
    "secret",
    [KEY, json.dumps({"api_key": KEY}), json.dumps({"deployment_key": DEPLOYMENT_KEY, "organization_id": ORG})],
)
def test_repr_and_str_never_contain_the_key(secret: str) -> None:
    credentials = parse_secret(secret)
    basic_token = credentials.authorization.split(" ", 1)[1]
    for text in (repr(credentials), str(credentials), f"{credentials}", f"{credentials!r}", repr([credentials])):
        assert KEY not in text
        assert DEPLOYMENT_KEY not in text
        assert basic_token not in text
    assert str(credentials) == f"Credentials({credentials.scheme})"


def test_credentials_are_immutable() -> None:
    credentials = Credentials(scheme="api_key", authorization=f"Bearer {KEY}")
    with pytest.raises(AttributeError):
        credentials.authorization = "Bearer other"  # type: ignore[misc]


# -- characters a header cannot carry -------------------------------------------------------------
# urllib3 encodes header values as latin-1: U+200B raised UnicodeEncodeError at request time, and
# a non-breaking space or a tab would have gone out inside the key. Refused when the secret is read.

UNSAFE = "contains whitespace, a non-printable or a non-ASCII character"
INVISIBLE = {"zero-width space": "\u200b", "no-break space": "\u00a0", "emoji": "\U0001f511", "tab": "\t"}


def _inside(text: str, character: str) -> str:
    return text[:10] + character + text[10:]


def _secrets(character: str) -> dict[str, tuple[str, str]]:
    """Each format with `character` inside one value: (secret text, the field the message names)."""
    deployment = {"deployment_key": DEPLOYMENT_KEY, "organization_id": ORG}
    return {
        "plain": (_inside(KEY, character), "the Polytomic secret (a plain API key)"),
        "api_key": (json.dumps({"api_key": _inside(KEY, character)}), 'the Polytomic secret field "api_key"'),
        "api_key raw": (
            json.dumps({"api_key": _inside(KEY, character)}, ensure_ascii=False),
            'the Polytomic secret field "api_key"',
        ),
        "deployment_key": (
            json.dumps({**deployment, "deployment_key": _inside(DEPLOYMENT_KEY, character)}, ensure_ascii=False),
            'the Polytomic secret field "deployment_key"',
        ),
        "organization_id": (
            json.dumps({**deployment, "organization_id": _inside(ORG, character)}, ensure_ascii=False),
            'the Polytomic secret field "organization_id"',
        ),
        "organization_id at the end": (
            json.dumps({**deployment, "organization_id": ORG + character}),
            'the Polytomic secret field "organization_id"',
        ),
        "key at the end": (json.dumps({"api_key": KEY + character}), 'the Polytomic secret field "api_key"'),
    }


CASES = [
    (name, form)
    for name in INVISIBLE
    for form in _secrets("x")
    if not (name == "tab" and form.endswith("at the end"))  # ASCII whitespace around a value is trimmed
]


@pytest.mark.parametrize(("name", "form"), CASES)
def test_a_character_a_header_cannot_carry_is_refused_naming_the_field_not_the_value(name: str, form: str) -> None:
    character = INVISIBLE[name]
    secret, field = _secrets(character)[form]
    with pytest.raises(CredentialsError) as caught:
        parse_secret(secret)
    message = str(caught.value)
    assert message == f"{field} {UNSAFE} (a key is ASCII letters, digits and punctuation)"
    for shown in (message, repr(caught.value)):
        for material in (KEY, DEPLOYMENT_KEY, ORG, KEY[:10], DEPLOYMENT_KEY[:10], ORG[:10], character):
            assert material not in shown
        assert repr(character).strip("'") not in shown  # nor its escape


@pytest.mark.parametrize("character", ["\u200b", "\u00a0", "\ufeff", "\u2028", "\x7f", "\xe9"])
def test_a_plain_key_is_not_trimmed_of_non_ascii_characters(character: str) -> None:
    """Only ASCII whitespace around a value is trimmed: anything else is reported, not silently dropped."""
    for secret in (KEY + character, character + KEY, json.dumps({"api_key": KEY + character})):
        with pytest.raises(CredentialsError, match=UNSAFE):
            parse_secret(secret)


def test_ascii_whitespace_around_a_value_is_trimmed() -> None:
    deployment = {"deployment_key": f"\t{DEPLOYMENT_KEY}\r\n", "organization_id": f"{ORG}\t"}
    token = parse_secret(json.dumps(deployment)).authorization.removeprefix("Basic ")
    assert base64.b64decode(token).decode() == f"{ORG}:{DEPLOYMENT_KEY}"
    assert parse_secret(json.dumps({"api_key": f"{KEY}\t"})).authorization == f"Bearer {KEY}"


def test_every_printable_ascii_character_is_accepted_in_a_key() -> None:
    key = "".join(chr(code) for code in range(0x21, 0x7F))
    assert parse_secret(json.dumps({"api_key": key})).authorization == f"Bearer {key}"
