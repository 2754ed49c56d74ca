"""What every reference server shares: command line, Host checks, /metrics, /healthz and the replica header.

Each server module builds an `MCPServer` with its tools; `serve` turns it into the HTTP app and runs it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import uvicorn
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MCP_PATH = "/mcp"
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
REPLICA_HEADER = "X-Replica-Id"
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
ALLOWED_HOSTS_ENV = "MCP_ALLOWED_HOSTS"

# Label values come from what clients send; anything outside these sets is counted as "other" so a
# client cannot grow the metric series without bound.
KNOWN_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "subscriptions/listen",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/roots/list_changed",
    }
)
KNOWN_PATHS = frozenset({MCP_PATH, METRICS_PATH, HEALTH_PATH})


@dataclass(frozen=True)
class ServeOptions:
    """How one server process listens and what it reports."""

    host: str
    """Interface to bind; loopback by default, `0.0.0.0` in a container."""
    port: int
    """TCP port of /mcp, /metrics and /healthz."""
    allowed_hosts: tuple[str, ...]
    """Host header values /mcp accepts (DNS-rebinding protection); `name:*` allows any port."""
    replica_id: str
    """Sent in every response's X-Replica-Id header, so a test sees which replica answered."""
    drift: bool
    """Serve one tool with a changed input schema, to prove drift detection."""
    log_level: str
    """uvicorn and SDK log level."""
    call_log: str | None = None
    """File to append one JSON line per MCP message to: what this server was asked to do (for tests)."""


def parse_args(prog: str, argv: Sequence[str] | None = None) -> ServeOptions:
    parser = argparse.ArgumentParser(prog=prog, description=f"The {prog} MCP reference server over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (default: %(default)s).")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8080")),
        help="Port to listen on (default: $PORT or 8080).",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT|:*]",
        help=(
            "Host header value /mcp accepts; repeat for more. Loopback names are always accepted;"
            f" ${ALLOWED_HOSTS_ENV} (comma-separated) adds more."
        ),
    )
    parser.add_argument(
        "--replica-id",
        default=os.environ.get("REPLICA_ID") or os.environ.get("HOSTNAME") or socket.gethostname(),
        help="Replica name sent in the X-Replica-Id response header (default: $REPLICA_ID or host name).",
    )
    parser.add_argument("--drift", action="store_true", help="Change one tool's input schema (for tests).")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--call-log",
        default=os.environ.get("MCP_CALL_LOG"),
        metavar="PATH",
        help="Append one JSON line per MCP message received (method, tool, request id, header names).",
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, not {args.port}")
    from_env = [h.strip() for h in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if h.strip()]
    allowed = tuple(dict.fromkeys([*LOOPBACK_HOSTS, *from_env, *args.allowed_host]))
    return ServeOptions(
        args.host, args.port, allowed, args.replica_id, args.drift, args.log_level.upper(), args.call_log
    )


def transport_security(allowed_hosts: Sequence[str]) -> TransportSecuritySettings:
    """Accept exactly these Host headers, and browser Origins naming the same hosts."""
    origins = [f"{scheme}://{host}" for host in allowed_hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=list(allowed_hosts), allowed_origins=origins
    )


