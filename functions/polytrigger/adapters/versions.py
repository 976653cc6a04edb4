"""Running a published version of this very function: how the route wiring hands a rollback to its own code."""

from __future__ import annotations

import json
from typing import Any

from polytrigger.adapters.aws import error_line


def hand_to_version(version_arn: str, event: Any) -> str:
    """Invoke `version_arn` with `event` and wait for it; "" when it ran, else why it did not (one line)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    # Waits as long as the version may run (it answers CloudFormation itself); never sent twice by a retry.
    config = Config(connect_timeout=5, read_timeout=900, retries={"mode": "standard", "max_attempts": 1})
    try:
        result = boto3.client("lambda", config=config).invoke(
            FunctionName=version_arn, Payload=json.dumps(event).encode()
        )
    except (BotoCoreError, ClientError) as error:
        return f"could not run its version: {error_line(error)}"
    if result.get("FunctionError"):
        return f"its version {version_arn.rsplit(':', 1)[-1]} failed ({result['FunctionError']})"
    return ""
