"""The CloudWatch dashboard (template.yaml, `Dashboard`) is held to the code: it names only metrics the
code emits, with the dimensions the code gives them, and shows every outcome status, every run
ending and every alarm of the template.

The body is a `!Sub` of JSON. It is rendered here the way CloudFormation renders it (`${Name}` from the
variables, a resource's attribute, a pseudo parameter; `${!...}` a literal `${...}`), for each way the
template's conditions can go, then read as CloudWatch reads it: each widget's metrics, as rows
`[namespace, name, dimension, value, ..., {options}]` or SEARCH expressions, whose schema
(`{namespace,route,service}`) says which dimensions the metrics it finds carry. The names the code
emits, and with which dimensions, are read from its source (emitted.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from polytrigger.core.outcomes import STATUSES

from .cfn import WEBHOOK_ON, decide, deployed, of_type, resolve
from .conftest import METRICS_NAMESPACE, ROOT, SERVICE
from .emitted import RUN_METRICS, Emitted, emitted_metrics
from .test_docs import tables

DASHBOARD = "Dashboard"
OPERATIONS = ROOT / "docs" / "operations.md"
ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::StackName": "polytrigger",
}
# The holds (a start that met a paused sync is held; held starts released as one; a hold past its
# limit parked) are being added on another branch: the dashboard shows their metrics already.
# Metrics about the whole deployment, not a route: their widget need not say "all routes".
NOT_ABOUT_A_ROUTE = frozenset({"cursor_age_seconds"})
ALL_ROUTES = "all routes together"
# How the conditions can go that decide what the body holds (WebhookErrorsAlarm exists with the webhook).
CASES = {"default": {}, "webhook": WEBHOOK_ON}
SUB_NAME = re.compile(r"\$\{([^!}][^}]*)\}")
SEARCH = re.compile(
    r"^SEARCH\('\{(?P<schema>[^}]*)\}\s*(?P<terms>.*?)'\s*,\s*'(?P<stat>[^']+)'\s*,\s*(?P<period>\d+)\)$"
)
METRIC_NAME = re.compile(r'MetricName="([^"]+)"')


# --------------------------------------------------------------------------- rendering the body


def _render(text: str, variables: Mapping[str, str], resources: Mapping[str, Any]) -> str:
    """An Fn::Sub string as CloudFormation renders it; a resource's attribute becomes a stand-in naming it."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return variables[name]
        if name in PSEUDO:
            return PSEUDO[name]
        logical_id, _, attribute = name.partition(".")
        assert logical_id in resources, f"the dashboard names ${{{name}}}: no such resource or variable"
        if attribute == "Arn" and resources[logical_id]["Type"] == "AWS::CloudWatch::Alarm":
            return f"arn:aws:cloudwatch:{PSEUDO['AWS::Region']}:{ACCOUNT}:alarm:{logical_id}"
        return logical_id  # a Ref (a name) or another attribute (a queue's name): the logical id stands in

    return SUB_NAME.sub(one, text).replace("${!", "${")


def _variable(value: Any, resources: Mapping[str, Any]) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return _render(value["Fn::Sub"], {}, resources)
    raise AssertionError(f"a Sub variable the test cannot render: {value!r}")