class Metrics:
    """The server's Prometheus series, in a registry of its own so several servers can share a process."""

    def __init__(self, server: str, replica_id: str, tools: Sequence[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tools = frozenset(tools)
        self.requests = Counter(
            "mcp_server_requests",
            "MCP messages received, by JSON-RPC method.",
            ["method"],
            registry=self.registry,
        )
        self.errors = Counter(
            "mcp_server_errors",
            "MCP requests answered with a JSON-RPC error or a tool error, by method.",
            ["method"],
            registry=self.registry,
        )
        self.tool_calls = Counter(
            "mcp_server_tool_calls",
            "tools/call requests, by tool and outcome (ok, error).",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.http_responses = Counter(
            "mcp_server_http_responses",
            "HTTP responses, by path and status code (421 is a refused Host header).",
            ["path", "code"],
            registry=self.registry,
        )
        info = Gauge(
            "mcp_server_info",
            "Constant 1, labelled with the server and replica.",
            ["server", "replica"],
            registry=self.registry,
        )
        info.labels(server=server, replica=replica_id).set(1)
        for tool in sorted(self.tools):
            # Present from the start at zero, so rate() sees the first call.
            for outcome in ("ok", "error"):
                self.tool_calls.labels(tool=tool, outcome=outcome)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Server middleware: count every inbound message and its outcome."""
        method = ctx.method if ctx.method in KNOWN_METHODS else "other"
        self.requests.labels(method=method).inc()
        tool: str | None = None
        if ctx.method == "tools/call":
            name = ctx.params.get("name") if ctx.params else None
            tool = name if isinstance(name, str) and name in self.tools else "other"
        try:
            result = await call_next(ctx)
        except Exception:
            # MCPError, invalid params and crashes all reach the client as a JSON-RPC error.
            self.errors.labels(method=method).inc()
            if tool is not None:
                self.tool_calls.labels(tool=tool, outcome="error").inc()
            raise
        if tool is not None:
            failed = isinstance(result, CallToolResult) and result.is_error
            failed = failed or (isinstance(result, dict) and result.get("isError") is True)
            if failed:
                self.errors.labels(method=method).inc()
            self.tool_calls.labels(tool=tool, outcome="error" if failed else "ok").inc()
        return result

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class CallLog:
    """Server middleware: one JSON line per message this server executes, as the server itself read it.

    Tests compare it with what a gateway in front claims: the tool that really ran, the request id and
    forwarding headers that arrived, and which header names reached the server (never argument values)."""

    # Headers that say who asked and through which hops: every value that arrived is recorded, so a test
    # sees a client's copy arriving beside the gateway's.
    FORWARDING_HEADERS = ("x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-real-ip", "forwarded")

    def __init__(self, path: str, replica_id: str) -> None:
        self.path = path
        self.replica_id = replica_id

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        # Over HTTP the SDK hands the Starlette request along; its headers are what arrived here (items()
        # lists a repeated header once per copy).
        raw = getattr(ctx.request, "headers", None)
        pairs = [(str(k).lower(), str(v)) for k, v in raw.items()] if raw is not None else []
        headers = dict(pairs)
        names = [k for k, _ in pairs]
        name = ctx.params.get("name") if ctx.method == "tools/call" and ctx.params else None
        entry = {
            "replica": self.replica_id,
            "method": ctx.method,
            "tool": name if isinstance(name, str) else None,
            "request_id": headers.get("x-request-id"),
            "forwarded_for": headers.get("x-forwarded-for"),
            "session": headers.get("mcp-session-id"),
            "headers": sorted(headers),
            "repeated": sorted({k for k in names if names.count(k) > 1}),
            "forwarding": {
                key: [v for k, v in pairs if k == key] for key in self.FORWARDING_HEADERS if key in headers
            },
        }
        with open(self.path, "a", encoding="utf-8") as sink:  # noqa: PTH123 (one short append per message)
            sink.write(json.dumps(entry) + "\n")
        return await call_next(ctx)


class Surface:
    """ASGI wrapper around the MCP app: serves /metrics and /healthz, names the replica on every response
    and counts responses by path and status.

    The two plain endpoints skip the Host check on purpose: kubelet probes and Prometheus address the pod
    IP. Pure ASGI rather than a Starlette BaseHTTPMiddleware, which would buffer the MCP SSE streams."""

    def __init__(self, app: ASGIApp, server: str, replica_id: str, metrics: Metrics) -> None:
        self.app = app
        self.server = server
        self.replica_id = replica_id
        self.replica_header = (REPLICA_HEADER.lower().encode("latin-1"), replica_id.encode("latin-1"))
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        label = path if path in KNOWN_PATHS else "other"

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.replica_header]
                self.metrics.http_responses.labels(path=label, code=str(message["status"])).inc()
            await send(message)

        plain: Response | None = None
        if path == HEALTH_PATH:
            plain = JSONResponse({"status": "ok", "server": self.server, "replica": self.replica_id})
        elif path == METRICS_PATH:
            plain = Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
        if plain is None:
            await self.app(scope, receive, send_named)
        elif scope["method"] not in ("GET", "HEAD"):
            await Response(status_code=405, headers={"Allow": "GET, HEAD"})(scope, receive, send_named)
        else:
            await plain(scope, receive, send_named)


@dataclass(frozen=True)
class ServerSpec:
    """One reference server: its name, whether it keeps MCP sessions, and how to build it."""

    name: str
    stateless: bool
    """True: no Mcp-Session-Id for legacy clients either, so any replica answers any request."""
    build: Callable[[bool], MCPServer]
    """Returns the server with its tools; the argument is `--drift`."""


def tool_names(server: MCPServer) -> list[str]:
    async def names() -> list[str]:
        return [tool.name for tool in await server.list_tools()]

    return anyio.run(names)


def create_app(spec: ServerSpec, options: ServeOptions) -> ASGIApp:
    """The server's whole HTTP surface: /mcp (modern and legacy MCP), /metrics and /healthz."""
    server = spec.build(options.drift)
    # MCPServer sets the SDK's loggers to INFO when built; the command line decides instead.
    logging.getLogger("mcp").setLevel(options.log_level)
    # `*_created` series double every counter and no dashboard reads them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics = Metrics(spec.name, options.replica_id, tool_names(server))
    server.middleware.append(metrics)
    if options.call_log:
        server.middleware.append(CallLog(options.call_log, options.replica_id))

    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=spec.stateless,
        transport_security=transport_security(options.allowed_hosts),
        host=options.host,
    )
    return Surface(app, spec.name, options.replica_id, metrics)


def serve(spec: ServerSpec, argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m examples.servers.<name>`."""
    options = parse_args(f"examples.servers.{spec.name}", argv)
    app = create_app(spec, options)
    uvicorn.run(app, host=options.host, port=options.port, log_level=options.log_level.lower())
