"""The alerting rules under promtool: valid rule files for every server, and unit tests in which each alert
fires above its threshold and stays quiet below it. promtool comes from the Debian package `prometheus`;
without it these tests fail, they never skip."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.manifests.monitoring import RUNBOOKS, router_rule_groups, server_alerts, server_rule_groups
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.fleet import resolve_fleet
from mcpfleet.model import ENVIRONMENTS
from mcpfleet.stacks.loader import load_stack_config
from tests.monitoring.promql import known_metrics, metric_names, router_metrics, unknown_router_labels
from tests.monitoring.sample import SERVER, sample_server, sample_settings
from tests.sample import SAMPLE_CATALOG, sample_catalog

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# mcp-server-alerts: the alerts measured by the gateway and Kubernetes; mcp-router-alerts: by the MCP router;
# mcp-fleet-endpoint: the tool pins and listings behind the fleet endpoint, and the router's own records.
UNIT_TESTS = sorted(HERE.glob("*.test.yml"))
ROUTER_RULES = "router.rules.yml"


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install the Debian package `prometheus` (`make test` does)")
    return path


def run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def write_rules(path: Path, groups: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=120), encoding="utf-8")
    return path


def test_the_sample_servers_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "alpha.rules.yml", server_rule_groups(sample_server(), sample_settings()))
    result = run([promtool, "check", "rules", str(rules)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(server_alerts(sample_server(), sample_settings()))} rules found" in result.stdout


@sample_catalog
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_catalog_servers_rules_pass_promtool_check(env: str, promtool: str, tmp_path: Path) -> None:
    _, settings = load_stack_config(REPO / "stacks", env)
    fleet = resolve_fleet(load_catalog(SAMPLE_CATALOG), env, settings, "stack")  # type: ignore[arg-type]
    groups = [group for server in fleet.servers for group in server_rule_groups(server, settings)]
    result = run([promtool, "check", "rules", str(write_rules(tmp_path / "fleet.rules.yml", groups))])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_test_files_are_there() -> None:
    assert [path.name for path in UNIT_TESTS] == [
        "mcp-fleet-endpoint.test.yml",
        "mcp-router-alerts.test.yml",
        "mcp-server-alerts.test.yml",
    ]


@pytest.mark.parametrize("unit_tests", UNIT_TESTS, ids=lambda path: path.name)
def test_each_alert_fires_above_its_threshold_and_not_below(
    unit_tests: Path, promtool: str, tmp_path: Path
) -> None:
    result = promtool_test(promtool, unit_tests, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def promtool_test(
    promtool: str, unit_tests: Path, directory: Path, mutation: Mutation | None = None
) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` of unit_tests beside the sample server's and the router's rule files, one of
    their rules changed by mutation first."""
    groups = {
        f"{SERVER}.rules.yml": server_rule_groups(sample_server(), sample_settings()),
        ROUTER_RULES: router_rule_groups(sample_settings()),
    }
    if mutation is not None:
        mutated = [
            rule
            for rule_groups in groups.values()
            for group in rule_groups
            for rule in group["rules"]
            if mutation.rule in (rule.get("alert"), rule.get("record"))
        ]
        [rule] = mutated
        assert mutation.old in rule[mutation.field], mutation
        rule[mutation.field] = rule[mutation.field].replace(mutation.old, mutation.new)
    for name, rule_groups in groups.items():
        write_rules(directory / name, rule_groups)
    shutil.copy(unit_tests, directory / unit_tests.name)
    return run([promtool, "test", "rules", unit_tests.name], cwd=directory)


@dataclass(frozen=True)
class Mutation:
    """One rule's field (`expr` or `for`) with old replaced by new."""

    rule: str
    field: str
    old: str
    new: str