def _sub(tpl: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The body's Fn::Sub: its text and its variables, as the template writes them."""
    body = tpl["Resources"][DASHBOARD]["Properties"]["DashboardBody"]
    assert isinstance(body, dict), "DashboardBody should be a !Sub of JSON"
    assert set(body) == {"Fn::Sub"}, "DashboardBody should be a !Sub of JSON"
    text, variables = body["Fn::Sub"] if isinstance(body["Fn::Sub"], list) else (body["Fn::Sub"], {})
    return text, variables


def body(tpl: dict[str, Any], **given: str) -> dict[str, Any]:
    """The dashboard's body, rendered with these parameter values, parsed as JSON."""
    decided = decide(tpl, **given)
    resources = deployed(tpl, decided)
    text, variables = _sub(tpl)
    rendered = {name: _variable(resolve(value, decided), resources) for name, value in variables.items()}
    loaded = json.loads(_render(text, rendered, resources))
    assert isinstance(loaded, dict)
    return loaded


# --------------------------------------------------------------------------- reading it as CloudWatch does


@dataclass(frozen=True)
class Metric:
    """A metric a widget draws: a row, or what one SEARCH expression finds."""

    namespace: str
    names: frozenset[str]
    dimensions: frozenset[str]  # dimension names; for a row, with `values`
    values: Mapping[str, str]
    stat: str
    widget: str  # its widget's title
    search: bool


def _row(row: list[Any], widget: Mapping[str, Any]) -> Metric:
    options = row[-1] if isinstance(row[-1], dict) else {}
    fields = row[:-1] if options else row
    assert all(isinstance(field, str) for field in fields), f"{widget['title']}: a row of strings, then options"
    assert not {".", "..."} & set(fields), f"{widget['title']}: write each row in full, not '.'"
    namespace, name, *pairs = fields
    assert len(pairs) % 2 == 0, f"{widget['title']}: {row} has a dimension without its value"
    values = dict(zip(pairs[::2], pairs[1::2], strict=True))
    stat = options.get("stat", widget.get("stat", "Average"))
    return Metric(namespace, frozenset({name}), frozenset(values), values, stat, widget["title"], False)


def _search(options: Mapping[str, Any], widget: Mapping[str, Any]) -> Metric:
    expression = options["expression"]
    found = SEARCH.match(expression)
    assert found, f"{widget['title']}: {expression!r} is no SEARCH('{{schema}} terms', 'stat', period) (teach the test)"
    namespace, *dimensions = (part.strip() for part in found["schema"].split(","))
    names = frozenset(METRIC_NAME.findall(found["terms"]))
    assert names, f"{widget['title']}: {expression!r} names no MetricName: it would draw every metric"
    leftover = METRIC_NAME.sub("", found["terms"]).replace("(", "").replace(")", "").replace("OR", "").strip()
    assert not leftover, f"{widget['title']}: {expression!r} searches on {leftover!r} too: teach the test"
    return Metric(namespace, names, frozenset(dimensions), {}, found["stat"], widget["title"], True)


def metrics(dashboard: Mapping[str, Any]) -> Iterator[Metric]:
    for widget in dashboard["widgets"]:
        properties = widget["properties"]
        for row in properties.get("metrics", []):
            if isinstance(row[0], dict):
                assert len(row) == 1, f"{properties['title']}: an expression row holds the expression only"
                yield _search(row[0], properties)
            else:
                yield _row(row, properties)


def ours(dashboard: Mapping[str, Any]) -> list[Metric]:
    """The metrics of polytrigger's namespace (the others are AWS's own: the queues')."""
    found = list(metrics(dashboard))
    others = {metric.namespace for metric in found if metric.namespace != METRICS_NAMESPACE}
    assert all(namespace.startswith("AWS/") for namespace in others), f"a namespace neither ours nor AWS's: {others}"
    return [metric for metric in found if metric.namespace == METRICS_NAMESPACE]


@pytest.fixture(scope="module", params=sorted(CASES))
def dashboard(request: pytest.FixtureRequest, transformed: dict[str, Any]) -> dict[str, Any]:
    return body(transformed, **CASES[request.param])


@pytest.fixture(scope="module")
def emitted() -> Emitted:
    return emitted_metrics()


# --------------------------------------------------------------------------- the resource


def test_named_after_the_stack_and_region(template: dict[str, Any]) -> None:
    """A dashboard is the account's, in every Region: the stack's name alone would collide across Regions."""
    dashboard = template["Resources"][DASHBOARD]
    assert dashboard["Type"] == "AWS::CloudWatch::Dashboard"
    assert "Condition" not in dashboard
    assert dashboard["Properties"]["DashboardName"] == {"Fn::Sub": "${AWS::StackName}-${AWS::Region}"}
    assert len(of_type(template, "AWS::CloudWatch::Dashboard")) == 1


def test_namespace_and_service_are_the_functions_own(template: dict[str, Any]) -> None:
    """The body names the namespace and the service only through its two variables, which are Globals'."""
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    text, variables = _sub(template)
    assert variables["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert variables["Service"] == environment["POWERTOOLS_SERVICE_NAME"] == SERVICE
    assert METRICS_NAMESPACE not in text, "write ${Namespace}, not a copy of it"
    assert f'"{SERVICE}"' not in text, "write ${Service}, not a copy of it"


def test_body_is_json_and_every_widget_has_a_title_and_a_place(dashboard: dict[str, Any]) -> None:
    widgets = dashboard["widgets"]
    assert widgets
    taken: set[tuple[int, int]] = set()
    for widget in widgets:
        title = widget["properties"].get("title")
        assert isinstance(title, str), f"a widget without a title: {widget}"
        assert title.strip(), f"a widget with an empty title: {widget}"
        assert widget["type"] in ("metric", "alarm"), f"{title}: {widget['type']} (teach the test)"
        x, y, width, height = (widget[key] for key in ("x", "y", "width", "height"))
        assert x >= 0, f"{title}: outside the 24 columns"
        assert x + width <= 24, f"{title}: outside the 24 columns"
        cells = {(column, row) for column in range(x, x + width) for row in range(y, y + height)}
        assert not cells & taken, f"{title} overlaps another widget"
        taken |= cells
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == PSEUDO["AWS::Region"], f"{title}: the stack's Region"
    titles = [widget["properties"]["title"] for widget in widgets]
    assert len(set(titles)) == len(titles), "two widgets with one title"


# --------------------------------------------------------------------------- held to the code


def test_names_only_metrics_the_code_emits(dashboard: dict[str, Any], emitted: Emitted) -> None:
    """Every name, in a row or inside a SEARCH, is one the code emits (or the holds' three, until merged)."""
    known = emitted.names
    unknown = sorted(f"{name} ({metric.widget})" for metric in ours(dashboard) for name in metric.names - known)
    assert not unknown, "the dashboard names metrics polytrigger does not emit: " + ", ".join(unknown)


def test_by_route_only_where_the_code_counts_by_route(dashboard: dict[str, Any], emitted: Emitted) -> None:
    """A metric is drawn with the dimensions the code gives it: `service` and `route` for count_by_route's,
    found by SEARCH (a new route shows without a deploy); `service` alone for the others, all routes
    together, and the widget's title says so."""
    by_service = emitted.by_service
    for metric in ours(dashboard):
        if metric.dimensions == {"route", "service"}:
            assert metric.search, f"{metric.widget}: a metric by route is a SEARCH, so new routes show"
            assert metric.names <= emitted.by_route, (
                f"{metric.widget}: {sorted(metric.names - emitted.by_route)} are not counted by route (count_by_route)"
            )
        else:
            assert metric.dimensions == {"service"}, f"{metric.widget}: dimensions {sorted(metric.dimensions)}"
            assert metric.search or metric.values == {"service": SERVICE}, f"{metric.widget}: {metric.values}"
            assert metric.names <= by_service, (
                f"{metric.widget}: {sorted(metric.names - by_service)} are not counted with the service alone"
            )
            if metric.names - NOT_ABOUT_A_ROUTE:
                assert ALL_ROUTES in metric.widget, f"{metric.widget}: say {ALL_ROUTES!r}: no route dimension"


def test_shows_every_outcome_status_and_run_ending(dashboard: dict[str, Any]) -> None:
    shown = {name for metric in ours(dashboard) for name in metric.names}
    missing = sorted((set(STATUSES) | RUN_METRICS) - shown)
    assert not missing, f"not on the dashboard: {missing}"


def test_run_endings_and_freshness_per_route(dashboard: dict[str, Any]) -> None:
    """What the code counts by route is drawn by route: each run ending, and freshness at p50, p90 and max."""
    by_route = [metric for metric in ours(dashboard) if metric.dimensions == {"route", "service"}]
    assert {name for metric in by_route for name in metric.names} >= RUN_METRICS
    freshness = {metric.stat for metric in by_route if "freshness_seconds" in metric.names}
    assert freshness == {"p50", "p90", "Maximum"}
    shown = {name for metric in ours(dashboard) for name in metric.names}
    assert {"freshness_breach", "parked", "deferred", "coalesced"} <= shown


@pytest.mark.parametrize("case", sorted(CASES))
def test_alarm_widget_shows_every_alarm(transformed: dict[str, Any], case: str) -> None:
    """Every alarm the stack has, with these conditions; none it has not (a conditional alarm only with its condition)."""
    given = CASES[case]
    resources = deployed(transformed, decide(transformed, **given))
    alarms = {logical_id for logical_id, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    (widget,) = [w for w in body(transformed, **given)["widgets"] if w["type"] == "alarm"]
    shown = [arn.rsplit(":", 1)[1] for arn in widget["properties"]["alarms"]]
    assert len(shown) == len(set(shown))
    assert set(shown) == alarms
    assert widget["properties"]["sortBy"] == "stateUpdatedTimestamp"  # the ones in ALARM first


def test_cursor_age_shows_its_alarms_line(dashboard: dict[str, Any], transformed: dict[str, Any]) -> None:
    alarm = transformed["Resources"]["PollerCursorAgeAlarm"]["Properties"]
    (widget,) = [
        w["properties"]
        for w in dashboard["widgets"]
        if any(m.names == {"cursor_age_seconds"} for m in ours({"widgets": [w]}))
    ]
    (metric,) = ours({"widgets": [{"properties": widget}]})
    assert metric.stat == alarm["Statistic"] == "Maximum"
    assert widget["annotations"]["horizontal"] == [{"label": "PollerCursorAgeAlarm", "value": alarm["Threshold"]}]


# --------------------------------------------------------------------------- where to find it


def test_output_links_to_it(template: dict[str, Any]) -> None:
    url = template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert url.endswith("#dashboards/dashboard/${Dashboard}")
    assert "region=${AWS::Region}" in url


def test_operations_page_says_what_each_widget_answers(transformed: dict[str, Any]) -> None:
    """docs/operations.md's `| widget |` table names each widget by its title, and no other."""
    (rows,) = tables(OPERATIONS.read_text(encoding="utf-8"), "widget")
    documented = [row[0] for row in rows]
    titles = [widget["properties"]["title"] for widget in body(transformed)["widgets"]]
    assert sorted(documented) == sorted(titles)
    assert all(len(row) > 1 and row[1] for row in rows), "each widget: what it answers"
    assert "DashboardUrl" in OPERATIONS.read_text(encoding="utf-8")
