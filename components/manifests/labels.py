"""The labels every object carries, and the selectors that find the gateway, the router and the scraper."""

from __future__ import annotations

import re

from mcpfleet.fleet import FleetServer

PART_OF = "mcpfleet"
TEAM_LABEL = "mcpfleet.io/team"
SERVER_LABEL = "mcpfleet.io/server"

# Pods and identities of the gateway (HAProxy), the MCP router behind it and Prometheus, as the platform
# components create them. The mesh admits exactly these service accounts; the NetworkPolicies, exactly
# these pods. Clients reach the gateway; only the gateway reaches the router; only the router (and the
# scraper) reach the servers.
GATEWAY_NAME = "mcp-gateway"
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": GATEWAY_NAME}
GATEWAY_SERVICE_ACCOUNT = GATEWAY_NAME
ROUTER_NAME = "mcp-router"
ROUTER_POD_LABELS = {"app.kubernetes.io/name": ROUTER_NAME}
ROUTER_SERVICE_ACCOUNT = ROUTER_NAME
# kube-prometheus-stack installed as release "kube-prometheus-stack" names its Prometheus so.
PROMETHEUS_RELEASE = "kube-prometheus-stack"
PROMETHEUS_SERVICE_ACCOUNT = f"{PROMETHEUS_RELEASE}-prometheus"
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}


def label_value(text: str) -> str:
    """A Kubernetes label value: 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:63]
    return cleaned.strip("_.-")


def selector_labels(server: FleetServer) -> dict[str, str]:
    """Stable labels: never change them, Deployments cannot change their selector."""
    return {"app.kubernetes.io/name": server.name, "app.kubernetes.io/instance": server.name}


def server_labels(server: FleetServer) -> dict[str, str]:
    return {
        **selector_labels(server),
        "app.kubernetes.io/component": "mcp-server",
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/version": label_value(server.spec.version),
        TEAM_LABEL: server.spec.owner.team,
        SERVER_LABEL: server.name,
    }
