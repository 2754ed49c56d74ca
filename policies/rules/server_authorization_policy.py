"""Mesh: every server Deployment has an AuthorizationPolicy selecting its pods, admitting only the MCP
router's and the scraper's identities.

With an ALLOW policy in place the mesh denies every other caller. The router is the one caller that
decides on each message (docs/router.md): a policy that also admits the gateway's HAProxy identity, or
any other, opens a way to the server around that decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from policies.rules._examples import AUTHORIZATION_POLICY, LABELS, deployment, k8s, server
from policies.rules._framework import Case, Context, Finding, Resource, Rule
from policies.rules._k8s import as_list, as_map, dig, kind_of, labels_match, name_of, namespace_of
from policies.rules._stack import by_server

TRUST_DOMAIN = "cluster.local"
DEFAULT_ROUTER_SERVICE_ACCOUNT = "mcp-router"
DEFAULT_SCRAPER_SERVICE_ACCOUNT = "kube-prometheus-stack-prometheus"


def allowed_principals(context: Context) -> set[str]:
    """The router's and the scraper's mesh identities, in the stack's namespaces."""
    settings = context.fleet.settings if context.fleet is not None else None
    gateway_ns = settings.gateway_namespace if settings else "mcp-gateway"
    monitoring_ns = settings.monitoring_namespace if settings else "monitoring"
    router = str(context.config.get("routerServiceAccount", DEFAULT_ROUTER_SERVICE_ACCOUNT))
    scraper = str(context.config.get("scraperServiceAccount", DEFAULT_SCRAPER_SERVICE_ACCOUNT))
    return {
        f"{TRUST_DOMAIN}/ns/{gateway_ns}/sa/{router}",
        f"{TRUST_DOMAIN}/ns/{monitoring_ns}/sa/{scraper}",
    }


def strangers(policy: Resource, allowed: set[str]) -> list[str]:
    """Who an ALLOW policy admits besides the allowed identities (DENY and AUDIT policies admit no one)."""
    spec = as_map(policy.inputs.get("spec"))
    if spec.get("action", "ALLOW") != "ALLOW":
        return []
    found = []
    for index, rule in enumerate(as_list(spec.get("rules"))):
        sources = [as_map(dig(f, "source")) for f in as_list(dig(rule, "from"))]
        if not sources:
            found.append(f"rules[{index}] admits every caller")
        for source in sources:
            principals = [str(p) for p in as_list(source.get("principals"))]
            if not principals or set(source) - {"principals"}:
                found.append(f"rules[{index}] admits callers by {', '.join(sorted(source)) or 'nothing'}")
            found += [f"rules[{index}] admits {p}" for p in principals if p not in allowed]
    return found


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    policies = [r for r in resources if kind_of(r.type) == "AuthorizationPolicy"]
    allowed = allowed_principals(context)
    servers, children = by_server(resources)
    findings = []
    for s in servers:
        for d in (r for r in children.get(s.name, []) if kind_of(r.type) == "Deployment"):
            labels = as_map(dig(d.inputs, "spec", "template", "metadata", "labels"))
            selecting = [
                p
                for p in policies
                if namespace_of(p.inputs) == namespace_of(d.inputs)
                and labels_match(as_map(dig(p.inputs, "spec", "selector")), labels)
                and dig(p.inputs, "spec", "action") in (None, "ALLOW")
            ]
            if not selecting:
                # Without an ALLOW policy the mesh admits every caller a DENY policy does not name.
                findings.append(
                    Finding(
                        f"server {s.name}: Deployment {namespace_of(d.inputs)}/"
                        f"{dig(d.inputs, 'metadata', 'name')} has no ALLOW AuthorizationPolicy",
                        d.urn,
                    )
                )
            for policy in selecting:
                for stranger in strangers(policy, allowed):
                    findings.append(
                        Finding(
                            f"server {s.name}: AuthorizationPolicy {name_of(policy.inputs)} {stranger}; only"
                            " the MCP router and the scraper may call a server",
                            policy.urn,
                        )
                    )
    return findings


ROUTER = f"{TRUST_DOMAIN}/ns/mcp-gateway/sa/{DEFAULT_ROUTER_SERVICE_ACCOUNT}"
SCRAPER = f"{TRUST_DOMAIN}/ns/monitoring/sa/{DEFAULT_SCRAPER_SERVICE_ACCOUNT}"


def _allow(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"action": "ALLOW", "selector": {"matchLabels": LABELS}, "rules": list(rules)}}


def _from(*principals: str) -> dict[str, Any]:
    return {
        "from": [{"source": {"principals": list(principals)}}],
        "to": [{"operation": {"ports": ["8080"]}}],
    }


def _case(name: str, expect: Literal["pass", "violate"], body: dict[str, Any]) -> Case:
    return Case(
        name,
        expect,
        (server(), deployment(parent="alpha"), k8s(AUTHORIZATION_POLICY, "alpha", body, parent="alpha")),
    )


RULE = Rule(
    id="server-authorization-policy",
    description="Every MCP server's Deployment has an Istio AuthorizationPolicy selecting its pods and "
    "admitting only the MCP router and the scraper.",
    severity="high",
    remediation="Keep the McpServer component's AuthorizationPolicy (ALLOW from the MCP router and "
    "Prometheus only) for the server.",
    validate_stack=validate,
    config_schema={
        "routerServiceAccount": {"type": "string", "default": DEFAULT_ROUTER_SERVICE_ACCOUNT},
        "scraperServiceAccount": {"type": "string", "default": DEFAULT_SCRAPER_SERVICE_ACCOUNT},
    },
    tags=("mesh", "mcp"),
    cases=(
        _case("router and scraper", "pass", _allow(_from(ROUTER, SCRAPER))),
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
        _case(
            "the gateway's HAProxy identity admitted",
            "violate",
            _allow(_from(ROUTER, SCRAPER, f"{TRUST_DOMAIN}/ns/mcp-gateway/sa/mcp-gateway")),
        ),
        _case("a rule without sources", "violate", _allow({"to": [{"operation": {"ports": ["8080"]}}]})),
        _case(
            "callers by namespace",
            "violate",
            _allow({"from": [{"source": {"namespaces": ["mcp-gateway"]}}]}),
        ),
        _case(
            "only a DENY policy: every caller it does not name is admitted",
            "violate",
            {"spec": {"action": "DENY", "selector": {"matchLabels": LABELS}, "rules": [_from(SCRAPER)]}},
        ),
    ),
)
