"""The verify report, for people (text) and for tools (JSON). Tokens never reach either."""

from __future__ import annotations

import json
from typing import Any

from mcpfleet.verify.compare import Drift
from mcpfleet.verify.listing import Listing
from mcpfleet.verify.run import FleetReport, ServerReport, redact_userinfo

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


def _drift_lines(drift: Drift) -> list[str]:
    lines = [f"added (not in the catalog): {name}" for name in drift.added]
    lines += [f"removed (declared, not listed): {name}" for name in drift.removed]
    lines += [
        f"changed: {change.name}: {' and '.join(change.parts)}"
        f" (pinned {_short(change.pinned)}, listed {_short(change.listed)})"
        for change in drift.changed
    ]
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
    failing = [server for server in report.servers if server.problems]
    total = len(report.servers)
    summary = f"{total - len(failing)} of {total} servers ok"
    by_problem: dict[str, list[str]] = {}
    for server in failing:
        for problem in server.problems:
            by_problem.setdefault(problem, []).append(server.name)
    details = "; ".join(f"{problem}: {', '.join(names)}" for problem, names in by_problem.items())
    lines.append(f"{summary}{'; ' + details if details else ''}")
    return "\n".join(lines) + "\n"


def _listing_json(listing: Listing) -> dict[str, Any]:
    return {
        "mode": listing.mode,
        "status": listing.status,
        "protocol": listing.protocol,
        "detail": listing.detail,
        "replica": listing.replica,
        "pages": listing.pages,
        "refused_by": listing.refused_by,
        "seconds": round(listing.seconds, 3),
        "tools": [{"name": tool.name, "sha256": tool.sha256} for tool in listing.tools],
    }


def _drift_json(drift: Drift | None) -> dict[str, Any] | None:
    if drift is None:
        return None
    return {
        "found": drift.found,
        "added": list(drift.added),
        "removed": list(drift.removed),
        "changed": [
            {"name": c.name, "parts": list(c.parts), "pinned": c.pinned, "listed": c.listed}
            for c in drift.changed
        ],
        "unpinned": list(drift.unpinned),
    }


def report_json(report: FleetReport) -> dict[str, Any]:
    return {
        "environment": report.environment,
        "endpoint": report.endpoint,
        "ok": report.ok,
        "notes": list(report.notes),
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
