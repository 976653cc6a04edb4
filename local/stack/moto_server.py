"""moto in server mode on 127.0.0.1, in a thread of this process.

Why server mode rather than ``mock_aws``: the handlers, Powertools and the
tests reach it over HTTP through ``AWS_ENDPOINT_URL_*`` exactly as they would
reach AWS, so nothing is patched. One server answers every service moto
implements (Secrets Manager, S3, SQS, SNS, EventBridge, Scheduler, and
DynamoDB when DynamoDB Local is unavailable).

Two gaps are closed here, where moto departs from AWS in a way polytrigger depends on: S3's
GetBucketNotificationConfiguration leaves out the ``EventBridgeConfiguration`` moto itself stored
(`polytrigger validate --check-buckets` reads exactly that), and the Scheduler's UpdateSchedule
ignores ``ActionAfterCompletion``, which AWS sets like every other field (to its default when left
out: the route wiring relies on that to put a hand edit back). ``_answer_eventbridge_configuration``
and ``_update_action_after_completion`` close them, and touch nothing else.

Caveats: moto's backends are process-global, so this server shares state with
any ``mock_aws`` used in the same process (and ``mock_aws`` intercepts boto3
calls, including those meant for this server, while it is active).
"""

from __future__ import annotations

import contextlib
import logging
import urllib.request
from typing import Any, Self

from moto.core.responses import ActionResult
from moto.s3.responses import S3Response
from moto.scheduler.responses import EventBridgeSchedulerResponse
from moto.server import ThreadedMotoServer

from local.service import LocalService


class MotoServer(LocalService):
    """``ThreadedMotoServer`` bound to loopback; ``port=0`` (default) lets the OS pick a free port."""

    def __init__(self, port: int = 0, *, quiet: bool = True) -> None:
        """``quiet`` raises the ``werkzeug`` logger to WARNING: no line per request on stderr."""
        self.requested_port = port
        self.quiet = quiet
        self.port: int | None = None
        self._server: ThreadedMotoServer | None = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the moto server is not running")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the moto server is already running")
        if self.quiet:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        _answer_eventbridge_configuration()
        _update_action_after_completion()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.requested_port, verbose=False)
        server.start()
        self._server = server
        self.port = server.get_host_and_port()[1]
        return self

    def reset(self) -> None:
        """Wipe every moto backend (all services, all accounts) through moto's own API."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310 -- loopback http
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def stop(self) -> None:
        """Stop serving and close the listening socket (ThreadedMotoServer.stop leaves it open)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        wsgi = server._server  # the werkzeug server; stop() only shuts its loop down
        if wsgi is not None:
            with contextlib.suppress(OSError):
                wsgi.server_close()
        self.port = None

    @property
    def running(self) -> bool:
        return self._server is not None


def _answer_eventbridge_configuration() -> None:
    """Make S3's GetBucketNotificationConfiguration answer the EventBridgeConfiguration moto stored, as AWS does."""
    original = S3Response.get_bucket_notification
    if getattr(original, "answers_eventbridge", False):
        return

    def get_bucket_notification(self: S3Response) -> Any:
        configuration = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if configuration is None or configuration.event_bridge is None:
            return original(self)
        serialized = self.serialized

        def with_eventbridge(result: Any) -> Any:
            if isinstance(result, ActionResult) and isinstance(result.result, dict):
                result = ActionResult({**result.result, "EventBridgeConfiguration": {}})
            return serialized(result)

        self.serialized = with_eventbridge
        try:
            return original(self)
        finally:
            del self.serialized

    get_bucket_notification.answers_eventbridge = True  # type: ignore[attr-defined]
    S3Response.get_bucket_notification = get_bucket_notification


def _update_action_after_completion() -> None:
    """Make the Scheduler's UpdateSchedule set ActionAfterCompletion (absent: the default), as AWS does."""
    original = EventBridgeSchedulerResponse.update_schedule
    if getattr(original, "sets_action_after_completion", False):
        return

    def update_schedule(self: EventBridgeSchedulerResponse) -> str:
        answer: str = original(self)
        name = self.uri.split("?")[0].split("/")[-1]
        schedule = self.scheduler_backend.get_schedule(self._get_param("GroupName"), name)
        schedule.action_after_completion = self._get_param("ActionAfterCompletion")
        return answer

    update_schedule.sets_action_after_completion = True  # type: ignore[attr-defined]
    EventBridgeSchedulerResponse.update_schedule = update_schedule
