"""Mesh: every server Deployment has an AuthorizationPolicy selecting its pods (deny unless allowed)."""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._examples import AUTHORIZATION_POLICY, LABELS, deployment, k8s, server
from policies.rules._framework import Case, Context, Finding, Resource, Rule
from policies.rules._k8s import as_map, dig, kind_of, labels_match, namespace_of
from policies.rules._stack import by_server


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    policies = [r for r in resources if kind_of(r.type) == "AuthorizationPolicy"]
    servers, children = by_server(resources)
    findings = []
    for s in servers:
        for d in (r for r in children.get(s.name, []) if kind_of(r.type) == "Deployment"):
            labels = as_map(dig(d.inputs, "spec", "template", "metadata", "labels"))
            if not any(
                namespace_of(p.inputs) == namespace_of(d.inputs)
                and labels_match(as_map(dig(p.inputs, "spec", "selector")), labels)
                for p in policies
            ):
                findings.append(
                    Finding(
                        f"server {s.name}: Deployment {namespace_of(d.inputs)}/"
                        f"{dig(d.inputs, 'metadata', 'name')} has no AuthorizationPolicy",
                        d.urn,
                    )
                )
    return findings


_ALLOW = {
    "spec": {
        "action": "ALLOW",
        "selector": {"matchLabels": LABELS},
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/mcp-gateway/sa/mcp-gateway"]}}]}],
    }
}

RULE = Rule(
    id="server-authorization-policy",
    description="Every MCP server's Deployment has an Istio AuthorizationPolicy selecting its pods.",
    severity="high",
    remediation="Keep the McpServer component's AuthorizationPolicy (ALLOW from the gateway and Prometheus "
    "only) for the server.",
    validate_stack=validate,
    tags=("mesh", "mcp"),
    cases=(
        Case(
            "policy present",
            "pass",
            (
                server(),
                deployment(parent="alpha"),
                k8s(AUTHORIZATION_POLICY, "alpha", _ALLOW, parent="alpha"),
            ),
        ),
        Case("no policy", "violate", (server(), deployment(parent="alpha"))),
        Case(
            "policy for another server",
            "violate",
            (
                server(),
                deployment(parent="alpha"),
                k8s(
                    AUTHORIZATION_POLICY,
                    "beta",
                    {"spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "beta"}}}},
                ),
            ),
        ),
    ),
)
