"""Routes kept outside the code: `validate`, `explain` and `status` read `--routes`, else $ROUTES, else the
bundled example, and say so on stderr when they fall back to it (never silently)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest

from polytrigger.settings import BUNDLED_ROUTES
from polytrigger.tools.cli import main
from polytrigger.tools.routes_source import RoutesPathError, routes_path

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"
NOTE = "routes: functions/routes.yaml (the bundled example; set ROUTES or --routes for yours)\n"


@pytest.fixture(autouse=True)
def _no_routes_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ROUTES", "ROUTES_FILE", "POLYTOMIC_SECRET_ID", "IDEMPOTENCY_TABLE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(BUNDLED_ROUTES.parents[1])  # from the checkout, as `make` and the README run it


@pytest.fixture
def mine(tmp_path: Path) -> Path:
    """A user's routes, in a folder outside the repository."""
    path = tmp_path / "elsewhere" / "my-routes.yaml"
    path.parent.mkdir()
    path.write_text(
        f'routes:\n  - name: mine-only\n    s3:\n      bucket: my-bucket\n      key: "in/*"\n    syncs: [{{id: {SYNC}}}]\n',
        encoding="utf-8",
    )
    return path


def test_validate_reads_routes_named_by_the_environment(
    mine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTES", str(mine))

    assert main(["validate"]) == 0

    out, err = capsys.readouterr()
    assert out.startswith(f"{mine}: 1 route, 1 bucket (my-bucket)")
    assert err == ""


def test_explain_reads_routes_named_by_the_environment(
    mine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTES", str(mine))

    assert main(["explain", "s3://my-bucket/in/a.csv"]) == 0

    out, err = capsys.readouterr()
    assert "route mine-only" in out
    assert err == ""


def test_routes_wins_over_routes_file_and_the_flag_over_both(mine: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("routes: []\n", encoding="utf-8")

    assert routes_path(None, {"ROUTES": str(mine), "ROUTES_FILE": str(other)}) == mine
    assert routes_path(None, {"ROUTES_FILE": str(other)}) == other
    assert routes_path(str(other), {"ROUTES": str(mine)}) == other


def test_without_routes_named_the_bundled_example_is_said_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    assert capsys.readouterr().err == NOTE

    assert main(["explain", "s3://acme-landing/orders/2026/x.csv"]) == 0
    out, err = capsys.readouterr()
    assert err == NOTE
    assert "route " in out

    said = StringIO()
    assert routes_path(None, {}, say=said) == BUNDLED_ROUTES
    assert said.getvalue() == NOTE


def test_status_reads_routes_named_by_the_environment(
    mine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing ROUTES is caught before any AWS call: status names it in one line (exit 2)."""
    monkeypatch.setenv("ROUTES", str(mine.with_name("gone.yaml")))

    assert main(["status", "s3://my-bucket/in/a.csv", "--table", "t"]) == 2

    assert capsys.readouterr().err == f"polytrigger status: ROUTES={mine.with_name('gone.yaml')}: no such routes file\n"


@pytest.mark.parametrize("command", [["validate"], ["explain", "s3://my-bucket/in/a.csv"]])
def test_routes_naming_a_missing_file_is_one_line_naming_it(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = tmp_path / "gone.yaml"
    monkeypatch.setenv("ROUTES", str(gone))

    assert main(command) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"ROUTES={gone}: no such routes file" in err
    assert "Traceback" not in err


def test_a_folder_is_not_a_routes_file(tmp_path: Path) -> None:
    with pytest.raises(RoutesPathError, match=f"^ROUTES_FILE={tmp_path}: no such routes file$"):
        routes_path(None, {"ROUTES_FILE": str(tmp_path)})
