"""MCP: tool names stay unique across the fleet once namespaced as `<server>__<tool>`.

Clients that aggregate servers (and the gateway's catalog) namespace tools this way. Names that differ
only by case collide in clients that fold case, and many clients cap function names at 64 characters.
Tools come from the catalog (the Fleet), which no resource input carries.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._fleet_cases import entry
from policies.rules._framework import Case, Context, Finding, Resource, Rule

SEPARATOR = "__"


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    if context.fleet is None:
        return []
    limit = int(context.config.get("maxLength", 64))
    seen: dict[str, str] = {}
    findings = []
    for server in context.fleet.servers:
        for tool in server.spec.tools:
            full = f"{server.name}{SEPARATOR}{tool.name}"
            folded = full.lower()
            if folded in seen:
                findings.append(
                    Finding(
                        f"server {server.name}: tool {full} collides with {seen[folded]}", server=server.name
                    )
                )
            seen.setdefault(folded, full)
            if len(full) > limit:
                findings.append(
                    Finding(
                        f"server {server.name}: tool {full} is {len(full)} characters, over {limit}",
                        server=server.name,
                    )
                )
    return findings


RULE = Rule(
    id="fleet-tool-names-unique",
    description="Namespaced tool names (<server>__<tool>) are unique (ignoring case) and short.",
    severity="medium",
    remediation="Rename the tool in the server's configuration, or shorten the server's name.",
    catalog_fix="shorten the server's `name` (and its file name), or configure the server to list the "
    "tool under another name and set `tools[].name` to match",
    validate_stack=validate,
    config_schema={"maxLength": {"type": "integer", "minimum": 8, "default": 64}},
    tags=("mcp",),
    cases=(
        Case("distinct tools", "pass", fleet=(entry("alpha", ["search"]), entry("beta", ["search"]))),
        Case("case-folded collision", "violate", fleet=(entry("alpha", ["Search", "search"]),)),
        Case("separator inside a tool name", "violate", fleet=(entry("alpha", ["x__y", "X__Y"]),)),
        Case("too long", "violate", fleet=(entry("alpha", ["t" * 70]),)),
    ),
)
