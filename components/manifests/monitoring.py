"""What Prometheus scrapes and alerts on for each MCP server, the gateway and the MCP router, the
kube-prometheus-stack settings and the Grafana dashboards, as plain objects for the platform components."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.manifests import K8sObject
from components.manifests.labels import (
    GATEWAY_POD_LABELS,
    PART_OF,
    PROMETHEUS_RELEASE,
    ROUTER_NAME,
    ROUTER_POD_LABELS,
    selector_labels,
    server_labels,
)
from components.manifests.mesh import AMBIENT_LABELS
from components.manifests.router import METRICS_PORT_NAME
from components.manifests.workload import CONTAINER_NAME, PORT_NAME
from mcpfleet.fleet import FleetServer
from mcpfleet.stacks.models import Environment

# Pinned to a release its repository shows: tag `kube-prometheus-stack-88.5.3` of
# prometheus-community/helm-charts (commit ea930baeebeba39f56d6b44e351f23b2a072a600, 2026-08-21;
# `charts/kube-prometheus-stack/Chart.yaml`: version 88.5.3, appVersion v0.93.1), the newest release in
# that repository's latest snapshot we could read (2026-08-22). Until 2026-12 this named 91.2.1, which no
# public source we could read showed. Every key the values below set is in that tag's values.yaml.
CHART_NAME = "kube-prometheus-stack"
CHART_VERSION = "88.5.3"
CHART_REPOSITORY = "https://prometheus-community.github.io/helm-charts"

OPERATOR_API_VERSION = "monitoring.coreos.com/v1"
# The chart's Prometheus selects ServiceMonitors, PodMonitors and PrometheusRules by this label (its
# `*SelectorNilUsesHelmValues` defaults), in every namespace (`*NamespaceSelector: {}`).
RELEASE_LABELS = {"release": PROMETHEUS_RELEASE}
SCRAPE_INTERVAL = "30s"
METRICS_PATH = "/metrics"
# workload.service names its one port so; a ServiceMonitor endpoint refers to the Service's port name.
SERVICE_PORT_NAME = f"http-{PORT_NAME}"
GATEWAY_METRICS_PORT = "metrics"
# The MCP router's pods (docs/router.md) serve `/metrics` on container port 8091, which the router's
# Deployment names so (a PodMonitor endpoint refers to a named port).
ROUTER_METRICS_PORT = METRICS_PORT_NAME
# The router's latency series that time a request and its answer (mcpfleet/router labels the others so):
# not `GET` (a stream, timed for as long as the client listens), nor notifications and JSON-RPC responses a
# client posts (answered 202 at once), nor requests refused before their method was read (`""`).
ROUTER_EXCHANGES = 'method!="",method!~"GET|response|notifications/.+"'
# Refusal reasons that are the platform's failure, not the caller's: no pod to send to (502), and a server
# the router cannot list, whose tools it therefore cannot check (503). The refusal alert is about what
# callers send; the failed share counts these, McpServerNoRouterEndpoints and McpServerNotListed say why.
ROUTER_PLATFORM_REFUSALS = ("no-endpoint", "not-listed")
ROUTER_PLATFORM_REFUSAL = "|".join(ROUTER_PLATFORM_REFUSALS)
# A call of a tool whose live definition no longer matches its pin (403): MCPToolDrifted's business.
ROUTER_DRIFT_REFUSAL = "tool-drifted"
# How long a drifted tool is withheld before MCPToolDrifted fires, and a server unlisted before
# McpServerNotListed does (the router retries a failed listing with backoff meanwhile).
DRIFT_FOR = "2m"
NOT_LISTED_FOR = "10m"

DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"
DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "generated"
# The dashboards' namespace variable: which namespaces hold MCP servers (a regular expression).
NAMESPACE_VARIABLE = "namespace"
# Grafana's admin credentials: a Secret the platform's secret sync fills (keys below), never a value here.
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER_KEY = "admin-user"
GRAFANA_ADMIN_PASSWORD_KEY = "admin-password"

RUNBOOKS = "docs/runbooks.md"

ERROR_RATIO = 0.01
RESPONSE_TIME_SECONDS = 1
RESPONSE_TIME_QUANTILE = 0.99
# Calls in the 5-minute window below which no latency alert fires: with fewer than 100 observations the
# 99th percentile is the single slowest call, one outlier, not a trend.
LATENCY_MIN_CALLS = 100
REFUSALS_PER_MINUTE = 10
# JSON-RPC's "Internal error": a server's own failure (the router answers it too when it reaches none).
INTERNAL_ERROR_CODE = -32603
CPU_LIMIT_RATIO = 0.8
MEMORY_LIMIT_RATIO = 0.85


def pod_pattern(server_name: str) -> str:
    """Pods of the server's Deployment (`<name>-<template hash>-<suffix>`), and no other server's."""
    return f"{server_name}-[a-z0-9]+-[a-z0-9]+"


def runbook_url(alert: str) -> str:
    return f"{RUNBOOKS}#{alert.lower()}"


# Where each alert's numbers come from (docs/runbooks.md explains them to on-call):
# - Traffic (errors, response times, refusals, the pods each server resolves to) is measured by the MCP
#   router, the one place every call to every server passes and the one that reads each message
#   (docs/router.md, "Metrics"). MCP servers expose different metrics or none; the router the same ones for
#   every server, labelled `server`, `method` and `tool`, and Prometheus adds the router pod's `namespace`
#   (the gateway namespace). HAProxy sends every routed request to the router's one pool, so its own
#   metrics say nothing per server.
# - HAProxy 2.6 has no latency histogram, the router has one: the slow-response alerts are a real 99th
#   percentile (`histogram_quantile` over the buckets summed across router replicas), never a mean.
# - Authentication is checked at HAProxy first, in front of every server at once; what the router refuses
#   again (`reason="auth"`) is among the refusals.
# - CPU and memory: cAdvisor usage against the limits kube-state-metrics reports, for the `server`
#   container of the server's pods. Down: kube-state-metrics (no available replica) or the router (no pod
#   resolved). Not `up`: servers need not serve /metrics, and a failing scrape is not an outage.


@dataclass(frozen=True)
class Alert:
    """One alerting rule of a server."""

    name: str
    severity: str
    expr: str
    for_: str
    summary: str
    description: str


def server_alerts(server: FleetServer, settings: Environment) -> list[Alert]:
    name = server.name
    router = f'namespace="{settings.gateway_namespace}",server="{name}"'
    pods = f'namespace="{server.namespace}",pod=~"{pod_pattern(name)}",container="{CONTAINER_NAME}"'
    deployment = f'namespace="{server.namespace}",deployment="{name}"'
    callers_refused = f'{router},reason!~"{ROUTER_PLATFORM_REFUSAL}|{ROUTER_DRIFT_REFUSAL}"'
    drift_severity = "critical" if settings.strictness == "strict" else "warning"
    return [
        Alert(
            "McpServerDown",
            "critical",
            f"max(kube_deployment_status_replicas_available{{{deployment}}}) == 0",
            "2m",
            f"MCP server {name} is down",
            f"{name} has had no available replica for 2 minutes: every call to it fails.",
        ),
        Alert(
            "McpServerNoRouterEndpoints",
            "critical",
            # No router replica resolves a pod while the Deployment has some: the Service, DNS or the router
            # is at fault. With no available replica, McpServerDown says so and this one stays quiet.
            f"max(mcp_router_upstream_endpoints{{{router}}}) == 0\n"
            f"unless\nmax(kube_deployment_status_replicas_available{{{deployment}}}) == 0",
            "2m",
            f"The MCP router finds no pod of MCP server {name}",
            f"For 2 minutes no MCP router replica has resolved a pod of {name}, although its Deployment has"
            " available replicas: every call to it fails.",
        ),
        Alert(
            "McpServerHighErrorRate",
            "warning",
            f"{failed_share(router)}\n> {ERROR_RATIO}",
            "5m",
            f"More than {ERROR_RATIO:.0%} of the calls to MCP server {name} fail",
            "{{ $value | humanizePercentage }} of the calls to "
            f"{name} failed over the last 5 minutes: no pod to send them to, the server unreachable or"
            f" timed out, HTTP 5xx, or JSON-RPC internal error {INTERNAL_ERROR_CODE}.",
        ),
        Alert(
            "McpServerSlowResponses",
            "warning",
            _slow(f"{router},{ROUTER_EXCHANGES}"),
            "10m",
            f"MCP server {name} takes more than {RESPONSE_TIME_SECONDS} s to answer one call in a hundred",
            f"The 99th percentile of {name}'s response times at the MCP router was"
            " {{ $value | humanizeDuration }} over the last 5 minutes: one call in a hundred took longer.",
        ),
        Alert(
            "McpServerSlowTool",
            "warning",
            _slow(f'{router},method="tools/call"', "tool"),
            "10m",
            f"Tool {{{{ $labels.tool }}}} of MCP server {name} takes more than {RESPONSE_TIME_SECONDS} s"
            " to answer one call in a hundred",
            f"The 99th percentile of {name}'s calls to tool"
            " {{ $labels.tool }} at the MCP router was {{ $value | humanizeDuration }} over the last 5"
            " minutes: one call in a hundred took longer.",
        ),
        Alert(
            "McpServerRefusalSurge",
            "warning",
            f"sum by (reason) (rate(mcp_router_refusals_total{{{callers_refused}}}[5m])) * 60\n"
            f"> {REFUSALS_PER_MINUTE}",
            # Longer than the 5-minute window: a single burst (legacy sessions of a replica that is gone,
            # one client retrying) leaves the window after 5 minutes; a surge goes on.
            "10m",
            f"The MCP router refuses more than {REFUSALS_PER_MINUTE} requests a minute to MCP server {name}",
            "The MCP router refused {{ $value | humanize }} requests a minute to "
            f"{name} for reason {{{{ $labels.reason }}}} over the last 5 minutes, and more than"
            f" {REFUSALS_PER_MINUTE} a minute for 10 minutes.",
        ),
        Alert(
            "MCPToolDrifted",
            drift_severity,
            f'max by (tool) (mcp_router_tool_withheld{{{router},reason="drifted"}}) > 0',
            DRIFT_FOR,
            f"Tool {{{{ $labels.tool }}}} of MCP server {name} no longer matches its pin",
            f"For {DRIFT_FOR} the MCP router has withheld tool {{{{ $labels.tool }}}} of {name}: its live"
            " definition (name, description, input schema) no longer hashes to the sha256 its catalog entry"
            " pins, so it is neither listed nor callable, on /mcp and on the server's own route. A server"
            " update changed it, or something is rewriting it: compare the two, then pin the new definition"
            " (mcpfleet pin --tools) or roll the server back.",
        ),
        Alert(
            "McpServerNotListed",
            "critical",
            # Any router replica that cannot list the server refuses its tools (503) and leaves it out of
            # /mcp. With no available replica, McpServerDown says so and this one stays quiet.
            f"min(mcp_router_listing_up{{{router}}}) == 0\n"
            f"unless\nmax(kube_deployment_status_replicas_available{{{deployment}}}) == 0",
            NOT_LISTED_FOR,
            f"The MCP router cannot list MCP server {name}",
            f"For {NOT_LISTED_FOR} at least one MCP router replica has held no listing of {name}'s tools,"
            " although its Deployment has available replicas: that replica refuses every call to its tools"
            " (503, not listed yet) and leaves them out of the fleet endpoint /mcp. The router retries with"
            " backoff; its stderr names the error.",
        ),
        Alert(
            "McpServerCpuNearLimit",
            "warning",
            f"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{{{pods}}}[5m]))\n/\n"
            f'sum by (namespace, pod) (kube_pod_container_resource_limits{{{pods},resource="cpu"}})\n'
            f"> {CPU_LIMIT_RATIO}",
            "15m",
            f"MCP server {name} uses more than {CPU_LIMIT_RATIO:.0%} of its CPU limit",
            "Pod {{ $labels.pod }} has used {{ $value | humanizePercentage }} of its CPU limit for 15"
            " minutes: it is being throttled, or soon will be.",
        ),
        Alert(
            "McpServerMemoryNearLimit",
            "warning",
            f"max by (namespace, pod) (container_memory_working_set_bytes{{{pods}}})\n/\n"
            f'sum by (namespace, pod) (kube_pod_container_resource_limits{{{pods},resource="memory"}})\n'
            f"> {MEMORY_LIMIT_RATIO}",
            "15m",
            f"MCP server {name} uses more than {MEMORY_LIMIT_RATIO:.0%} of its memory limit",
            "Pod {{ $labels.pod }} has used {{ $value | humanizePercentage }} of its memory limit for 15"
            " minutes: at the limit the kernel kills it (OOMKilled).",
        ),
    ]


def failed_share(selector: str, by: str = "", window: str = "5m") -> str:
    """The share of the calls for a server (selected by `selector`, per `by` label or in all) that failed
    on the way or at the server: the router found no pod to send them to (a refusal, `no-endpoint`), or
    the server could not be reached, timed out, answered HTTP 5xx without an answer or broke its answer
    off before the answer came (`upstream_error`), or answered JSON-RPC's internal error. Over the calls
    forwarded plus those with no pod; refusals of what the callers sent are theirs. `or`, not `+`: any
    kind may have no series yet, and their labels differ."""
    keep = f" by ({by}) " if by else ""

    def rate(metric: str, matchers: str) -> str:
        return f"rate({metric}{{{','.join(m for m in (selector, matchers) if m)}}}[{window}])"

    calls, refusals = "mcp_router_requests_total", "mcp_router_refusals_total"
    no_pod = rate(refusals, f'reason=~"{ROUTER_PLATFORM_REFUSAL}"')
    failed = [
        rate(calls, 'outcome="upstream_error"'),
        rate(calls, f'outcome="rpc_error",code="{INTERNAL_ERROR_CODE}"'),
        no_pod,
    ]
    attempted = [rate(calls, 'outcome!="refused"'), no_pod]

    def total(rates: list[str]) -> str:
        either = "\n  or\n  ".join(rates)
        return f"sum{keep}(\n  {either}\n)"

    return f"{total(failed)}\n/\n{total(attempted)}"


def _slow(selector: str, by: str = "") -> str:
    """The router's response-time percentile above the threshold, for the whole server or per `by` label,
    where at least LATENCY_MIN_CALLS calls were observed in the window (buckets summed across replicas)."""
    keep = f" by ({by})" if by else ""
    on = f" on ({by})" if by else ""
    histogram = "mcp_router_request_duration_seconds"
    buckets = f"sum by (le{', ' + by if by else ''}) (rate({histogram}_bucket{{{selector}}}[5m]))"
    calls = f"sum{keep}(increase({histogram}_count{{{selector}}}[5m]))"
    return (
        f"histogram_quantile({RESPONSE_TIME_QUANTILE}, {buckets})\n> {RESPONSE_TIME_SECONDS}\n"
        f"and{on}\n{calls} >= {LATENCY_MIN_CALLS}"
    )


def server_rule_groups(server: FleetServer, settings: Environment) -> list[K8sObject]:
    """The `groups` of a Prometheus rule file: what the PrometheusRule carries and promtool checks."""
    static_labels = {
        "server": server.name,
        "team": server.spec.owner.team,
        # Alertmanager's default route and inhibitions group by namespace; gateway-based rules have none.
        "namespace": server.namespace,
    }
    rules = [
        {
            "alert": alert.name,
            "expr": alert.expr,
            "for": alert.for_,
            "labels": {"severity": alert.severity, **static_labels},
            "annotations": {
                "summary": alert.summary,
                "description": alert.description,
                "runbook_url": runbook_url(alert.name),
            },
        }
        for alert in server_alerts(server, settings)
    ]
    return [{"name": f"mcp-server-{server.name}", "rules": rules}]


def _server_metadata(server: FleetServer) -> K8sObject:
    return {
        "name": server.name,
        "namespace": server.namespace,
        "labels": {**server_labels(server), **RELEASE_LABELS},
    }


def server_service_monitor(server: FleetServer) -> K8sObject | None:
    """Scrapes the server's own metrics, when its catalog entry says it serves some."""
    if server.spec.metrics_path is None:
        return None
    return {
        "apiVersion": OPERATOR_API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": _server_metadata(server),
        "spec": {
            "selector": {"matchLabels": selector_labels(server)},
            "namespaceSelector": {"matchNames": [server.namespace]},
            "endpoints": [
                {"port": SERVICE_PORT_NAME, "path": server.spec.metrics_path, "interval": SCRAPE_INTERVAL}
            ],
        },
    }


