"""The gateway's HAProxy 2.6 configuration, rendered from the fleet: one route and one backend per server.

Byte-stable: the same fleet always renders the same text (servers sorted, no timestamps).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from components.manifests.gateway import (
    ADDRESS_ENV,
    CERT_DIR,
    CERT_FILE,
    HEALTH_PATH,
    JWT_KEY_DIR,
    JWT_KEY_FILE,
    METRICS_PATH,
    METRICS_PORT,
    PEER_PORT,
    PRE_STOP_SLEEP_SECONDS,
    TERMINATION_GRACE_SECONDS,
    endpoints_host,
    peer_names,
    peer_service_host,
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
# Likewise the issuer's public key, and the address the listeners bind (every address in a pod; one
# loopback address per replica when several gateways share a test machine).
JWT_KEY_ENV = "MCP_GATEWAY_JWT_KEY"

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
# Legacy clients name the JSON-RPC method and tool only in the body, which HAProxy reads from its
# buffer: bodies up to about this size can be inspected (modern clients send `mcp-method` and
# `mcp-name` headers, so their bodies may be as large as MAX_BODY_BYTES).
BUFFER_BYTES = 32768
PEERS_SECTION = "gateway"
CALLER_KEY_LENGTH = 200
RATE_TABLE_SIZE = "200k"
# JSON-RPC error codes for refusals made before a request reaches a server (implementation-defined
# server error range, -32000 to -32099).
UNAUTHORIZED_CODE = -32001
FORBIDDEN_CODE = -32003
RATE_LIMITED_CODE = -32029
INVALID_REQUEST_CODE = -32600


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
    audience: str
    metadata_path: str
    access: tuple[AccessGrant, ...]
    per_caller_per_minute: int
    per_server_per_minute: int


@dataclass(frozen=True)
class AccessGrant:
    """One catalog access rule as HAProxy matches it: a role pattern and the tools it opens."""

    roles_pattern: str
    tools: tuple[str, ...]


@dataclass(frozen=True)
class Peer:
    name: str
    address: str


def public_path(server: FleetServer) -> str:
    """Where clients reach server: `/servers/<name>/mcp`, or `/servers/<name>/sse` for SSE servers."""
    endpoint = "sse" if server.spec.transport.type == "sse" else "mcp"
    return f"{ROUTE_PREFIX}/{server.name}/{endpoint}"


def backend_name(server: FleetServer) -> str:
    return f"server_{server.name}"


def _grants(server: FleetServer) -> tuple[AccessGrant, ...]:
    declared = sorted(tool.name for tool in server.spec.tools)
    grants = []
    for rule in server.spec.access:
        tools = declared if "*" in rule.tools else sorted(set(rule.tools))
        if not tools:
            continue
        # Roles are [a-z0-9:_.-]: only the dot needs escaping; whole words of a space-separated claim.
        roles = "|".join(role.replace(".", "\\.") for role in sorted(set(rule.roles)))
        grants.append(AccessGrant(roles_pattern=f"(^|\\s)({roles})(\\s|$)", tools=tuple(tools)))
    return tuple(grants)


def protected_resource_metadata_path(server: FleetServer) -> str:
    """RFC 9728: where clients learn which issuer mints tokens for the server's resource URL."""
    return f"/.well-known/oauth-protected-resource{public_path(server)}"


def route(fleet: Fleet, server: FleetServer) -> Route:
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
        audience=fleet.audience(server.name),
        metadata_path=protected_resource_metadata_path(server),
        access=_grants(server),
        per_caller_per_minute=fleet.rate_limits(server).per_caller_per_minute,
        per_server_per_minute=fleet.rate_limits(server).per_server_per_minute,
    )


def cert_file() -> str:
    return f"${{{CERT_DIR_ENV}-{CERT_DIR}}}/{CERT_FILE}"


def jwt_key_file() -> str:
    return f"${{{JWT_KEY_ENV}-{JWT_KEY_DIR}/{JWT_KEY_FILE}}}"


def bind_address() -> str:
    return f"${{{ADDRESS_ENV}-}}"


def peers(fleet: Fleet) -> list[Peer]:
    """Every gateway replica the autoscaler may run, each reached through its own ClusterIP Service
    (resolvable whether or not the pod runs: HAProxy 2.6 resolves peers once, at start)."""
    return [
        Peer(name, f"{peer_service_host(fleet.settings, name)}:{PEER_PORT}")
        for name in peer_names(fleet.settings)
    ]


def json_error(code: int, message: str) -> str:
    """A JSON-RPC error body (id null: the request's id is not read for a refusal), HAProxy-quoted."""
    body = f'{{"jsonrpc":"2.0","id":null,"error":{{"code":{code},"message":"{message}"}}}}'
    return "'" + body + "'"


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
    routes = [route(fleet, server) for server in sorted(fleet.servers, key=lambda s: s.name)]
    auth = settings.gateway.auth
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
            buffer_bytes=BUFFER_BYTES,
            bind_address=bind_address(),
            peers_section=PEERS_SECTION,
            peers=peers(fleet),
            peer_port=PEER_PORT,
            caller_key_length=CALLER_KEY_LENGTH,
            rate_table_size=RATE_TABLE_SIZE,
            issuer=auth.issuer,
            algorithm=auth.algorithm,
            roles_claim=auth.roles_claim,
            subject_claim=auth.subject_claim,
            jwt_key_file=jwt_key_file(),
            error=json_error,
            unauthorized=UNAUTHORIZED_CODE,
            forbidden=FORBIDDEN_CODE,
            rate_limited=RATE_LIMITED_CODE,
            invalid_request=INVALID_REQUEST_CODE,
            routes=routes,
        )
    )
