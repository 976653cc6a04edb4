"""Settings.from_env: required variables, defaults, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from polytrigger.settings import BUNDLED_ROUTES, ConfigError, Settings

REQUIRED = {"POLYTOMIC_SECRET_ID": "polytrigger/polytomic", "IDEMPOTENCY_TABLE": "polytrigger-idempotency"}


def settings(**extra: str) -> Settings:
    return Settings.from_env({**REQUIRED, **extra})


def config_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    return str(caught.value)


def test_defaults() -> None:
    result = settings()
    assert result.secret_id == "polytrigger/polytomic"
    assert result.idempotency_table == "polytrigger-idempotency"
    assert result.base_url == "https://app.polytomic.com"
    assert result.api_version == "2025-09-18"
    assert result.idempotency_ttl_seconds == 86400
    assert result.routes_file == BUNDLED_ROUTES


def test_the_bundled_routes_file_is_functions_routes_yaml_and_exists() -> None:
    assert BUNDLED_ROUTES.is_file()
    assert BUNDLED_ROUTES.name == "routes.yaml"
    assert BUNDLED_ROUTES.parent.name == "functions"


@pytest.mark.parametrize("missing", ["POLYTOMIC_SECRET_ID", "IDEMPOTENCY_TABLE"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_required_variables(missing: str, value: str | None) -> None:
    env = dict(REQUIRED)
    if value is None:
        del env[missing]
    else:
        env[missing] = value
    assert config_error(env) == f"{missing} is required but not set"


def test_empty_env_names_the_first_required_variable() -> None:
    assert "POLYTOMIC_SECRET_ID" in config_error({})


def test_values_are_read_and_trimmed() -> None:
    result = settings(
        POLYTOMIC_SECRET_ID="  arn:aws:secretsmanager:eu-west-1:123456789012:secret:p-AbCdEf  ",
        POLYTOMIC_BASE_URL="https://polytomic.acme.internal:8443",
        POLYTOMIC_API_VERSION="2024-02-08",
        IDEMPOTENCY_TTL_SECONDS="3600",
        ROUTES_FILE="/opt/routes.yaml",
    )
    assert result.secret_id == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:p-AbCdEf"
    assert result.base_url == "https://polytomic.acme.internal:8443"
    assert result.api_version == "2024-02-08"
    assert result.idempotency_ttl_seconds == 3600
    assert result.routes_file == Path("/opt/routes.yaml")


@pytest.mark.parametrize("version", ["2025-09-18", "2024-02-08", "2023-04-25", "2022-12-12", "2021-05-23"])
def test_every_documented_api_version_is_accepted(version: str) -> None:
    assert settings(POLYTOMIC_API_VERSION=version).api_version == version


@pytest.mark.parametrize("version", ["2025-01-01", "latest", "v1", "2025-09-18x"])
def test_invalid_api_version(version: str) -> None:
    message = config_error({**REQUIRED, "POLYTOMIC_API_VERSION": version})
    assert message.startswith("POLYTOMIC_API_VERSION must be one of 2025-09-18, 2024-02-08")
    assert repr(version) in message


def test_empty_api_version_means_the_default() -> None:
    assert settings(POLYTOMIC_API_VERSION="").api_version == "2025-09-18"


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [
        ("a day", "IDEMPOTENCY_TTL_SECONDS must be a whole number of seconds (got 'a day')"),
        ("1.5", "IDEMPOTENCY_TTL_SECONDS must be a whole number of seconds (got '1.5')"),
        ("59", "IDEMPOTENCY_TTL_SECONDS must be at least 60 (got 59)"),
        ("0", "IDEMPOTENCY_TTL_SECONDS must be at least 60 (got 0)"),
        ("-86400", "IDEMPOTENCY_TTL_SECONDS must be at least 60 (got -86400)"),
    ],
)
def test_invalid_ttl(ttl: str, expected: str) -> None:
    assert config_error({**REQUIRED, "IDEMPOTENCY_TTL_SECONDS": ttl}) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://app.polytomic.com/", "https://app.polytomic.com"),
        ("https://app.polytomic.com///", "https://app.polytomic.com"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("https://onprem.acme.internal/polytomic/", "https://onprem.acme.internal/polytomic"),
        ("  https://app.polytomic.com  ", "https://app.polytomic.com"),
        ("", "https://app.polytomic.com"),
    ],
)
def test_base_url_trailing_slash_is_stripped(url: str, expected: str) -> None:
    assert settings(POLYTOMIC_BASE_URL=url).base_url == expected


@pytest.mark.parametrize(
    "url", ["ftp://app.polytomic.com", "app.polytomic.com", "file:///etc/passwd", "https://", "//host"]
)
def test_base_url_must_be_http_or_https(url: str) -> None:
    message = config_error({**REQUIRED, "POLYTOMIC_BASE_URL": url})
    assert message.startswith("POLYTOMIC_BASE_URL must be an http(s) URL such as https://app.polytomic.com")


HTTPS_ONLY = "POLYTOMIC_BASE_URL must use https; http is allowed only for a loopback host (the local stack)"


@pytest.mark.parametrize(
    "url",
    [
        "http://app.polytomic.com",
        "HTTP://app.polytomic.com/",
        "http://onprem.acme.internal:8080/polytomic",
        "http://10.0.0.5:8080",
        "http://0.0.0.0:8080",
        "http://[::2]:8080",
        "http://[::]:8080",
        "http://127.0.0.1.nip.example",  # a name that starts like a loopback address is not one
        "http://localhost.acme.example",
        "http://2130706433",  # 127.0.0.1 as one number: not taken for a loopback address
    ],
)
def test_base_url_over_http_is_refused_unless_the_host_is_loopback(url: str) -> None:
    """The API key travels in the Authorization header: in cleartext over http."""
    assert config_error({**REQUIRED, "POLYTOMIC_BASE_URL": url}) == HTTPS_ONLY


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.1.2.3:9000/api-root",
        "http://localhost:4010",
        "http://LocalHost",
        "http://[::1]:8080",
    ],
)
def test_base_url_over_http_is_accepted_for_a_loopback_host(url: str) -> None:
    assert settings(POLYTOMIC_BASE_URL=url).base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cr3t-pass@app.polytomic.com",
        "https://s3cr3t-pass@app.polytomic.com",
        "https://app.polytomic.com/?token=s3cr3t-pass",
        "https://app.polytomic.com/#s3cr3t-pass",
        "ftp://user:s3cr3t-pass@app.polytomic.com",
        "https://user:s3cr3t-pass@",
    ],
)
def test_base_url_must_not_carry_credentials_and_the_message_does_not_echo_them(url: str) -> None:
    message = config_error({**REQUIRED, "POLYTOMIC_BASE_URL": url})
    assert message == "POLYTOMIC_BASE_URL must not carry credentials, a query or a fragment"
    assert "s3cr3t" not in message


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("POLYTOMIC_CONNECT_TIMEOUT", "fast", "POLYTOMIC_CONNECT_TIMEOUT must be a number of seconds"),
        ("POLYTOMIC_READ_TIMEOUT", "0", "POLYTOMIC_READ_TIMEOUT must be between 0 and 900 seconds"),
        ("POLYTOMIC_READ_TIMEOUT", "nan", "POLYTOMIC_READ_TIMEOUT must be between 0 and 900 seconds"),
        ("POLYTOMIC_SECRET_MAX_AGE", "-1", "POLYTOMIC_SECRET_MAX_AGE must be at least 0"),
    ],
)
def test_optional_tuning_variables_name_themselves(name: str, value: str, fragment: str) -> None:
    assert config_error({**REQUIRED, name: value}).startswith(fragment)


@pytest.mark.parametrize("url", ["https://[::1", "http://[s3cr3t-pass"])
def test_base_url_that_cannot_be_parsed(url: str) -> None:
    message = config_error({**REQUIRED, "POLYTOMIC_BASE_URL": url})
    assert message == "POLYTOMIC_BASE_URL is not a valid URL"


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POLYTOMIC_API_VERSION", "2023-04-25")
    assert Settings.from_env().api_version == "2023-04-25"