def server_prometheus_rule(server: FleetServer, settings: Environment) -> K8sObject:
    return {
        "apiVersion": OPERATOR_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": _server_metadata(server),
        "spec": {"groups": server_rule_groups(server, settings)},
    }


def server_monitoring_objects(server: FleetServer, settings: Environment) -> dict[str, K8sObject]:
    """The server's scrape config and alerts by Pulumi resource name (unique across the fleet)."""
    objects = {f"{server.name}-prometheus-rule": server_prometheus_rule(server, settings)}
    monitor = server_service_monitor(server)
    if monitor is not None:
        objects[f"{server.name}-service-monitor"] = monitor
    return objects


def _platform_labels() -> dict[str, str]:
    return {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"}


def gateway_pod_monitor(settings: Environment) -> K8sObject:
    """Every gateway replica, scraped directly: a PodMonitor needs no Service to carry the metrics port,
    so the gateway's public Service never exposes it."""
    return {
        "apiVersion": OPERATOR_API_VERSION,
        "kind": "PodMonitor",
        "metadata": {
            "name": "mcp-gateway",
            "namespace": settings.gateway_namespace,
            "labels": {**_platform_labels(), **RELEASE_LABELS},
        },
        "spec": {
            "selector": {"matchLabels": dict(GATEWAY_POD_LABELS)},
            "namespaceSelector": {"matchNames": [settings.gateway_namespace]},
            "podMetricsEndpoints": [
                {"port": GATEWAY_METRICS_PORT, "path": METRICS_PATH, "interval": SCRAPE_INTERVAL}
            ],
        },
    }


def gateway_monitoring_objects(settings: Environment) -> dict[str, K8sObject]:
    return {"mcp-gateway-pod-monitor": gateway_pod_monitor(settings)}


def router_pod_monitor(settings: Environment) -> K8sObject:
    """Every MCP router replica, scraped directly on its metrics port (8091, docs/router.md) as the gateway
    is: no Service has to expose that port. Alerts and dashboards sum the replicas' series."""
    return {
        "apiVersion": OPERATOR_API_VERSION,
        "kind": "PodMonitor",
        "metadata": {
            "name": ROUTER_NAME,
            "namespace": settings.gateway_namespace,
            "labels": {**_platform_labels(), **RELEASE_LABELS},
        },
        "spec": {
            "selector": {"matchLabels": dict(ROUTER_POD_LABELS)},
            "namespaceSelector": {"matchNames": [settings.gateway_namespace]},
            "podMetricsEndpoints": [
                {"port": ROUTER_METRICS_PORT, "path": METRICS_PATH, "interval": SCRAPE_INTERVAL}
            ],
        },
    }


# Fleet-wide figures of the fleet endpoint, recorded once per evaluation so a dashboard over 1,000 servers
# reads one series instead of every server's.
TOOLS_WITHHELD_RECORD = "mcp_fleet:tools_withheld:count"
SERVERS_NOT_LISTED_RECORD = "mcp_fleet:servers_not_listed:count"


def router_rule_groups(settings: Environment) -> list[K8sObject]:
    """The router's own rule file (what its PrometheusRule carries and promtool checks): the tools withheld
    across the fleet, by reason (`drifted` from their pin, `unpinned` where those are withheld), and the
    servers some router replica cannot list. Replicas are folded first: each holds its own verdicts."""
    router = f'namespace="{settings.gateway_namespace}"'
    return [
        {
            "name": "mcp-fleet-endpoint",
            "rules": [
                {
                    "record": TOOLS_WITHHELD_RECORD,
                    "expr": "count by (reason) (\n"
                    f"  max by (server, tool, reason) (mcp_router_tool_withheld{{{router}}}) > 0\n)",
                },
                {
                    "record": SERVERS_NOT_LISTED_RECORD,
                    "expr": f"count(min by (server) (mcp_router_listing_up{{{router}}}) == 0)\nor\nvector(0)",
                },
            ],
        }
    ]


def router_prometheus_rule(settings: Environment) -> K8sObject:
    return {
        "apiVersion": OPERATOR_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": {
            "name": ROUTER_NAME,
            "namespace": settings.gateway_namespace,
            "labels": {**_platform_labels(), **RELEASE_LABELS},
        },
        "spec": {"groups": router_rule_groups(settings)},
    }


