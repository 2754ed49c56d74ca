"""A fixed fleet for the gateway's and the router's tests, on the repository's stack settings.

Three servers of their own (not the sample catalog, which users change): a stateful Streamable HTTP
server with per-tool access rules, a stateless one with its own rate limits, and an SSE server, in two
teams, enabled in every environment.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

from mcpfleet.catalog.loader import Catalog, CatalogEntry
from mcpfleet.catalog.models import Server
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.model import ENVIRONMENTS, EnvName, RateLimits
from mcpfleet.stacks.loader import load_stack_config
from tests.conftest import minimal_server

REPO = Path(__file__).resolve().parents[2]
ACM_ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
EVERYWHERE: dict[str, Any] = {env: {} for env in ENVIRONMENTS}

ENTRIES: tuple[dict[str, Any], ...] = (
    minimal_server(
        "alpha",
        environments=EVERYWHERE,
        tools=[{"name": "echo"}, {"name": "get-env"}, {"name": "add.note"}],
        access=[
            {"roles": ["support"], "tools": ["echo", "add.note"]},
            {"roles": ["engineer"], "tools": ["*"]},
            # Names a tool the server does not declare: it stays closed.
            {"roles": ["support"], "tools": ["undeclared"]},
        ],
    ),
    minimal_server(
        "beta",
        environments=EVERYWHERE,
        stateless=True,
        transport={"type": "streamable-http", "port": 8081, "path": "/"},
        rateLimits={"perCallerPerMinute": 6, "perServerPerMinute": 9},
        owner={"team": "search", "contact": "search@example.com"},
    ),
    minimal_server(
        "gamma",
        environments=EVERYWHERE,
        transport={"type": "sse", "port": 9000, "path": "/sse"},
        owner={"team": "search", "contact": "search@example.com"},
    ),
)
BETA_LIMITS = RateLimits(per_caller_per_minute=6, per_server_per_minute=9)


@cache
def edge_fleet(env: EnvName) -> Fleet:
    _, settings = load_stack_config(REPO / "stacks", env)
    entries = tuple(CatalogEntry(Server.model_validate(entry), f"{entry['name']}.yaml") for entry in ENTRIES)
    return resolve_fleet(Catalog(Path("catalog"), entries), env, settings, f"stacks/Pulumi.{env}.yaml")


def with_gateway(fleet: Fleet, **changes: Any) -> Fleet:
    settings = fleet.settings
    gateway = settings.gateway.model_copy(update=changes)
    return dataclasses.replace(fleet, settings=settings.model_copy(update={"gateway": gateway}))


def with_router(fleet: Fleet, **changes: Any) -> Fleet:
    settings = fleet.settings
    router = settings.router.model_copy(update=changes)
    return dataclasses.replace(fleet, settings=settings.model_copy(update={"router": router}))


def acm(env: EnvName) -> Fleet:
    """env, with TLS ending at the NLB (no stack file ships it; staging and prod are meant to allow it)."""
    return with_gateway(edge_fleet(env), tls="acm", acm_certificate_arn=ACM_ARN, cluster_issuer=None)
