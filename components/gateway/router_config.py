"""The MCP router's configuration, `router.json` (format: docs/router.md), rendered from the fleet.

Byte-stable, like the HAProxy configuration: the same fleet always renders the same bytes (servers
sorted, lists sorted, no timestamps). One server per line, so a review's diff names the servers it
changes, in compact JSON otherwise: 1,000 servers must fit the 1 MiB of one ConfigMap. Each tool pin
costs about 86 bytes (its name again and 64 hex digits): 1,000 servers like the sample catalog's entries
take 667 KB without pins and fit about 4,400 pinned tools beside them, not the 12,700 they declare; the
ConfigMap builder refuses what does not fit (components.manifests.gateway.config_map).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from components.gateway.config import MAX_BODY_BYTES, public_path
from components.manifests.gateway import endpoints_host
from mcpfleet.fleet import FLEET_PATH, Fleet, FleetServer, audience_prefix, fleet_audience

# The fleet endpoint's listings (docs/router.md, "Listings"): each server re-listed this often besides
# its own list_changed and cache hints, pages of this many items, at most this many items per list.
FLEET_REFRESH_SECONDS = 300
FLEET_PAGE_SIZE = 500
FLEET_MAX_TOOLS_PER_SERVER = 1000


def _compact(value: Any) -> str:
    # ensure_ascii: the file is ASCII whatever a catalog entry holds, so its size is its length.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def access_rules(server: FleetServer) -> list[dict[str, list[str]]]:
    """The catalog's access rules as the router enforces them, in the catalog's order.

    A rule may name only declared tools (or `*`, every declared one): the router refuses a configuration
    naming others, and an undeclared tool must stay closed anyway, so such names are left out here (the
    policy fleet-access-declared-tools reports them) and a rule left with no tool is dropped.
    """
    declared = {tool.name for tool in server.spec.tools}
    rules = []
    for rule in server.spec.access:
        tools = sorted({tool for tool in rule.tools if tool == "*" or tool in declared})
        if tools:
            rules.append({"tools": tools, "roles": sorted(set(rule.roles))})
    return rules


def tool_pins(server: FleetServer) -> dict[str, str]:
    """Each declared tool's catalog sha256, by name: the router serves a tool only while its live
    definition hashes to this; a declared tool left out is unpinned (served per `unpinnedTools`)."""
    return {tool.name: tool.sha256 for tool in sorted(server.spec.tools, key=lambda t: t.name) if tool.sha256}


def server_entry(server: FleetServer, addresses: Sequence[str] = ()) -> dict[str, Any]:
    """One server: where clients reach it, where the router reaches its replicas, what it may run."""
    transport = server.spec.transport
    upstream: dict[str, Any]
    if addresses:
        upstream = {"addresses": list(addresses), "path": transport.path}
    else:
        # The headless Service: the router resolves every ready replica, and re-resolves it.
        upstream = {"host": endpoints_host(server), "port": transport.port, "path": transport.path}
    return {
        "publicPath": public_path(server),
        # stdio servers run behind a bridge that serves Streamable HTTP.
        "transport": "sse" if transport.type == "sse" else "streamable-http",
        "upstream": upstream,
        "stateless": server.spec.stateless,
        "tools": sorted({tool.name for tool in server.spec.tools}),
        "access": access_rules(server),
        "toolPins": tool_pins(server),
    }


def render_router_config(fleet: Fleet, upstreams: Mapping[str, Sequence[str]] | None = None) -> str:
    """router.json for fleet.

    upstreams, for a run on one machine, gives servers fixed addresses (`{"notes": ["127.0.0.1:PORT"]}`)
    instead of the headless Services cluster DNS resolves; servers it does not name keep theirs.
    """
    settings = fleet.settings
    auth = settings.gateway.auth
    placed = upstreams or {}
    head = {
        "environment": fleet.environment,
        "auth": {
            "issuer": auth.issuer,
            "algorithm": auth.algorithm,
            "audiencePrefix": audience_prefix(settings.domain),
            "rolesClaim": auth.roles_claim,
            "subjectClaim": auth.subject_claim,
        },
        "maxBodyBytes": MAX_BODY_BYTES,
        "sessionMaxAgeSeconds": 24 * 60 * 60,  # a sealed session id older than a day gets 404: re-initialize
        "unpinnedTools": settings.router.unpinned_tools,
        # Every server of the environment is behind the fleet endpoint: no server opts out of it, and
        # the same per-tool access rules decide there as on its own route.
        "fleet": {
            "publicPath": FLEET_PATH,
            "audience": fleet_audience(settings.domain),
            "refreshSeconds": FLEET_REFRESH_SECONDS,
            "pageSize": FLEET_PAGE_SIZE,
            "maxToolsPerServer": FLEET_MAX_TOOLS_PER_SERVER,
        },
    }
    lines = ["{"]
    lines += [f"{_compact(key)}:{_compact(value)}," for key, value in head.items()]
    servers = sorted(fleet.servers, key=lambda s: s.name)
    if not servers:
        lines.append('"servers":{}')
    else:
        lines.append('"servers":{')
        entries = [f"{_compact(s.name)}:{_compact(server_entry(s, placed.get(s.name, ())))}" for s in servers]
        lines.append(",\n".join(entries))
        lines.append("}")
    lines.append("}")
    return "\n".join(lines) + "\n"
