"""The verify report, for people (text) and for tools (JSON). Tokens never reach either."""

from __future__ import annotations

import json
from typing import Any

from mcpfleet.verify.compare import Drift, ToolChange
from mcpfleet.verify.listing import Listing
from mcpfleet.verify.run import EndpointReport, FleetReport, ServerReport, redact_userinfo
from mcpfleet.verify.unified import FleetCheck, pin_hash

_MODE_TITLES = {"modern": "modern 2026-07-28", "legacy": "legacy 2025-11-25", "sse": "SSE (legacy)"}


def _short(digest: str) -> str:
    return digest[:12]


def _listing_line(listing: Listing) -> str:
    title = _MODE_TITLES[listing.mode]
    if listing.status == "ok":
        pages = f" in {listing.pages} pages" if listing.pages > 1 else ""
        replica = f", replica {listing.replica}" if listing.replica else ""
        count = len(listing.tools)
        return f"{title}: {count} tool{'s' if count != 1 else ''}{pages}{replica} ({listing.seconds:.2f}s)"
    if listing.status == "unsupported":
        era = "legacy (2025-11-25)" if listing.mode == "modern" else "modern (2026-07-28)"
        return f"{title}: not supported, the server speaks {era} only: {listing.detail}"
    return f"{title}: FAILED: {listing.detail}"


def _change_line(change: ToolChange) -> str:
    return (
        f"changed: {change.name}: {' and '.join(change.parts)}"
        f" (pinned {_short(change.pinned)}, listed {_short(change.listed)})"
    )


def _drift_lines(drift: Drift) -> list[str]:
    lines = [f"added (not in the catalog): {name}" for name in drift.added]
    lines += [f"removed (declared, not listed): {name}" for name in drift.removed]
    lines += [_change_line(change) for change in drift.changed]
    return lines


def _check_lines(found: FleetCheck) -> list[str]:
    listed = ", ".join(f"{name} {count}" for name, count in found.servers)
    lines = [f"tools listed per server: {listed}" if listed else "no server enabled"]
    lines += [f"not a tool of a server enabled here: {name}" for name in found.foreign]
    lines += [f"undeclared (not in the catalog): {name}" for name in found.undeclared]
    lines += [f"{_change_line(change)}: a drifted tool is served" for change in found.changed]
    lines += [f"listed more than once: {name}" for name in found.duplicates]
    lines += [f"listed, but this caller may not call it: {name}" for name in found.not_callable]
    silent = set(found.silent_servers)
    for name in found.silent_servers:
        count = sum(1 for item in found.withheld or () if item.server == name)
        lines.append(
            f"withheld: every tool of {name} ({count} this caller may call): the server is down, not listed"
            " by the router yet, or each of its tools drifted from its pin"
        )
    for item in found.withheld or ():
        if item.server in silent:
            continue
        pin = f"pinned {_short(item.pinned)}" if item.pinned else "not pinned"
        lines.append(
            f"withheld: {item.name} ({pin}; this caller may call it, the endpoint does not list it: its live"
            " definition no longer matches its pin, or its server no longer serves it)"
        )
    if found.unpinned:
        verdict = (
            "served, but this environment withholds unpinned tools"
            if found.unpinned_tools == "withhold"
            else "presence checked only"
        )
        lines.append(f"not pinned ({verdict}): {', '.join(found.unpinned)}")
    if not found.problems:
        pinned = found.listed - len(found.unpinned)
        every = "" if found.withheld is None else ", every tool this caller may call"
        lines.append(
            f"no drift: {found.listed} tools listed{every}, each a declared tool of its server;"
            f" {pinned} match their pins"
        )
    return lines


def _endpoint_lines(report: EndpointReport) -> list[str]:
    status = report.status.upper() if report.problems else "ok"
    lines = [f"{report.name}: {status}  {redact_userinfo(report.target.url)}  (fleet endpoint)"]
    lines += [f"  {_listing_line(listing)}" for listing in report.listings]
    if report.check is not None:
        lines += [f"  {line}" for line in _check_lines(report.check)]
    if report.agree is True:
        lines.append("  modern and legacy listings agree")
    elif report.agree is False:
        lines.append(f"  modern and legacy listings DISAGREE on: {', '.join(report.disagreeing)}")
    if report.target.token_kind == "none" and any(
        listing.detail and "HTTP 401" in listing.detail for listing in report.listings
    ):
        lines.append("  no token was sent to this endpoint (see --token-file)")
    lines += [f"  note: {note}" for note in report.notes]
    return lines


