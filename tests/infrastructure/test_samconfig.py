"""samconfig.toml: `sam build && sam deploy --guided` works with the repository's defaults."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with (ROOT / "samconfig.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_version_and_stack_name(samconfig: dict[str, Any]) -> None:
    assert str(samconfig["version"]) == "0.1"
    assert samconfig["default"]["global"]["parameters"]["stack_name"] == "polytrigger"


def test_build_is_parallel_and_never_cached_so_a_changed_routes_file_always_ships(samconfig: dict[str, Any]) -> None:
    build = samconfig["default"]["build"]["parameters"]
    assert build["cached"] is False  # SAM's cache knows functions/, not the routes file ROUTES names
    assert build["parallel"] is True


def test_deploy_settings(samconfig: dict[str, Any]) -> None:
    deploy = samconfig["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True


def test_no_account_specific_values_are_committed(samconfig: dict[str, Any]) -> None:
    """The secret ARN and the bucket are asked for by --guided, never baked into the repo."""
    deploy = samconfig["default"]["deploy"]["parameters"]
    assert "parameter_overrides" not in deploy
    assert "s3_bucket" not in deploy
