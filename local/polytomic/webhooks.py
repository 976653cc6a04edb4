"""Signed webhook deliveries of the fake Polytomic, with seeded faults.

What Polytomic documents, reproduced: one webhook per organisation; every
event is POSTed as its JSON body (the Event object, as ``GET /api/events``
shows it) with ``Polytomic-Signature``: an HMAC of the exact body bytes with
the secret. Deliveries are at most once per event, retried on a non-2xx answer
(up to ``max_retries`` more times, backing off), and unordered. The hash and
the encoding are undocumented: the fake signs HMAC-SHA256, hex by default or
base64, so a client that keeps the scheme a setting is tested with both.

What a test controls, reproducibly for a seed: ``drop`` (fraction never
delivered), ``duplicate`` (fraction delivered twice: what a client must
de-duplicate by event id although Polytomic says "at most once"), ``reorder``
(each batch shuffled), and *when* delivery happens: ``deliver`` is synchronous
and sends every event not yet handled; a background thread is optional.

Only loopback ``http://`` endpoints are accepted: the fake never sends a
request off this machine.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from local.polytomic.events import FakeEvent
from local.polytomic.records import iso

Encoding = Literal["hex", "base64"]
SIGNATURE_HEADER = "Polytomic-Signature"


def sign(body: bytes, secret: str, encoding: Encoding = "hex") -> str:
    """HMAC-SHA256 of ``body`` with ``secret``, hex or base64."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode("ascii")


def loopback_target(url: str) -> tuple[str, int, str]:
    """(address, port, path) of a loopback ``http://`` URL; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"webhook endpoint must be an http:// URL on loopback, not {url!r}")
    host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the fake only delivers webhooks to loopback addresses, not {parts.hostname!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host, parts.port or 80, path


@dataclass(frozen=True)
class Webhook:
    """The organisation's webhook subscription."""

    id: str
    endpoint: str
    secret: str
    encoding: Encoding
    created_at: dt.datetime
    disabled_at: dt.datetime | None = None

    def render(self, organization_id: str) -> dict[str, Any]:
        """The API's webhook object (SDK type ``Webhook``)."""
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "secret": self.secret,
            "organization_id": organization_id,
            "created_at": iso(self.created_at),
            "disabled": self.disabled_at is not None,
            "disabled_at": iso(self.disabled_at),
            "disabled_reason": "disabled through the API" if self.disabled_at else None,
        }


@dataclass(frozen=True)
class DeliverySettings:
    """Fault knobs, retry policy and signing; ``backoff`` doubles per retry (tiny by default: tests wait for it)."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: bool = False
    seed: int | None = None
    max_retries: int = 5
    backoff: float = 0.01
    timeout: float = 5.0
    encoding: Encoding = "hex"  # signature encoding of a webhook created through the API

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.max_retries < 0 or self.backoff < 0 or self.timeout <= 0:
            raise ValueError("max_retries and backoff must be >= 0, timeout > 0")
        if self.encoding not in ("hex", "base64"):
            raise ValueError(f"encoding must be 'hex' or 'base64', not {self.encoding!r}")


@dataclass(frozen=True)
class Delivery:
    """One event sent to the endpoint: every attempt's HTTP status (0: no answer), in order."""

    event_id: str
    event_type: str
    body: bytes
    signature: str
    statuses: tuple[int, ...]
    copy: int = 1  # 2 for the extra copy of a duplicated event

    @property
    def delivered(self) -> bool:
        return bool(self.statuses) and 200 <= self.statuses[-1] < 300


@dataclass(frozen=True)
class DeliveryReport:
    """What one ``deliver`` call did, in sending order."""

    deliveries: tuple[Delivery, ...] = ()
    dropped: tuple[str, ...] = ()  # event ids the drop knob swallowed: never sent
    skipped: tuple[str, ...] = ()  # event ids that arose while the webhook was disabled: never sent

    @property
    def delivered(self) -> list[str]:
        """Ids of the events that reached the endpoint with a 2xx (a duplicated one twice)."""
        return [d.event_id for d in self.deliveries if d.delivered]

    @property
    def failed(self) -> list[str]:
        """Ids of the events given up on after every retry."""
        return [d.event_id for d in self.deliveries if not d.delivered]

    @property
    def duplicated(self) -> list[str]:
        return [d.event_id for d in self.deliveries if d.copy > 1]

    @property
    def statuses(self) -> list[tuple[int, ...]]:
        return [d.statuses for d in self.deliveries]


