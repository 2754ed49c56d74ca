"""MCP: access rules grant only tools the server declares (a typo would otherwise grant nothing, or
silently grant a tool the server adds later)."""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._fleet_cases import entry
from policies.rules._framework import Case, Context, Finding, Resource, Rule


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    if context.fleet is None:
        return []
    findings = []
    for server in context.fleet.servers:
        declared = {t.name for t in server.spec.tools}
        for index, rule in enumerate(server.spec.access):
            unknown = [t for t in rule.tools if t != "*" and t not in declared]
            if unknown:
                findings.append(
                    Finding(
                        f"server {server.name}: access[{index}] (roles {', '.join(rule.roles)}) names "
                        f"undeclared "
                        f"tools {', '.join(unknown)}",
                        server=server.name,
                    )
                )
    return findings


RULE = Rule(
    id="fleet-access-declared-tools",
    description="Access rules name only tools the server declares (or `*`).",
    severity="medium",
    remediation="Fix the tool name in access[].tools, or declare it under `tools` in the catalog entry.",
    catalog_fix="correct the tool name in `access[].tools`, or declare the tool under `tools`",
    validate_stack=validate,
    tags=("mcp",),
    cases=(
        Case(
            "declared tools and *",
            "pass",
            fleet=(
                entry(
                    "alpha",
                    ["search"],
                    access=[
                        {"roles": ["engineer"], "tools": ["*"]},
                        {"roles": ["support"], "tools": ["search"]},
                    ],
                ),
            ),
        ),
        Case(
            "typo",
            "violate",
            fleet=(entry("alpha", ["search"], access=[{"roles": ["support"], "tools": ["serach"]}]),),
        ),
        Case(
            "no tools declared",
            "violate",
            fleet=(entry("alpha", access=[{"roles": ["support"], "tools": ["search"]}]),),
        ),
    ),
)
