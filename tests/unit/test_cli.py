"""`polytrigger explain`: a dry run that needs no stack, no credentials and no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polytrigger.tools.cli import explain, main

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ROUTES = ROOT / "functions" / "routes.yaml"


@pytest.fixture(autouse=True)
def _no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POLYTOMIC_SECRET_ID", "IDEMPOTENCY_TABLE", "ROUTES_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def test_explain_lists_the_actions_a_schedule_would_take(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(EVENTS / "scheduler-input-nightly.json")]) == 0

    out = capsys.readouterr().out
    assert out.startswith("schedule nightly @ 2026-11-23T02:00:00Z\n")
    assert "route nightly-full: activate model sync 248df4b7-aa70-47b8-a036-33ac447e668d" in out
    assert 'route nightly-full: start model sync 248df4b7-aa70-47b8-a036-33ac447e668d {"resync": true}' in out


def test_explain_mirrors_the_handler_one_action_per_sync_per_event() -> None:
    event = json.loads((EVENTS / "s3-notification-multi.json").read_text(encoding="utf-8"))

    rows = explain(event, ROUTES)

    actions = [(row["route"], row["sync_id"]) for row in rows if row["route"]]
    assert len(actions) == len(set(actions)) == 3
    assert [row["trigger"] for row in rows if row["route"] is None] == [
        "s3://acme-landing/orders/2026/11/23/orders-0003+fix.csv (created)"
    ]
    assert all(len(row["idempotency_key"]) == 64 for row in rows if row["route"])


def test_explain_json_output_is_machine_readable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--json", str(EVENTS / "sqs-s3-notifications.json")]) == 0

    rows = json.loads(capsys.readouterr().out)
    assert {row["route"] for row in rows} == {"orders-landing", "customer-exports", "snapshot-removed"}


def test_explain_reports_an_unsupported_event_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(EVENTS / "unsupported-event.json")]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("polytrigger: event error: unsupported event shape")


def test_explain_reports_a_bad_routes_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - name: x\n    schedule: nightly\n    syncs: [{id: not-a-uuid}]\n", encoding="utf-8")

    assert main(["explain", "--routes", str(routes), str(EVENTS / "scheduler-input-nightly.json")]) == 2

    assert "route 'x': syncs[0].id: must be a sync UUID (got 'not-a-uuid')" in capsys.readouterr().err


def test_explain_reports_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "no-such-event.json"]) == 2
    assert "cannot read no-such-event.json" in capsys.readouterr().err
