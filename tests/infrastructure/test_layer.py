"""DependenciesLayer: every function's dependencies, built once by layer/Makefile and shared.

The template wires it (one layer, on every function, for their runtime and architecture); the
Makefile's commands install for Lambda's arm64 without the runtime's AWS SDK (checked with
`make -n`: installing needs the package registry); layer/pins.py leaves out exactly the SDK and
what only it needs. The layer as `sam build` built it (`make build`) is checked when present,
and must be present under CI=true.
"""

from __future__ import annotations

import _imp
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.needs import missing

from .conftest import ROOT

LAYER = "DependenciesLayer"
LAYER_DIR = ROOT / "layer"
BUILT = ROOT / ".aws-sam" / "build" / LAYER / "python"
RUNTIME_SDK = {"boto3", "botocore", "s3transfer"}
ONLY_FOR_THE_SDK = {"python-dateutil", "six"}  # botocore's own dependencies
PYTHON313_MAGIC = (3571).to_bytes(2, "little") + b"\r\n"  # importlib.util.MAGIC_NUMBER of every 3.13


def _pins() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layer_pins", LAYER_DIR / "pins.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pins = _pins()


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


# --------------------------------------------------------------------------- the template


def test_the_layer_is_built_by_its_makefile_for_the_functions_runtime(template: dict[str, Any]) -> None:
    layer = template["Resources"][LAYER]
    functions = template["Globals"]["Function"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    properties = layer["Properties"]
    assert properties["ContentUri"] == "layer/"
    assert properties["CompatibleRuntimes"] == [functions["Runtime"]]
    assert properties["CompatibleArchitectures"] == functions["Architectures"] == ["arm64"]
    assert properties["RetentionPolicy"] == "Delete"


def test_every_function_uses_the_layer_and_nothing_else(template: dict[str, Any], transformed: dict[str, Any]) -> None:
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": LAYER}]
    resources = transformed["Resources"]
    layers = {name for name, resource in resources.items() if resource["Type"] == "AWS::Lambda::LayerVersion"}
    assert len(layers) == 1
    functions = [resource for resource in resources.values() if resource["Type"] == "AWS::Lambda::Function"]
    assert functions
    for function in functions:
        assert function["Properties"]["Layers"] == [{"Ref": layer} for layer in layers]


def test_the_layer_name_is_the_stacks_own(transformed: dict[str, Any]) -> None:
    """Two stacks in one account must not publish versions of one layer (RetentionPolicy would delete the other's)."""
    (layer,) = (r for r in transformed["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion")
    assert layer["Properties"]["LayerName"] == {"Fn::Sub": "${AWS::StackName}-dependencies"}


# --------------------------------------------------------------------------- the Makefile


def test_the_layer_installs_for_lambdas_arm64_without_the_runtimes_sdk() -> None:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(LAYER_DIR), "build-DependenciesLayer", "ARTIFACTS_DIR=/build"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    commands = [shlex.split(line) for line in done.stdout.replace("\\\n", " ").splitlines()]
    resolve, install = [
        command for command in commands if command[1:5] == ["-m", "pip", "--disable-pip-version-check", "install"]
    ]
    for pip in (resolve, install):
        assert pip[0] == "python3.13"
        for flag, value in [
            ("--platform", "manylinux2014_aarch64"),
            ("--python-version", "3.13"),
            ("--implementation", "cp"),
        ]:
            assert pip[pip.index(flag) + 1] == value
        assert "--only-binary=:all:" in pip
    assert resolve[resolve.index("--requirement") + 1] == "requirements.txt"
    assert {"--dry-run", "--ignore-installed"} <= set(resolve)
    assert set(resolve[resolve.index("|") + 1 :]) >= {"pins.py", *RUNTIME_SDK}  # the report goes through pins.py
    assert install[install.index("--target") + 1] == "/build/python"  # Lambda puts a layer's python/ on sys.path
    assert {"--no-deps", "--no-compile"} <= set(install)  # exactly the pins; compiled afterwards, hash-checked
    compile_ = next(command for command in commands if command[1:3] == ["-m", "compileall"])
    assert compile_[0] == "python3.13"
    assert compile_[compile_.index("--invalidation-mode") + 1] == "checked-hash"
    assert compile_[-1] == "/build/python"


def test_the_functions_build_parses_the_routes_with_the_layers_yaml_parser() -> None:
    makefile = (ROOT / "functions" / "Makefile").read_text()
    match = re.search(r"^YAML_PARSER := (.+)$", makefile, flags=re.MULTILINE)
    assert match is not None
    assert match.group(1) in requirement_lines(LAYER_DIR / "requirements.txt")


def test_the_layer_requirements_are_the_projects_runtime_dependencies() -> None:
    """The venv (tests, demo, benchmarks) installs pyproject's dependencies: the same ranges as what ships."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    assert set(requirement_lines(LAYER_DIR / "requirements.txt")) <= set(dependencies)


# --------------------------------------------------------------------------- pins.py


def _item(
    name: str, version: str, requires: list[str], requested: bool = False, extras: list[str] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "metadata": {"name": name, "version": version, "requires_dist": requires},
        "requested": requested,
    }
    if extras is not None:
        item["requested_extras"] = extras
    return item


ENVIRONMENT = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "platform_release": "",
    "platform_version": "",
    "implementation_version": "3.13.0",
}


def _report(tracer: bool = True) -> dict[str, Any]:
    """pip's report for the layer's requirements, as pip resolved them (the SDK's tree included)."""
    return {
        "environment": ENVIRONMENT,
        "install": [
            _item(
                "aws_lambda_powertools",
                "3.37.0",
                [
                    "jmespath<2,>=1.0.1",
                    "typing-extensions>=4.11",
                    'aws-xray-sdk<3,>=2.8; extra == "tracer"',
                    'boto3<2,>=1.34; extra == "aws-sdk"',
                ],
                requested=True,
                extras=["tracer"] if tracer else None,
            ),
            _item("urllib3", "2.8.0", ['brotli>=1.0.9; extra == "brotli"'], requested=True),
            _item("PyYAML", "6.0.4", [], requested=True),
            _item("aws-xray-sdk", "2.15.0", ["botocore>=1.11.3", "wrapt"]),
            _item(
                "botocore",
                "1.44.8",
                [
                    "jmespath<2,>=0.7.1",
                    "python-dateutil<3,>=2.1",
                    'urllib3<1.27,>=1.25.4; python_version < "3.10"',
                    'urllib3!=2.2.0,<3,>=1.25.4; python_version >= "3.10"',
                ],
            ),
            _item("python-dateutil", "2.9.0.post0", ["six>=1.5"]),
            _item("six", "1.17.0", []),
            _item("jmespath", "1.1.0", []),
            _item("typing_extensions", "4.16.0", []),
            _item("wrapt", "2.5.2", ['pytest; extra == "dev"']),
        ],
    }


def _names(lines: list[str]) -> set[str]:
    return {pins.canonical(line.split("==", 1)[0]) for line in lines}


def test_pins_leave_out_the_runtimes_sdk_and_what_only_it_needs() -> None:
    lines = pins.pins(_report(), {pins.canonical(name) for name in RUNTIME_SDK})
    assert _names(lines) == {
        "aws-lambda-powertools",
        "urllib3",
        "pyyaml",
        "aws-xray-sdk",
        "jmespath",
        "typing-extensions",
        "wrapt",
    }
    assert "aws_lambda_powertools==3.37.0" in lines  # pip's names and versions, exactly as resolved


def test_pins_keep_everything_when_nothing_is_provided() -> None:
    assert _names(pins.pins(_report(), set())) == {
        pins.canonical(item["metadata"]["name"]) for item in _report()["install"]
    }


def test_pins_follow_only_the_requested_extras() -> None:
    names = _names(pins.pins(_report(tracer=False), set()))
    assert "aws-xray-sdk" not in names
    assert "botocore" not in names


def test_pins_refuse_a_dependency_pip_did_not_resolve() -> None:
    report = _report()
    report["install"] = [item for item in report["install"] if item["metadata"]["name"] != "wrapt"]
    with pytest.raises(SystemExit, match="wrapt"):
        pins.pins(report, set())


def test_pins_read_a_report_on_stdin() -> None:
    done = subprocess.run(
        [sys.executable, str(LAYER_DIR / "pins.py"), *RUNTIME_SDK],
        input=json.dumps(_report()),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "PyYAML==6.0.4" in done.stdout.splitlines()
    assert "botocore" not in done.stdout


# --------------------------------------------------------------------------- the layer as built


@pytest.fixture(scope="module")
def built_layer() -> Path:
    if not BUILT.is_dir():
        missing(f"{BUILT.relative_to(ROOT)} is missing: run `make build`")
    return BUILT


def _distributions(site: Path) -> dict[str, Path]:
    return {
        pins.canonical(info.name.removesuffix(".dist-info").split("-", 1)[0]): info for info in site.glob("*.dist-info")
    }


def test_the_built_layer_is_the_requirements_without_the_sdk(built_layer: Path) -> None:
    names = set(_distributions(built_layer))
    assert names.isdisjoint(RUNTIME_SDK | ONLY_FOR_THE_SDK)
    assert {
        "aws-lambda-powertools",
        "aws-xray-sdk",
        "jmespath",
        "urllib3",
        "pyyaml",
        "typing-extensions",
        "wrapt",
    } <= names
    assert not (built_layer / "bin").exists()  # console scripts have no place on sys.path


def test_the_built_layer_is_for_python313_on_arm64(built_layer: Path) -> None:
    for name, info in _distributions(built_layer).items():
        tags = [
            line.removeprefix("Tag: ") for line in (info / "WHEEL").read_text().splitlines() if line.startswith("Tag: ")
        ]
        assert tags, name
        for tag in tags:
            python, _, platform = tag.split("-")
            assert platform == "any" or ("aarch64" in platform and python == "cp313"), f"{name}: {tag}"


def test_the_built_layer_ships_hash_checked_bytecode_for_every_module(built_layer: Path) -> None:
    """Compiled by python3.13 (this suite may run on another Python): its magic number, and its keyed source hash."""
    sources = sorted(built_layer.rglob("*.py"))
    assert len(sources) > 100
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        header = pyc.read_bytes()[:16]
        assert header[:4] == PYTHON313_MAGIC, pyc
        assert int.from_bytes(header[4:8], "little") == 0b11, f"{pyc}: not hash-based and checked"
        key = int.from_bytes(PYTHON313_MAGIC, "little")  # what importlib keys the source hash with
        assert header[8:16] == _imp.source_hash(key, source.read_bytes()), f"{pyc}: for another source"
