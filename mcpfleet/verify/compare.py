"""Drift: what a server lists against what its catalog entry declares and pins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcpfleet.catalog.models import Tool
from mcpfleet.catalog.toolhash import tool_hash


@dataclass(frozen=True)
class ListedTool:
    """A tool as the server listed it, with the hash the catalog would pin for it."""

    name: str
    description: str | None
    input_schema: Mapping[str, Any]

    @property
    def sha256(self) -> str:
        return tool_hash(self.name, self.description, self.input_schema)


@dataclass(frozen=True)
class ToolChange:
    """A declared tool whose listed hash is not the pinned one."""

    name: str
    parts: tuple[str, ...]
    """What changed: `description`, `inputSchema`, or both; `description or inputSchema` when the catalog's
    description is not the server's own text, so the pin alone cannot tell."""
    pinned: str
    listed: str


@dataclass(frozen=True)
class Drift:
    added: tuple[str, ...] = ()
    """Listed by the server, not declared in the catalog."""
    removed: tuple[str, ...] = ()
    """Declared in the catalog, not listed by the server."""
    changed: tuple[ToolChange, ...] = ()
    """Declared with a pin that the listed tool no longer matches."""
    unpinned: tuple[str, ...] = ()
    """Declared and listed, but without a pin: only their presence is checked."""

    @property
    def found(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def changed_parts(declared: Tool, listed: ListedTool) -> tuple[str, ...]:
    """Which part of listed differs from what the pin covered.

    The pin hashes name, description and inputSchema together. Substituting the catalog's description for
    the listed one tells them apart when the catalog carries the server's exact text."""
    if declared.description is None:
        return ("description or inputSchema",)
    if declared.description == (listed.description or ""):
        return ("inputSchema",)
    if tool_hash(listed.name, declared.description, listed.input_schema) == declared.sha256:
        return ("description",)
    return ("description", "inputSchema")


def compare(declared: Sequence[Tool], listed: Sequence[ListedTool]) -> Drift:
    listed_by_name = {tool.name: tool for tool in listed}
    declared_names = {tool.name for tool in declared}
    added = sorted(name for name in listed_by_name if name not in declared_names)
    removed = sorted(tool.name for tool in declared if tool.name not in listed_by_name)
    changed = []
    unpinned = []
    for tool in sorted(declared, key=lambda t: t.name):
        seen = listed_by_name.get(tool.name)
        if seen is None:
            continue
        if tool.sha256 is None:
            unpinned.append(tool.name)
        elif seen.sha256 != tool.sha256:
            changed.append(ToolChange(tool.name, changed_parts(tool, seen), tool.sha256, seen.sha256))
    return Drift(tuple(added), tuple(removed), tuple(changed), tuple(unpinned))


def disagreement(first: Sequence[ListedTool], second: Sequence[ListedTool]) -> tuple[str, ...]:
    """Tool names whose presence or hash differs between two listings of the same server."""
    a = {tool.name: tool.sha256 for tool in first}
    b = {tool.name: tool.sha256 for tool in second}
    return tuple(sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name)))
