"""MCP: tool names stay unique across the fleet once namespaced as `<server>__<tool>`, as the fleet endpoint
serves them.

`https://<domain>/mcp` lists every server's tools under `<server>__<tool>` (docs/router.md, "Names"): the
first `__` splits a name back, so two servers never collide, but names that differ only by case collide
in clients that fold case, and a namespaced name longer than 128 characters (MCP's limit on tool names)
is not served there at all. Tools come from the catalog (the Fleet), which no resource input carries. The
catalog declares no prompts; when it does, their namespaced names belong here too.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._fleet_cases import entry
from policies.rules._framework import Case, Context, Finding, Resource, Rule

# The fleet endpoint's separator (docs/router.md): characters every MCP client and LLM API accepts.
SEPARATOR = "__"
# MCP tool names are 1 to 128 characters; the fleet endpoint serves no longer namespaced name.
MAX_LENGTH = 128


def namespaced(server: str, tool: str) -> str:
    """A tool's name at the fleet endpoint."""
    return f"{server}{SEPARATOR}{tool}"


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    if context.fleet is None:
        return []
    limit = int(context.config.get("maxLength", MAX_LENGTH))
    seen: dict[str, str] = {}
    findings = []
    for server in context.fleet.servers:
        for tool in server.spec.tools:
            full = namespaced(server.name, tool.name)
            folded = full.lower()
            if folded in seen:
                findings.append(
                    Finding(
                        f"server {server.name}: tool {full} collides with {seen[folded]} (names differing"
                        " only by case)",
                        server=server.name,
                    )
                )
            seen.setdefault(folded, full)
            if len(full) > limit:
                findings.append(
                    Finding(
                        f"server {server.name}: tool {full} is {len(full)} characters at the fleet endpoint,"
                        f" over {limit}: it is not served there",
                        server=server.name,
                    )
                )
    return findings


RULE = Rule(
    id="fleet-tool-names-unique",
    description="Namespaced tool names at the fleet endpoint (<server>__<tool>) are unique (ignoring case) "
    f"and at most {MAX_LENGTH} characters.",
    severity="medium",
    remediation="Rename the tool in the server's configuration, or shorten the server's name.",
    catalog_fix="shorten the server's `name` (and its file name), or configure the server to list the "
    "tool under another name and set `tools[].name` to match",
    validate_stack=validate,
    version="2.0.0",
    config_schema={
        "maxLength": {"type": "integer", "minimum": 8, "maximum": MAX_LENGTH, "default": MAX_LENGTH}
    },
    tags=("mcp",),
    cases=(
        Case("distinct tools", "pass", fleet=(entry("alpha", ["search"]), entry("beta", ["search"]))),
        # The first `__` splits the name: `alpha__x__y` is alpha's `x__y`, and no other server's.
        Case(
            "separator inside a tool name", "pass", fleet=(entry("alpha", ["x__y"]), entry("alpha-x", ["y"]))
        ),
        Case("dots and dashes as MCP allows", "pass", fleet=(entry("alpha", ["notes.add", "get-env"]),)),
        Case("exactly 128 characters", "pass", fleet=(entry("alpha", ["t" * (MAX_LENGTH - 7)]),)),
        Case("case-folded collision", "violate", fleet=(entry("alpha", ["Search", "search"]),)),
        Case("case-folded collision with separators", "violate", fleet=(entry("alpha", ["x__y", "X__Y"]),)),
        Case("129 characters", "violate", fleet=(entry("alpha", ["t" * (MAX_LENGTH - 6)]),)),
        Case("a long server name pushes a tool over", "violate", fleet=(entry("a" * 40, ["t" * 87]),)),
    ),
)
