"""The Polytomic API over urllib3 (`contract.PolytomicApi`): start and (de)activate syncs, read their executions.

It knows nothing of routes or triggers. One urllib3 pool per container; TLS verified; connect
and read timeouts; transient answers retried a bounded number of times with capped exponential
backoff and full jitter, never past the caller's deadline. Errors come back typed, so callers
decide by meaning, not by status code.

A 2xx to a start or an (de)activation must say what was done (an execution id; the `active`
state asked for); otherwise it is `UnreadableAnswer`, so nothing is recorded as done on the
strength of a body nobody could read.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3

from polytrigger import __version__
from polytrigger.polytomic.contract import (
    AlreadyRunning,
    Execution,
    KeyInFlight,
    Rejected,
    ServerError,
    Throttled,
    Transient,
    Unauthorized,
    UnreadableAnswer,
    sync_path,
)
from polytrigger.polytomic.credentials import Credentials

_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,255}$")
REFUSED_KEY_SECONDS = 60.0  # how long a refused key is not sent again (the secret cache may still hold it)
SECRET_RECHECK_SECONDS = 10.0  # meanwhile, how often the secret is re-read to pick up a fix
TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})  # and every 5xx but 500, which is replayed (ServerError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter over a capped exponential; a server's Retry-After wins when it is longer."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        jittered = random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
        return max(jittered, retry_after or 0.0)


CredentialsProvider = Callable[[bool], Credentials]


@dataclass(frozen=True, slots=True)
class _Success:
    """A 2xx as read: the status, the payload (`data` unwrapped) and enough to say what was wrong with it.

    An empty or non-JSON body is kept apart from a JSON `null`, so an error can say which one
    came; only the body's length is kept, never its text (it could echo anything).
    """

    status: int
    data: Any
    size: int
    parsed: bool  # the body was JSON
    unwrapped: bool  # `data` came from inside {"data": ...}
    next_page: str = ""  # a paged list's `pagination.next_page_token`, if another page follows


def _http_pool(connections: int) -> urllib3.PoolManager:
    """One pool per container; `connections` per host, so every fan-out thread keeps its connection alive."""
    return urllib3.PoolManager(num_pools=4, maxsize=max(1, connections), retries=False, cert_reqs="CERT_REQUIRED")


class PolytomicClient:
    def __init__(
        self,
        base_url: str,
        api_version: str,
        credentials: CredentialsProvider,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        connections: int = 10,
        http: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self._credentials = credentials
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._retry = retry or RetryPolicy()
        self._http = http or _http_pool(connections)
        self._sleep = sleep
        self._clock = clock
        # Shared by the fan-out threads, under _auth_lock: the key refused even after a re-read
        # and until when, when the secret may be re-read next meanwhile, and the last re-read
        # after a 401 (the key that was refused, and when).
        self._auth_lock = threading.Lock()
        self._refused: tuple[str, float] | None = None
        self._recheck_at = 0.0
        self._reread: tuple[str, float] | None = None

    # -- operations -------------------------------------------------------------------------

    def start(
        self,
        sync_type: str,
        sync_id: str,
        body: dict[str, Any],
        *,
        idempotency_key: str,
        deadline: float | None = None,
    ) -> Execution:
        """The execution created; UnreadableAnswer when a 2xx names none (a start is never recorded on faith)."""
        payload = dict(body)
        if sync_type == "bulk":
            payload = self._bulk_body(payload)
        path = f"{sync_path(sync_type, sync_id)}/executions"
        answer = self._call("POST", path, payload, idempotency_key, deadline)
        return _execution(f"POST {path}", answer)

    def set_active(
        self,
        sync_type: str,
        sync_id: str,
        active: bool,
        *,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> bool:
        """`active`, once Polytomic's answer confirms it; UnreadableAnswer when a 2xx says anything else."""
        path = f"{sync_path(sync_type, sync_id)}/activate"
        answer = self._call("POST", path, {"active": active}, idempotency_key, deadline)
        _confirm_active(f"POST {path}", answer, active)
        return active

    def executions(self, sync_type: str, sync_id: str, *, deadline: float | None = None) -> list[dict[str, Any]]:
        """The sync's most recent executions, newest first (the first page is enough here)."""
        data = self.get(f"{sync_path(sync_type, sync_id)}/executions", deadline=deadline)
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    def active(self, sync_type: str, sync_id: str, *, deadline: float | None = None) -> bool | None:
        """The sync's `active` flag (`GET /api/syncs/{id}`): a paused sync, whatever a refusal says (None: unsaid)."""
        data = self.get(sync_path(sync_type, sync_id), deadline=deadline)
        flag = data.get("active") if isinstance(data, dict) else None
        return flag if isinstance(flag, bool) else None

    def get(self, path: str, *, deadline: float | None = None) -> Any:
        """A read's `data`, whatever its shape (callers check it; `reads` builds paths)."""
        return self._call("GET", path, None, None, deadline).data

    def get_page(self, path: str, *, deadline: float | None = None) -> tuple[Any, str]:
        """A paged read's `data` and the token of the next page ("" on the last)."""
        answer = self._call("GET", path, None, None, deadline)
        return answer.data, answer.next_page

    # -- plumbing ---------------------------------------------------------------------------

    def _bulk_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """Version 2025-09-18 takes `resync_mode` and rejects the old boolean `resync`; older ones the reverse."""
        if self.api_version >= "2025-09-18":
            if body.pop("resync", None) is True and "resync_mode" not in body:
                body["resync_mode"] = "resync"
        elif "resync_mode" in body:
            body["resync"] = body.pop("resync_mode") in ("resync", "rebuild")
        return body

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        idempotency_key: str | None,
        deadline: float | None,
    ) -> _Success:
        refused: str | None = None  # the key this call was refused with, once
        attempt = 0
        while True:
            credentials = self._usable_credentials(refused)
            try:
                answer = self._request(method, path, body, idempotency_key, credentials)
            except Unauthorized as error:
                if refused is not None:
                    with self._auth_lock:
                        self._refused = (credentials.authorization, self._clock() + REFUSED_KEY_SECONDS)
                    raise Unauthorized(f"{error} (still after re-reading the secret)", status=401) from None
                refused = credentials.authorization
                continue
            except (Transient, KeyInFlight) as error:
                attempt += 1
                if attempt >= self._retry.attempts:
                    raise
                pause = self._retry.delay(attempt, error.retry_after if isinstance(error, Transient) else None)
                if deadline is not None and self._clock() + pause >= deadline:
                    raise
                self._sleep(pause)
                continue
            return answer

    def _usable_credentials(self, refused: str | None) -> Credentials:
        """The credentials to send now; `refused` is the key this call was just refused with, if any.

        After a 401 the secret is re-read once, by whichever fan-out thread gets there first;
        the others, refused with the same key while they were in flight, use what it read.
        A key refused even after a fresh read is not sent again for a while, and the secret is
        re-read at most every SECRET_RECHECK_SECONDS meanwhile, so a fixed secret is picked up
        quickly without hammering Secrets Manager or Polytomic with a key known to be wrong.
        """
        with self._auth_lock:
            now = self._clock()
            last = self._reread
            shared = last is not None and last[0] == refused and now - last[1] < SECRET_RECHECK_SECONDS
            if refused is not None and not shared:
                self._reread = (refused, now)
                return self._credentials(True)  # the key may have been rotated: fetch it once more
            credentials = self._credentials(False)
            if self._refused is None:
                return credentials
            authorization, until = self._refused
            if credentials.authorization != authorization or now >= until:
                self._refused = None
                return credentials
            if now >= self._recheck_at:
                self._recheck_at = now + SECRET_RECHECK_SECONDS
                credentials = self._credentials(True)
                if credentials.authorization != authorization:
                    self._refused = None
                    return credentials
        raise Unauthorized(
            "Polytomic refused this key after the secret was re-read; not calling until the secret changes",
            status=401,
        )

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        idempotency_key: str | None,
        credentials: Credentials,
    ) -> _Success:
        headers = {
            "Authorization": credentials.authorization,
            "X-Polytomic-Version": self.api_version,
            "User-Agent": f"polytrigger/{__version__}",
            "Accept": "application/json",
        }
        encoded = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            encoded = json.dumps(body).encode("utf-8")
        if idempotency_key is not None:
            if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
                raise ValueError("an Idempotency-Key must be 8-255 letters, digits, '-' or '_'")
            headers["Idempotency-Key"] = idempotency_key
        try:
            response = self._http.request(
                method,
                self.base_url + path,
                body=encoded,
                headers=headers,
                timeout=self._timeout,
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as error:
            raise Transient(f"{method} {path}: no answer from Polytomic ({type(error).__name__})") from None
        return _answer(method, path, response)


def _answer(method: str, path: str, response: urllib3.BaseHTTPResponse) -> _Success:
    status = response.status
    parsed, document = _decode(response.data)
    if 200 <= status < 300:
        unwrapped = isinstance(document, dict) and "data" in document
        data = document["data"] if unwrapped else document
        paging = document.get("pagination") if isinstance(document, dict) else None
        token = paging.get("next_page_token") if isinstance(paging, dict) else None
        return _Success(status, data, len(response.data), parsed, unwrapped, token if isinstance(token, str) else "")
    message, key = _error_message(document, response.data)
    text = f"{method} {path}: Polytomic answered {status}: {message}"
    if status == 409:
        if "idempotency" in message.lower() or "idempotency" in (key or "").lower():
            raise KeyInFlight(text, status=status, key=key)
        raise AlreadyRunning(text, status=status, key=key)
    if status == 401:
        raise Unauthorized(text, status=status, key=key)
    if status == 500:
        raise ServerError(text, status=status, key=key)
    if status in TRANSIENT_STATUSES or status >= 500:
        kind = Throttled if status == 429 else Transient
        raise kind(text, status=status, key=key, retry_after=_retry_after(response.headers.get("Retry-After")))
    raise Rejected(text, status=status, key=key)  # any other answer: 4xx (or a redirect, never followed)


def _decode(raw: bytes) -> tuple[bool, Any]:
    """(whether the body is JSON, the document or None): a JSON `null` is told apart from no JSON at all."""
    if not raw:
        return False, None
    try:
        return True, json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False, None


def _error_message(document: Any, raw: bytes) -> tuple[str, str | None]:
    """Current versions send {status, message, key}; older ones {"error": {"message"}} or plain text."""
    if isinstance(document, dict):
        key = document.get("key") if isinstance(document.get("key"), str) else None
        for candidate in (document.get("message"), document.get("error"), document.get("errors")):
            if isinstance(candidate, str) and candidate:
                return candidate[:300], key
            if isinstance(candidate, dict) and isinstance(candidate.get("message"), str):
                return candidate["message"][:300], key
            if isinstance(candidate, list) and candidate:
                return "; ".join(str(item) for item in candidate)[:300], key
        return "no message", key
    text = raw.decode("utf-8", errors="replace").strip()
    return (text[:300] or "empty body"), None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return None


def _execution(request: str, answer: _Success) -> Execution:
    """The execution a start created; without an id to show for it, nothing may be recorded as started."""
    data = _object(request, answer, "started")
    execution_id = data.get("id")
    if execution_id is None:
        raise _unreadable(request, answer, 'the execution has no "id"', "started")
    if not isinstance(execution_id, str):
        raise _unreadable(request, answer, f'the execution\'s "id" is {_kind(execution_id)}, not a string', "started")
    if not execution_id:
        raise _unreadable(request, answer, 'the execution\'s "id" is empty', "started")
    created_at = data.get("created_at")
    return Execution(
        id=execution_id,
        status=str(data.get("status", "")),
        created_at=created_at if isinstance(created_at, str) else None,
    )


def _confirm_active(request: str, answer: _Success, asked: bool) -> None:
    """Polytomic answers the sync's `active` state: only the state asked for counts as done."""
    done = "activated" if asked else "paused"
    data = _object(request, answer, done)
    came = data.get("active")
    if came is asked:
        return
    # A boolean is shown as it came; anything else by its type only (the value could be anything).
    shown = json.dumps(came) if isinstance(came, bool) else _kind(came) if "active" in data else "missing"
    raise _unreadable(request, answer, f'"active" is {shown}, not {json.dumps(asked)} as asked', done)


def _object(request: str, answer: _Success, done: str) -> dict[str, Any]:
    """The payload of a 2xx that must be a JSON object; the error says what came instead (never the body)."""
    if isinstance(answer.data, dict):
        return answer.data
    if not answer.size:
        problem = "the body is empty"
    elif not answer.parsed:
        problem = f"the body is not JSON ({answer.size} bytes)"
    else:
        where = '"data"' if answer.unwrapped else "the body"
        problem = f"{where} is {_kind(answer.data)}, not an object"
    raise _unreadable(request, answer, problem, done)


def _unreadable(request: str, answer: _Success, problem: str, done: str) -> UnreadableAnswer:
    return UnreadableAnswer(
        f"{request}: Polytomic answered {answer.status} but {problem}: nothing is recorded as {done}",
        status=answer.status,
    )


_JSON_KINDS = ((bool, "boolean"), (int | float, "number"), (str, "string"), (list, "array"), (dict, "object"))


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words, for an error that must not quote the value."""
    return "a JSON " + next((name for kind, name in _JSON_KINDS if isinstance(value, kind)), "null")
