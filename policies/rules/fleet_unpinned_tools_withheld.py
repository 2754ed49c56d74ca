"""MCP: where tools are pinned, tools without a pin are not served either.

The router serves a pinned tool only while its live definition hashes to its pin (docs/router.md, "Tool
pins"); a declared tool without a pin has nothing to be checked against, so whatever a server lists under
its name would be served. The stack setting `router.unpinnedTools` decides: `withhold` lists and runs
none of them. Asked of staging and prod, and wherever strictness is `standard` or `strict`; blocking in
prod, where serving them would undo the pins.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._fleet_cases import entry, pinned
from policies.rules._framework import PROD_ONLY, Case, Context, Finding, Resource, Rule

CHECKED_ENVIRONMENTS = ("staging", "prod")


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    fleet = context.fleet
    if fleet is None:
        return []
    if fleet.environment not in CHECKED_ENVIRONMENTS and not context.at_least("standard"):
        return []
    if fleet.settings.router.unpinned_tools == "withhold":
        return []
    unpinned = sorted(
        f"{server.name}/{tool.name}"
        for server in fleet.servers
        for tool in server.spec.tools
        if tool.sha256 is None
    )
    shown = ", ".join(unpinned[:5]) + (f" and {len(unpinned) - 5} more" if len(unpinned) > 5 else "")
    served = (
        f"{len(unpinned)} declared tools without a pin would be served unchecked: {shown}"
        if unpinned
        else ("every tool is pinned now, but a tool declared later without a pin would be served unchecked")
    )
    # A platform finding: the setting is the stack's, whichever server's tools it lets through.
    return [Finding(f"router.unpinnedTools is serve in {fleet.environment}: {served}")]


RULE = Rule(
    id="fleet-unpinned-tools-withheld",
    description="The router withholds tools declared without a sha256 pin in staging and prod "
    "(router.unpinnedTools: withhold; blocking in prod).",
    severity="high",
    remediation="Set router.unpinnedTools to withhold in the environment's stack file, and pin the tools "
    "to serve (mcpfleet pin --tools).",
    stack_fix="set `router.unpinnedTools` to withhold, and pin each tool to serve in its catalog entry "
    "(tools[].sha256, mcpfleet pin --tools)",
    validate_stack=validate,
    enforcement=PROD_ONLY,
    tags=("mcp", "supply-chain"),
    cases=(
        Case("prod withholds", "pass", fleet=(entry("alpha", [pinned("search"), "fetch"]),)),
        Case(
            "prod serves unpinned tools",
            "violate",
            fleet=(entry("alpha", [pinned("search"), "fetch"]),),
            stack={"router": {"unpinnedTools": "serve"}},
        ),
        Case(
            "prod serves, every tool pinned today",
            "violate",
            fleet=(entry("alpha", [pinned("search")]),),
            stack={"router": {"unpinnedTools": "serve"}},
        ),
        Case(
            "staging serves unpinned tools",
            "violate",
            environment="staging",
            fleet=(entry("alpha", ["fetch"]),),
            stack={"router": {"unpinnedTools": "serve"}},
        ),
        Case("staging withholds", "pass", environment="staging", fleet=(entry("alpha", ["fetch"]),)),
        Case("dev serves while tools change", "pass", environment="dev", fleet=(entry("alpha", ["fetch"]),)),
        Case(
            "dev held to standard strictness serves",
            "violate",
            environment="dev",
            fleet=(entry("alpha", ["fetch"]),),
            stack={"strictness": "standard"},
        ),
    ),
)
