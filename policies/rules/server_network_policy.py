"""MCP: every server has its own NetworkPolicy, admitting only the MCP router and the scraper.

Every request reaches a server through the router, which decided on it (docs/router.md); a policy that
also admits the gateway's HAProxy pods, another namespace or any source at all opens a way around that
decision. Kubelet probes arrive from the mesh's link-local probe address, which only the node can use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from policies.rules._examples import NETWORK_POLICY, k8s, server
from policies.rules._framework import Case, Context, Finding, Resource, Rule
from policies.rules._k8s import as_list, as_map, dig, kind_of, name_of
from policies.rules._stack import by_server

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DEFAULT_ROUTER_LABELS = {"app.kubernetes.io/name": "mcp-router"}
DEFAULT_SCRAPER_LABELS = {"app.kubernetes.io/name": "prometheus"}
DEFAULT_PROBE_SOURCES = ["169.254.7.127/32"]


def allowed_peers(context: Context) -> list[tuple[str, dict[str, str]]]:
    """(namespace, pod labels) of the router and the scraper, in the stack's namespaces."""
    settings = context.fleet.settings if context.fleet is not None else None
    gateway_ns = settings.gateway_namespace if settings else "mcp-gateway"
    monitoring_ns = settings.monitoring_namespace if settings else "monitoring"
    router = {
        str(k): str(v)
        for k, v in as_map(context.config.get("routerPodLabels", DEFAULT_ROUTER_LABELS)).items()
    }
    scraper = {
        str(k): str(v)
        for k, v in as_map(context.config.get("scraperPodLabels", DEFAULT_SCRAPER_LABELS)).items()
    }
    return [(gateway_ns, router), (monitoring_ns, scraper)]


def _peer_allowed(
    peer: Mapping[str, Any], allowed: list[tuple[str, dict[str, str]]], probes: list[str]
) -> bool:
    block = as_map(peer.get("ipBlock"))
    if block:
        return set(block) == {"cidr"} and block.get("cidr") in probes
    namespace = as_map(dig(peer, "namespaceSelector", "matchLabels")).get(NAMESPACE_NAME_LABEL)
    selectors = (as_map(peer.get("namespaceSelector")), as_map(peer.get("podSelector")))
    if any(set(selector) - {"matchLabels"} for selector in selectors):
        return False  # expressions are not read here: only exact labels say who is admitted
    labels = dict(as_map(dig(peer, "podSelector", "matchLabels")))
    namespace_labels = as_map(dig(peer, "namespaceSelector", "matchLabels"))
    if set(namespace_labels) != {NAMESPACE_NAME_LABEL}:
        return False
    return any(namespace == ns and labels == pod_labels for ns, pod_labels in allowed)


def strangers(policy: Resource, context: Context) -> list[str]:
    """What the policy admits besides the router, the scraper and kubelet probes."""
    allowed = allowed_peers(context)
    probes = [str(c) for c in as_list(context.config.get("probeSources", DEFAULT_PROBE_SOURCES))]
    found = []
    for index, rule in enumerate(as_list(dig(policy.inputs, "spec", "ingress"))):
        peers = as_list(as_map(rule).get("from"))
        if not peers:
            found.append(f"ingress[{index}] admits every source")
        for peer in peers:
            if not _peer_allowed(as_map(peer), allowed, probes):
                found.append(f"ingress[{index}] admits {peer}")
    return found


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    servers, children = by_server(resources)
    findings = []
    for s in servers:
        policies = [r for r in children.get(s.name, []) if kind_of(r.type) == "NetworkPolicy"]
        if not policies:
            findings.append(Finding(f"server {s.name} has no NetworkPolicy of its own", s.urn))
        for policy in policies:
            for stranger in strangers(policy, context):
                findings.append(
                    Finding(
                        f"server {s.name}: NetworkPolicy {name_of(policy.inputs)} {stranger}; only the MCP"
                        " router and the scraper may reach a server",
                        policy.urn,
                    )
                )
    return findings


def _peer(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
        "podSelector": {"matchLabels": dict(labels)},
    }


def _policy(*ingress: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "alpha"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": list(ingress),
        }
    }


_ROUTER = _peer("mcp-gateway", DEFAULT_ROUTER_LABELS)
_SCRAPER = _peer("monitoring", DEFAULT_SCRAPER_LABELS)
_PROBES = {"from": [{"ipBlock": {"cidr": DEFAULT_PROBE_SOURCES[0]}}], "ports": [{"port": "mcp"}]}
_MESH = [{"protocol": "TCP", "port": 15008}]


def _case(name: str, expect: Literal["pass", "violate"], *ingress: Mapping[str, Any]) -> Case:
    return Case(
        name, expect, (server("alpha"), k8s(NETWORK_POLICY, "alpha", _policy(*ingress), parent="alpha"))
    )


RULE = Rule(
    id="server-network-policy",
    description="Every MCP server has a NetworkPolicy of its own, admitting only the MCP router and the "
    "scraper (and kubelet probes).",
    severity="high",
    remediation="Keep the McpServer component's NetworkPolicy (ingress from the router and Prometheus only); "
    "declare egress in its catalog entry.",
    validate_stack=validate,
    config_schema={
        "routerPodLabels": {"type": "object", "default": DEFAULT_ROUTER_LABELS},
        "scraperPodLabels": {"type": "object", "default": DEFAULT_SCRAPER_LABELS},
        "probeSources": {"type": "array", "items": {"type": "string"}, "default": DEFAULT_PROBE_SOURCES},
    },
    tags=("mcp", "network"),
    cases=(
        _case("router, scraper and probes", "pass", {"from": [_ROUTER, _SCRAPER], "ports": _MESH}, _PROBES),
        Case("no policy", "violate", (server("alpha"),)),
        _case(
            "the gateway's HAProxy pods admitted too",
            "violate",
            {
                "from": [_ROUTER, _peer("mcp-gateway", {"app.kubernetes.io/name": "mcp-gateway"})],
                "ports": _MESH,
            },
        ),
        _case("an ingress rule without sources", "violate", {"ports": _MESH}),
        _case(
            "the router's labels in another namespace",
            "violate",
            {"from": [_peer("mcp-team", DEFAULT_ROUTER_LABELS)]},
        ),
        _case(
            "a selector with expressions, which the rule does not read",
            "violate",
            {
                "from": [
                    {
                        **_ROUTER,
                        "podSelector": {
                            "matchLabels": DEFAULT_ROUTER_LABELS,
                            "matchExpressions": [{"key": "x", "operator": "Exists"}],
                        },
                    }
                ]
            },
        ),
        _case("a wide address block", "violate", {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}),
    ),
)
