"""A fixed server and environment for the monitoring tests: the promtool unit tests name them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcpfleet.catalog.loader import Catalog, CatalogEntry
from mcpfleet.catalog.models import Server
from mcpfleet.fleet import FleetServer, resolve_fleet
from mcpfleet.stacks.models import Environment
from tests.conftest import minimal_server

SERVER = "alpha"
TEAM = "platform"
NAMESPACE = "mcp-platform"
GATEWAY_NAMESPACE = "mcp-gateway"


def sample_settings(**overrides: Any) -> Environment:
    fields: dict[str, Any] = {
        "cluster": {"provider": "existing", "context": "kind-mcpfleet"},
        "domain": "mcp.example.com",
        "namespaceStrategy": "per-team",
        "strictness": "relaxed",
        "gateway": {
            "replicas": 1,
            "maxReplicas": 1,
            "tls": "self-signed",
            "auth": {"issuer": "https://id.mcp.example.com/"},
        },
        "monitoring": {"retention": "7d", "storageSize": "20Gi", "prometheusReplicas": 2},
    }
    return Environment.model_validate({**fields, **overrides})


def sample_servers(*names: str, settings: Environment | None = None) -> tuple[FleetServer, ...]:
    entries = tuple(
        CatalogEntry(Server.model_validate(minimal_server(name)), f"{name}.yaml")
        for name in names or (SERVER,)
    )
    fleet = resolve_fleet(Catalog(Path("catalog"), entries), "dev", settings or sample_settings(), "stack")
    return fleet.servers


def sample_server() -> FleetServer:
    [server] = sample_servers(SERVER)
    assert (server.namespace, server.spec.owner.team) == (NAMESPACE, TEAM)
    return server
