"""Unit tests run beside the integration tests on the same pytest workers, where the session's local stack
has put its environment (IDEMPOTENCY_TABLE among it). A command told a table reads the routes deployed to
it, so a unit test of `explain` or `status` would answer from whatever a wiring test recorded there."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_stack_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDEMPOTENCY_TABLE", raising=False)
