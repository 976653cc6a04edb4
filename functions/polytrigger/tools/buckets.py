"""`validate --check-buckets`: which buckets the routes name would never send polytrigger an event.

An S3 bucket sends object events to EventBridge only once its "Amazon EventBridge" notifications
are on; the stack cannot turn them on (the bucket is not its own, and the S3 call that does it
replaces the bucket's other notification settings), so this says which are off, with AWS credentials.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

TURN_ON = (
    "aws s3api get-bucket-notification-configuration --bucket {bucket} > notification.json; add"
    ' "EventBridgeConfiguration": {{}} to it; aws s3api put-bucket-notification-configuration'
    " --bucket {bucket} --notification-configuration file://notification.json"
)


@dataclass(frozen=True, slots=True)
class BucketCheck:
    bucket: str
    on: bool
    problem: str = ""  # why it could not be read (NoSuchBucket, AccessDenied, ...)

    def describe(self) -> str:
        if self.on:
            return f"bucket {self.bucket}: EventBridge notifications on"
        if self.problem:
            return f"bucket {self.bucket}: cannot be checked ({self.problem})"
        return (
            f"bucket {self.bucket}: EventBridge notifications OFF, so no upload reaches polytrigger; turn them on: "
            + (TURN_ON.format(bucket=self.bucket))
        )


def check_buckets(s3: Any, buckets: Iterable[str]) -> list[BucketCheck]:
    """Each bucket's EventBridge notifications: on, off, or why they could not be read."""
    from botocore.exceptions import ClientError

    checks: list[BucketCheck] = []
    for bucket in buckets:
        try:
            configuration = s3.get_bucket_notification_configuration(Bucket=bucket)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            checks.append(BucketCheck(bucket, on=False, problem=str(code)))
            continue
        checks.append(BucketCheck(bucket, on="EventBridgeConfiguration" in configuration))
    return checks