def _server_lines(server: ServerReport) -> list[str]:
    status = server.status.upper() if server.problems else "ok"
    lines = [f"{server.name}: {status}  {redact_userinfo(server.target.url)}"]
    lines += [f"  {_listing_line(listing)}" for listing in server.listings]
    if server.drift is not None:
        lines += [f"  {line}" for line in _drift_lines(server.drift)]
        if not server.drift.found:
            declared = len(server.target.declared)
            pinned = declared - len(server.drift.unpinned)
            lines.append(f"  no drift: {declared} declared tools listed, {pinned} match their pins")
        if server.drift.unpinned:
            lines.append(f"  not pinned (presence checked only): {', '.join(server.drift.unpinned)}")
    if server.agree is True:
        lines.append("  modern and legacy listings agree")
    elif server.agree is False:
        lines.append(f"  modern and legacy listings DISAGREE on: {', '.join(server.disagreeing)}")
    if server.target.token_kind == "none" and any(
        listing.detail and "HTTP 401" in listing.detail for listing in server.listings
    ):
        lines.append("  no token was sent to this server (see --token-file)")
    lines += [f"  note: {note}" for note in server.notes]
    return lines


def render_text(report: FleetReport) -> str:
    lines = [f"verify {report.environment} through {report.endpoint}"]
    lines += [f"note: {note}" for note in report.notes]
    for server in report.servers:
        lines += _server_lines(server)
    if report.unified is not None:
        lines += _endpoint_lines(report.unified)
    parts = []
    if report.servers_checked:
        failing = [server for server in report.servers if server.problems]
        total = len(report.servers)
        parts.append(f"{total - len(failing)} of {total} servers ok")
        by_problem: dict[str, list[str]] = {}
        for server in failing:
            for problem in server.problems:
                by_problem.setdefault(problem, []).append(server.name)
        parts += [f"{problem}: {', '.join(names)}" for problem, names in by_problem.items()]
    if report.unified is not None:
        problems = report.unified.problems
        name = report.unified.name
        parts.append(
            f"fleet endpoint {name}: {', '.join(problems)}" if problems else f"fleet endpoint {name} ok"
        )
    lines.append("; ".join(parts))
    return "\n".join(lines) + "\n"


def _listing_json(listing: Listing, pins: bool = False) -> dict[str, Any]:
    """pins: each tool's hash is the one its pin holds (over the server's own name, for the fleet
    endpoint's namespaced tools)."""
    return {
        "mode": listing.mode,
        "status": listing.status,
        "protocol": listing.protocol,
        "detail": listing.detail,
        "replica": listing.replica,
        "pages": listing.pages,
        "refused_by": listing.refused_by,
        "seconds": round(listing.seconds, 3),
        "tools": [
            {"name": tool.name, "sha256": pin_hash(tool) if pins else tool.sha256} for tool in listing.tools
        ],
    }


def _drift_json(drift: Drift | None) -> dict[str, Any] | None:
    if drift is None:
        return None
    return {
        "found": drift.found,
        "added": list(drift.added),
        "removed": list(drift.removed),
        "changed": [_change_json(change) for change in drift.changed],
        "unpinned": list(drift.unpinned),
    }


def _change_json(change: ToolChange) -> dict[str, Any]:
    return {
        "name": change.name,
        "parts": list(change.parts),
        "pinned": change.pinned,
        "listed": change.listed,
    }


def _check_json(found: FleetCheck | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "listed": found.listed,
        "servers": dict(found.servers),
        "foreign": list(found.foreign),
        "undeclared": list(found.undeclared),
        "changed": [_change_json(change) for change in found.changed],
        "unpinned": list(found.unpinned),
        "unpinnedTools": found.unpinned_tools,
        "duplicates": list(found.duplicates),
        "not_callable": list(found.not_callable),
        "withheld": None
        if found.withheld is None
        else [
            {"name": item.name, "server": item.server, "tool": item.tool, "pinned": item.pinned}
            for item in found.withheld
        ],
        "silent_servers": list(found.silent_servers),
    }


def _endpoint_json(report: EndpointReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    roles = report.target.roles
    return {
        "path": report.name,
        "url": redact_userinfo(report.target.url),
        "status": report.status,
        "problems": list(report.problems),
        "token": report.target.token_kind,
        "roles": None if roles is None else sorted(roles),
        "listings": [_listing_json(listing, pins=True) for listing in report.listings],
        "check": _check_json(report.check),
        "agree": report.agree,
        "disagreeing": list(report.disagreeing),
        "notes": list(report.notes),
    }


def report_json(report: FleetReport) -> dict[str, Any]:
    return {
        "environment": report.environment,
        "endpoint": report.endpoint,
        "ok": report.ok,
        "notes": list(report.notes),
        "fleet": _endpoint_json(report.unified),
        "servers": [
            {
                "name": server.name,
                "url": redact_userinfo(server.target.url),
                "transport": server.target.transport,
                "status": server.status,
                "problems": list(server.problems),
                "token": server.target.token_kind,
                "listings": [_listing_json(listing) for listing in server.listings],
                "drift": _drift_json(server.drift),
                "agree": server.agree,
                "disagreeing": list(server.disagreeing),
                "notes": list(server.notes),
            }
            for server in report.servers
        ],
    }


def render_json(report: FleetReport) -> str:
    return json.dumps(report_json(report), indent=2, sort_keys=False) + "\n"
