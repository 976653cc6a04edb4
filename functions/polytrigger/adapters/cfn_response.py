"""Answering CloudFormation: a PUT of the response document to the request's pre-signed S3 URL."""

from __future__ import annotations

import time

import urllib3

ATTEMPTS = 4


class AnswerFailed(RuntimeError):
    """The answer could not be delivered; CloudFormation will time the resource out (and say so)."""


def send(url: str, body: bytes, *, timeout: float = 10.0, pause: float = 1.0) -> None:
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
