"""A CloudFormation custom resource request for the route wiring, read strictly, and its answer, delivered.

CloudFormation waits (up to an hour) for an answer at the request's ResponseURL, so every request
that names one gets one, SUCCESS or FAILED with a reason a person can act on, whatever went wrong:
a PUT of the response document to the request's pre-signed S3 URL, retried a few times.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import urllib3
from urllib3.util import parse_url

from polytrigger.core.keys import is_loopback
from polytrigger.route_wiring.plan import MAX_ANSWER_BYTES
from polytrigger.route_wiring.schedule_group import Target

RequestType = Literal["Create", "Update", "Delete"]
FALLBACK_ID = "polytrigger-route-wiring"  # a Create so malformed it names no logical id either
ATTEMPTS = 4  # answer deliveries tried: a lost answer leaves the stack waiting for an hour
ANSWER_TIMEOUT = 10.0  # seconds, each attempt
ANSWER_PAUSE = 1.0  # seconds before the second attempt, doubling
# The longest one answer can take (every attempt timing out, and the pauses between): what a function
# that must answer keeps of its own time.
ANSWER_SECONDS = ATTEMPTS * ANSWER_TIMEOUT + sum(ANSWER_PAUSE * 2**n for n in range(ATTEMPTS - 1))
_VERSION_ARN = re.compile(r"^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+):(\d+)$")
_GROUP = re.compile(r"^[0-9A-Za-z._-]{1,64}$")


class UnanswerableRequest(ValueError):
    """No ResponseURL that may be answered: nothing to tell CloudFormation, only a log line."""


class BadRequest(ValueError):
    """A request that names where to answer but not what to do; answered FAILED with this message."""


@dataclass(frozen=True, slots=True)
class WiringRequest:
    kind: RequestType
    response_url: str
    stack_id: str
    request_id: str
    logical_id: str
    physical_id: str  # the schedule group, once the resource exists
    group: str
    target: Target
    code_version: str  # ARN of the function version whose bundled routes this deploy applies


def answer_url(event: Any) -> tuple[str, Mapping[str, Any]]:
    """The ResponseURL (https, or http on this machine for the local stack) and the event as a mapping.

    Read with urllib3's parser, the one `send` uses, and refused when the standard library reads it
    differently (`http://a:1\\@127.0.0.1/` is 127.0.0.1 to one, `a` to the other): the host checked is
    the host called. A pre-signed S3 URL never carries a user name, so one that does is refused too.
    """
    if not isinstance(event, Mapping):
        raise UnanswerableRequest("not a CloudFormation custom resource request (not a JSON object)")
    url = event.get("ResponseURL")
    sent, other = _read(url, parse_url), _read(url, urlsplit)
    if sent is None or other is None or not sent[1]:
        raise UnanswerableRequest("not a CloudFormation custom resource request (no ResponseURL)")
    if sent[:3] != other[:3]:
        raise UnanswerableRequest("ResponseURL is read two ways (scheme, host or port differ); not answered")
    if sent[3] or other[3]:
        raise UnanswerableRequest("ResponseURL must not carry a user name; not answered")
    scheme, host = sent[:2]
    if scheme != "https" and not (scheme == "http" and is_loopback(host)):
        raise UnanswerableRequest("ResponseURL must be https (http only on this machine); not answered")
    return str(url), event


def _read(url: Any, parser: Callable[[str], Any]) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, port, user name) as `parser` reads `url`: lowercased, IPv6 without brackets; None if unreadable."""
    if not isinstance(url, str):
        return None
    try:
        parts = parser(url)
        port = parts.port
    except ValueError:  # urllib3's LocationParseError is a ValueError too
        return None
    host = (getattr(parts, "hostname", None) or getattr(parts, "host", None) or "").lower().strip("[]")
    user = parts.auth if hasattr(parts, "auth") else parts.username
    return (parts.scheme or "").lower(), host, port, user or ""


