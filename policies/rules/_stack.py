"""Walking the resource tree: which McpServer component a resource belongs to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies.rules._framework import SERVER_TYPE, Resource


def server_of(urn: str, by_urn: Mapping[str, Resource]) -> str | None:
    """The name of the McpServer component urn sits under (or is), via parent URNs."""
    seen: set[str] = set()
    current: str | None = urn
    while current is not None and current not in seen:
        seen.add(current)
        resource = by_urn.get(current)
        if resource is None:
            return None
        if resource.type == SERVER_TYPE:
            return resource.name
        current = resource.parent
    return None


def by_server(resources: Sequence[Resource]) -> tuple[list[Resource], dict[str, list[Resource]]]:
    """The McpServer components, and each one's descendants by server name."""
    by_urn = {r.urn: r for r in resources}
    servers = [r for r in resources if r.type == SERVER_TYPE]
    children: dict[str, list[Resource]] = {s.name: [] for s in servers}
    for r in resources:
        if r.type == SERVER_TYPE:
            continue
        name = server_of(r.urn, by_urn)
        if name is not None:
            children.setdefault(name, []).append(r)
    return servers, children
