"""The labels every object carries, and the selectors that find the gateway and the scraper."""

from __future__ import annotations

import re

from mcpfleet.fleet import FleetServer

PART_OF = "mcpfleet"
TEAM_LABEL = "mcpfleet.io/team"
SERVER_LABEL = "mcpfleet.io/server"

# Pods of the gateway and of Prometheus, as the platform components label them.
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": "mcp-gateway"}
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
