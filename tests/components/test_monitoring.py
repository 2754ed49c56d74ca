"""Monitoring: GIVEN servers and an environment, THEN the scrape configs, alerts, dashboards and chart
values are what Prometheus, Grafana and kube-prometheus-stack expect; the component registers them."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.manifests.gateway import ROUTER_METRICS_PORT
from components.manifests.labels import (
    GATEWAY_POD_LABELS,
    PROMETHEUS_POD_LABELS,
    PROMETHEUS_RELEASE,
    ROUTER_POD_LABELS,
    selector_labels,
    server_labels,
)
from components.manifests.monitoring import (
    CHART_NAME,
    CHART_REPOSITORY,
    CHART_VERSION,
    DASHBOARD_LABEL,
    DASHBOARDS_DIR,
    GRAFANA_ADMIN_SECRET,
    dashboard_config_maps,
    gateway_monitoring_objects,
    kube_prometheus_stack_values,
    monitoring_namespaces,
    router_monitoring_objects,
    server_monitoring_objects,
)
from components.manifests.router import router_objects
from components.manifests.workload import service
from components.monitoring import TYPE_TOKEN, Monitoring
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.plan.engine import Registration, run_program
from mcpfleet.stacks.loader import load_stack_config
from tests.monitoring.sample import sample_server, sample_servers, sample_settings
from tests.sample import SAMPLE_CATALOG, sample_catalog

REPO = Path(__file__).resolve().parents[2]


def test_server_objects_are_a_service_monitor_and_a_prometheus_rule_in_its_namespace() -> None:
    server = sample_server()
    objects = server_monitoring_objects(server, sample_settings())
    assert sorted(objects) == ["alpha-prometheus-rule", "alpha-service-monitor"]
    for obj in objects.values():
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
        assert obj["metadata"]["namespace"] == server.namespace == "mcp-platform"
        assert obj["metadata"]["name"] == "alpha"
        # The chart's Prometheus picks up only objects labelled with its release.
        assert obj["metadata"]["labels"] == {**server_labels(server), "release": PROMETHEUS_RELEASE}
    assert {obj["kind"] for obj in objects.values()} == {"ServiceMonitor", "PrometheusRule"}


def test_the_service_monitor_scrapes_the_servers_service_by_its_port_name() -> None:
    server = sample_server()
    monitor = server_monitoring_objects(server, sample_settings())["alpha-service-monitor"]
    svc = service(server)
    assert monitor["spec"]["selector"] == {"matchLabels": selector_labels(server)}
    assert selector_labels(server).items() <= svc["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [svc["metadata"]["namespace"]]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint == {"port": "http-mcp", "path": "/metrics", "interval": "30s"}
    assert endpoint["port"] == svc["spec"]["ports"][0]["name"]


def test_the_rule_holds_one_group_with_the_ten_alerts() -> None:
    rule = server_monitoring_objects(sample_server(), sample_settings())["alpha-prometheus-rule"]
    [group] = rule["spec"]["groups"]
    assert group["name"] == "mcp-server-alpha"
    assert [r["alert"] for r in group["rules"]] == [
        "McpServerDown",
        "McpServerNoRouterEndpoints",
        "McpServerHighErrorRate",
        "McpServerSlowResponses",
        "McpServerSlowTool",
        "McpServerRefusalSurge",
        "MCPToolDrifted",
        "McpServerNotListed",
        "McpServerCpuNearLimit",
        "McpServerMemoryNearLimit",
    ]
    for r in group["rules"]:
        assert set(r) == {"alert", "expr", "for", "labels", "annotations"}
        assert all(isinstance(v, str) for v in r["labels"].values())
        assert set(r["annotations"]) == {"summary", "description", "runbook_url"}


def test_router_rules_select_the_servers_series_of_the_routers_in_the_gateway_namespace() -> None:
    settings = sample_settings(gatewayNamespace="edge")
    rule = server_monitoring_objects(sample_server(), settings)["alpha-prometheus-rule"]
    router_rules = [r for r in rule["spec"]["groups"][0]["rules"] if "mcp_router_" in r["expr"]]
    assert [r["alert"] for r in router_rules] == [
        "McpServerNoRouterEndpoints",
        "McpServerHighErrorRate",
        "McpServerSlowResponses",
        "McpServerSlowTool",
        "McpServerRefusalSurge",
        "MCPToolDrifted",
        "McpServerNotListed",
    ]
    for r in router_rules:
        selectors = re.findall(r"mcp_router_\w+\{([^}]*)\}", r["expr"])
        assert selectors and all(s.startswith('namespace="edge",server="alpha"') for s in selectors)
    # HAProxy sends every routed request to the router's one pool: its metrics say nothing per server.
    assert not [r["alert"] for r in rule["spec"]["groups"][0]["rules"] if "haproxy_" in r["expr"]]


def test_the_router_rule_records_the_fleet_endpoints_withheld_tools_and_unlisted_servers() -> None:
    rule = router_monitoring_objects(sample_settings(gatewayNamespace="edge"))["mcp-router-prometheus-rule"]
    assert rule["kind"] == "PrometheusRule" and rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert (rule["metadata"]["name"], rule["metadata"]["namespace"]) == ("mcp-router", "edge")
    # The chart's Prometheus selects rules by its release label, in every namespace.
    assert rule["metadata"]["labels"]["release"] == PROMETHEUS_RELEASE
    [group] = rule["spec"]["groups"]
    assert [r["record"] for r in group["rules"]] == [
        "mcp_fleet:tools_withheld:count",
        "mcp_fleet:servers_not_listed:count",
    ]
    for r in group["rules"]:
        assert re.findall(r"mcp_router_\w+\{([^}]*)\}", r["expr"]) == ['namespace="edge"']


def test_drift_pages_where_the_stack_is_strict() -> None:
    def severity(strictness: str) -> str:
        rule = server_monitoring_objects(sample_server(), sample_settings(strictness=strictness))
        [drifted] = [
            r
            for r in rule["alpha-prometheus-rule"]["spec"]["groups"][0]["rules"]
            if r["alert"] == "MCPToolDrifted"
        ]
        return str(drifted["labels"]["severity"])

    assert [severity(s) for s in ("relaxed", "standard", "strict")] == ["warning", "warning", "critical"]


@sample_catalog
def test_resource_names_are_unique_across_the_fleet_and_the_platform() -> None:
    # dev, in a namespace per team as prod does: the sample's servers there, whichever they are.
    _, settings = load_stack_config(REPO / "stacks", "dev")
    fleet = resolve_fleet(load_catalog(SAMPLE_CATALOG), "dev", settings, "stack")
    names = Counter(name for server in fleet.servers for name in server_monitoring_objects(server, settings))
    names.update(list(gateway_monitoring_objects(settings)))
    names.update(list(router_monitoring_objects(settings)))
    names.update(list(dashboard_config_maps(settings)))
    assert [name for name, count in names.items() if count > 1] == []
    identities = Counter(
        (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        for server in fleet.servers
        for obj in server_monitoring_objects(server, settings).values()
    )
    assert [identity for identity, count in identities.items() if count > 1] == []


def test_servers_sharing_a_namespace_are_told_apart() -> None:
    settings = sample_settings(namespaceStrategy="single")
    alpha, alphabet = sample_servers("alpha", "alphabet", settings=settings)
    assert alpha.namespace == alphabet.namespace
    a = server_monitoring_objects(alpha, settings)["alpha-service-monitor"]["spec"]["selector"]
    b = server_monitoring_objects(alphabet, settings)["alphabet-service-monitor"]["spec"]["selector"]
    assert a != b


def test_the_router_is_scraped_on_its_metrics_port_by_a_pod_monitor() -> None:
    objects = router_monitoring_objects(sample_settings(gatewayNamespace="edge"))
    assert list(objects) == ["mcp-router-pod-monitor", "mcp-router-prometheus-rule"]
    monitor = objects["mcp-router-pod-monitor"]
    assert monitor["kind"] == "PodMonitor" and monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"] == "mcp-router" and monitor["metadata"]["namespace"] == "edge"
    assert monitor["metadata"]["labels"]["release"] == PROMETHEUS_RELEASE
    assert monitor["spec"]["selector"] == {"matchLabels": ROUTER_POD_LABELS}
    assert ROUTER_POD_LABELS == {"app.kubernetes.io/name": "mcp-router"}
    assert monitor["spec"]["selector"]["matchLabels"] != GATEWAY_POD_LABELS
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["edge"]}
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]


def test_the_router_pod_monitor_names_the_port_the_router_serves_metrics_on() -> None:
    # A PodMonitor endpoint names a container port: the router's Deployment must carry that name on 8091,
    # and its NetworkPolicy and AuthorizationPolicy must admit Prometheus there.
    settings = sample_settings(gatewayNamespace="edge")
    monitor = router_monitoring_objects(settings)["mcp-router-pod-monitor"]
    port_name = monitor["spec"]["podMetricsEndpoints"][0]["port"]
    fleet = Fleet("dev", settings, ())
    objects = router_objects(fleet, "{}", "keys", None)
    [container] = objects["router-deployment"]["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]}[port_name] == ROUTER_METRICS_PORT
    ingress = objects["router-network-policy"]["spec"]["ingress"]
    prometheus = [
        rule
        for rule in ingress
        if any(
            peer.get("podSelector", {}).get("matchLabels") == PROMETHEUS_POD_LABELS for peer in rule["from"]
        )
    ]
    assert [{p["port"] for p in rule["ports"]} for rule in prometheus] == [{ROUTER_METRICS_PORT, 15008}]
    allowed = {
        source: rule["to"][0]["operation"]["ports"]
        for rule in objects["router-authorization-policy"]["spec"]["rules"]
        for source in rule["from"][0]["source"]["principals"]
    }
    assert allowed[f"cluster.local/ns/monitoring/sa/{PROMETHEUS_RELEASE}-prometheus"] == [
        str(ROUTER_METRICS_PORT)
    ]


def test_the_gateway_is_scraped_on_its_metrics_port_by_a_pod_monitor() -> None:
    [(name, monitor)] = gateway_monitoring_objects(sample_settings(gatewayNamespace="edge")).items()
    assert name == "mcp-gateway-pod-monitor"
    assert monitor["kind"] == "PodMonitor" and monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "edge"
    assert monitor["metadata"]["labels"]["release"] == PROMETHEUS_RELEASE
    assert monitor["spec"]["selector"] == {"matchLabels": GATEWAY_POD_LABELS}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["edge"]}
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]


def test_one_dashboard_config_map_per_generated_dashboard() -> None:
    settings = sample_settings(monitoringNamespace="observability", namespacePrefix="fleet-")
    maps = dashboard_config_maps(settings)
    stems = sorted(path.stem for path in DASHBOARDS_DIR.glob("*.json"))
    assert sorted(maps) == [f"dashboard-{stem}" for stem in stems] and len(stems) == 2
    for stem in stems:
        config_map = maps[f"dashboard-{stem}"]
        assert config_map["kind"] == "ConfigMap"
        assert config_map["metadata"]["namespace"] == "observability"
        assert config_map["metadata"]["labels"][DASHBOARD_LABEL] == "1"
        [(key, text)] = config_map["data"].items()
        assert key == f"{stem}.json"
        dashboard = json.loads(text)
        assert dashboard["uid"] == stem
        [namespace] = [v for v in dashboard["templating"]["list"] if v["name"] == "namespace"]
        # The environment's server namespaces, not the generated default.
        assert namespace["query"] == namespace["current"]["value"] == "fleet-.*"


def test_dashboards_must_have_been_generated(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="python -m dashboards"):
        dashboard_config_maps(sample_settings(), tmp_path)


def test_node_exporter_alone_is_privileged() -> None:
    namespaces = monitoring_namespaces(sample_settings())
    monitoring = namespaces["namespace"]["metadata"]
    node_exporter = namespaces["node-exporter-namespace"]["metadata"]
    assert monitoring["name"] == "monitoring"
    assert monitoring["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert monitoring["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    assert monitoring["labels"]["istio.io/dataplane-mode"] == "ambient"
    assert "istio.io/dataplane-mode" not in node_exporter["labels"]
    assert node_exporter["name"] == "monitoring-node-exporter"
    assert node_exporter["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    values = kube_prometheus_stack_values(sample_settings())
    assert values["prometheus-node-exporter"]["namespaceOverride"] == node_exporter["name"]


def test_chart_values_follow_the_environment() -> None:
    spec = kube_prometheus_stack_values(sample_settings())["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "7d" and spec["replicas"] == 2
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == "20Gi"
    assert claim["accessModes"] == ["ReadWriteOnce"]
    local = kube_prometheus_stack_values(sample_settings(monitoring={"retention": "2d"}))
    assert "storageSpec" not in local["prometheus"]["prometheusSpec"]
    assert local["prometheus"]["prometheusSpec"] == {"retention": "2d", "replicas": 1}


def test_chart_values_keep_secrets_out_and_work_without_helm_hooks() -> None:
    values = kube_prometheus_stack_values(sample_settings())
    grafana = values["grafana"]
    assert "adminPassword" not in grafana
    assert grafana["admin"]["existingSecret"] == GRAFANA_ADMIN_SECRET
    assert grafana["sidecar"]["dashboards"] == {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1"}
    assert values["prometheusOperator"] == {
        "admissionWebhooks": {"enabled": False},
        "tls": {"enabled": False},
    }


def registrations() -> list[Registration]:
    def program() -> None:
        # Created by the Gateway component in the program; here on its own.
        gateway_namespace = k8s.core.v1.Namespace("gateway-namespace", metadata={"name": "mcp-gateway"})
        Monitoring(
            "monitoring",
            sample_settings(),
            pulumi.Output.secret("sentinel-admin-password"),
            gateway_namespace,
        )

    return [
        r
        for r in run_program(program, project="mcpfleet", stack="dev", config={})
        if r.name != "gateway-namespace"
    ]


def test_grafana_admin_password_stays_secret() -> None:
    recorded = registrations()
    [secret] = [r.inputs for r in recorded if r.inputs.get("kind") == "Secret"]
    assert secret["metadata"]["name"] == "grafana-admin"
    assert secret["stringData"]["admin-password"] == "[secret]"
    assert all("sentinel-admin-password" not in json.dumps(r.as_json()) for r in recorded)


def test_the_component_registers_its_children_under_mocks() -> None:
    regs = registrations()
    [component] = [r for r in regs if r.type == TYPE_TOKEN]
    assert component.name == "monitoring"
    children = [r for r in regs if r is not component]
    assert all(r.parent == component.urn for r in children)
    assert len({r.urn for r in regs}) == len(regs)
    kinds = Counter(r.inputs.get("kind") for r in children if r.custom)
    assert kinds == Counter(
        {"Namespace": 2, "ConfigMap": 2, "PodMonitor": 2, "PrometheusRule": 1, "Secret": 1}
    )
    # Each server's ServiceMonitor and PrometheusRule belong to its McpServer; here only the router's.
    [rule] = [r for r in children if r.inputs.get("kind") == "PrometheusRule"]
    assert rule.inputs["metadata"]["name"] == "mcp-router"
    assert "ServiceMonitor" not in kinds


def test_the_pod_monitors_wait_for_the_chart_and_the_gateway_namespace() -> None:
    regs = registrations()
    [chart] = [r for r in regs if r.type == "kubernetes:helm.sh/v4:Chart"]
    monitors = {r.inputs["metadata"]["name"]: r for r in regs if r.inputs.get("kind") == "PodMonitor"}
    assert sorted(monitors) == ["mcp-gateway", "mcp-router"]
    # The router's PrometheusRule is a custom resource of the chart's too.
    rules = [r for r in regs if r.inputs.get("kind") == "PrometheusRule"]
    for monitor in [*monitors.values(), *rules]:
        assert chart.urn in monitor.dependencies
        assert [urn for urn in monitor.dependencies if urn.endswith("::gateway-namespace")]


def test_the_chart_is_pinned_and_released_under_the_expected_name() -> None:
    [chart] = [r for r in registrations() if r.type == "kubernetes:helm.sh/v4:Chart"]
    inputs: dict[str, Any] = chart.inputs
    assert chart.name == f"monitoring-{CHART_NAME}"
    assert inputs["chart"] == CHART_NAME == "kube-prometheus-stack"
    assert inputs["version"] == CHART_VERSION and CHART_VERSION.count(".") == 2
    assert inputs["repositoryOpts"] == {"repo": CHART_REPOSITORY}
    assert inputs["name"] == PROMETHEUS_RELEASE
    assert inputs["namespace"] == "monitoring"
    assert inputs["values"] == kube_prometheus_stack_values(sample_settings())
