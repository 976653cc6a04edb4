"""A Polytomic webhook delivery through a Lambda Function URL: the body as sent, and whether Polytomic signed it.

Polytomic signs a delivery with the webhook's secret, as an HMAC of the body in `Polytomic-Signature`;
its hash and encoding are not documented, so HMAC-SHA256 is accepted in hex or base64 (a setting
narrows it), compared in constant time. The body is checked exactly as it came (base64-decoded when
the Function URL says so), before anything reads it. A body over MAX_BODY_BYTES is refused before
its signature is checked (nobody gets megabytes hashed); what a signed body too large to hand on
means is the flow's to say.

What a forged request costs is bounded: a header of no shape an HMAC-SHA256 can take (`well_formed`)
is refused before the secret is read or anything hashed, and a signature that does not verify reads
the secret again (`SigningSecrets.reread`) at most once every REREAD_EVERY seconds, however many come.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import string
from collections.abc import Callable, Mapping
from typing import Any, Literal

SIGNATURE_HEADER = "polytomic-signature"  # Function URLs lower-case header names; matched case-insensitively anyway
Encoding = Literal["hex", "base64", "either"]
ENCODINGS: tuple[Encoding, ...] = ("hex", "base64", "either")
MAX_BODY_BYTES = 1024 * 1024  # far above any event Polytomic sends; refused unread above it
REREAD_EVERY = 120  # seconds: a signature that does not verify reads the secret again at most this often
PREVIOUS_FOR = 3600  # seconds: a secret replaced by a new one still verifies this long (retries signed with it)
_HEX_DIGITS = frozenset(string.hexdigits)
_BASE64_DIGITS = frozenset(string.ascii_letters + string.digits + "+/")


class NotADelivery(ValueError):
    """Not a Function URL request carrying a body to check (answered 400, nothing read)."""


class TooLarge(NotADelivery):
    """A body over MAX_BODY_BYTES (answered 413, its signature unchecked)."""


def delivery(event: Any) -> tuple[bytes, str]:
    """The body's bytes as sent, and the signature header ("" when there is none)."""
    if not isinstance(event, Mapping) or "requestContext" not in event:
        raise NotADelivery("not a Lambda Function URL request")
    headers = event.get("headers") or {}
    signature = ""
    if isinstance(headers, Mapping):
        signature = next((str(v) for k, v in headers.items() if str(k).lower() == SIGNATURE_HEADER), "")
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise NotADelivery("the body is not text")
    too_large = TooLarge(f"the body is over {MAX_BODY_BYTES} bytes")
    if event.get("isBase64Encoded"):
        if len(body) > 4 * (MAX_BODY_BYTES // 3 + 1):  # told before decoding it
            raise too_large
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise NotADelivery("the body is not valid base64") from None
    else:
        raw = body.encode("utf-8")
    if len(raw) > MAX_BODY_BYTES:
        raise too_large
    return raw, signature.strip()


def _digest(signature: str) -> str:
    """The signature without its optional `sha256=` prefix."""
    return signature.split("=", 1)[1] if signature.lower().startswith("sha256=") else signature


def well_formed(signature: str, encoding: Encoding = "either") -> bool:
    """Could be HMAC-SHA256 in the accepted encoding(s): 64 hex digits, or 44 base64 characters ending in one `=`.

    Cheap and read-free: what fails here is refused before the secret is read or the body hashed.
    """
    given = _digest(signature)
    as_hex = len(given) == 64 and set(given) <= _HEX_DIGITS
    as_base64 = len(given) == 44 and given[43] == "=" and set(given[:43]) <= _BASE64_DIGITS
    return (as_hex and encoding != "base64") or (as_base64 and encoding != "hex")


def signed(body: bytes, signature: str, secret: str, encoding: Encoding = "either") -> bool:
    """True when `signature` is HMAC-SHA256(secret, body) in the accepted encoding(s); constant time."""
    if not signature or not secret:
        return False
    given = _digest(signature)
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    # Hex in either case; base64 exactly. Both are compared whenever both are accepted (no early exit).
    matches = []
    if encoding in ("hex", "either"):
        matches.append(hmac.compare_digest(given.lower().encode("utf-8", "replace"), digest.hex().encode()))
    if encoding in ("base64", "either"):
        matches.append(hmac.compare_digest(given.encode("utf-8", "replace"), base64.b64encode(digest)))
    return any(matches)


class SigningSecrets:
    """The webhook's signing secret, and the one it replaced for PREVIOUS_FOR seconds after the change was seen.

    `read(force)` gives the secret: cached by the reader (Powertools Parameters' max_age) unless
    `force`. A rotation is seen either way: when the cache expires, or when a signature that does not
    verify makes `reread` read past the cache, which it does at most once every REREAD_EVERY seconds
    of `clock`, so a flood of forged signatures costs one read, not one each.
    """

    def __init__(
        self,
        read: Callable[[bool], str],
        clock: Callable[[], float],
        *,
        reread_every: float = REREAD_EVERY,
        previous_for: float = PREVIOUS_FOR,
    ) -> None:
        self._read = read
        self._clock = clock
        self._reread_every = reread_every
        self._previous_for = previous_for
        self._current = ""
        self._previous = ""
        self._previous_until = -math.inf
        self._next_reread = -math.inf

    def accepted(self) -> tuple[str, ...]:
        """The current secret, and the previous one while it is still accepted."""
        self._see(self._read(False))
        if self._previous and self._clock() < self._previous_until:
            return self._current, self._previous
        return (self._current,)

    def reread(self) -> bool:
        """Read the secret past the cache unless that was done under REREAD_EVERY ago; True when it changed."""
        now = self._clock()
        if now < self._next_reread:
            return False
        self._next_reread = now + self._reread_every  # before reading: a failing read is not retried per request
        return self._see(self._read(True))

    def _see(self, value: str) -> bool:
        if value == self._current:
            return False
        if self._current:
            self._previous, self._previous_until = self._current, self._clock() + self._previous_for
        self._current = value
        return True
