"""README.md's parameter table names exactly the template's parameters: none missing, none gone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import ROOT

README = ROOT / "README.md"
CODE = re.compile(r"`([^`]+)`")


def parameter_tables(markdown: str) -> list[list[str]]:
    """The first-column cells of every Markdown table whose header's first cell is ``parameter``."""
    tables: list[list[str]] = []
    lines = markdown.splitlines()
    for index, line in enumerate(lines):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not (line.startswith("|") and cells[0].lower() == "parameter"):
            continue
        assert index + 1 < len(lines), "a parameter table header with no separator row"
        assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[index + 1].strip()), f"not a table: {line!r}"
        rows = []
        for row in lines[index + 2 :]:
            if not row.startswith("|"):
                break
            rows.append(row.strip().strip("|").split("|")[0].strip())
        tables.append(rows)
    return tables


def documented(markdown: str) -> list[str]:
    """The parameter names of README.md's parameter table, in order (a row may name several)."""
    tables = parameter_tables(markdown)
    assert len(tables) == 1, f"expected one table headed `| parameter |` in README.md, found {len(tables)}"
    names = []
    for cell in tables[0]:
        in_cell = CODE.findall(cell)
        assert in_cell, f"README.md parameter table: a row names no `Parameter`: {cell!r}"
        names.extend(in_cell)
    return names


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_every_template_parameter_is_in_the_readme(readme: str, template: dict[str, Any]) -> None:
    missing = sorted(set(template["Parameters"]) - set(documented(readme)))
    assert not missing, f"template.yaml parameters missing from README.md's parameter table: {missing}"


def test_the_readme_names_no_parameter_the_template_lacks(readme: str, template: dict[str, Any]) -> None:
    names = documented(readme)
    gone = sorted(set(names) - set(template["Parameters"]))
    assert not gone, f"README.md's parameter table names parameters template.yaml does not have: {gone}"
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert not repeated, f"README.md's parameter table names these twice: {repeated}"


def test_the_table_reader_sees_a_table() -> None:
    markdown = "x\n\n| parameter | meaning |\n|---|---|\n| `A`, `B` | a |\n| `C` | c |\n\nafter\n| not | this |\n"
    assert documented(markdown) == ["A", "B", "C"]
    with pytest.raises(AssertionError, match="names no"):
        documented("| parameter | meaning |\n|---|---|\n| A | a |\n")
    with pytest.raises(AssertionError, match="found 0"):
        documented("| variable | meaning |\n|---|---|\n| `A` | a |\n")


def test_the_readme_routes_example_is_a_valid_routes_file_that_defines_and_names_schedules(tmp_path: Any) -> None:
    """What a newcomer copies first must validate, and show both kinds of schedule."""
    from polytrigger.tools.validate import validate

    text = README.read_text(encoding="utf-8")
    example = text[text.index("## Routes file") :].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "routes.yaml"
    path.write_text(example, encoding="utf-8")

    report = validate(path)

    assert report.ok, report.problems
    assert [spec.name for spec in report.created] == ["freeze", "hourly", "nightly", "thaw"]
    assert report.elsewhere == ["month-end"]
