"""MCP: each server has its own token audience, so a token minted for one server is useless at another.

The catalog has no audience field. The audience is derived as `https://<domain>/servers/<name>`
(the server's public URL prefix at the gateway, RFC 8707 resource indicator style), which is unique
per server by construction; this rule checks that the derivation holds: a domain is set, every derived
audience is a valid, distinct https URL. When the catalog gains `auth.audience`, check that field here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mcpfleet.fleet import Fleet
from policies.rules._fleet_cases import entry
from policies.rules._framework import Case, Context, Finding, Resource, Rule

_URL = re.compile(r"^https://[a-z0-9.-]+(:[0-9]+)?/servers/[a-z][-a-z0-9]*$")


def audience(fleet: Fleet, server: str) -> str:
    # The gateway checks this very value (components/gateway): one derivation for both.
    return fleet.audience(server)


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    fleet = context.fleet
    if fleet is None or not fleet.servers:
        return []
    # Every audience is derived from the stack's domain: a bad domain is one platform finding, not one
    # per server (no server's owner can fix it).
    example = audience(fleet, fleet.servers[0].name)
    if not fleet.settings.domain or not _URL.match(example):
        return [
            Finding(
                f"domain {fleet.settings.domain!r} gives token audiences such as {example}, which are not"
                " valid https URLs"
            )
        ]
    findings = []
    owners: dict[str, str] = {}
    for server in fleet.servers:
        value = audience(fleet, server.name)
        if not _URL.match(value):
            findings.append(
                Finding(
                    f"server {server.name}: token audience {value} is not a valid https URL",
                    server=server.name,
                )
            )
        if value in owners:
            findings.append(
                Finding(
                    f"server {server.name}: token audience {value} is also {owners[value]}'s",
                    server=server.name,
                )
            )
        owners.setdefault(value, server.name)
    return findings


RULE = Rule(
    id="fleet-token-audience",
    description="Every server has a distinct token audience (https://<domain>/servers/<name>).",
    severity="high",
    remediation="Set `domain` in the stack file to the gateway's public host name.",
    catalog_fix="rename the server (`name`, and its file name) so its audience is its own",
    stack_fix="set `domain` to the gateway's public host name",
    validate_stack=validate,
    tags=("mcp", "auth"),
    cases=(
        Case("derived audiences", "pass", fleet=(entry("alpha"), entry("beta"))),
        Case("derived audiences in dev", "pass", environment="dev", fleet=(entry("alpha"),)),
        Case("wildcard domain", "violate", fleet=(entry("alpha"),), stack={"domain": "*.mcp.example.com"}),
    ),
)
