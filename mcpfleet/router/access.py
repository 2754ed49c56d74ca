"""Per-tool access from the catalog's rules: which roles may call which declared tool.

`*` means every tool the server declares; a tool the server does not declare is closed to everyone.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpfleet.router.config import AccessRule


class ToolAccess:
    """Roles allowed per declared tool, computed once per server."""

    def __init__(self, tools: Iterable[str], rules: Iterable[AccessRule]) -> None:
        declared = list(tools)
        allowed: dict[str, set[str]] = {tool: set() for tool in declared}
        for rule in rules:
            targets = declared if "*" in rule.tools else [t for t in rule.tools if t in allowed]
            for tool in targets:
                allowed[tool].update(rule.roles)
        self._allowed = {tool: frozenset(roles) for tool, roles in allowed.items()}

    def declared(self, tool: str) -> bool:
        return tool in self._allowed

    def allows(self, tool: str, roles: frozenset[str]) -> bool:
        permitted = self._allowed.get(tool)
        return permitted is not None and not permitted.isdisjoint(roles)
