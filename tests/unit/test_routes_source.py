"""Routes kept outside the code: `validate`, `explain` and `status` read `--routes`, else $ROUTES, else the
bundled example, and say so on stderr when they fall back to it (never silently). Told where the stack
is (a table), `status` and `explain` read the routes it was deployed with, and say which."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest

from polytrigger.routing.deployed import (
    DEPLOYED_ROUTES_KEY,
    MAX_TEXT_BYTES,
    DeployedRoutes,
    deployed_routes,
    from_item,
    sha256_of,
    write_source_note,
)
from polytrigger.settings import BUNDLED_ROUTES
from polytrigger.tools.cli import main
from polytrigger.tools.routes_source import DeployedUnreadable, RoutesPathError, choose_routes, routes_path

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


def test_routes_and_routes_file_naming_different_files_is_said_in_one_line(
    mine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("routes: []\n", encoding="utf-8")
    monkeypatch.setenv("ROUTES", str(mine))
    monkeypatch.setenv("ROUTES_FILE", str(other))

    assert main(["explain", "s3://my-bucket/in/a.csv"]) == 0

    assert capsys.readouterr().err == (
        f"routes: ROUTES={mine} and ROUTES_FILE={other} name different files: ROUTES wins"
        " (it is yours; ROUTES_FILE is the functions' own, which the local stack's env file sets)\n"
    )


def test_routes_and_routes_file_naming_one_file_say_nothing(
    mine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(mine.parent)
    monkeypatch.setenv("ROUTES", str(mine))
    monkeypatch.setenv("ROUTES_FILE", mine.name)  # the same file, named another way

    assert main(["validate"]) == 0

    assert capsys.readouterr().err == ""


def test_routes_file_naming_a_missing_file_does_not_matter_when_routes_wins(
    mine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = tmp_path / "gone.yaml"

    assert routes_path(None, {"ROUTES": str(mine), "ROUTES_FILE": str(gone)}, say=StringIO()) == mine


# -- the routes a deployed stack recorded -----------------------------------------------------------------

TABLE = "polytrigger-IdempotencyTable-X"
WHEN = datetime(2026, 12, 7, 10, 0, 5, tzinfo=UTC)


def record_of(path: Path, built: str = "/home/me/team-routes/routes.yaml") -> DeployedRoutes:
    data = path.read_bytes()
    return DeployedRoutes(built, sha256_of(data), WHEN, data.decode(), "7")


def table_with(record: DeployedRoutes | None) -> Callable[[str], DeployedRoutes | None]:
    def read(table: str) -> DeployedRoutes | None:
        assert table == TABLE
        return record

    return read


def unreadable(table: str) -> DeployedRoutes | None:
    raise DeployedUnreadable("NoCredentialsError")


def test_without_routes_named_the_deployed_routes_are_read_and_named(mine: Path) -> None:
    said = StringIO()

    source = choose_routes(None, TABLE, env={}, say=said, read=table_with(record_of(mine)))

    assert [route.name for route in source.load().routes] == ["mine-only"]
    assert said.getvalue() == (
        f"routes: as deployed to table {TABLE} (built from /home/me/team-routes/routes.yaml,"
        f" sha256 {sha256_of(mine.read_bytes())[:12]}…, 2026-12-07 10:00 UTC)\n"
    )


def test_the_deployed_routes_win_over_routes_and_a_differing_routes_is_a_warning(mine: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(mine.read_text(encoding="utf-8").replace("mine-only", "other-one"), encoding="utf-8")
    said = StringIO()

    source = choose_routes(None, TABLE, env={"ROUTES": str(other)}, say=said, read=table_with(record_of(mine)))

    assert [route.name for route in source.load().routes] == ["mine-only"]
    first, warning = said.getvalue().splitlines()
    assert first.startswith(f"routes: as deployed to table {TABLE} (built from ")
    assert warning.startswith(f"routes: warning: ROUTES={other} differs from the routes deployed to table {TABLE}")
    assert warning.endswith(f"using the deployed ones; --routes {other} checks yours")


def test_the_flag_wins_over_the_deployed_routes_and_says_so_only_when_they_differ(mine: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(mine.read_text(encoding="utf-8").replace("mine-only", "other-one"), encoding="utf-8")
    same, differs = StringIO(), StringIO()

    assert choose_routes(str(mine), TABLE, env={}, say=same, read=table_with(record_of(mine))).path == mine
    assert choose_routes(str(other), TABLE, env={}, say=differs, read=table_with(record_of(mine))).path == other

    assert same.getvalue() == ""
    (warning,) = differs.getvalue().splitlines()
    assert warning.startswith(f"routes: warning: --routes {other} differs from the routes deployed to table {TABLE}")
    assert f"sha256 {sha256_of(other.read_bytes())[:12]}…; deployed: built from /home/me/" in warning
    assert warning.endswith("answers follow it, not the routes the stack runs")


@pytest.mark.parametrize(
    ("read", "why"),
    [
        (table_with(None), f"no routes recorded as deployed in table {TABLE}"),
        (unreadable, f"the routes deployed to table {TABLE} cannot be read: NoCredentialsError"),
    ],
)
def test_a_table_without_a_readable_record_falls_back_and_says_so(
    mine: Path, read: Callable[[str], DeployedRoutes | None], why: str
) -> None:
    named, bundled = StringIO(), StringIO()

    assert choose_routes(None, TABLE, env={"ROUTES": str(mine)}, say=named, read=read).path == mine
    assert choose_routes(None, TABLE, env={}, say=bundled, read=read).path == BUNDLED_ROUTES

    assert named.getvalue() == f"routes: ROUTES={mine} ({why})\n"
    assert bundled.getvalue() == (
        f"routes: functions/routes.yaml (the bundled example; set ROUTES or --routes for yours; {why})\n"
    )


def test_routes_recorded_without_their_text_are_compared_but_not_used(mine: Path) -> None:
    too_large = DeployedRoutes("/home/me/routes.yaml", "0" * 64, WHEN, None)
    said = StringIO()

    assert choose_routes(None, TABLE, env={"ROUTES": str(mine)}, say=said, read=table_with(too_large)).path == mine

    assert said.getvalue() == (
        f"routes: ROUTES={mine} (the routes deployed to table {TABLE} were recorded without their text (too large))\n"
    )


def test_without_a_table_the_deployed_routes_are_never_read(mine: Path) -> None:
    said = StringIO()

    assert choose_routes(None, "", env={"ROUTES": str(mine)}, say=said, read=unreadable).path == mine
    assert said.getvalue() == ""


def test_explain_reads_the_deployed_routes_of_the_table_it_is_given(
    mine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No stack here: the table cannot be read, so explain falls back, says why in one line, and answers."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")  # nothing listens: refused at once
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("ROUTES", str(mine))

    assert main(["explain", "s3://my-bucket/in/a.csv", "--table", TABLE]) == 0

    out, err = capsys.readouterr()
    assert "route mine-only" in out
    assert err.startswith(f"routes: ROUTES={mine} (the routes deployed to table {TABLE} cannot be read: ")
    assert "EndpointConnectionError: Could not connect to the endpoint URL" in err
    assert err.count("\n") == 1


def test_a_record_reads_back_as_written_and_a_large_file_is_recorded_without_its_text(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes: []\n", encoding="utf-8")
    write_source_note(routes, "/home/me/team-routes/routes.yaml")

    record = deployed_routes(routes, WHEN, "3")

    assert from_item(record.item()) == record
    assert record.built_from == "/home/me/team-routes/routes.yaml"
    assert record.item()["id"] == {"S": DEPLOYED_ROUTES_KEY}
    assert "ttl" not in record.item()
    routes.write_bytes(b"#" * (MAX_TEXT_BYTES + 1))
    (routes.parent / "routes.source.json").unlink()
    large = deployed_routes(routes, WHEN)
    assert large.text is None
    assert large.built_from == str(routes)  # no note from a build: the file itself
    assert len(json.dumps(large.item())) < 1000
    with pytest.raises(ValueError, match="not a deployed routes record"):
        from_item({"id": {"S": DEPLOYED_ROUTES_KEY}})
