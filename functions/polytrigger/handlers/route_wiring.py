"""The route wiring custom resource, at deploy time: `flows.on_wiring_request`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger import bootstrap
from polytrigger.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    arn = getattr(context, "invoked_function_arn", "") or ""
    return bootstrap.route_wiring().request(event, arn, getattr(context, "get_remaining_time_in_millis", None))