def router_monitoring_objects(settings: Environment) -> dict[str, K8sObject]:
    """The router's scrape config and fleet-wide rules by Pulumi resource name; created after the chart
    (its CRDs), like the gateway's."""
    return {
        "mcp-router-pod-monitor": router_pod_monitor(settings),
        "mcp-router-prometheus-rule": router_prometheus_rule(settings),
    }


def _with_namespace_default(dashboard: dict[str, Any], pattern: str) -> dict[str, Any]:
    """The dashboard with its namespace variable defaulting to this environment's server namespaces."""
    variables = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("name") == NAMESPACE_VARIABLE:
            option = {"selected": True, "text": pattern, "value": pattern}
            variable = {**variable, "query": pattern, "current": option, "options": [option]}
        variables.append(variable)
    return {**dashboard, "templating": {**dashboard.get("templating", {}), "list": variables}}


def dashboard_config_maps(settings: Environment, directory: Path = DASHBOARDS_DIR) -> dict[str, K8sObject]:
    """One ConfigMap per generated dashboard, where the chart's Grafana sidecar picks it up."""
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no dashboards in {directory}: run `python -m dashboards`")
    pattern = f"{settings.namespace_prefix}.*"
    objects: dict[str, K8sObject] = {}
    for path in paths:
        dashboard = _with_namespace_default(json.loads(path.read_text(encoding="utf-8")), pattern)
        objects[f"dashboard-{path.stem}"] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"dashboard-{path.stem}",
                "namespace": settings.monitoring_namespace,
                "labels": {**_platform_labels(), DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE},
            },
            "data": {f"{path.stem}.json": json.dumps(dashboard, indent=1, sort_keys=True)},
        }
    return objects


