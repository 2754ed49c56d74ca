"""MCP: every declared tool is pinned by hash, so a changed tool description is drift we see.

A server update that rewrites a tool's description is the rug pull of tool poisoning; a pinned sha256
turns it into a reported difference. Asked of environments whose strictness is `standard` or `strict`
(staging warns of what prod will block); in a relaxed environment (dev) tools are still changing.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._fleet_cases import entry, pinned
from policies.rules._framework import PROD_ONLY, Case, Context, Finding, Resource, Rule


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    if context.fleet is None or not context.at_least("standard"):
        return []
    findings = []
    # Where the router withholds unpinned tools, an unpinned tool is not merely unchecked: callers lose it.
    withheld = context.fleet.settings.router.unpinned_tools == "withhold"
    consequence = "; the router withholds them here (router.unpinnedTools: withhold)" if withheld else ""
    for server in context.fleet.servers:
        unpinned = [t.name for t in server.spec.tools if t.sha256 is None]
        if unpinned:
            shown = ", ".join(unpinned[:5]) + (f" and {len(unpinned) - 5} more" if len(unpinned) > 5 else "")
            findings.append(
                Finding(
                    f"server {server.name}: tools without sha256: {shown}{consequence}", server=server.name
                )
            )
    return findings


RULE = Rule(
    id="fleet-tool-hashes-pinned",
    description="Every declared tool has a pinned sha256 where strictness is standard or strict "
    "(blocking in prod).",
    severity="medium",
    remediation="Compute each tool's hash from the server's tools/list answer (mcpfleet.catalog.toolhash) "
    "and set tools[].sha256 in the catalog entry.",
    catalog_fix="set `tools[].sha256` of each tool named, computed from the tools/list answer of the "
    "image this environment runs (mcpfleet.catalog.toolhash)",
    validate_stack=validate,
    enforcement=PROD_ONLY,
    tags=("mcp", "supply-chain"),
    cases=(
        Case("all pinned", "pass", fleet=(entry("alpha", [pinned("search")]),)),
        Case("no tools declared", "pass", fleet=(entry("alpha"),)),
        Case("one unpinned", "violate", fleet=(entry("alpha", [pinned("search"), "fetch"]),)),
        Case(
            "one unpinned where standard",
            "violate",
            environment="staging",
            fleet=(entry("alpha", [pinned("search"), "fetch"]),),
            stack={"strictness": "standard"},
        ),
        Case(
            "one unpinned where relaxed",
            "pass",
            environment="dev",
            fleet=(entry("alpha", [pinned("search"), "fetch"]),),
            stack={"strictness": "relaxed"},
        ),
    ),
)
