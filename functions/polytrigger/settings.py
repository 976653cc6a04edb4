"""Typed configuration, read once from the environment at cold start.

Every problem names its variable, so a bad deployment says exactly what to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from polytrigger.core.keys import is_loopback

API_VERSIONS = ("2025-09-18", "2024-02-08", "2023-04-25", "2022-12-12", "2021-05-23")
# Syncs of one invocation called at once: 20 puts a 20-sync event's calls in one wave (the wall
# time of about one call). 1 = one by one, in route order.
DEFAULT_CONCURRENCY = 20
MAX_CONCURRENCY = 32
N = TypeVar("N", int, float)
BUNDLED_ROUTES = Path(__file__).resolve().parents[1] / "routes.yaml"  # functions/routes.yaml


def routes_file(env: Mapping[str, str] | None = None) -> Path:
    """ROUTES_FILE, or the routes bundled with the code."""
    env = os.environ if env is None else env
    return Path(env.get("ROUTES_FILE") or BUNDLED_ROUTES)


def dedup_table(env: Mapping[str, str] | None = None) -> str:
    """IDEMPOTENCY_TABLE, or "" (the route wiring needs it only to record the routes it wired)."""
    env = os.environ if env is None else env
    return env.get("IDEMPOTENCY_TABLE", "").strip()


class ConfigError(ValueError):
    """Missing or invalid configuration; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    secret_id: str
    base_url: str
    api_version: str
    idempotency_table: str
    idempotency_ttl_seconds: int
    routes_file: Path
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    secret_max_age: int = 300
    dispatch_queue_url: str = ""  # deferred and debounced starts (required by the functions that start syncs)
    dispatch_dead_letter_queue_url: str = ""
    dead_letter_queue_url: str = ""  # where a trigger function parks an event a retry cannot fix
    deferral_max_age_seconds: int = 21600
    deferral_first_delay_seconds: int = 30
    polytomic_concurrency: int = DEFAULT_CONCURRENCY  # actions of one invocation run at once; 1 = one by one
    webhook_secret_id: str = ""  # the webhook receiver's secret (its string is the webhook secret)
    webhook_signature: str = "either"  # hex, base64 or either: Polytomic does not document its encoding
    run_reconcile_after_seconds: int = 900  # a run with no ending heard this long is looked up
    run_event_bus_name: str = ""  # hand every Polytomic event received on to this EventBridge bus

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            secret_id=_required(env, "POLYTOMIC_SECRET_ID"),
            base_url=_base_url(env.get("POLYTOMIC_BASE_URL", "https://app.polytomic.com")),
            api_version=_choice(env, "POLYTOMIC_API_VERSION", "2025-09-18", API_VERSIONS),
            idempotency_table=_required(env, "IDEMPOTENCY_TABLE"),
            idempotency_ttl_seconds=_int(env, "IDEMPOTENCY_TTL_SECONDS", 86400, minimum=60),
            routes_file=routes_file(env),
            connect_timeout=_float(env, "POLYTOMIC_CONNECT_TIMEOUT", 3.05),
            read_timeout=_float(env, "POLYTOMIC_READ_TIMEOUT", 10.0),
            secret_max_age=_int(env, "POLYTOMIC_SECRET_MAX_AGE", 300, minimum=0),
            dispatch_queue_url=env.get("DISPATCH_QUEUE_URL", "").strip(),
            dispatch_dead_letter_queue_url=env.get("DISPATCH_DEAD_LETTER_QUEUE_URL", "").strip(),
            dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL", "").strip(),
            deferral_max_age_seconds=_int(env, "DEFERRAL_MAX_AGE_SECONDS", 21600, minimum=60),
            deferral_first_delay_seconds=_int(env, "DEFERRAL_FIRST_DELAY_SECONDS", 30, minimum=1),
            polytomic_concurrency=_concurrency(env, "POLYTOMIC_CONCURRENCY"),
            webhook_secret_id=env.get("POLYTOMIC_WEBHOOK_SECRET_ID", "").strip(),
            webhook_signature=_choice(env, "WEBHOOK_SIGNATURE", "either", ("hex", "base64", "either")),
            run_reconcile_after_seconds=_int(env, "RUN_RECONCILE_AFTER_SECONDS", 900, minimum=60),
            run_event_bus_name=env.get("RUN_EVENT_BUS_NAME", "").strip(),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required but not set")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, "").strip() or default
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    value = _number(env, name, int, "a whole number of seconds")
    if value is None:
        return default
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum} (got {value})")
    return value


def _concurrency(env: Mapping[str, str], name: str) -> int:
    value = _number(env, name, int, "a whole number of parallel calls")
    if value is None:
        return DEFAULT_CONCURRENCY
    if not 1 <= value <= MAX_CONCURRENCY:
        raise ConfigError(f"{name} must be between 1 (one call at a time) and {MAX_CONCURRENCY} (got {value})")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, float, "a number of seconds")
    if value is None:
        return default
    if not 0 < value <= 900:
        raise ConfigError(f"{name} must be between 0 and 900 seconds (got {value})")
    return value


def _number(env: Mapping[str, str], name: str, kind: type[N], what: str) -> N | None:
    """The variable as a number of `kind`; None when unset or blank."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what} (got {raw!r})") from None


def _base_url(raw: str) -> str:
    value = raw.strip().rstrip("/") or "https://app.polytomic.com"
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ConfigError("POLYTOMIC_BASE_URL is not a valid URL") from None
    # checked first: the message below quotes the value, which must never echo a credential
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("POLYTOMIC_BASE_URL must not carry credentials, a query or a fragment")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"POLYTOMIC_BASE_URL must be an http(s) URL such as https://app.polytomic.com (got {raw!r})")
    # Every request carries the API key: over http anyone on the path reads it. Only a loopback
    # host (the local stack's fake Polytomic) never leaves the machine.
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            "POLYTOMIC_BASE_URL must use https; http is allowed only for a loopback host (the local stack)"
        )
    return value
