"""The gateway's HAProxy 2.6 configuration, rendered from the fleet.

HAProxy is the edge: TLS, size limits, routing by server name, bearer tokens, rate limits, the request id
and forwarding headers. Every routed request goes to the MCP router's pool, which reads the message and
decides on it (docs/router.md); the fleet endpoint, `/mcp`, goes there too, with its own token audience.
Per-server facts HAProxy still needs (the route, its own rate limits) are lines of map files beside
haproxy.cfg, so 1,000 servers fit one ConfigMap.

Byte-stable: the same fleet always renders the same files (servers sorted, no timestamps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from components.manifests.gateway import (
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
    PRE_STOP_SLEEP_SECONDS,
    ROUTER_HEALTH_PATH,
    ROUTER_METRICS_PORT,
    ROUTER_PORT,
    TERMINATION_GRACE_SECONDS,
    router_endpoints_host,
    serving_port,
    terminates_tls,
)
from mcpfleet.fleet import FLEET_PATH, Fleet, FleetServer, audience_prefix, fleet_audience

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "haproxy.cfg.j2"
HAPROXY_BRANCH = "2.6"

ROUTE_PREFIX = "/servers"
# RFC 9728: a resource's metadata lives at this prefix followed by the resource's path.
METADATA_PREFIX = "/.well-known/oauth-protected-resource"
# The one backend every routed request goes to: the `proxy` label of its HAProxy metrics.
ROUTER_BACKEND = "mcp_router"
# The same router pool, for the fleet endpoint's legacy sessions (each kept to one replica when it can).
FLEET_BACKEND = "mcp_fleet_sessions"
# The fleet endpoint's name in the rate counters, where servers go by their names: no DNS label, so no
# server's.
FLEET_SCOPE = FLEET_PATH
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
# And the directory of haproxy.cfg's map files.
CONFIG_DIR_ENV = "MCP_GATEWAY_CONFIG_DIR"

MAXCONN = 4096
FRONTEND_MAXCONN = 4000
THREADS = 1  # matches the container's CPU limit of one core
# A quiet MCP stream (SSE) stays open this long.
STREAM_TIMEOUT = "1h"
# Below the pod's grace period, after its preStop pause.
HARD_STOP_AFTER = f"{TERMINATION_GRACE_SECONDS - PRE_STOP_SLEEP_SECONDS - 10}s"
MAX_BODY_BYTES = 1024 * 1024
CALLER_KEY_LENGTH = 200
RATE_TABLE_SIZE = "200k"
SOURCE_TABLE_SIZE = "200k"
# Stick tables holding the rate counters (each a backend of its own, as HAProxy 2.6 wants them).
TABLES = {"sources": "rate_sources", "callers": "rate_callers", "servers": "rate_servers"}
# Claims whose types are checked (the roles claim and the subject claim are named per environment):
# NumericDate claims (RFC 7519), and text claims by their JSON path.
TIME_CLAIMS = ("exp", "nbf", "iat")
# JSON-RPC error codes for refusals made before a request reaches the router (implementation-defined
# server error range, -32000 to -32099), as the router's own (docs/router.md).
UNAUTHORIZED_CODE = -32001
RATE_LIMITED_CODE = -32029
INVALID_REQUEST_CODE = -32600


@dataclass(frozen=True)
class Upstream:
    """One router replica at a fixed address (a run on one machine): `host:port` of its MCP listener,
    and the port of its health endpoint on the same host."""

    address: str
    metrics_port: int = ROUTER_METRICS_PORT


def public_path(server: FleetServer) -> str:
    """Where clients reach server: `/servers/<name>/mcp`, or `/servers/<name>/sse` for SSE servers."""
    return f"{ROUTE_PREFIX}/{_route_value(server)}"


def _route_value(server: FleetServer) -> str:
    endpoint = "sse" if server.spec.transport.type == "sse" else "mcp"
    return f"{server.name}/{endpoint}"


def protected_resource_metadata_path(server: FleetServer) -> str:
    """RFC 9728: where clients learn which issuer mints tokens for the server's resource URL."""
    return f"{METADATA_PREFIX}{public_path(server)}"


