"""The docs' examples hold: docs/deploy.md's parameter table names exactly the template's parameters,
and every routes file the README and docs/ show validates and does what its words say.

The Markdown readers here (tables, fenced blocks, headings) are shared with test_docs_drift.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
DEPLOY = DOCS / "deploy.md"
ROUTES = DOCS / "routes.md"
RECIPES = DOCS / "recipes.md"
# Every Markdown page a reader follows links between: the README, docs/ and the sample events' page.
PAGES = (README, *sorted(DOCS.glob("*.md")), ROOT / "events" / "README.md")
CODE = re.compile(r"`([^`]+)`")
FENCE = re.compile(r"^(\s*)(```+)\s*([\w-]*)\s*$")
CELL_SPLIT = re.compile(r"(?<!\\)\|")


# -- Markdown readers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """A fenced code block: its language tag, its text (indentation of the fence removed), where it is."""

    lang: str
    text: str
    line: int  # 1-based line of the opening fence
    heading: str  # the nearest `#` heading above it ("" before any)


def blocks(markdown: str) -> list[Block]:
    """Every fenced code block, also those indented inside a list item."""
    found: list[Block] = []
    heading = ""
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opened = FENCE.match(lines[index])
        if opened is None:
            if lines[index].startswith("#"):
                heading = lines[index].lstrip("#").strip()
            index += 1
            continue
        indent, fence, lang = opened.groups()
        body: list[str] = []
        start = index
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        assert index < len(lines), f"a code block opened at line {start + 1} is never closed"
        found.append(Block(lang, "\n".join(body) + "\n", start + 1, heading))
        index += 1
    return found


def prose(markdown: str) -> str:
    """The page without its fenced code blocks (where headings and links are read)."""
    kept: list[str] = []
    fence = ""
    for line in markdown.splitlines():
        opened = FENCE.match(line)
        if fence:
            if line.strip() == fence:
                fence = ""
            continue
        if opened is not None:
            fence = opened.group(2)
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def tables(markdown: str, first: str) -> list[list[list[str]]]:
    """The body rows (cells stripped) of every table whose header's first cell is `first`."""
    found: list[list[list[str]]] = []
    lines = prose(markdown).splitlines()
    for index, line in enumerate(lines):
        cells = [cell.strip() for cell in CELL_SPLIT.split(line.strip().strip("|"))]
        if not (line.startswith("|") and cells[0].lower() == first):
            continue
        assert index + 1 < len(lines), f"a `| {first} |` table header with no separator row"
        assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[index + 1].strip()), f"not a table: {line!r}"
        rows = []
        for row in lines[index + 2 :]:
            if not row.startswith("|"):
                break
            rows.append([cell.strip() for cell in CELL_SPLIT.split(row.strip().strip("|"))])
        found.append(rows)
    return found


# -- the parameter table ---------------------------------------------------------------------------


def documented(markdown: str, page: str = "docs/deploy.md") -> list[str]:
    """The parameter names of the page's one parameter table, in order (a row may name several)."""
    found = tables(markdown, "parameter")
    assert len(found) == 1, f"expected one table headed `| parameter |` in {page}, found {len(found)}"
    names = []
    for row in found[0]:
        in_cell = CODE.findall(row[0])
        assert in_cell, f"{page} parameter table: a row names no `Parameter`: {row[0]!r}"
        names.extend(in_cell)
    return names


@pytest.fixture(scope="module")
def deploy() -> str:
    return DEPLOY.read_text(encoding="utf-8")


def test_every_template_parameter_is_in_the_deploy_guide(deploy: str, template: dict[str, Any]) -> None:
    missing = sorted(set(template["Parameters"]) - set(documented(deploy)))
    assert not missing, f"template.yaml parameters missing from docs/deploy.md's parameter table: {missing}"


def test_the_deploy_guide_names_no_parameter_the_template_lacks(deploy: str, template: dict[str, Any]) -> None:
    names = documented(deploy)
    gone = sorted(set(names) - set(template["Parameters"]))
    assert not gone, f"docs/deploy.md's parameter table names parameters template.yaml does not have: {gone}"
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert not repeated, f"docs/deploy.md's parameter table names these twice: {repeated}"


def test_the_parameter_table_is_written_once() -> None:
    """Only docs/deploy.md holds it: a second copy elsewhere would drift unchecked."""
    elsewhere = [
        str(page.relative_to(ROOT)) for page in PAGES if page != DEPLOY and tables(page.read_text("utf-8"), "parameter")
    ]
    assert elsewhere == []


def test_the_table_reader_sees_a_table() -> None:
    markdown = "x\n\n| parameter | meaning |\n|---|---|\n| `A`, `B` | a \\| b |\n| `C` | c |\n\nafter\n| not | this |\n"
    assert documented(markdown) == ["A", "B", "C"]
    assert tables(markdown, "parameter") == [[["`A`, `B`", "a \\| b"], ["`C`", "c"]]]
    with pytest.raises(AssertionError, match="names no"):
        documented("| parameter | meaning |\n|---|---|\n| A | a |\n")
    with pytest.raises(AssertionError, match="found 0"):
        documented("| variable | meaning |\n|---|---|\n| `A` | a |\n")
    with pytest.raises(AssertionError, match="found 0"):  # a table shown as code is not the table
        documented("```\n| parameter | meaning |\n|---|---|\n| `A` | a |\n```\n")


