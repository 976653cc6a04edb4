"""What a test needs that `make test` installs: missing under CI is a failure, missing on a laptop a skip."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(message: str) -> NoReturn:
    """CI installs everything (`make test`), so there a missing piece fails; elsewhere it says how to get it."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
