"""The MCP router's configuration, `router.json` (format: docs/router.md), rendered from the fleet.

Byte-stable, like the HAProxy configuration: the same fleet always renders the same bytes (servers
sorted, lists sorted, no timestamps). One server per line, so a review's diff names the servers it
changes, in compact JSON otherwise.

Each tool pin costs about 86 bytes (its name again and 64 hex digits): 1,000 servers like the sample
catalog's entries, every tool pinned, take 1.77 MB, beyond the 1 MiB of one ConfigMap. So the files the
pods read (`render_router_files`) are router.json alone while it fits CONFIG_MAP_BUDGET_BYTES, and
otherwise router.json without servers plus server files (`router-servers-NN.json`), each its own
ConfigMap, which router.json names with their sha256; the router merges them (mcpfleet.router.config).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from components.gateway.config import MAX_BODY_BYTES, public_path
from components.manifests.gateway import config_map_size, endpoints_host
from mcpfleet.fleet import FLEET_PATH, Fleet, FleetServer, audience_prefix, fleet_audience
from mcpfleet.model import RateLimits
from mcpfleet.router.config import CONFIG_FILE, SERVER_FILES_KEY

# The fleet endpoint's listings (docs/router.md, "Listings"): each server re-listed this often besides
# its own list_changed and cache hints, pages of this many items, at most this many items per list.
FLEET_REFRESH_SECONDS = 300
FLEET_PAGE_SIZE = 500
FLEET_MAX_TOOLS_PER_SERVER = 1000

# The most data one of the router's ConfigMaps is given: Kubernetes refuses more than 1 MiB, and the rest is
# margin (the object's metadata, an entry growing between reviews).
CONFIG_MAP_BUDGET_BYTES = 900 * 1024
# Server files are counted to hold this much on average, two thirds of the budget: a file has room to grow
# as servers are added before the count has to change (which moves servers between files).
SERVER_FILE_TARGET_BYTES = 600 * 1024
# A bound on the search for a count at which every file fits; reached only by entries near the budget.
MAX_SERVER_FILES = 256


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
    entry = {
        "publicPath": public_path(server),
        # stdio servers run behind a bridge that serves Streamable HTTP.
        "transport": "sse" if transport.type == "sse" else "streamable-http",
        "upstream": upstream,
        "stateless": server.spec.stateless,
        "tools": sorted({tool.name for tool in server.spec.tools}),
        "access": access_rules(server),
        "toolPins": tool_pins(server),
    }
    if server.spec.rate_limits is not None:
        entry["rateLimits"] = _rate_limits(server.spec.rate_limits)
    return entry


def _rate_limits(limits: RateLimits) -> dict[str, int]:
    """The gateway's limits, which the router applies on /mcp (where the body names the server)."""
    return {
        "perCallerPerMinute": limits.per_caller_per_minute,
        "perServerPerMinute": limits.per_server_per_minute,
    }


def _head(fleet: Fleet) -> dict[str, Any]:
    """Everything of router.json but its servers."""
    settings = fleet.settings
    auth = settings.gateway.auth
    return {
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
            # Servers without limits of their own have the environment's there, as on their routes.
            "rateLimits": _rate_limits(settings.gateway.rate_limits),
        },
    }


def _entries(fleet: Fleet, upstreams: Mapping[str, Sequence[str]] | None) -> list[tuple[str, str]]:
    """(server name, its line: `"name":{...}`), sorted by name."""
    placed = upstreams or {}
    servers = sorted(fleet.servers, key=lambda s: s.name)
    return [
        (s.name, f"{_compact(s.name)}:{_compact(server_entry(s, placed.get(s.name, ())))}") for s in servers
    ]


def _document(head: Mapping[str, Any], entries: Sequence[tuple[str, str]]) -> str:
    """head's keys one a line, then `servers`, one server a line (router.json and server files alike)."""
    lines = ["{"]
    lines += [f"{_compact(key)}:{_compact(value)}," for key, value in head.items()]
    if not entries:
        lines.append('"servers":{}')
    else:
        lines.append('"servers":{')
        lines.append(",\n".join(line for _, line in entries))
        lines.append("}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_router_config(fleet: Fleet, upstreams: Mapping[str, Sequence[str]] | None = None) -> str:
    """router.json for fleet, every server in it: what a run on one machine reads (no ConfigMap there).

    upstreams, for a run on one machine, gives servers fixed addresses (`{"notes": ["127.0.0.1:PORT"]}`)
    instead of the headless Services cluster DNS resolves; servers it does not name keep theirs.
    """
    return _document(_head(fleet), _entries(fleet, upstreams))


def server_file_name(index: int) -> str:
    return f"router-servers-{index:02d}.json"


def _file_of(name: str, count: int) -> int:
    """The server file of server name among count (rendezvous hashing: the file whose hash with the name is
    highest). It depends on the name and the count alone, so adding or removing a server changes only its
    own file, and a change of count moves only the servers the new count sends elsewhere."""
    return max(range(count), key=lambda index: hashlib.sha256(f"{index}:{name}".encode()).digest())


def split_servers(
    entries: Sequence[tuple[str, str]], budget: int = CONFIG_MAP_BUDGET_BYTES
) -> dict[str, str]:
    """Server files (name -> text, each `{"servers":{...}}`, sorted by server within) of at most budget
    bytes of ConfigMap data each. ValueError when a server's entry alone does not fit one."""
    for name, line in entries:
        alone = config_map_size({server_file_name(0): _document({}, [(name, line)])})
        if alone > budget:
            raise ValueError(
                f"server {name}'s entry in router.json takes {alone} bytes: more than the {budget} bytes of"
                " data one of the router's ConfigMaps is given"
            )
    total = sum(len(line) + 2 for _, line in entries)
    count = max(1, math.ceil(total / SERVER_FILE_TARGET_BYTES))
    while count <= MAX_SERVER_FILES:
        groups: list[list[tuple[str, str]]] = [[] for _ in range(count)]
        for name, line in entries:
            groups[_file_of(name, count)].append((name, line))
        files = {server_file_name(i + 1): _document({}, group) for i, group in enumerate(groups) if group}
        if all(config_map_size({name: text}) <= budget for name, text in files.items()):
            return files
        count += 1  # one file came out too large: draw again with one more
    raise ValueError(
        f"router.json's servers do not split into {MAX_SERVER_FILES} ConfigMaps of {budget} bytes"
    )


def render_router_files(
    fleet: Fleet,
    upstreams: Mapping[str, Sequence[str]] | None = None,
    budget: int = CONFIG_MAP_BUDGET_BYTES,
) -> dict[str, str]:
    """The files the router's pods read, by name, each to be one ConfigMap of at most budget bytes of data:
    router.json alone (render_router_config's) while it fits, else router.json naming server files
    (`serverFiles`: name -> sha256 of its bytes) and those files holding every server."""
    head = _head(fleet)
    entries = _entries(fleet, upstreams)
    whole = _document(head, entries)
    if config_map_size({CONFIG_FILE: whole}) <= budget:
        return {CONFIG_FILE: whole}
    files = split_servers(entries, budget)
    head[SERVER_FILES_KEY] = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()}
    return {CONFIG_FILE: _document(head, []), **files}