def node_exporter_namespace_name(settings: Environment) -> str:
    return f"{settings.monitoring_namespace}-node-exporter"


def _namespace(name: str, level: str, warn_level: str, extra: dict[str, str] | None = None) -> K8sObject:
    labels = {**_platform_labels(), **(extra or {}), "pod-security.kubernetes.io/enforce": level}
    for mode in ("audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = warn_level
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def monitoring_namespaces(settings: Environment) -> dict[str, K8sObject]:
    """The monitoring namespace, and a namespace holding node-exporter alone, by role.

    node-exporter reads the host (hostNetwork, hostPID, a hostPath of `/`), which only the `privileged`
    Pod Security level admits: it gets a namespace of its own so that Prometheus, Grafana and the
    operator stay under `baseline`. They are not held to `restricted`, because the chart does not
    promise it for all of its pods; `restricted` is audited and warned about, so drift shows.

    The monitoring namespace is in the ambient mesh: servers admit Prometheus by its mesh identity
    (mesh.caller_principals), which only a meshed pod has, and mesh-wide STRICT mTLS would refuse
    plaintext from Grafana to a meshed Prometheus. node-exporter runs on the host network, outside it.
    """
    return {
        "namespace": _namespace(settings.monitoring_namespace, "baseline", "restricted", AMBIENT_LABELS),
        "node-exporter-namespace": _namespace(
            node_exporter_namespace_name(settings), "privileged", "privileged"
        ),
    }


def kube_prometheus_stack_values(settings: Environment) -> dict[str, Any]:
    """The chart's values: only what differs from its defaults, each for a reason."""
    monitoring = settings.monitoring
    prometheus_spec: dict[str, Any] = {
        "retention": monitoring.retention,
        "replicas": monitoring.prometheus_replicas,
    }
    if monitoring.storage_size is not None:
        prometheus_spec["storageSpec"] = {
            "volumeClaimTemplate": {
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": monitoring.storage_size}},
                }
            }
        }
    return {
        # Pulumi renders the chart without its Helm hooks, and the hooks are what create the admission
        # webhook's certificate Secret: without them the operator would wait for that Secret forever.
        # Our rules are checked by promtool in CI instead of by the webhook.
        "prometheusOperator": {"admissionWebhooks": {"enabled": False}, "tls": {"enabled": False}},
        "prometheus": {"prometheusSpec": prometheus_spec},
        "grafana": {
            # Never the chart's default password: the admin credentials come from the secret store.
            "admin": {
                "existingSecret": GRAFANA_ADMIN_SECRET,
                "userKey": GRAFANA_ADMIN_USER_KEY,
                "passwordKey": GRAFANA_ADMIN_PASSWORD_KEY,
            },
            "sidecar": {
                "dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": DASHBOARD_LABEL_VALUE}
            },
        },
        "prometheus-node-exporter": {"namespaceOverride": node_exporter_namespace_name(settings)},
    }


GRAFANA_ADMIN_USER = "admin"


def grafana_admin_secret(settings: Environment, password: Any) -> K8sObject:
    """Grafana's admin login (the chart's `admin.existingSecret`); password is a Pulumi secret."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": GRAFANA_ADMIN_SECRET,
            "namespace": settings.monitoring_namespace,
            "labels": _platform_labels(),
        },
        "type": "Opaque",
        "stringData": {GRAFANA_ADMIN_USER_KEY: GRAFANA_ADMIN_USER, GRAFANA_ADMIN_PASSWORD_KEY: password},
    }
