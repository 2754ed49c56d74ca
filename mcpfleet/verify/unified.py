"""The fleet endpoint (`/mcp`) against the catalog: every tool it lists is a declared tool of an enabled
server, named `<server>__<tool>`, whose definition matches its pin; every tool this caller may call is
listed (docs/router.md, "The fleet endpoint").

Checked from outside, as a client sees it: the names are split here by the contract, not by the router's
code, so a router that namespaces wrongly is caught too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import jwt

from mcpfleet.catalog.models import Tool
from mcpfleet.fleet import Fleet, FleetServer
from mcpfleet.verify.compare import ListedTool, ToolChange, changed_parts

SEPARATOR = "__"
MAX_NAME_LENGTH = 128
"""A namespaced name longer than this is not served (what MCP clients accept)."""
_SERVER = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)

UnpinnedTools = Literal["serve", "withhold"]


def split_name(listed: str) -> tuple[str, str] | None:
    """(server, the server's own tool name), split at the first `__`; None when listed is not a
    namespaced name (server names are DNS labels: they hold no `_`)."""
    server, separator, tool = listed.partition(SEPARATOR)
    if not separator or not tool or _SERVER.fullmatch(server) is None:
        return None
    return server, tool


def namespaced(server: str, tool: str) -> str:
    return f"{server}{SEPARATOR}{tool}"


def caller_roles(token: str | None, claim: str) -> frozenset[str] | None:
    """The roles a bearer token names, read as the router reads them (a string split on single spaces, or
    a list of strings); None when they cannot be read (no token, not a JWT, a claim of another type).

    The signature is not checked: the gateway does that. The roles only say which tools this caller
    should find listed."""
    if not token:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    value = claims.get(claim, [])
    if isinstance(value, str):
        return frozenset(part for part in value.split(" ") if part)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return frozenset(value)
    return None


def allowed(server: FleetServer, tool: str, roles: frozenset[str]) -> bool:
    """Whether roles may call the declared tool, by the server's access rules (`*`: every declared one)."""
    return any(
        ("*" in rule.tools or tool in rule.tools) and not roles.isdisjoint(rule.roles)
        for rule in server.spec.access
    )


@dataclass(frozen=True)
class Withheld:
    """A tool this caller may call that the endpoint did not list."""

    name: str
    server: str
    tool: str
    pinned: str | None


@dataclass(frozen=True)
class FleetCheck:
    """One listing of the fleet endpoint against the catalog."""

    listed: int
    servers: tuple[tuple[str, int], ...]
    """Tools listed per enabled server, in the fleet's order (servers with none included)."""
    foreign: tuple[str, ...] = ()
    """Listed names that are not `<server>__<tool>` of a server enabled here."""
    undeclared: tuple[str, ...] = ()
    """Listed tools of an enabled server that its catalog entry does not declare."""
    changed: tuple[ToolChange, ...] = ()
    """Listed tools whose definition no longer matches their pin: a drifted tool served."""
    unpinned: tuple[str, ...] = ()
    """Listed declared tools without a pin: only their presence is checked."""
    unpinned_tools: UnpinnedTools = "withhold"
    """What the environment does with unpinned tools: listed ones are a problem when it withholds them."""
    duplicates: tuple[str, ...] = ()
    not_callable: tuple[str, ...] = ()
    """Listed tools that the caller's roles may not call: a caller must never see those."""
    withheld: tuple[Withheld, ...] | None = None
    """Tools the caller's roles may call, not listed; None when the token's roles could not be read."""
    too_long: tuple[str, ...] = ()
    """Declared tools whose namespaced name is over the limit (never served, so never expected)."""

    @property
    def silent_servers(self) -> tuple[str, ...]:
        """Servers with tools this caller may call of which not one is listed: down, or not listed by the
        router yet (or every one of them withheld)."""
        if not self.withheld:
            return ()
        counts = dict(self.servers)
        missing = {item.server for item in self.withheld}
        return tuple(name for name, count in self.servers if name in missing and counts[name] == 0)

    @property
    def problems(self) -> tuple[str, ...]:
        found = []
        if self.changed:
            found.append("drift")
        if self.withheld:
            found.append("withheld")
        if self.foreign or self.undeclared:
            found.append("undeclared")
        if self.unpinned and self.unpinned_tools == "withhold":
            found.append("unpinned")
        if self.not_callable:
            found.append("access")
        if self.duplicates:
            found.append("duplicate")
        return tuple(found)


def check(
    fleet: Fleet,
    listed: Sequence[ListedTool],
    roles: frozenset[str] | None,
    unpinned_tools: UnpinnedTools,
) -> FleetCheck:
    """listed (one whole listing of the endpoint) against the fleet's catalog entries, for a caller with
    roles (None: unknown, so only what is listed is checked)."""
    servers = {server.name: server for server in fleet.servers}
    declared: dict[str, dict[str, Tool]] = {
        server.name: {tool.name: tool for tool in server.spec.tools} for server in fleet.servers
    }
    counts = dict.fromkeys(servers, 0)
    seen: set[str] = set()
    duplicates: set[str] = set()
    foreign: list[str] = []
    undeclared: list[str] = []
    changed: list[ToolChange] = []
    unpinned: list[str] = []
    not_callable: list[str] = []
    for item in listed:
        if item.name in seen:
            duplicates.add(item.name)
            continue
        seen.add(item.name)
        parts = split_name(item.name)
        if parts is None or parts[0] not in servers:
            foreign.append(item.name)
            continue
        server, own = parts
        counts[server] += 1
        tool = declared[server].get(own)
        if tool is None:
            undeclared.append(item.name)
            continue
        if roles is not None and not allowed(servers[server], own, roles):
            not_callable.append(item.name)
        if tool.sha256 is None:
            unpinned.append(item.name)
            continue
        # The pin covers the server's own name: the endpoint's prefix is not part of the definition.
        served = ListedTool(own, item.description, item.input_schema)
        if served.sha256 != tool.sha256:
            changed.append(ToolChange(item.name, changed_parts(tool, served), tool.sha256, served.sha256))
    withheld: list[Withheld] | None = None
    too_long: list[str] = []
    if roles is not None:
        withheld = []
        for entry in fleet.servers:
            for tool in sorted(entry.spec.tools, key=lambda t: t.name):
                name = namespaced(entry.name, tool.name)
                if not allowed(entry, tool.name, roles) or name in seen:
                    continue
                if tool.sha256 is None and unpinned_tools == "withhold":
                    continue
                if len(name) > MAX_NAME_LENGTH:
                    too_long.append(name)
                    continue
                withheld.append(Withheld(name, entry.name, tool.name, tool.sha256))
    return FleetCheck(
        listed=len(seen),
        servers=tuple((name, counts[name]) for name in servers),
        foreign=tuple(sorted(foreign)),
        undeclared=tuple(sorted(undeclared)),
        changed=tuple(sorted(changed, key=lambda c: c.name)),
        unpinned=tuple(sorted(unpinned)),
        unpinned_tools=unpinned_tools,
        duplicates=tuple(sorted(duplicates)),
        not_callable=tuple(sorted(not_callable)),
        withheld=None if withheld is None else tuple(withheld),
        too_long=tuple(too_long),
    )


def expected_pages(fleet: Fleet, floor: int) -> int:
    """At most how many pages an honest endpoint serves this fleet in: one more than its declared tools
    (a page holds one tool at least), never below floor. More pages is a paginator that does not end."""
    return max(floor, sum(len(server.spec.tools) for server in fleet.servers) + 1)


def pin_hash(tool: ListedTool) -> str:
    """The hash the catalog would pin for a listed tool: over the server's own name when the listed name
    is namespaced, so it compares with the pin."""
    parts = split_name(tool.name)
    own = parts[1] if parts is not None else tool.name
    return ListedTool(own, tool.description, tool.input_schema).sha256