def parse_request(event: Any) -> WiringRequest:
    url, raw = answer_url(event)
    kind = raw.get("RequestType")
    if kind not in ("Create", "Update", "Delete"):
        raise BadRequest(f"RequestType must be Create, Update or Delete (got {str(kind)[:40]!r})")
    properties = raw.get("ResourceProperties")
    if not isinstance(properties, Mapping):
        raise BadRequest("ResourceProperties missing")
    group = _text(properties, "ScheduleGroup")
    if not _GROUP.fullmatch(group):
        raise BadRequest(f"ResourceProperties.ScheduleGroup is not a schedule group name (got {group[:80]!r})")
    state = _text(properties, "State") or "ENABLED"
    if state not in ("ENABLED", "DISABLED"):
        raise BadRequest(f"ResourceProperties.State must be ENABLED or DISABLED (got {state[:20]!r})")
    version = _text(properties, "CodeVersion")
    if not _VERSION_ARN.fullmatch(version):
        raise BadRequest("ResourceProperties.CodeVersion must be the ARN of a published version of the wiring function")
    return WiringRequest(
        kind=kind,
        response_url=url,
        stack_id=_text(raw, "StackId"),
        request_id=_text(raw, "RequestId"),
        logical_id=_text(raw, "LogicalResourceId"),
        physical_id=_text(raw, "PhysicalResourceId"),
        group=group,
        target=Target(
            function_arn=_text(properties, "TargetArn"),
            role_arn=_text(properties, "RoleArn"),
            dead_letter_arn=_text(properties, "DeadLetterArn"),
            state=state,
            deadline_arn=_text(properties, "DeadlineTargetArn"),
            reconcile_arn=_text(properties, "ReconcileTargetArn"),
        ),
        code_version=version,
    )


def _text(mapping: Mapping[str, Any], name: str) -> str:
    value = mapping.get(name, "")
    return value if isinstance(value, str) else ""


def same_function(version_arn: str, invoked_arn: str) -> bool:
    """True when `version_arn` is a version of the function `invoked_arn` names (qualified or not)."""
    match = _VERSION_ARN.fullmatch(version_arn)
    return match is not None and invoked_arn.split(":")[:7] == match.group(1).split(":")


def response(
    event: Mapping[str, Any], *, ok: bool, reason: str, physical_id: str, data: Mapping[str, str] | None = None
) -> bytes:
    """The answer CloudFormation reads from the ResponseURL, within its 4 kB (the reason is cut first).

    An Update or Delete is always answered with the request's own PhysicalResourceId: a different one
    tells CloudFormation the resource was replaced, and its Delete of the old id would empty the group.
    """
    document: dict[str, Any] = {
        "Status": "SUCCESS" if ok else "FAILED",
        "Reason": reason,
        "PhysicalResourceId": _own_id(event) or physical_id or _text(event, "LogicalResourceId") or FALLBACK_ID,
        "StackId": _text(event, "StackId"),
        "RequestId": _text(event, "RequestId"),
        "LogicalResourceId": _text(event, "LogicalResourceId"),
        "NoEcho": False,
        "Data": dict(data or {}),
    }
    body = json.dumps(document).encode()
    if len(body) > MAX_ANSWER_BYTES:
        spare = len(reason.encode()) - (len(body) - MAX_ANSWER_BYTES) - 3
        document["Reason"] = reason.encode()[: max(0, spare)].decode(errors="ignore") + "..."
        body = json.dumps(document).encode()
    if len(body) > MAX_ANSWER_BYTES and data:  # the routes' checks keep Data short: never sent too long
        too_long = f"route wiring: its answer would be {len(body)} bytes, over CloudFormation's {MAX_ANSWER_BYTES}"
        return response(event, ok=False, reason=too_long, physical_id=physical_id)
    return body


def _own_id(event: Mapping[str, Any]) -> str:
    """The PhysicalResourceId an Update or Delete names (CloudFormation always sends one); "" for a Create."""
    return _text(event, "PhysicalResourceId") if event.get("RequestType") in ("Update", "Delete") else ""


class AnswerFailed(RuntimeError):
    """The answer could not be delivered; CloudFormation will time the resource out (and say so)."""


def send(url: str, body: bytes, *, timeout: float = ANSWER_TIMEOUT, pause: float = ANSWER_PAUSE) -> None:
    """PUT `body` to `url`, retrying a few times: a lost answer leaves the stack waiting for an hour."""
    http = urllib3.PoolManager(retries=False, cert_reqs="CERT_REQUIRED")
    # The URL is signed without a content type: sending one would break its signature.
    headers = {"Content-Type": "", "Content-Length": str(len(body))}
    problem = ""
    for attempt in range(ATTEMPTS):
        try:
            answer = http.request("PUT", url, body=body, headers=headers, timeout=timeout, redirect=False)
        except urllib3.exceptions.HTTPError as error:
            problem = type(error).__name__
        else:
            if 200 <= answer.status < 300:
                return
            problem = f"HTTP {answer.status}"
        if attempt + 1 < ATTEMPTS:
            time.sleep(pause * 2**attempt)
    raise AnswerFailed(f"CloudFormation's ResponseURL did not take the answer ({problem}, {ATTEMPTS} attempts)")
