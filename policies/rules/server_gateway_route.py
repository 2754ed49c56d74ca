"""MCP: every server is routed by the gateway (a line `<name> <name>/<endpoint>` in its `routes.map`).

A server without a route is deployed but unreachable: usually a gateway that was not re-rendered.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._examples import CONFIG_MAP, k8s, server
from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import as_map, dig, kind_of

DEFAULT_CONFIG_MAP = "mcp-gateway-config"
ROUTE_MAP_KEY = "routes.map"


def routed_servers(route_map: str) -> set[str]:
    """The server names the gateway's route map holds (one `<name> <name>/<endpoint>` per line)."""
    return {
        line.split()[0]
        for line in route_map.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    name = str(context.config.get("gatewayConfigMap", DEFAULT_CONFIG_MAP))
    maps = [
        str(as_map(r.inputs.get("data")).get(ROUTE_MAP_KEY, ""))
        for r in resources
        if kind_of(r.type) == "ConfigMap" and dig(r.inputs, "metadata", "name") == name
    ]
    servers = [r for r in resources if r.type == "mcpfleet:index:McpServer"]
    if servers and not maps:
        return [Finding(f"no gateway ConfigMap {name}: no server is routed")]
    routed = set().union(*(routed_servers(text) for text in maps))
    return [
        Finding(
            f"server {s.name} has no gateway route (no line in {ROUTE_MAP_KEY} of ConfigMap {name})", s.urn
        )
        for s in servers
        if s.name not in routed
    ]


def _route_map(text: str) -> CaseResource:
    return k8s(CONFIG_MAP, "mcp-gateway-config", {"data": {ROUTE_MAP_KEY: text}})


def _gateway(*routes: str) -> CaseResource:
    return _route_map("# routes\n" + "".join(f"{r} {r}/mcp\n" for r in routes))


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
        Case(
            "a commented-out route is none", "violate", (server("alpha"), _route_map("# alpha alpha/mcp\n"))
        ),
        Case("no gateway", "violate", (server("alpha"),)),
    ),
)