# Each a plausible slip in the fleet endpoint's rules: a test that still passes with one of these in place
# proves nothing about it.
MUTATIONS = {
    "drift on any reason": Mutation("MCPToolDrifted", "expr", ',reason="drifted"', ""),
    "drift once withheld at all": Mutation("MCPToolDrifted", "expr", "> 0", ">= 0"),
    "drift waits 10 minutes": Mutation("MCPToolDrifted", "for", "2m", "10m"),
    "drift on every replica only": Mutation("MCPToolDrifted", "expr", "max by (tool)", "min by (tool)"),
    "unlisted on every replica only": Mutation("McpServerNotListed", "expr", "min(", "max("),
    "unlisted even when the server is down": Mutation("McpServerNotListed", "expr", "unless", "or"),
    "unlisted after 5 minutes": Mutation("McpServerNotListed", "for", "10m", "5m"),
    "unlisted after 15 minutes": Mutation("McpServerNotListed", "for", "10m", "15m"),
    "withheld tools counted once per replica": Mutation(
        "mcp_fleet:tools_withheld:count", "expr", "max by (server, tool, reason) (", "("
    ),
    "withheld tools counting zeros": Mutation("mcp_fleet:tools_withheld:count", "expr", "> 0", ">= 0"),
    "unlisted servers counted without their zero": Mutation(
        "mcp_fleet:servers_not_listed:count", "expr", "\nor\nvector(0)", ""
    ),
    "unlisted servers counted when every replica fails only": Mutation(
        "mcp_fleet:servers_not_listed:count", "expr", "min by (server)", "max by (server)"
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_fleet_endpoint_tests_catch_a_mutated_rule(mutation: str, promtool: str, tmp_path: Path) -> None:
    [unit_tests] = [path for path in UNIT_TESTS if path.name == "mcp-fleet-endpoint.test.yml"]
    result = promtool_test(promtool, unit_tests, tmp_path, MUTATIONS[mutation])
    assert result.returncode != 0, f"{mutation}: the unit tests still pass\n{result.stdout}"


def test_the_router_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / ROUTER_RULES, router_rule_groups(sample_settings()))
    result = run([promtool, "check", "rules", str(rules)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rules found" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    recorded: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
            recorded |= {check["expr"] for check in case.get("promql_expr_test", [])}
    names = {alert.name for alert in server_alerts(sample_server(), sample_settings())}
    assert firing == names
    assert quiet == names
    # And every series the router's rule file records is asked for.
    assert recorded == {
        rule["record"] for group in router_rule_groups(sample_settings()) for rule in group["rules"]
    }


def test_alerts_carry_severity_server_team_and_a_runbook_section() -> None:
    runbook = (REPO / RUNBOOKS).read_text(encoding="utf-8")
    sections = {heading.lower() for heading in re.findall(r"^## (\S+)$", runbook, re.MULTILINE)}
    [group] = server_rule_groups(sample_server(), sample_settings())
    for rule in group["rules"]:
        labels = rule["labels"]
        # Critical: every call to the server fails (through some router replica at least). Drift pages where
        # the stack is strict (tests/components/test_monitoring.py); the sample's is relaxed. Everything
        # else is a warning.
        critical = {"McpServerDown", "McpServerNoRouterEndpoints", "McpServerNotListed"}
        assert labels["severity"] == ("critical" if rule["alert"] in critical else "warning")
        assert (labels["server"], labels["team"], labels["namespace"]) == (SERVER, "platform", "mcp-platform")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        path, anchor = rule["annotations"]["runbook_url"].split("#")
        assert path == RUNBOOKS
        assert anchor in sections, f"{RUNBOOKS} has no section for {rule['alert']}"


def test_rules_use_only_metrics_the_exporters_serve() -> None:
    used = set().union(*(metric_names(a.expr) for a in server_alerts(sample_server(), sample_settings())))
    records = [rule for group in router_rule_groups(sample_settings()) for rule in group["rules"]]
    used |= set().union(*(metric_names(rule["expr"]) for rule in records))
    assert used
    assert used <= known_metrics(), f"unknown metrics: {sorted(used - known_metrics())}"


def test_router_rules_select_and_group_by_labels_the_router_serves() -> None:
    alerts = server_alerts(sample_server(), sample_settings())
    router_alerts = [a for a in alerts if metric_names(a.expr) & set(router_metrics())]
    assert len(router_alerts) == 7
    for alert in router_alerts:
        assert unknown_router_labels(alert.expr) == set(), alert.name
    for group in router_rule_groups(sample_settings()):
        for rule in group["rules"]:
            assert unknown_router_labels(rule["expr"]) == set(), rule["record"]


def test_the_router_contract_yields_its_metrics() -> None:
    # A change of docs/router.md's format must not quietly empty the list the rules are checked against.
    assert router_metrics() == {
        "mcp_router_requests_total": {"server", "method", "tool", "outcome", "code"},
        "mcp_router_request_duration_seconds_bucket": {"server", "method", "tool", "le"},
        "mcp_router_request_duration_seconds_count": {"server", "method", "tool"},
        "mcp_router_request_duration_seconds_sum": {"server", "method", "tool"},
        "mcp_router_refusals_total": {"server", "reason"},
        "mcp_router_upstream_endpoints": {"server"},
        # The fleet endpoint's (docs/router.md, "Metrics and alerts added").
        "mcp_router_tool_withheld": {"server", "tool", "reason"},
        "mcp_router_tool_drift_refusals_total": {"server", "tool"},
        "mcp_router_listing_up": {"server"},
        "mcp_router_listing_refresh_total": {"server", "outcome"},
        "mcp_router_listing_items": {"server", "kind"},
        "mcp_router_listing_cut": {"server", "kind"},
    }
