"""MCP: every server is routed by the gateway and known to the MCP router behind it.

HAProxy routes a server when its route map (`routes.map` in the gateway's ConfigMap) has a line
`<name> <name>/<endpoint>`; the router forwards to it when its configuration (`router.json` in the
router's ConfigMap, or, for a fleet too large for one ConfigMap, a server file `router-servers-NN.json` in
the ConfigMap `<router ConfigMap>-servers-NN`) has an entry under `servers`. A server missing from either
is deployed but unreachable: usually a gateway or a router that was not re-rendered from the same catalog.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from typing import Any

from policies.rules._examples import CONFIG_MAP, k8s, server
from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import as_map, dig, kind_of

DEFAULT_CONFIG_MAP = "mcp-gateway-config"
ROUTE_MAP_KEY = "routes.map"
DEFAULT_ROUTER_CONFIG_MAP = "mcp-router-config"
ROUTER_CONFIG_KEY = "router.json"
ROUTER_SERVER_FILES = "router-servers-*.json"


def routed_servers(route_map: str) -> set[str]:
    """The server names the gateway's route map holds (one `<name> <name>/<endpoint>` per line)."""
    return {
        line.split()[0]
        for line in route_map.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def router_servers(router_json: str) -> set[str] | None:
    """The server names router.json holds; None when it is not the JSON object the router reads."""
    try:
        document = json.loads(router_json)
    except ValueError:
        return None
    servers = document.get("servers") if isinstance(document, dict) else None
    return set(servers) if isinstance(servers, dict) else None


def _data(resources: Sequence[Resource], name: str, key: str) -> list[str]:
    return [
        str(as_map(r.inputs.get("data")).get(key, ""))
        for r in resources
        if kind_of(r.type) == "ConfigMap" and dig(r.inputs, "metadata", "name") == name
    ]


def _server_files(resources: Sequence[Resource], router_name: str) -> list[str]:
    """The router's server files: router-servers-*.json in its ConfigMaps `<router_name>-servers-*`."""
    return [
        str(text)
        for r in resources
        if kind_of(r.type) == "ConfigMap"
        and fnmatch.fnmatchcase(str(dig(r.inputs, "metadata", "name")), f"{router_name}-servers-*")
        for key, text in as_map(r.inputs.get("data")).items()
        if fnmatch.fnmatchcase(str(key), ROUTER_SERVER_FILES)
    ]


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    name = str(context.config.get("gatewayConfigMap", DEFAULT_CONFIG_MAP))
    router_name = str(context.config.get("routerConfigMap", DEFAULT_ROUTER_CONFIG_MAP))
    servers = [r for r in resources if r.type == "mcpfleet:index:McpServer"]
    if not servers:
        return []
    findings = []
    maps = _data(resources, name, ROUTE_MAP_KEY)
    if not maps:
        findings.append(Finding(f"no gateway ConfigMap {name}: no server is routed"))
    routed = set().union(*(routed_servers(text) for text in maps))
    configs = [router_servers(text) for text in _data(resources, router_name, ROUTER_CONFIG_KEY)]
    if not configs:
        findings.append(Finding(f"no router ConfigMap {router_name}: the router forwards to no server"))
    elif None in configs:
        findings.append(
            Finding(f"{ROUTER_CONFIG_KEY} of ConfigMap {router_name} is not a router configuration")
        )
    shards = [router_servers(text) for text in _server_files(resources, router_name)]
    if None in shards:
        findings.append(
            Finding(f"a server file of ConfigMaps {router_name}-servers-* is not a router configuration")
        )
    known = set().union(*(c for c in configs + shards if c is not None))
    for s in servers:
        if maps and s.name not in routed:
            findings.append(
                Finding(
                    f"server {s.name} has no gateway route (no line in {ROUTE_MAP_KEY} of ConfigMap {name})",
                    s.urn,
                )
            )
        if configs and None not in configs and s.name not in known:
            findings.append(
                Finding(
                    f"server {s.name} is unknown to the router (no entry in {ROUTER_CONFIG_KEY} of ConfigMap"
                    f" {router_name})",
                    s.urn,
                )
            )
    return findings


def _route_map(text: str) -> CaseResource:
    return k8s(CONFIG_MAP, "mcp-gateway-config", {"data": {ROUTE_MAP_KEY: text}})


def _gateway(*routes: str) -> CaseResource:
    return _route_map("# routes\n" + "".join(f"{r} {r}/mcp\n" for r in routes))


def _router_json(text: str) -> CaseResource:
    return k8s(CONFIG_MAP, "mcp-router-config", {"data": {ROUTER_CONFIG_KEY: text}})


def _router(*names: str) -> CaseResource:
    servers: Mapping[str, Any] = {n: {"publicPath": f"/servers/{n}/mcp"} for n in names}
    return _router_json(json.dumps({"environment": "prod", "servers": servers}))


def _server_file(number: int, *names: str) -> CaseResource:
    servers: Mapping[str, Any] = {n: {"publicPath": f"/servers/{n}/mcp"} for n in names}
    key = f"router-servers-{number:02d}.json"
    return k8s(
        CONFIG_MAP,
        f"mcp-router-config-servers-{number:02d}",
        {"data": {key: json.dumps({"servers": servers})}},
    )


RULE = Rule(
    id="server-gateway-route",
    description="Every MCP server has a route at the gateway and an entry in the MCP router's configuration.",
    severity="high",
    remediation="Re-render the gateway and the router from the same catalog (the Gateway and Router "
    "components route every server of the fleet); a server must not be deployed outside the Fleet "
    "component.",
    validate_stack=validate,
    config_schema={
        "gatewayConfigMap": {"type": "string", "default": DEFAULT_CONFIG_MAP},
        "routerConfigMap": {"type": "string", "default": DEFAULT_ROUTER_CONFIG_MAP},
    },
    tags=("mcp",),
    cases=(
        Case(
            "routed and known to the router", "pass", (server("alpha"), _gateway("alpha"), _router("alpha"))
        ),
        Case(
            "prefix of another name is not a route",
            "violate",
            (server("alpha"), _gateway("alpha-two"), _router("alpha")),
        ),
        Case(
            "a commented-out route is none",
            "violate",
            (server("alpha"), _route_map("# alpha alpha/mcp\n"), _router("alpha")),
        ),
        Case("no gateway", "violate", (server("alpha"), _router("alpha"))),
        Case(
            "routed, but the router does not know it",
            "violate",
            (server("alpha"), _gateway("alpha"), _router("beta")),
        ),
        Case(
            "known to the router through its server files",
            "pass",
            (
                server("alpha"),
                server("beta"),
                _gateway("alpha", "beta"),
                _router(),
                _server_file(1, "beta"),
                _server_file(2, "alpha"),
            ),
        ),
        Case(
            "a server file of another ConfigMap is not the router's",
            "violate",
            (
                server("alpha"),
                _gateway("alpha"),
                _router(),
                k8s(
                    CONFIG_MAP,
                    "other-servers-01",
                    {"data": {"router-servers-01.json": '{"servers": {"alpha": {}}}'}},
                ),
            ),
        ),
        Case("no router", "violate", (server("alpha"), _gateway("alpha"))),
        Case(
            "a router configuration that is not JSON",
            "violate",
            (server("alpha"), _gateway("alpha"), _router_json('{"servers": {"alpha": ')),
        ),
    ),
)
