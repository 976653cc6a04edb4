"""functions/Makefile: what `sam build` ships for each function (Metadata: BuildMethod: makefile).

A function's package is its code and routes, built here offline exactly as `sam build` builds it;
the dependencies are the shared layer (tests/infrastructure/test_layer.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from polytrigger.routing import load as routes_load
from polytrigger.routing import load_routes
from polytrigger.routing.deployed import built_from

from .conftest import ROOT, Function, each_function

MAKEFILE_DIR = ROOT / "functions"


def make(
    *args: str, artifacts: Path, dry_run: bool = False, routes: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """make in functions/, as sam build runs it: ROUTES from the environment when `routes` is given."""
    command = ["make", "--no-print-directory", "-C", str(MAKEFILE_DIR), *args]
    if dry_run:
        command.insert(1, "-n")
    env = {key: value for key, value in os.environ.items() if key != "ROUTES"}
    env |= {"ARTIFACTS_DIR": str(artifacts), **({"ROUTES": str(routes)} if routes else {})}
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    artifacts = tmp_path_factory.mktemp("artifacts")
    done = make("code", f"PYTHON={sys.executable}", artifacts=artifacts)
    assert done.returncode == 0, done.stderr
    return artifacts


@each_function()
def test_every_function_is_built_by_the_makefile(template: dict[str, Any], function: Function) -> None:
    assert template["Resources"][function.name]["Metadata"]["BuildMethod"] == "makefile"
    done = make(f"build-{function.name}", artifacts=Path("/nonexistent"), dry_run=True)
    assert done.returncode == 0, done.stderr


@each_function()
def test_a_function_build_is_the_code_step_with_the_runtimes_python(
    template: dict[str, Any], function: Function
) -> None:
    assert template["Globals"]["Function"]["Runtime"] == "python3.13"
    done = make(f"build-{function.name}", artifacts=Path("/build"), dry_run=True)
    assert done.returncode == 0, done.stderr
    commands = done.stdout.replace("\\\n", " ").splitlines()  # make -n keeps the recipe's continuations
    compiles = [shlex.split(line) for line in commands if " -m compileall " in line]
    assert [command[0] for command in compiles] == ["python3.13"]  # bytecode is per Python version
    # The only pip install is the build's own YAML parser, into a temporary folder, never into the package.
    installs = [line for line in commands if " -m pip install " in line]
    assert all('--target "$tools"' in line and '--target "/build' not in line for line in installs), installs


def test_a_function_ships_only_its_code_and_routes(built: Path) -> None:
    """The dependencies are the layer's (one copy for every function), not the function's."""
    assert {path.name for path in built.iterdir()} == {
        "polytrigger",
        "routes.yaml",
        "routes.validated.json",
        "routes.source.json",  # where the build took the routes from, which the deployed stack records
    }
    assert built_from(built / "routes.yaml") == "functions/routes.yaml (the bundled example)"


def test_without_artifacts_dir_the_build_says_so() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(MAKEFILE_DIR), "code"],
        env={key: value for key, value in os.environ.items() if key != "ARTIFACTS_DIR"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "ARTIFACTS_DIR is not set" in done.stderr


def test_every_module_ships_with_bytecode_the_runtime_will_use(built: Path) -> None:
    sources = sorted((built / "polytrigger").rglob("*.py"))
    assert len(sources) == len(list((MAKEFILE_DIR / "polytrigger").rglob("*.py")))
    for source in sources:
        pyc = Path(importlib.util.cache_from_source(str(source)))
        header = pyc.read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER, pyc
        flags = int.from_bytes(header[4:8], "little")
        assert flags == 0b11, f"{pyc}: not hash-based and checked (flags {flags:#b})"  # valid whatever the zip's dates
        assert header[8:16] == importlib.util.source_hash(source.read_bytes()), f"{pyc}: for another source"


def test_the_routes_ship_validated_and_cached(built: Path) -> None:
    shipped = built / "routes.yaml"
    assert shipped.read_bytes() == (MAKEFILE_DIR / "routes.yaml").read_bytes()
    data = shipped.read_bytes()
    assert routes_load.cached_document(shipped, data) is not None
    assert json.loads(routes_load.cache_path(shipped).read_text())["document"] is not None
    assert [r.name for r in load_routes(shipped).routes] == [
        r.name for r in load_routes(MAKEFILE_DIR / "routes.yaml").routes
    ]


def test_a_bad_routes_file_fails_the_build(tmp_path: Path) -> None:
    source = tmp_path / "functions"
    source.mkdir()
    (source / "Makefile").write_bytes((MAKEFILE_DIR / "Makefile").read_bytes())
    subprocess.run(["cp", "-R", str(MAKEFILE_DIR / "polytrigger"), str(source)], check=True)
    (source / "routes.yaml").write_text("routes:\n  - name: broken\n")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(source), "code", f"PYTHON={sys.executable}"],
        env={**{key: value for key, value in os.environ.items() if key != "ROUTES"}, "ARTIFACTS_DIR": str(artifacts)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "route 'broken'" in done.stderr
    assert not (artifacts / "routes.validated.json").exists()


def test_the_build_packs_the_routes_file_routes_names_from_outside_the_repository(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The user's routes, kept outside the code, are what the function ships (as its routes.yaml, validated)."""
    mine = tmp_path_factory.mktemp("elsewhere") / "my-routes.yaml"
    assert not mine.is_relative_to(ROOT)
    mine.write_text(
        'routes:\n  - name: mine-only\n    s3:\n      bucket: my-bucket\n      key: "in/*"\n'
        "    syncs: [{id: 248df4b7-aa70-47b8-a036-33ac447e668d}]\n",
        encoding="utf-8",
    )
    artifacts = tmp_path_factory.mktemp("artifacts")

    done = make("code", f"PYTHON={sys.executable}", artifacts=artifacts, routes=mine)

    assert done.returncode == 0, done.stderr
    assert done.stderr == f"routes: {mine}\n"
    assert (artifacts / "routes.yaml").read_bytes() == mine.read_bytes()
    assert routes_load.cached_document(artifacts / "routes.yaml", mine.read_bytes()) is not None
    assert [r.name for r in load_routes(artifacts / "routes.yaml").routes] == ["mine-only"]
    assert not (mine.parent / "routes.validated.json").exists()  # the user's folder is left as it was
    assert built_from(artifacts / "routes.yaml") == str(mine)  # what the deployed stack will say it runs


def test_a_bad_routes_file_named_by_routes_fails_the_build_naming_it(tmp_path: Path) -> None:
    mine = tmp_path / "my-routes.yaml"
    mine.write_text("routes:\n  - name: broken\n", encoding="utf-8")

    done = make("code", f"PYTHON={sys.executable}", artifacts=tmp_path, routes=mine)

    assert done.returncode != 0
    assert f"routes file {mine} is invalid" in done.stderr


def test_routes_naming_a_missing_file_fails_the_build_in_one_line(tmp_path: Path) -> None:
    done = make("code", artifacts=tmp_path, routes=tmp_path / "gone.yaml")

    assert done.returncode != 0
    assert f"ROUTES={tmp_path / 'gone.yaml'}: no such routes file" in done.stderr
    assert not (tmp_path / "routes.yaml").exists()


def test_without_routes_the_build_says_it_ships_the_bundled_example(built: Path) -> None:
    done = make("check-routes", artifacts=built)

    assert done.stderr == "routes: functions/routes.yaml (the bundled example; set ROUTES for yours)\n"
