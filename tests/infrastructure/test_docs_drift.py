"""The docs cannot drift from the code: docs/architecture.md names the template's functions, their handlers
and flows, and the package's layers with their ranks; the README and docs/ name every `polytrigger`
command and none the CLI lacks; and every relative link between the pages resolves, anchors included.

Each check is a function returning its problems, so a small counter-example beside it shows it can fail.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tests.unit.test_architecture import ENTRY_POINTS, LAYERS, SUBPACKAGES, modules

from .conftest import ROOT
from .test_docs import CODE, PAGES, README, blocks, prose, tables

ARCHITECTURE = ROOT / "docs" / "architecture.md"
DOC_PAGES = tuple(page for page in PAGES if page.parent.name == "docs")
FUNCTION_NAME = re.compile(r"(?<![\w:])[A-Z][A-Za-z0-9]*Function\b")
HANDLER = re.compile(r"\bpolytrigger\.handlers\.(\w+)")
MODULE_PATH = re.compile(rf"(?<![\w/.])({'|'.join(sorted(SUBPACKAGES))})/(\w+)(?:\.py)?\b")
COMMAND = re.compile(r"(?<![\w-])polytrigger (?P<command>[a-z][a-z-]*)(?P<rest>.*)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def code(markdown: str) -> list[str]:
    """What a page shows as code: its inline code spans and the lines of its fenced blocks."""
    return CODE.findall(prose(markdown)) + [line for block in blocks(markdown) for line in block.text.splitlines()]


# -- the template's functions ----------------------------------------------------------------------


def template_functions(template: Mapping[str, Any]) -> dict[str, str]:
    """Each AWS::Serverless::Function's logical id and its handler (`polytrigger.handlers.s3.handler`)."""
    return {
        name: str(resource["Properties"]["Handler"])
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def function_table_problems(markdown: str, functions: Mapping[str, str]) -> list[str]:
    """The page's one `| function |` table lists exactly these functions, each with its handler and its flow."""
    found = tables(markdown, "function")
    if len(found) != 1:
        return [f"expected one table headed `| function |`, found {len(found)}"]
    problems: list[str] = []
    listed: dict[str, tuple[str, str]] = {}
    for row in found[0]:
        cells = [CODE.findall(cell) for cell in row[:3]]
        if len(cells) < 3 or not all(len(names) == 1 for names in cells):
            problems.append(f"a row without one `name` in each of function, handler and flow: {row}")
            continue
        listed[cells[0][0]] = (cells[1][0], cells[2][0])
    for name in sorted(set(functions) - set(listed)):
        problems.append(f"{name} (template.yaml) is not in the table")
    for name in sorted(set(listed) - set(functions)):
        problems.append(f"{name} is in the table, not in template.yaml")
    for name in sorted(set(listed) & set(functions)):
        handler, flow = listed[name]
        if handler != functions[name]:
            problems.append(f"{name}: the table says {handler}, template.yaml {functions[name]}")
        entry = functions[name].split(".")[2]
        wanted = f"flows/{ENTRY_POINTS[entry][1]}.py" if entry in ENTRY_POINTS else "(no entry point)"
        if flow != wanted:
            problems.append(f"{name}: the table says its flow is {flow}, the architecture test {wanted}")
    return problems


def unknown_functions(markdown: str, functions: Mapping[str, str]) -> list[str]:
    """Function logical ids and handler modules the page names that template.yaml lacks."""
    handlers = {handler.split(".")[2] for handler in functions.values()}
    names = {name for name in FUNCTION_NAME.findall(markdown) if name not in functions}
    modules_named = {f"polytrigger.handlers.{name}" for name in HANDLER.findall(markdown) if name not in handlers}
    return sorted(names | modules_named)


@pytest.fixture(scope="module")
def functions(template: dict[str, Any]) -> dict[str, str]:
    return template_functions(template)


def test_the_architecture_names_every_function_its_handler_and_its_flow(functions: dict[str, str]) -> None:
    assert function_table_problems(ARCHITECTURE.read_text(encoding="utf-8"), functions) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_no_page_names_a_function_or_handler_the_template_lacks(page: Path, functions: dict[str, str]) -> None:
    assert unknown_functions(page.read_text(encoding="utf-8"), functions) == []


def test_the_function_checks_see_a_missing_a_wrong_and_an_unknown_function() -> None:
    functions = {
        "S3TriggerFunction": "polytrigger.handlers.s3.handler",
        "PollerFunction": "polytrigger.handlers.poller.handler",
    }
    table = (
        "| function | handler | flow |\n|---|---|---|\n"
        "| `S3TriggerFunction` | `polytrigger.handlers.s3.handler` | `flows/on_poll.py` |\n"
        "| `GoneFunction` | `polytrigger.handlers.gone.handler` | `flows/on_gone.py` |\n"
    )
    assert function_table_problems(table, functions) == [
        "PollerFunction (template.yaml) is not in the table",
        "GoneFunction is in the table, not in template.yaml",
        "S3TriggerFunction: the table says its flow is flows/on_poll.py, the architecture test flows/on_triggers.py",
    ]
    assert function_table_problems("no table", functions) == ["expected one table headed `| function |`, found 0"]
    prose_text = (
        "`GoneFunction` (`polytrigger.handlers.gone.handler`) beside `lambda:InvokeFunction` and PollerFunction"
    )
    assert unknown_functions(prose_text, functions) == ["GoneFunction", "polytrigger.handlers.gone"]


# -- the package's layers and modules --------------------------------------------------------------


def layer_name(written: str) -> str:
    """`core/` → core, `settings.py` → settings, `__init__.py` → polytrigger (the package itself)."""
    name = written.strip("/").removesuffix(".py")
    return "polytrigger" if name == "__init__" else name


def layer_table_problems(markdown: str, layers: Mapping[str, int]) -> list[str]:
    """The page's one `| rank |` table gives every layer of the architecture test its rank, and no other."""
    found = tables(markdown, "rank")
    if len(found) != 1:
        return [f"expected one table headed `| rank |`, found {len(found)}"]
    listed: dict[str, int] = {}
    for row in found[0]:
        for written in CODE.findall(row[1]):
            listed[layer_name(written)] = int(row[0])
    problems = [
        f"layer {name} (rank {rank}) is not in the table" for name, rank in layers.items() if name not in listed
    ]
    problems += [f"{name} is in the table, not a layer" for name in listed if name not in layers]
    problems += [
        f"layer {name}: the table says rank {listed[name]}, the architecture test {rank}"
        for name, rank in layers.items()
        if name in listed and listed[name] != rank
    ]
    return problems


def missing_modules(markdown: str, names: Iterable[str]) -> list[str]:
    """Module paths (`dispatch/policy.py`, `runs/settle`) the page names in code that the package lacks."""
    known = set(names)
    named = {
        f"polytrigger.{package}.{module}" for line in code(markdown) for package, module in MODULE_PATH.findall(line)
    }
    return sorted(named - known)


def unnamed_modules(markdown: str, names: Iterable[str]) -> list[str]:
    """Modules of the subpackages that the page never names in code (bare, or as `package/module`)."""
    words = {word for line in code(markdown) for word in re.findall(r"\w+", line)}
    return sorted(
        name
        for name in names
        if name.count(".") == 2 and name.split(".")[1] in SUBPACKAGES and name.split(".")[2] not in words
    )


def test_the_architecture_gives_every_layer_its_rank() -> None:
    assert layer_table_problems(ARCHITECTURE.read_text(encoding="utf-8"), LAYERS) == []


def test_the_architecture_names_every_module_and_only_modules_that_exist() -> None:
    markdown = ARCHITECTURE.read_text(encoding="utf-8")
    assert missing_modules(markdown, modules()) == []
    assert unnamed_modules(markdown, modules()) == []


def test_the_layer_and_module_checks_see_what_is_wrong() -> None:
    layers = {"core": 0, "settings": 1, "polytrigger": 0}
    table = "| rank | layer | holds |\n|---|---|---|\n| 0 | `__init__.py`, `core/` | x |\n| 2 | `settings.py`, `runtime/` | y |\n"
    assert layer_table_problems(table, layers) == [
        "runtime is in the table, not a layer",
        "layer settings: the table says rank 2, the architecture test 1",
    ]
    names = ["polytrigger.dispatch.policy", "polytrigger.runs.settle", "polytrigger.settings"]
    page = "`dispatch/policy.py` and `runs/gone`\n\n```\nrouting/load ─► local/polytomic/api\n```\n"
    assert missing_modules(page, names) == ["polytrigger.routing.load", "polytrigger.runs.gone"]
    assert unnamed_modules(page, names) == ["polytrigger.runs.settle"]


# -- the polytrigger command -----------------------------------------------------------------------


def cli_commands() -> set[str]:
    """The subcommands of the parser `polytrigger.tools.cli.main` builds (caught before it parses anything)."""
    from polytrigger.tools import cli

    built: list[argparse.ArgumentParser] = []

    class Built(Exception):
        pass

    def catch(parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        built.append(parser)
        raise Built

    with mock.patch.object(argparse.ArgumentParser, "parse_args", catch), pytest.raises(Built):
        cli.main([])
    (subparsers,) = (action for action in built[0]._actions if isinstance(action, argparse._SubParsersAction))
    return set(subparsers.choices)


def commands_named(markdown: str) -> set[str]:
    """The `polytrigger <command>` a page shows as code: the word after `polytrigger`, ending the code or
    followed by an argument (an option, a placeholder, a URL, a path, a quoted string). A log line that
    reads on in words (`polytrigger cannot start: …`) names no command."""
    found: set[str] = set()
    for line in code(markdown):
        for match in COMMAND.finditer(line):
            rest = match.group("rest").split()
            if not rest or re.match(r"[-<\"'$A-Z]|s3://|.*[/.]", rest[0]) or rest[0] in ("#", ";", "|", "&&"):
                found.add(match.group("command"))
    return found


@pytest.fixture(scope="module")
def commands() -> set[str]:
    return cli_commands()


def test_the_cli_has_commands(commands: set[str]) -> None:
    assert {"explain", "validate"} <= commands


def test_the_readme_names_every_command(commands: set[str]) -> None:
    missing = sorted(commands - commands_named(README.read_text(encoding="utf-8")))
    assert missing == [], f"README.md does not show `polytrigger <command>` for {missing}"


def test_docs_explain_every_command(commands: set[str]) -> None:
    shown = set().union(*(commands_named(page.read_text(encoding="utf-8")) for page in DOC_PAGES))
    assert sorted(commands - shown) == [], "a command no page in docs/ shows"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_no_page_names_a_command_the_cli_lacks(page: Path, commands: set[str]) -> None:
    assert sorted(commands_named(page.read_text(encoding="utf-8")) - commands) == []


def test_the_command_reader_tells_a_command_from_a_sentence() -> None:
    page = (
        "Run `polytrigger deploy --stack x`, `polytrigger status`; not `polytrigger cannot start: X`.\n\n"
        "```sh\n.venv/bin/polytrigger frobnicate\npython -m polytrigger explain s3://b/k   # a dry run\n"
        "$ polytrigger validate routes.yaml\naws logs tail /aws/lambda/polytrigger/s3-trigger\n```\n"
        "Prose about polytrigger validate is not code.\n"
    )
    assert commands_named(page) == {"deploy", "status", "frobnicate", "explain", "validate"}


# -- links between the pages -----------------------------------------------------------------------


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as `-`, repeats numbered."""
    found: set[str] = set()
    for line in prose(markdown).splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        candidate, repeat = slug, 0
        while candidate in found:
            repeat += 1
            candidate = f"{slug}-{repeat}"
        found.add(candidate)
    return found


def broken_links(page: Path) -> list[str]:
    """The page's relative links (outside code) whose file, or whose anchor in a Markdown file, is missing."""
    problems: list[str] = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading with that anchor")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_check_sees_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## 5. The deployer's `policy.json`\n\n## Same\n\n## Same\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#5-the-deployers-policyjson) [ok](docs/a.md#same-1) [ok](#top) [web](https://x.y/z)\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#nowhere) [self](#elsewhere)\n\n# Top\n\n"
        "```\n[in code](not/checked.md)\n```\n"
    )
    assert broken_links(page) == [
        "docs/b.md: no such file",
        "docs/a.md#nowhere: no heading with that anchor",
        "#elsewhere: no heading with that anchor",
    ]
