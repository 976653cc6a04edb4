"""The S3 objects a gate reads: its manifests (read when they land, and again for a timeout report)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from polytrigger.gating.manifests import MAX_MANIFEST_BYTES, ManifestError
from polytrigger.gating.requests import GatesUnavailable
from polytrigger.observability import error_code

# What a retry cannot fix: the object is gone, or the function may not read it (a person must act).
FOR_GOOD = {"NoSuchKey", "NoSuchBucket", "AccessDenied", "403", "404", "InvalidObjectState"}


class S3Objects:
    def __init__(self, client: Callable[[], Any]) -> None:
        self.client = client  # made on first use: only gates with a manifest read objects

    def read(self, bucket: str, key: str) -> bytes:
        """The object's first bytes (one more than a manifest may have, so a longer one is refused)."""
        try:
            answer = self.client().get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{MAX_MANIFEST_BYTES}")
            return bytes(answer["Body"].read())
        except ClientError as error:
            code = error_code(error)
            if code in FOR_GOOD:
                hint = ": the functions' role needs s3:GetObject on it" if code in {"AccessDenied", "403"} else ""
                raise ManifestError(f"could not be read ({code}{hint})") from None
            raise GatesUnavailable(f"the manifest could not be read: {code}") from None
        except BotoCoreError as error:
            raise GatesUnavailable(f"the manifest could not be read: {error_code(error)}") from None
