"""MCP: every server is routed by the gateway (`/servers/<name>/` in its configuration's route map).

A server without a route is deployed but unreachable: usually a gateway that was not re-rendered.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._examples import CONFIG_MAP, k8s, server
from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import as_map, dig, kind_of

DEFAULT_CONFIG_MAP = "mcp-gateway-config"


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    name = str(context.config.get("gatewayConfigMap", DEFAULT_CONFIG_MAP))
    configs = [
        "\n".join(str(v) for v in as_map(r.inputs.get("data")).values())
        for r in resources
        if kind_of(r.type) == "ConfigMap" and dig(r.inputs, "metadata", "name") == name
    ]
    servers = [r for r in resources if r.type == "mcpfleet:index:McpServer"]
    if servers and not configs:
        return [Finding(f"no gateway ConfigMap {name}: no server is routed")]
    text = "\n".join(configs)
    return [
        Finding(f"server {s.name} has no gateway route /servers/{s.name}/ in ConfigMap {name}", s.urn)
        for s in servers
        if f"/servers/{s.name}/" not in text
    ]


def _gateway(*routes: str) -> CaseResource:
    lines = "".join(f"/servers/{r}/ {r}/mcp\n" for r in routes)
    return k8s(CONFIG_MAP, "mcp-gateway-config", {"data": {"routes.map": lines}})


RULE = Rule(
    id="server-gateway-route",
    description="Every MCP server has a route at the gateway.",
    severity="high",
    remediation="Re-render the gateway from the same catalog (the Gateway component routes every server of "
    "the fleet); a server must not be deployed outside the Fleet component.",
    validate_stack=validate,
    config_schema={"gatewayConfigMap": {"type": "string", "default": DEFAULT_CONFIG_MAP}},
    tags=("mcp",),
    cases=(
        Case("routed", "pass", (server("alpha"), _gateway("alpha"))),
        Case("prefix of another name is not a route", "violate", (server("alpha"), _gateway("alpha-two"))),
        Case("no gateway", "violate", (server("alpha"),)),
    ),
)
