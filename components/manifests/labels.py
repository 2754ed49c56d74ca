"""The labels every object carries, and the selectors that find the gateway and the scraper."""

from __future__ import annotations

import re

from mcpfleet.fleet import FleetServer

PART_OF = "mcpfleet"
TEAM_LABEL = "mcpfleet.io/team"
SERVER_LABEL = "mcpfleet.io/server"

# Pods and identities of the gateway and of Prometheus, as the platform components create them.
# The mesh admits exactly these service accounts; the NetworkPolicies, exactly these pods.
GATEWAY_NAME = "mcp-gateway"
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": GATEWAY_NAME}
GATEWAY_SERVICE_ACCOUNT = GATEWAY_NAME
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
