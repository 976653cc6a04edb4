"""The pre-validated routes cache: used only for the exact bytes it was made from."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from polytrigger.routing import RoutesError, load_routes
from polytrigger.routing import load as routes_load
from polytrigger.routing.deployed import built_from, source_note
from polytrigger.settings import BUNDLED_ROUTES
from polytrigger.tools import routes_build

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"

FUNCTIONS = Path(routes_build.__file__).resolve().parents[2]


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    target = tmp_path / "routes.yaml"
    shutil.copyfile(BUNDLED_ROUTES, target)
    return target


def names(path: Path) -> list[str]:
    return [route.name for route in load_routes(path).routes]


def test_write_cache_validates_and_records_the_yaml_it_came_from(routes_file: Path) -> None:
    written = routes_build.write_cache(routes_file)

    assert written == routes_file.parent / "routes.validated.json"
    cache = json.loads(written.read_text())
    assert cache["format"] == routes_load.CACHE_FORMAT
    assert len(cache["source_sha256"]) == 64
    assert [route["name"] for route in cache["document"]["routes"]] == names(routes_file)


def test_a_current_cache_is_what_loads(routes_file: Path) -> None:
    written = routes_build.write_cache(routes_file)
    assert written is not None
    cache = json.loads(written.read_text())
    cache["document"]["routes"] = cache["document"]["routes"][:1]  # only the cache says so
    cache["document"]["routes"][0]["name"] = "from-the-cache"
    written.write_text(json.dumps(cache))

    assert names(routes_file) == ["from-the-cache"]


def test_an_edited_routes_file_is_never_shadowed_by_its_old_cache(routes_file: Path) -> None:
    routes_build.write_cache(routes_file)
    routes_file.write_text(routes_file.read_text().replace("name: orders-landing", "name: orders-edited", 1))

    assert "orders-edited" in names(routes_file)


@pytest.mark.parametrize("garbage", ["", "not json", "[]", '{"format": 99}'])
def test_an_unreadable_cache_falls_back_to_the_yaml(routes_file: Path, garbage: str) -> None:
    expected = names(routes_file)
    routes_load.cache_path(routes_file).write_text(garbage)

    assert names(routes_file) == expected


def test_an_invalid_routes_file_fails_the_build_and_writes_no_cache(routes_file: Path) -> None:
    routes_file.write_text("routes:\n  - name: bad\n    s3: {bucket: B}\n    syncs: [not-a-uuid]\n")

    with pytest.raises(RoutesError, match="is invalid"):
        routes_build.write_cache(routes_file)
    assert not routes_load.cache_path(routes_file).exists()


def test_a_document_json_would_change_is_left_to_yaml(routes_file: Path) -> None:
    routes_load.cache_path(routes_file).write_text("{}")  # an older cache goes too
    routes_file.write_text(  # YAML reads an unquoted time as a datetime, which JSON cannot carry
        "routes:\n  - name: launch\n    schedule: {name: launch, at: 2026-12-24T18:00:00}\n"
        f"    syncs: [{{id: {SYNC}}}]\n"
    )

    assert routes_build.write_cache(routes_file) is None
    assert not routes_load.cache_path(routes_file).exists()
    spec = routes_load.load_routes(routes_file).routes[0].schedule_spec
    assert spec is not None
    assert spec.expression == "at(2026-12-24T18:00:00)"


def test_what_no_deployment_could_wire_fails_the_build(routes_file: Path) -> None:
    routes_file.write_text(
        "routes:\n  - name: nightly\n    schedule: {name: nightly, cron: '0 2 * * ? *', timezone: Europe/Berlinn}\n"
        f"    syncs: [{{id: {SYNC}}}]\n"
    )

    with pytest.raises(RoutesError, match=r"route 'nightly': schedule\.timezone: 'Europe/Berlinn' is not a time zone"):
        routes_build.write_cache(routes_file)
    assert not routes_load.cache_path(routes_file).exists()


def test_the_command_line_reports_each_file(routes_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert routes_build.main([str(routes_file)]) == 0
    assert "valid; cached as" in capsys.readouterr().out

    routes_file.write_text("routes: {}\n")
    assert routes_build.main([str(routes_file)]) == 1
    assert "'routes' must be a list" in capsys.readouterr().err
    assert routes_build.main([]) == 2


def test_the_build_notes_where_the_routes_came_from_and_a_failed_build_notes_nothing(routes_file: Path) -> None:
    """The deployed stack records that name with the routes (routing.deployed): the user's path, not the copy's."""
    assert routes_build.main(["--as", "/home/me/team-routes/routes.yaml", str(routes_file)]) == 0
    assert built_from(routes_file) == "/home/me/team-routes/routes.yaml"
    assert json.loads(source_note(routes_file).read_text()) == {"built_from": "/home/me/team-routes/routes.yaml"}

    source_note(routes_file).unlink()
    routes_file.write_text("routes: {}\n")
    assert routes_build.main(["--as", "/home/me/team-routes/routes.yaml", str(routes_file)]) == 1
    assert not source_note(routes_file).exists()
    assert built_from(routes_file) == str(routes_file)  # no note: the file names itself


def test_a_cold_start_with_a_current_cache_never_imports_yaml(routes_file: Path) -> None:
    routes_build.write_cache(routes_file)
    code = (
        "import sys\nfrom polytrigger.routing import load_routes\n"
        f"print(len(load_routes({str(routes_file)!r}).routes), 'yaml' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(FUNCTIONS)}, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [str(len(names(routes_file))), "False"]
