"""Polytomic's webhook, behind a Lambda Function URL (payload format 2.0): `flows.on_webhook_delivery`."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger import bootstrap
from polytrigger.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    status, message = bootstrap.webhook().delivery(
        event, function_arn=context.invoked_function_arn, request_id=context.aws_request_id
    )
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": message}),
    }
