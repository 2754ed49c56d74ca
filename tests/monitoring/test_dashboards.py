"""The dashboards as code: the committed JSON is what the generator writes, and every panel has a title, the
Prometheus data source and queries over metrics that exist (checked by name, and parsed by promtool)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.manifests.monitoring import router_rule_groups, server_alerts
from dashboards import DASHBOARDS, GENERATED, rendered
from dashboards.common import DATASOURCE
from tests.monitoring.promql import known_metrics, metric_names, router_metrics, unknown_router_labels
from tests.monitoring.sample import sample_server, sample_settings

GRID_WIDTH = 24
# Values for Grafana's variables when a query is handed to promtool.
SUBSTITUTES = {"$__rate_interval": "5m", "$namespace": "mcp-.*", "$server": "alpha"}


def dashboards() -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in rendered().items()}


def promql(variable_query: str) -> str:
    """The PromQL of a Grafana variable query (`label_values(<selector>, <label>)` is Grafana's own)."""
    if variable_query.startswith("label_values("):
        return variable_query.removeprefix("label_values(").rsplit(",", 1)[0]
    return variable_query


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets, and query variables."""
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]] + [
        promql(v["query"]) for v in dashboard["templating"]["list"] if v["type"] == "query"
    ]


def test_committed_json_matches_the_generator() -> None:
    committed = {path.name: path.read_text(encoding="utf-8") for path in sorted(GENERATED.glob("*.json"))}
    generated = rendered()
    assert sorted(committed) == sorted(generated), (
        "run `python -m dashboards` and commit dashboards/generated"
    )
    for name, text in generated.items():
        assert committed[name] == text, f"{name} drifted: run `python -m dashboards` and commit the result"


def test_there_is_a_fleet_overview_and_a_per_server_dashboard() -> None:
    rendered_dashboards = dashboards()
    assert sorted(rendered_dashboards) == ["mcp-fleet-overview.json", "mcp-server.json"]
    for name, dashboard in rendered_dashboards.items():
        assert dashboard["uid"] == name.removesuffix(".json") and dashboard["uid"] in DASHBOARDS
        assert dashboard["title"]
    variables = {v["name"]: v for v in rendered_dashboards["mcp-server.json"]["templating"]["list"]}
    assert variables["server"]["type"] == "query"
    # Servers as the MCP router names them: HAProxy sends every server's calls to the router's one pool.
    assert variables["server"]["query"] == "label_values(mcp_router_requests_total, server)"


@pytest.mark.parametrize("name", sorted(rendered()))
def test_every_panel_has_a_title_the_data_source_and_queries(name: str) -> None:
    dashboard = dashboards()[name]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    assert dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["title"].strip(), panel
        assert panel["description"], panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == DATASOURCE, panel["title"]


@pytest.mark.parametrize("name", sorted(rendered()))
def test_panels_fit_the_grid_without_overlapping(name: str) -> None:
    boxes = [panel["gridPos"] for panel in dashboards()[name]["panels"]]
    for box in boxes:
        assert box["x"] >= 0 and box["x"] + box["w"] <= GRID_WIDTH and box["h"] > 0
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            assert not (overlap and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]), (a, b)


@pytest.mark.parametrize("name", sorted(rendered()))
def test_queries_use_metrics_the_rules_use_or_the_exporters_serve(name: str) -> None:
    rule_metrics = set().union(
        *(metric_names(a.expr) for a in server_alerts(sample_server(), sample_settings()))
    )
    # And what the router's rule file records (its expressions are checked in test_rules.py).
    recorded = {rule["record"] for group in router_rule_groups(sample_settings()) for rule in group["rules"]}
    allowed = rule_metrics | recorded | known_metrics()
    for query in queries(dashboards()[name]):
        used = metric_names(query)
        assert used, query
        assert used <= allowed, f"unknown metrics {sorted(used - allowed)} in {query}"


@pytest.mark.parametrize("name", sorted(rendered()))
def test_router_queries_select_and_group_by_labels_the_router_serves(name: str) -> None:
    router_queries = [q for q in queries(dashboards()[name]) if metric_names(q) & set(router_metrics())]
    assert router_queries, "the MCP router's metrics are on every dashboard"
    for query in router_queries:
        assert unknown_router_labels(query) == set(), query


@pytest.mark.parametrize("name", sorted(rendered()))
def test_legends_name_labels_their_query_keeps(name: str) -> None:
    for panel in dashboards()[name]["panels"]:
        for t in panel["targets"]:
            for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")):
                # Grouping clauses, and label_replace's destination label (its last four arguments).
                kept = re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", t["expr"]) + re.findall(
                    r',\s*"(\w+)",\s*"[^"]*",\s*"\w+",\s*"[^"]*"\)', t["expr"]
                )
                assert any(label in re.split(r"[\s,]+", group) for group in kept), (panel["title"], label)


def test_the_server_dashboard_shows_percentiles_outcomes_and_refusals_per_tool() -> None:
    exprs = [t["expr"] for panel in dashboards()["mcp-server.json"]["panels"] for t in panel["targets"]]
    for q in ("0.5", "0.95", "0.99"):
        assert any(e.startswith(f"histogram_quantile({q}, sum by (le, tool) (") for e in exprs), q
    assert any("by (tool, outcome)" in e and "mcp_router_requests_total" in e for e in exprs)
    assert any("by (method, tool, code)" in e and "mcp_router_requests_total" in e for e in exprs)
    assert any("by (reason)" in e and "mcp_router_refusals_total" in e for e in exprs)


def test_both_dashboards_show_withheld_tools_and_listing_health() -> None:
    for name in ("mcp-fleet-overview.json", "mcp-server.json"):
        exprs = [t["expr"] for panel in dashboards()[name]["panels"] for t in panel["targets"]]
        assert any("mcp_router_tool_withheld" in e and "reason" in e for e in exprs), name
        assert any("mcp_router_listing" in e or "servers_not_listed" in e for e in exprs), name
    titles = {panel["title"] for panel in dashboards()["mcp-server.json"]["panels"]}
    # docs/runbooks.md sends on-call to these panels.
    assert {"Tools withheld", "Listing by the router"} <= titles


@pytest.mark.parametrize("name", sorted(rendered()))
def test_queries_use_only_defined_variables(name: str) -> None:
    dashboard = dashboards()[name]
    defined = {v["name"] for v in dashboard["templating"]["list"]} | {"__rate_interval"}
    for query in queries(dashboard):
        used = set(re.findall(r"\$(\w+)", query)) - {"1"}
        assert used <= defined, f"undefined variables {sorted(used - defined)} in {query}"


def test_queries_parse_as_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install the Debian package `prometheus` (`make test` does)")
    rules = []
    for name, dashboard in dashboards().items():
        for index, query in enumerate(queries(dashboard)):
            expr = query
            for variable, value in SUBSTITUTES.items():
                expr = expr.replace(variable, value)
            rules.append(
                {"record": f"dashboard:{name.removesuffix('.json').replace('-', '_')}:{index}", "expr": expr}
            )
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
