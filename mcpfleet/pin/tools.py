"""Pin tool hashes from a running server: what `mcpfleet verify` lists, hashed as the catalog pins them.

The listing is verify's own (modern and legacy clients); a server whose two listings disagree, or that
cannot be listed, is not pinned: a pin records one answer, not a coin toss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mcpfleet.pin.edit import set_fields
from mcpfleet.pin.entries import Entries
from mcpfleet.verify import ServerReport
from mcpfleet.verify.compare import ListedTool

ToolStatus = Literal["pinned", "updated", "unchanged"]


@dataclass(frozen=True)
class ToolPin:
    name: str
    status: ToolStatus
    sha256: str
    previous: str | None


@dataclass(frozen=True)
class ServerTools:
    """The pins one server's listing gives, or why it gives none."""

    server: str
    pins: tuple[ToolPin, ...] = ()
    error: str | None = None
    not_declared: tuple[str, ...] = ()
    """Listed by the server, absent from the catalog: not pinned until an owner declares them."""
    not_listed: tuple[str, ...] = ()
    """Declared in the catalog, not listed by the server: nothing to pin."""


def _failure(report: ServerReport) -> str | None:
    if not report.reachable or any(listing.status == "failed" for listing in report.listings):
        details = "; ".join(
            f"{listing.mode}: {listing.detail}" for listing in report.listings if listing.status == "failed"
        )
        return f"{report.status}: {details}" if details else report.status
    if report.disagreeing:
        return f"modern and legacy listings disagree on {', '.join(report.disagreeing)}"
    return None


def server_tools(report: ServerReport) -> ServerTools:
    """The pins for the tools report's server declares, from its first successful listing."""
    error = _failure(report)
    if error is not None:
        return ServerTools(report.name, error=error)
    listed: dict[str, ListedTool] = {}
    for listing in report.listings:
        if listing.status == "ok":
            listed = {tool.name: tool for tool in listing.tools}
            break
    declared = report.target.declared
    pins = []
    for tool in declared:
        seen = listed.get(tool.name)
        if seen is None:
            continue
        status: ToolStatus = (
            "pinned" if tool.sha256 is None else "unchanged" if tool.sha256 == seen.sha256 else "updated"
        )
        pins.append(ToolPin(tool.name, status, seen.sha256, tool.sha256))
    names = {tool.name for tool in declared}
    return ServerTools(
        report.name,
        tuple(pins),
        not_declared=tuple(sorted(set(listed) - names)),
        not_listed=tuple(sorted(names - set(listed))),
    )


def apply_tool_pins(entries: Entries, results: Sequence[ServerTools]) -> None:
    """Set `tools[].sha256` of every pinned or updated tool in the opened entries (in memory)."""
    for result in results:
        changes = {pin.name: pin.sha256 for pin in result.pins if pin.status != "unchanged"}
        if not changes:
            continue
        entry = entries.open(result.server)
        for index, item in enumerate(entry.sequence(("tools",))):
            name = item.get("name") if hasattr(item, "get") else None
            if name in changes:
                set_fields(entry.mapping(("tools", index)), {"sha256": changes[name]}, after="description")
