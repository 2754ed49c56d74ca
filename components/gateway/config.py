"""The gateway's HAProxy 2.6 configuration, rendered from the fleet.

What is the same for every server (routing, authentication, tool access, rate limits) is written once,
in the frontend, and reads per-server facts from map and pattern files beside haproxy.cfg; each server
adds only a short backend (how to reach and pin its replicas). So the configuration grows by a few
hundred bytes per server and a 1,000-server fleet still fits the 1 MiB of one ConfigMap.

Byte-stable: the same fleet always renders the same files (servers sorted, no timestamps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from components.manifests.gateway import (
    ACCESS_FILE,
    ADDRESS_ENV,
    CERT_DIR,
    CERT_FILE,
    CONFIG_DIR,
    CONFIG_KEY,
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
from mcpfleet.fleet import Fleet, FleetServer, audience_prefix

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "haproxy.cfg.j2"
HAPROXY_BRANCH = "2.6"

ROUTE_PREFIX = "/servers"
# RFC 9728: a resource's metadata lives at this prefix followed by the resource's path.
METADATA_PREFIX = "/.well-known/oauth-protected-resource"
BACKEND_PREFIX = "server_"
# The files beside haproxy.cfg, all keys of the one ConfigMap.
ROUTES_FILE = "routes.map"
RATE_LIMITS_FILE = "rate-limits.map"
# Where the config finds the certificate: the pod's mount unless this environment variable names another
# directory (HAProxy expands "${VAR-default}" in quoted strings), so the very same text can be checked
# with `haproxy -c` outside a cluster.
CERT_DIR_ENV = "MCP_GATEWAY_CERT_DIR"
# Likewise the issuer's public key, and the address the listeners bind (every address in a pod; one
# loopback address per replica when several gateways share a test machine).
JWT_KEY_ENV = "MCP_GATEWAY_JWT_KEY"
# And the directory of haproxy.cfg's map and pattern files.
CONFIG_DIR_ENV = "MCP_GATEWAY_CONFIG_DIR"

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
    """One server as the gateway sees it: its backend, and how to reach and pin its replicas."""

    server: str
    backend: str
    prefix: str
    set_path: str | None
    sse_path: str | None
    sticky: bool
    check_path: str | None
    address: str
    slots: int
    # Fixed addresses (a run on one machine) instead of the replicas cluster DNS finds.
    upstreams: tuple[str, ...]


@dataclass(frozen=True)
class Peer:
    name: str
    address: str


def public_path(server: FleetServer) -> str:
    """Where clients reach server: `/servers/<name>/mcp`, or `/servers/<name>/sse` for SSE servers."""
    return f"{ROUTE_PREFIX}/{_route_value(server)}"


def _route_value(server: FleetServer) -> str:
    endpoint = "sse" if server.spec.transport.type == "sse" else "mcp"
    return f"{server.name}/{endpoint}"


def backend_name(server: FleetServer) -> str:
    return f"{BACKEND_PREFIX}{server.name}"


def protected_resource_metadata_path(server: FleetServer) -> str:
    """RFC 9728: where clients learn which issuer mints tokens for the server's resource URL."""
    return f"{METADATA_PREFIX}{public_path(server)}"


def route(server: FleetServer, upstreams: Sequence[str] = ()) -> Route:
    transport = server.spec.transport
    sse = transport.type == "sse"
    check_path = server.spec.health.readiness.http_path
    if check_path is None and transport.type == "stdio":
        check_path = BRIDGE_HEALTH_PATH
    return Route(
        server=server.name,
        backend=backend_name(server),
        prefix=f"{ROUTE_PREFIX}/{server.name}",
        set_path=None if sse else transport.path,
        sse_path=transport.path if sse else None,
        sticky=not server.spec.stateless and not sse,
        check_path=check_path,
        address=f"{endpoints_host(server)}:{transport.port}",
        slots=server.max_replicas,
        upstreams=tuple(upstreams),
    )


def access_pattern(server: str, tools: Sequence[str], roles: Sequence[str]) -> str:
    """The pattern of one access rule, matched against "<server>/<tool>/<the caller's roles>".

    Tool names are [A-Za-z0-9_.-] and roles [a-z0-9:_.-] (the catalog and the frontend check both), so
    only the dot needs escaping; a role must be a whole word of the space-separated claim."""
    alternatives = "|".join(name.replace(".", "\\.") for name in tools)
    admitted = "|".join(role.replace(".", "\\.") for role in roles)
    return f"^{server}/({alternatives})/(.*\\s)?({admitted})(\\s|$)"