@dataclass
class Webhooks:
    """The subscription, what has been handled, and the deliveries; thread-safe, one delivery at a time."""

    clock: Callable[[], dt.datetime]
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _deliver_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _halt: threading.Event = field(default_factory=threading.Event, repr=False)
    _webhook: Webhook | None = None
    _settings: DeliverySettings = field(default_factory=DeliverySettings)
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _handled: set[str] = field(default_factory=set, repr=False)
    _log: list[Delivery] = field(default_factory=list, repr=False)
    _thread: threading.Thread | None = None

    # -- the subscription ---------------------------------------------------------------

    @property
    def current(self) -> Webhook | None:
        with self._lock:
            return self._webhook

    def subscribe(
        self, endpoint: str, secret: str, encoding: Encoding | None = None, *, replace_existing: bool
    ) -> Webhook:
        """Create the webhook; only events from now on are delivered. FileExistsError if one exists."""
        loopback_target(endpoint)
        encoding = encoding or self._settings.encoding
        if encoding not in ("hex", "base64"):
            raise ValueError(f"encoding must be 'hex' or 'base64', not {encoding!r}")
        if not secret:
            raise ValueError("a webhook needs a secret")
        with self._lock:
            if self._webhook is not None and not replace_existing:
                raise FileExistsError(self._webhook.id)
            self._webhook = Webhook(str(uuid.uuid4()), endpoint, secret, encoding, self.clock())
            return self._webhook

    def update(self, webhook_id: str, endpoint: str | None = None, secret: str | None = None) -> Webhook | None:
        if endpoint is not None:
            loopback_target(endpoint)
        with self._lock:
            if self._webhook is None or self._webhook.id != webhook_id:
                return None
            current = self._webhook
            self._webhook = replace(current, endpoint=endpoint or current.endpoint, secret=secret or current.secret)
            return self._webhook

    def set_disabled(self, webhook_id: str, disabled: bool) -> Webhook | None:
        with self._lock:
            if self._webhook is None or self._webhook.id != webhook_id:
                return None
            if disabled != (self._webhook.disabled_at is not None):
                self._webhook = replace(self._webhook, disabled_at=self.clock() if disabled else None)
            return self._webhook

    def delete(self, webhook_id: str | None = None) -> bool:
        """Remove the webhook (``None``: whichever exists); whether there was one to remove."""
        with self._lock:
            if self._webhook is None or webhook_id not in (None, self._webhook.id):
                return False
            self._webhook = None
            return True

    def configure(self, settings: DeliverySettings) -> None:
        with self._lock:
            self._settings = settings
            self._rng = random.Random(settings.seed)

    # -- delivery -------------------------------------------------------------------------

    def deliver(self, events: Sequence[FakeEvent]) -> DeliveryReport:
        """Send every event not handled yet (created since the subscription) and return what happened.

        Each event is handled once: delivered, given up on after the retries, dropped
        by the ``drop`` knob or skipped while disabled; ``duplicate`` sends a second copy.
        """
        with self._deliver_lock:
            with self._lock:
                webhook, settings, rng = self._webhook, self._settings, self._rng
                if webhook is None:
                    return DeliveryReport()
                pending = [e for e in events if e.id not in self._handled and e.created_at >= webhook.created_at]
                self._handled.update(e.id for e in pending)
                if webhook.disabled_at is not None:
                    return DeliveryReport(skipped=tuple(e.id for e in pending))
                sends: list[tuple[FakeEvent, int]] = []
                dropped: list[str] = []
                for event in pending:  # both draws for every event: the sequence depends on the seed only
                    drop, duplicate = rng.random() < settings.drop, rng.random() < settings.duplicate
                    if drop:
                        dropped.append(event.id)
                        continue
                    sends.append((event, 1))
                    if duplicate:
                        sends.append((event, 2))
                if settings.reorder:
                    rng.shuffle(sends)
            deliveries = tuple(self._send(webhook, settings, event, copy) for event, copy in sends)
            with self._lock:
                self._log.extend(deliveries)
            return DeliveryReport(deliveries, tuple(dropped))

    def _send(self, webhook: Webhook, settings: DeliverySettings, event: FakeEvent, copy: int) -> Delivery:
        body = json.dumps(event.document, separators=(",", ":")).encode("utf-8")
        signature = sign(body, webhook.secret, webhook.encoding)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature, "User-Agent": "fake-polytomic"}
        target = loopback_target(webhook.endpoint)  # checked again: nothing ever leaves loopback
        statuses: list[int] = []
        for attempt in range(settings.max_retries + 1):
            if attempt and self._halt.wait(settings.backoff * 2 ** (attempt - 1)):
                break  # the fake is stopping
            statuses.append(_post(target, body, headers, settings.timeout))
            if 200 <= statuses[-1] < 300:
                break
        return Delivery(event.id, event.type, body, signature, tuple(statuses), copy)

    def log(self) -> list[Delivery]:
        with self._lock:
            return list(self._log)

    # -- background delivery --------------------------------------------------------------

    def start_auto(self, source: Callable[[], Sequence[FakeEvent]], interval: float) -> None:
        """Deliver every ``interval`` seconds in a background thread until ``stop_auto``."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.stop_auto()

        def run() -> None:
            while not self._halt.wait(interval):
                self.deliver(source())

        self._thread = threading.Thread(target=run, name="fake-polytomic-webhooks", daemon=True)
        self._thread.start()

    def stop_auto(self) -> None:
        """Stop the background thread (cutting its backoff short) and join it."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._halt.set()
            thread.join()
        self._halt.clear()

    def reset(self) -> None:
        self.stop_auto()
        with self._lock:
            self._webhook = None
            self._settings = DeliverySettings()
            self._rng = random.Random()
            self._handled.clear()
            self._log.clear()


def _post(target: tuple[str, int, str], body: bytes, headers: dict[str, str], timeout: float) -> int:
    host, port, path = target
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()