def _routes_file(servers: Sequence[FleetServer]) -> str:
    lines = [
        "# Each server's name -> <name>/<endpoint>: its public path is /servers/<name>/<endpoint>.",
        *(f"{server.name} {_route_value(server)}" for server in servers),
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


def _upstream(entry: str | Upstream) -> Upstream:
    return entry if isinstance(entry, Upstream) else Upstream(entry)


def render_gateway_config(fleet: Fleet, upstreams: Sequence[str | Upstream] | None = None) -> dict[str, str]:
    """The gateway's configuration directory: haproxy.cfg first, then its map files.

    upstreams, for a gateway on one machine, gives the router replicas fixed addresses (`"127.0.0.1:PORT"`,
    checked on the router's metrics port of the same host, or an Upstream naming another) instead of the
    router's headless Service, which cluster DNS resolves."""
    if isinstance(upstreams, Mapping):
        # The servers' own addresses are the router's business now (render_router_config's upstreams).
        raise TypeError("upstreams are the MCP router's addresses, not a mapping of servers to addresses")
    settings = fleet.settings
    servers = sorted(fleet.servers, key=lambda s: s.name)
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
            # 401s point clients at the metadata under the public name.
            check_host=settings.domain.removeprefix("*."),
            maxconn=MAXCONN,
            frontend_maxconn=FRONTEND_MAXCONN,
            threads=THREADS,
            hard_stop_after=HARD_STOP_AFTER,
            stream_timeout=STREAM_TIMEOUT,
            max_body_bytes=MAX_BODY_BYTES,
            bind_address=bind_address(),
            caller_key_length=CALLER_KEY_LENGTH,
            rate_table_size=RATE_TABLE_SIZE,
            source_table_size=SOURCE_TABLE_SIZE,
            tables=TABLES,
            per_caller_per_minute=defaults.per_caller_per_minute,
            per_server_per_minute=defaults.per_server_per_minute,
            per_source_per_minute=settings.gateway.unauthenticated_per_source_per_minute,
            issuer=auth.issuer,
            algorithm=auth.algorithm,
            time_claims=TIME_CLAIMS,
            text_claims=[
                ("subject", auth.subject_claim),
                ("roles", auth.roles_claim),
                ("first_role", f"{auth.roles_claim}[0]"),
            ],
            jwt_key_file=jwt_key_file(),
            audience_prefix=audience_prefix(settings.domain),
            fleet_path=FLEET_PATH,
            fleet_audience=fleet_audience(settings.domain),
            fleet_scope=FLEET_SCOPE,
            fleet_backend=FLEET_BACKEND,
            route_prefix=ROUTE_PREFIX,
            metadata_prefix=METADATA_PREFIX,
            files={"routes": ROUTES_FILE, "rate_limits": RATE_LIMITS_FILE},
            file=config_file,
            error=json_error,
            unauthorized=UNAUTHORIZED_CODE,
            rate_limited=RATE_LIMITED_CODE,
            invalid_request=INVALID_REQUEST_CODE,
            router_backend=ROUTER_BACKEND,
            router_health_path=ROUTER_HEALTH_PATH,
            router_check_host=router_endpoints_host(settings),
            router_address=f"{router_endpoints_host(settings)}:{ROUTER_PORT}",
            router_metrics_port=ROUTER_METRICS_PORT,
            router_slots=settings.router.max_replicas,
            upstreams=[_upstream(entry) for entry in upstreams or ()],
        )
    )
    return {
        CONFIG_KEY: config,
        ROUTES_FILE: _routes_file(servers),
        RATE_LIMITS_FILE: _rate_limits_file(servers),
    }