def access_patterns(server: FleetServer) -> list[str]:
    """One pattern per access rule; `*` opens every declared tool (an undeclared one stays closed)."""
    declared = sorted(tool.name for tool in server.spec.tools)
    patterns = []
    for rule in server.spec.access:
        tools = declared if "*" in rule.tools else sorted(set(rule.tools))
        if tools:
            patterns.append(access_pattern(server.name, tools, sorted(set(rule.roles))))
    return patterns


def _routes_file(servers: Sequence[FleetServer]) -> str:
    lines = [
        "# Each server's name -> <name>/<endpoint>: its public path is /servers/<name>/<endpoint>.",
        *(f"{server.name} {_route_value(server)}" for server in servers),
    ]
    return "\n".join(lines) + "\n"


def _access_file(servers: Sequence[FleetServer]) -> str:
    lines = [
        "# One pattern per catalog access rule, matched against <server>/<tool>/<the caller's roles>:",
        "# a tools/call no pattern matches is refused with 403.",
        *(pattern for server in servers for pattern in access_patterns(server)),
    ]
    return "\n".join(lines) + "\n"


def _rate_limits_file(servers: Sequence[FleetServer]) -> str:
    lines = ["# Requests per minute for servers with their own limits; the others have the environment's."]
    for server in servers:
        if server.spec.rate_limits is not None:
            limits = server.spec.rate_limits
            lines.append(f"caller/{server.name} {limits.per_caller_per_minute}")
            lines.append(f"server/{server.name} {limits.per_server_per_minute}")
    return "\n".join(lines) + "\n"


def cert_file() -> str:
    return f"${{{CERT_DIR_ENV}-{CERT_DIR}}}/{CERT_FILE}"


def jwt_key_file() -> str:
    return f"${{{JWT_KEY_ENV}-{JWT_KEY_DIR}/{JWT_KEY_FILE}}}"


def config_file(name: str) -> str:
    """A file of the configuration's directory, as haproxy.cfg names it (quoted, so HAProxy expands it)."""
    return f'"${{{CONFIG_DIR_ENV}-{CONFIG_DIR}}}/{name}"'


def bind_address() -> str:
    return f"${{{ADDRESS_ENV}-}}"


def peers(fleet: Fleet, single: bool = False) -> list[Peer]:
    """Every gateway replica the autoscaler may run, each reached through its own ClusterIP Service
    (resolvable whether or not the pod runs: HAProxy 2.6 resolves peers once, at start); only the first
    when single (one gateway on one machine, where cluster names do not resolve)."""
    names = peer_names(fleet.settings)
    return [
        Peer(name, f"{peer_service_host(fleet.settings, name)}:{PEER_PORT}")
        for name in (names[:1] if single else names)
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


def render_gateway_config(
    fleet: Fleet, upstreams: Mapping[str, Sequence[str]] | None = None
) -> dict[str, str]:
    """The gateway's configuration directory: haproxy.cfg first, then its map and pattern files.

    upstreams, for one gateway on one machine, gives servers fixed addresses (`["127.0.0.1:PORT"]`)
    instead of their cluster DNS names, and leaves the peers section with this replica alone."""
    settings = fleet.settings
    servers = sorted(fleet.servers, key=lambda s: s.name)
    placed = upstreams or {}
    routes = [route(server, placed.get(server.name, ())) for server in servers]
    auth = settings.gateway.auth
    defaults = settings.gateway.rate_limits
    config = (
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
            peers=peers(fleet, single=upstreams is not None),
            peer_port=PEER_PORT,
            caller_key_length=CALLER_KEY_LENGTH,
            rate_table_size=RATE_TABLE_SIZE,
            per_caller_per_minute=defaults.per_caller_per_minute,
            per_server_per_minute=defaults.per_server_per_minute,
            issuer=auth.issuer,
            algorithm=auth.algorithm,
            roles_claim=auth.roles_claim,
            subject_claim=auth.subject_claim,
            jwt_key_file=jwt_key_file(),
            audience_prefix=audience_prefix(settings.domain),
            route_prefix=ROUTE_PREFIX,
            metadata_prefix=METADATA_PREFIX,
            backend_prefix=BACKEND_PREFIX,
            files={"routes": ROUTES_FILE, "access": ACCESS_FILE, "rate_limits": RATE_LIMITS_FILE},
            file=config_file,
            error=json_error,
            unauthorized=UNAUTHORIZED_CODE,
            forbidden=FORBIDDEN_CODE,
            rate_limited=RATE_LIMITED_CODE,
            invalid_request=INVALID_REQUEST_CODE,
            routes=routes,
        )
    )
    return {
        CONFIG_KEY: config,
        ROUTES_FILE: _routes_file(servers),
        ACCESS_FILE: _access_file(servers),
        RATE_LIMITS_FILE: _rate_limits_file(servers),
    }
