"""MCP: every server is watched: a ServiceMonitor or PodMonitor scrapes it, or a
PrometheusRule alerts on it."""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._examples import SERVICE_MONITOR, k8s, server
from policies.rules._framework import Case, Context, Finding, Resource, Rule
from policies.rules._k8s import kind_of
from policies.rules._stack import by_server

MONITORS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    servers, children = by_server(resources)
    return [
        Finding(f"server {s.name} has no ServiceMonitor, PodMonitor or PrometheusRule", s.urn)
        for s in servers
        if not any(kind_of(r.type) in MONITORS for r in children.get(s.name, []))
    ]


RULE = Rule(
    id="server-monitoring",
    description="Every MCP server has a ServiceMonitor, PodMonitor or PrometheusRule.",
    severity="medium",
    remediation="Keep the McpServer component's ServiceMonitor and PrometheusRule (set metricsPath in the "
    "catalog entry if the server serves metrics elsewhere).",
    validate_stack=validate,
    tags=("mcp", "monitoring"),
    cases=(
        Case(
            "monitored",
            "pass",
            (server("alpha"), k8s(SERVICE_MONITOR, "alpha", {"spec": {}}, parent="alpha")),
        ),
        Case(
            "monitor belongs to another server",
            "violate",
            (server("alpha"), server("beta"), k8s(SERVICE_MONITOR, "beta", {"spec": {}}, parent="beta")),
        ),
        Case("unmonitored", "violate", (server("alpha"),)),
    ),
)
