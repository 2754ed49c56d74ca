"""The alerting rules under promtool: valid rule files for every server, and unit tests in which each alert
fires above its threshold and stays quiet below it. promtool comes from the Debian package `prometheus`;
without it these tests fail, they never skip."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.manifests.monitoring import RUNBOOKS, server_alerts, server_rule_groups
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.fleet import resolve_fleet
from mcpfleet.model import ENVIRONMENTS
from mcpfleet.stacks.loader import load_stack_config
from tests.monitoring.promql import known_metrics, metric_names, router_metrics, unknown_router_labels
from tests.monitoring.sample import SERVER, sample_server, sample_settings
from tests.sample import SAMPLE_CATALOG, sample_catalog

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# mcp-server-alerts: the alerts measured by the gateway and Kubernetes; mcp-router-alerts: by the MCP router.
UNIT_TESTS = sorted(HERE.glob("*.test.yml"))


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
    assert [path.name for path in UNIT_TESTS] == ["mcp-router-alerts.test.yml", "mcp-server-alerts.test.yml"]


@pytest.mark.parametrize("unit_tests", UNIT_TESTS, ids=lambda path: path.name)
def test_each_alert_fires_above_its_threshold_and_not_below(
    unit_tests: Path, promtool: str, tmp_path: Path
) -> None:
    write_rules(tmp_path / f"{SERVER}.rules.yml", server_rule_groups(sample_server(), sample_settings()))
    shutil.copy(unit_tests, tmp_path / unit_tests.name)
    result = run([promtool, "test", "rules", unit_tests.name], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case["alert_rule_test"]:
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {alert.name for alert in server_alerts(sample_server(), sample_settings())}
    assert firing == names
    assert quiet == names


def test_alerts_carry_severity_server_team_and_a_runbook_section() -> None:
    runbook = (REPO / RUNBOOKS).read_text(encoding="utf-8")
    sections = {heading.lower() for heading in re.findall(r"^## (\S+)$", runbook, re.MULTILINE)}
    [group] = server_rule_groups(sample_server(), sample_settings())
    for rule in group["rules"]:
        labels = rule["labels"]
        # Critical: every call to the server fails. Everything else is a warning.
        critical = {"McpServerDown", "McpServerNoRouterEndpoints"}
        assert labels["severity"] == ("critical" if rule["alert"] in critical else "warning")
        assert (labels["server"], labels["team"], labels["namespace"]) == (SERVER, "platform", "mcp-platform")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        path, anchor = rule["annotations"]["runbook_url"].split("#")
        assert path == RUNBOOKS
        assert anchor in sections, f"{RUNBOOKS} has no section for {rule['alert']}"


def test_rules_use_only_metrics_the_exporters_serve() -> None:
    used = set().union(*(metric_names(a.expr) for a in server_alerts(sample_server(), sample_settings())))
    assert used
    assert used <= known_metrics(), f"unknown metrics: {sorted(used - known_metrics())}"


def test_router_rules_select_and_group_by_labels_the_router_serves() -> None:
    alerts = server_alerts(sample_server(), sample_settings())
    router_alerts = [a for a in alerts if metric_names(a.expr) & set(router_metrics())]
    assert len(router_alerts) == 5
    for alert in router_alerts:
        assert unknown_router_labels(alert.expr) == set(), alert.name


def test_the_router_contract_yields_its_four_metrics() -> None:
    # A change of docs/router.md's format must not quietly empty the list the rules are checked against.
    assert router_metrics() == {
        "mcp_router_requests_total": {"server", "method", "tool", "outcome", "code"},
        "mcp_router_request_duration_seconds_bucket": {"server", "method", "tool", "le"},
        "mcp_router_request_duration_seconds_count": {"server", "method", "tool"},
        "mcp_router_request_duration_seconds_sum": {"server", "method", "tool"},
        "mcp_router_refusals_total": {"server", "reason"},
        "mcp_router_upstream_endpoints": {"server"},
    }
