"""A Polytomic webhook delivery through a Lambda Function URL: the body as sent, and whether Polytomic signed it.

Polytomic signs a delivery with the webhook's secret, as an HMAC of the body in `Polytomic-Signature`;
its hash and encoding are not documented, so HMAC-SHA256 is accepted in hex or base64 (a setting
narrows it), compared in constant time. The body is checked exactly as it came (base64-decoded when
the Function URL says so), before anything reads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Literal

SIGNATURE_HEADER = "polytomic-signature"  # Function URLs lower-case header names; matched case-insensitively anyway
Encoding = Literal["hex", "base64", "either"]
ENCODINGS: tuple[Encoding, ...] = ("hex", "base64", "either")
MAX_BODY_BYTES = 256 * 1024


class NotADelivery(ValueError):
    """Not a Function URL request carrying a body to check (answered 400, nothing read)."""


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
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise NotADelivery("the body is not valid base64") from None
    else:
        raw = body.encode("utf-8")
    if len(raw) > MAX_BODY_BYTES:
        raise NotADelivery(f"the body is over {MAX_BODY_BYTES} bytes")
    return raw, signature.strip()


def signed(body: bytes, signature: str, secret: str, encoding: Encoding = "either") -> bool:
    """True when `signature` is HMAC-SHA256(secret, body) in the accepted encoding(s); constant time."""
    if not signature or not secret:
        return False
    given = signature.split("=", 1)[1] if signature.lower().startswith("sha256=") else signature
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    # Hex in either case; base64 exactly. Both are compared whenever both are accepted (no early exit).
    matches = []
    if encoding in ("hex", "either"):
        matches.append(hmac.compare_digest(given.lower().encode("utf-8", "replace"), digest.hex().encode()))
    if encoding in ("base64", "either"):
        matches.append(hmac.compare_digest(given.encode("utf-8", "replace"), base64.b64encode(digest)))
    return any(matches)
