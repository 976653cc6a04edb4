"""The route wiring custom resource: on every deploy, the schedules and buckets the bundled routes name.

Which routes: those of the function version the request names (`CodeVersion`, published by this
deploy). CloudFormation always calls the unqualified function, which holds the newest code; during
a rollback the request names the previous version, so it is forwarded there, and the previous
routes' schedules are put back by the previous code. A Delete needs no routes and is done here.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from polytrigger.adapters.aws import client_config, error_line
from polytrigger.adapters.cfn_response import AnswerFailed, send
from polytrigger.adapters.scheduler import SchedulerGroup
from polytrigger.adapters.versions import hand_to_version
from polytrigger.routing import Routes, RoutesError, load_routes
from polytrigger.runtime.config import BUNDLED_ROUTES
from polytrigger.runtime.observability import logger
from polytrigger.wiring.apply import WiringRefused, apply
from polytrigger.wiring.request import (
    BadRequest,
    UnanswerableRequest,
    WiringRequest,
    answer_url,
    parse_request,
    response,
    same_function,
)


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    try:
        url, raw = answer_url(event)
    except UnanswerableRequest as error:
        logger.error(f"route wiring: {error}")
        return {"answered": False}
    try:
        request = parse_request(raw)
    except BadRequest as error:
        # A Delete of what a bad request never made must not strand the stack in DELETE_FAILED.
        deleting = raw.get("RequestType") == "Delete"
        return _answer(url, raw, ok=deleting, reason=f"route wiring request refused: {error}", physical_id="")
    invoked = getattr(context, "invoked_function_arn", "") or ""
    if request.kind != "Delete" and invoked != request.code_version:
        return _forward(url, raw, request, invoked)
    return _wire(url, raw, request)


def _wire(url: str, raw: Any, request: WiringRequest) -> dict[str, Any]:
    import boto3  # the wiring function's own clients: it needs neither DynamoDB nor the secret

    group = SchedulerGroup(boto3.client("scheduler", config=client_config()), request.group)
    try:
        # A Delete needs no routes: a stack whose routes file is broken must still be deletable.
        routes = (
            Routes(()) if request.kind == "Delete" else load_routes(os.environ.get("ROUTES_FILE") or BUNDLED_ROUTES)
        )
        applied = apply(request, routes, group)
    except (RoutesError, WiringRefused) as error:
        return _answer(url, raw, ok=False, reason=f"routes cannot be wired: {error}", physical_id=request.group)
    except Exception as error:  # CloudFormation would wait an hour for an answer that never comes
        logger.exception("route wiring failed")
        reason = error_line(error) if hasattr(error, "response") else f"internal error: {type(error).__name__}"
        return _answer(url, raw, ok=False, reason=f"route wiring failed: {reason}", physical_id=request.group)
    logger.info(
        f"route wiring {request.kind}: {applied.summary}",
        extra={"schedule_group": request.group, "wiring": applied.data},
    )
    return _answer(url, raw, ok=True, reason=applied.summary, physical_id=applied.physical_id, data=applied.data)


def _forward(url: str, raw: Any, request: WiringRequest, invoked: str) -> dict[str, Any]:
    """Hand the request to the version it names, which answers it; answer FAILED only if that cannot run."""
    if not same_function(request.code_version, invoked):
        reason = "route wiring request refused: CodeVersion names a version of another function"
        return _answer(url, raw, ok=False, reason=reason, physical_id=request.group)
    problem = hand_to_version(request.code_version, raw)
    if problem:
        return _answer(url, raw, ok=False, reason=f"route wiring {problem}", physical_id=request.group)
    logger.info(f"route wiring {request.kind} handed to version {request.code_version.rsplit(':', 1)[-1]}")
    return {"answered": True, "forwarded": request.code_version}


def _answer(
    url: str, raw: Any, *, ok: bool, reason: str, physical_id: str, data: dict[str, str] | None = None
) -> dict[str, Any]:
    if not ok:
        logger.error(reason)
    body = response(raw, ok=ok, reason=reason, physical_id=physical_id, data=data)
    try:
        send(url, body)
    except AnswerFailed as error:
        logger.error(str(error))
        return {"answered": False, "status": "SUCCESS" if ok else "FAILED"}
    return {"answered": True, "status": "SUCCESS" if ok else "FAILED"}