# -- the routes files the docs show ----------------------------------------------------------------


def yaml_blocks() -> Iterator[tuple[str, Block]]:
    for page in (README, *sorted(DOCS.glob("*.md"))):
        for block in blocks(page.read_text(encoding="utf-8")):
            if block.lang == "yaml":
                yield f"{page.relative_to(ROOT)}:{block.line}", block


def validated(text: str, tmp_path: Path) -> Any:
    from polytrigger.tools.validate import validate

    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    return validate(path)


YAML_BLOCKS = list(yaml_blocks())


@pytest.mark.parametrize(("where", "block"), YAML_BLOCKS, ids=[where for where, _ in YAML_BLOCKS])
def test_every_yaml_block_in_the_docs_is_a_valid_routes_file(where: str, block: Block, tmp_path: Path) -> None:
    report = validated(block.text, tmp_path)
    assert report.ok, f"{where}: {report.problems}"


def test_the_block_reader_sees_indented_blocks_and_headings() -> None:
    markdown = "# A\n\n```yaml\nroutes: []\n```\n\n## B\n\n- item\n\n  ```yaml\n  routes:\n    - x\n  ```\n\n```\n# not a heading\n```\n"
    found = blocks(markdown)
    assert [(block.lang, block.text, block.heading) for block in found] == [
        ("yaml", "routes: []\n", "A"),
        ("yaml", "routes:\n  - x\n", "B"),
        ("", "# not a heading\n", "B"),
    ]
    assert "not a heading" not in prose(markdown)
    with pytest.raises(AssertionError, match="never closed"):
        blocks("```yaml\nroutes: []\n")


def test_the_readme_routes_example_is_a_first_routes_file_with_both_kinds_of_schedule(tmp_path: Path) -> None:
    """What a newcomer copies first must validate, and show a schedule the stack makes and one made elsewhere."""
    example = next(block for _, block in yaml_blocks() if block.heading == "Routes file")
    report = validated(example.text, tmp_path)
    assert report.ok, report.problems
    assert [spec.name for spec in report.created] == ["nightly"]
    assert report.elsewhere == ["month-end"]


def test_the_routes_reference_example_defines_and_names_schedules(tmp_path: Path) -> None:
    example = blocks(ROUTES.read_text(encoding="utf-8"))[0]
    report = validated(example.text, tmp_path)
    assert report.ok, report.problems
    assert [spec.name for spec in report.created] == ["freeze", "hourly", "nightly", "thaw"]
    assert report.elsewhere == ["month-end"]


# -- the recipes do what their words say ------------------------------------------------------------

RECIPE_HEADINGS = (
    "A marker file such as `_SUCCESS`",
    "A manifest uploaded last",
    "A weekend pause",
    "A chain",
    "The marker partition",
    "Orders by 06:00",
    "A join",
)
LANDED = datetime(2026, 11, 23, 9, 15, tzinfo=UTC)


def recipe(heading: str, tmp_path: Path, nth: int = 0) -> Any:
    """The routes of the recipe under `heading` (its `nth` snippet), loaded as the functions load them."""
    from polytrigger.routing import load_routes

    found = [block for block in blocks(RECIPES.read_text(encoding="utf-8")) if block.heading.startswith(heading)]
    assert len(found) > nth, f"docs/recipes.md: no routes snippet {nth} under a heading {heading!r}"
    path = tmp_path / "recipe.yaml"
    path.write_text(found[nth].text, encoding="utf-8")
    return load_routes(path)


def starts(routes: Any, url: str) -> list[tuple[str, str]]:
    from polytrigger.tools.explain import s3_trigger

    return [(action.route, action.kind) for action in routes.actions_for([s3_trigger(url, now=LANDED)])]


@pytest.mark.parametrize("heading", RECIPE_HEADINGS)
def test_each_recipe_has_a_routes_snippet(heading: str, tmp_path: Path) -> None:
    assert recipe(heading, tmp_path).routes


def test_the_marker_recipe_starts_on_the_marker_and_not_on_the_part_files(tmp_path: Path) -> None:
    routes = recipe(RECIPE_HEADINGS[0], tmp_path)
    assert starts(routes, "s3://acme-landing/exports/orders/2026-11-23/_SUCCESS") == [("orders-batch-done", "start")]
    assert starts(routes, "s3://acme-landing/exports/orders/2026-11-23/part-00000.parquet") == []


def arrivals(routes: Any, url: str) -> list[tuple[str, tuple[tuple[str, str], ...], str]]:
    """What a landed object is to the recipe's gates: (route, partition, marker/manifest/part)."""
    from polytrigger.tools.explain import s3_trigger

    return [
        (found.route.name, found.partition, "marker" if found.marker else "manifest" if found.manifest else "part")
        for found in routes.arrivals([s3_trigger(url, now=LANDED)])
    ]


