"""MCP: every server has its own NetworkPolicy (ingress from the gateway, egress as declared)."""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._examples import NETWORK_POLICY, k8s, server
from policies.rules._framework import Case, Context, Finding, Resource, Rule
from policies.rules._k8s import kind_of
from policies.rules._stack import by_server


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    servers, children = by_server(resources)
    return [
        Finding(f"server {s.name} has no NetworkPolicy of its own", s.urn)
        for s in servers
        if not any(kind_of(r.type) == "NetworkPolicy" for r in children.get(s.name, []))
    ]


_POLICY = {
    "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "alpha"}}, "policyTypes": ["Ingress"]}
}

RULE = Rule(
    id="server-network-policy",
    description="Every MCP server has a NetworkPolicy of its own.",
    severity="high",
    remediation="Keep the McpServer component's NetworkPolicy; declare egress in its catalog entry.",
    validate_stack=validate,
    tags=("mcp", "network"),
    cases=(
        Case(
            "has a policy", "pass", (server("alpha"), k8s(NETWORK_POLICY, "alpha", _POLICY, parent="alpha"))
        ),
        Case("no policy", "violate", (server("alpha"),)),
    ),
)
