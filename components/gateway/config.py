"""The gateway's HAProxy 2.6 configuration, rendered from the fleet: one route and one backend per server.

Byte-stable: the same fleet always renders the same text (servers sorted, no timestamps).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from components.manifests.gateway import (
    CERT_DIR,
    CERT_FILE,
    HEALTH_PATH,
    METRICS_PATH,
    METRICS_PORT,
    PRE_STOP_SLEEP_SECONDS,
    TERMINATION_GRACE_SECONDS,
    endpoints_host,
    serving_port,
    terminates_tls,
)
from components.manifests.workload import BRIDGE_HEALTH_PATH
from mcpfleet.fleet import Fleet, FleetServer

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "haproxy.cfg.j2"
HAPROXY_BRANCH = "2.6"

ROUTE_PREFIX = "/servers"
# Where the config finds the certificate: the pod's mount unless this environment variable names another
# directory (HAProxy expands "${VAR-default}" in quoted strings), so the very same text can be checked
# with `haproxy -c` outside a cluster.
CERT_DIR_ENV = "MCP_GATEWAY_CERT_DIR"

MAXCONN = 4096
FRONTEND_MAXCONN = 4000
THREADS = 1  # matches the container's CPU limit of one core
# A quiet MCP stream (SSE) stays open this long; legacy session affinity is remembered as long.
STREAM_TIMEOUT = "1h"
# Below the pod's grace period, after its preStop pause.
HARD_STOP_AFTER = f"{TERMINATION_GRACE_SECONDS - PRE_STOP_SLEEP_SECONDS - 10}s"
MAX_BODY_BYTES = 1024 * 1024
SESSION_ID_LENGTH = 64
STICK_TABLE_SIZE = "50k"


@dataclass(frozen=True)
class Route:
    """One server as the gateway sees it: public path, backend, how to reach and pin its replicas."""

    server: str
    backend: str
    prefix: str
    condition: str
    set_path: str | None
    sse_path: str | None
    balance: str
    sticky: bool
    check_path: str | None
    address: str
    slots: int


def public_path(server: FleetServer) -> str:
    """Where clients reach server: `/servers/<name>/mcp`, or `/servers/<name>/sse` for SSE servers."""
    endpoint = "sse" if server.spec.transport.type == "sse" else "mcp"
    return f"{ROUTE_PREFIX}/{server.name}/{endpoint}"


def backend_name(server: FleetServer) -> str:
    return f"server_{server.name}"


def route(server: FleetServer) -> Route:
    transport = server.spec.transport
    prefix = f"{ROUTE_PREFIX}/{server.name}"
    sse = transport.type == "sse"
    check_path = server.spec.health.readiness.http_path
    if check_path is None and transport.type == "stdio":
        check_path = BRIDGE_HEALTH_PATH
    return Route(
        server=server.name,
        backend=backend_name(server),
        prefix=prefix,
        condition=f"path_beg {prefix}/" if sse else f"path {public_path(server)}",
        set_path=None if sse else transport.path,
        sse_path=transport.path if sse else None,
        balance="source" if sse else "leastconn",
        sticky=not server.spec.stateless and not sse,
        check_path=check_path,
        address=f"{endpoints_host(server)}:{transport.port}",
        slots=server.max_replicas,
    )


def cert_file() -> str:
    return f"${{{CERT_DIR_ENV}-{CERT_DIR}}}/{CERT_FILE}"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_haproxy_config(fleet: Fleet) -> str:
    settings = fleet.settings
    routes = [route(server) for server in sorted(fleet.servers, key=lambda s: s.name)]
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            environment=fleet.environment,
            haproxy_branch=HAPROXY_BRANCH,
            tls=terminates_tls(settings),
            port=serving_port(settings),
            cert_file=cert_file(),
            metrics_port=METRICS_PORT,
            metrics_path=METRICS_PATH,
            health_path=HEALTH_PATH,
            # Health checks present the public name, which every server must accept anyway.
            check_host=settings.domain.removeprefix("*."),
            maxconn=MAXCONN,
            frontend_maxconn=FRONTEND_MAXCONN,
            threads=THREADS,
            hard_stop_after=HARD_STOP_AFTER,
            stream_timeout=STREAM_TIMEOUT,
            max_body_bytes=MAX_BODY_BYTES,
            session_id_length=SESSION_ID_LENGTH,
            stick_table_size=STICK_TABLE_SIZE,
            routes=routes,
        )
    )
