"""Where clients reach an environment: the fleet endpoint and each server's route, with the token audience
each one takes. Written beside the manifests (`build/<env>/endpoints.json`) and summed up by `mcpfleet plan`.
"""

from __future__ import annotations

import json
from typing import Any

from components.gateway.config import METADATA_PREFIX, public_path
from mcpfleet.fleet import FLEET_PATH, Fleet

ENDPOINTS_FILE = "endpoints.json"


def _url(fleet: Fleet, path: str) -> str:
    return f"https://{fleet.settings.domain}{path}"


def endpoints(fleet: Fleet) -> dict[str, Any]:
    """The fleet endpoint (every server of the environment behind one MCP endpoint, served by the router)
    and each server's own route; a token opens exactly one of them, the one whose audience it names."""
    return {
        "environment": fleet.environment,
        "fleet": {
            "url": _url(fleet, FLEET_PATH),
            "audience": fleet.endpoint_audience,
            # RFC 9728: where a client learns which issuer mints tokens for it.
            "metadata": _url(fleet, f"{METADATA_PREFIX}{FLEET_PATH}"),
            "issuer": fleet.settings.gateway.auth.issuer,
            "servers": len(fleet.servers),
            "unpinnedTools": fleet.settings.router.unpinned_tools,
        },
        "servers": {
            server.name: {"url": _url(fleet, public_path(server)), "audience": fleet.audience(server.name)}
            for server in sorted(fleet.servers, key=lambda s: s.name)
        },
    }


def render_endpoints(fleet: Fleet) -> str:
    return json.dumps(endpoints(fleet), indent=1) + "\n"


def summary(fleet: Fleet) -> list[str]:
    """What the plan prints: the fleet endpoint's route and audience, and how the servers' routes go."""
    found = endpoints(fleet)["fleet"]
    unpinned = "served" if found["unpinnedTools"] == "serve" else "withheld"
    count = len(fleet.servers)
    example = _url(fleet, "/servers/<name>/mcp")
    return [
        f"fleet endpoint: {found['url']} ({count} server{'' if count == 1 else 's'} behind it,"
        f" tools without a pin {unpinned})",
        f"  token audience {found['audience']}, issuer {found['issuer']}",
        f"server routes: {example} (/sse for SSE servers), token audience {fleet.audience('<name>')};"
        f" each in {ENDPOINTS_FILE}",
    ]
