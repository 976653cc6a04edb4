"""The webhook's checks, pure: the body's hard cap, the read-free signature shape, the signing secrets across a rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polytrigger.events.function_url import (
    MAX_BODY_BYTES,
    PREVIOUS_FOR,
    REREAD_EVERY,
    SigningSecrets,
    TooLarge,
    delivery,
    signed,
    well_formed,
)


@pytest.mark.parametrize("encoded", [True, False], ids=["base64", "text"])
def test_a_body_over_the_hard_cap_is_refused_however_it_came(encoded: bool) -> None:
    def request(size: int) -> dict[str, object]:
        raw = b"x" * size
        body = base64.b64encode(raw).decode() if encoded else raw.decode()
        return {"requestContext": {}, "headers": {}, "body": body, "isBase64Encoded": encoded}

    assert len(delivery(request(MAX_BODY_BYTES))[0]) == MAX_BODY_BYTES
    with pytest.raises(TooLarge):
        delivery(request(MAX_BODY_BYTES + 1))


def signatures(body: bytes, secret: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "hex": digest.hex(),
        "HEX": digest.hex().upper(),
        "sha256=hex": f"sha256={digest.hex()}",
        "base64": base64.b64encode(digest).decode(),
        "sha256=base64": f"sha256={base64.b64encode(digest).decode()}",
    }


@given(body=st.binary(max_size=200), secret=st.text(min_size=1, max_size=40))
def test_every_signature_that_verifies_has_a_well_formed_shape(body: bytes, secret: str) -> None:
    """The shape check never refuses what `signed` would accept, under any encoding setting."""
    for signature in signatures(body, secret).values():
        for setting in ("hex", "base64", "either"):
            if signed(body, signature, secret, setting):
                assert well_formed(signature, setting), (signature, setting)


@pytest.mark.parametrize(
    ("form", "setting", "shaped"),
    [("hex", "base64", False), ("base64", "hex", False), ("hex", "hex", True), ("base64", "base64", True)],
)
def test_the_shape_follows_the_encoding_setting(form: str, setting: str, shaped: bool) -> None:
    assert well_formed(signatures(b"{}", "s")[form], setting) is shaped  # type: ignore[arg-type]


class Store:
    """A secret store: what the reader gives, and how often it was read past its cache."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.cached = value
        self.forced = 0

    def read(self, force: bool) -> str:
        if force:
            self.forced += 1
            self.cached = self.value
        return self.cached


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_rereads_are_bounded_and_a_rotation_keeps_the_previous_secret_a_while() -> None:
    store, clock = Store("old"), Clock()
    secrets = SigningSecrets(store.read, clock)
    assert secrets.accepted() == ("old",)

    assert secrets.reread() is False  # read, unchanged
    store.value = "new"
    assert [secrets.reread() for _ in range(50)] == [False] * 50  # not again within REREAD_EVERY
    assert store.forced == 1

    clock.now += REREAD_EVERY
    assert secrets.reread() is True
    assert secrets.accepted() == ("new", "old")
    clock.now += PREVIOUS_FOR
    assert secrets.accepted() == ("new",)
    assert store.forced == 2


def test_a_rotation_seen_when_the_cache_expires_keeps_the_previous_secret_too() -> None:
    store, clock = Store("old"), Clock()
    secrets = SigningSecrets(store.read, clock)
    secrets.accepted()
    store.cached = "new"  # the reader's cache expired and read the new version

    assert secrets.accepted() == ("new", "old")
    assert store.forced == 0


def test_a_failing_read_still_waits_for_the_next_turn() -> None:
    clock, calls = Clock(), []

    def unreachable(force: bool) -> str:
        calls.append(force)
        raise TimeoutError("Secrets Manager")

    secrets = SigningSecrets(unreachable, clock)
    with pytest.raises(TimeoutError):
        secrets.reread()
    assert secrets.reread() is False
    assert calls == [True]