def test_the_marker_partition_recipe_counts_parts_and_its_marker_in_the_days_partition(tmp_path: Path) -> None:
    routes = recipe(RECIPE_HEADINGS[4], tmp_path)
    day = (("date", "2026-12-06"),)
    assert starts(routes, "s3://acme-landing/exports/orders/dt=2026-12-06/part-00000.parquet") == []
    assert arrivals(routes, "s3://acme-landing/exports/orders/dt=2026-12-06/part-00000.parquet") == [
        ("orders-partition", day, "part")
    ]
    assert arrivals(routes, "s3://acme-landing/exports/orders/dt=2026-12-06/_SUCCESS") == [
        ("orders-partition", day, "marker")
    ]
    gate = routes.named("orders-partition").gate
    assert (gate.objects, gate.timeout) == (40, 6 * 3600)


def test_the_manifest_recipe_gates_the_vendor_folder_on_its_manifest_and_the_debounced_one_on_the_files(
    tmp_path: Path,
) -> None:
    manifest = recipe(RECIPE_HEADINGS[1], tmp_path)
    folder = (("vendor", "acme"), ("date", "2026-12-06"))
    assert starts(manifest, "s3://acme-landing/vendor/acme/2026-12-06/manifest.json") == []
    assert arrivals(manifest, "s3://acme-landing/vendor/acme/2026-12-06/manifest.json") == [
        ("vendor-manifest", folder, "manifest")
    ]
    assert arrivals(manifest, "s3://acme-landing/vendor/acme/2026-12-06/orders-0001.csv") == [
        ("vendor-manifest", folder, "part")
    ]
    assert manifest.named("vendor-manifest").gate.manifest.check == ("size",)
    from polytrigger.tools.explain import s3_trigger

    debounced = recipe(RECIPE_HEADINGS[1], tmp_path, nth=1)
    (action,) = debounced.actions_for([s3_trigger("s3://acme-landing/exports/orders/2026/11/23/a.csv", now=LANDED)])
    assert (action.kind, action.debounce, action.max_wait) == ("start", 60, 300)


def test_the_orders_by_six_recipe_is_due_at_six_berlin_on_weekdays_in_winter_and_summer(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    from polytrigger.routing.expect import next_deadlines

    route = recipe(RECIPE_HEADINGS[5], tmp_path).named("orders-daily")
    friday_evening = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
    winter = [deadline.by for deadline in next_deadlines(route.expect, friday_evening, 2, ZoneInfo("Europe/Berlin"))]
    assert winter == [datetime(2026, 12, 7, 5, 0, tzinfo=UTC), datetime(2026, 12, 8, 5, 0, tzinfo=UTC)]  # Mon, Tue
    summer = next(next_deadlines(route.expect, datetime(2026, 7, 1, 12, 0, tzinfo=UTC), 1, ZoneInfo("Europe/Berlin")))
    assert summer.by == datetime(2026, 7, 2, 4, 0, tzinfo=UTC)


def test_the_weekend_pause_pauses_on_friday_and_resumes_on_monday(tmp_path: Path) -> None:
    from polytrigger.tools.explain import schedule_trigger

    routes = recipe(RECIPE_HEADINGS[2], tmp_path)
    freeze = routes.actions_for([schedule_trigger("freeze", "2026-11-27T17:00:00Z")])
    thaw = routes.actions_for([schedule_trigger("thaw", "2026-11-30T05:00:00Z")])
    assert {action.kind for action in freeze} == {"deactivate"}
    assert {action.kind for action in thaw} == {"activate"}
    assert {action.sync.id for action in freeze} == {action.sync.id for action in thaw}


def test_the_chain_recipe_starts_the_chained_sync_when_the_upstream_run_completes(tmp_path: Path) -> None:
    from polytrigger.core.triggers import Trigger

    routes = recipe(RECIPE_HEADINGS[3], tmp_path)
    upstream = "248df4b7-aa70-47b8-a036-33ac447e668d"

    def chained(status: str) -> list[str]:
        ending = Trigger.polytomic(sync_id=upstream, execution="e-1", status=status, time=LANDED)
        return [action.sync.id for action in routes.actions_for([ending])]

    assert chained("completed") == ["3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f"]
    assert chained("failed") == []


def test_the_join_recipe_starts_the_warehouse_on_both_completions_within_12_hours_not_on_one(tmp_path: Path) -> None:
    from polytrigger.core.triggers import Trigger

    routes = recipe(RECIPE_HEADINGS[6], tmp_path)
    orders, customers = "248df4b7-aa70-47b8-a036-33ac447e668d", "3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f"
    (route,) = routes.routes
    one = Trigger.polytomic(sync_id=orders, execution="o-1", status="completed", time=LANDED)
    both = Trigger.polytomic(
        sync_id=orders, execution="o-1", status="completed", time=LANDED, after=((orders, "o-1"), (customers, "c-1"))
    )

    assert (sorted(route.upstreams), route.within) == (sorted([orders, customers]), 12 * 3600)
    assert routes.actions_for([one]) == []
    assert [action.sync.id for action in routes.actions_for([both])] == ["7f3e9c2a-4b8d-4f1e-a9c3-6d5e2f8b1a7c"]
