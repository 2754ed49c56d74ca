"""Run the router: one uvicorn server (uvloop, httptools) on two sockets, MCP and metrics/health."""

from __future__ import annotations

import json
import socket
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mcpfleet.router.app import Receive, Router, Scope, Send

METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"


class Surface:
    """Sends requests on the metrics port to /metrics and /healthz, everything else to the router.

    One server with two sockets rather than two servers: one event loop, one lifespan, one signal handler."""

    def __init__(self, router: Router, metrics_port: int) -> None:
        self.router = router
        self.metrics_port = metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("server") and scope["server"][1] == self.metrics_port:
            await self.plain(scope, send)
        else:
            await self.router(scope, receive, send)

    async def plain(self, scope: Scope, send: Send) -> None:
        status, kind, body = 404, b"text/plain", b"not found\n"
        if scope["method"] not in ("GET", "HEAD"):
            status, body = 405, b"method not allowed\n"
        elif scope["path"] == METRICS_PATH:
            status, kind, body = (
                200,
                CONTENT_TYPE_LATEST.encode(),
                generate_latest(self.router.metrics.registry),
            )
        elif scope["path"] == HEALTH_PATH:
            pods = {name: len(e.addresses) for name, e in self.router.endpoints.items()}
            status, kind, body = 200, b"application/json", json.dumps({"status": "ok", "pods": pods}).encode()
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def uvicorn_server(router: Router, metrics_port: int, log_level: str = "warning") -> uvicorn.Server:
    options: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "server_header": False,
        "date_header": False,
        # The router reads X-Forwarded-For itself (HAProxy's one value); uvicorn must not rewrite the peer.
        "proxy_headers": False,
        "log_level": log_level,
        "timeout_keep_alive": 30,
        # Open server streams would hold a stopping replica forever; clients reconnect to another one.
        "timeout_graceful_shutdown": 10,
    }
    return uvicorn.Server(uvicorn.Config(Surface(router, metrics_port), **options))


def serve(router: Router, host: str, port: int, metrics_port: int, log_level: str = "warning") -> None:
    """Serve until SIGINT/SIGTERM; sockets are bound before the loop starts, so a busy port fails fast."""
    sockets = [listen(host, port), listen(host, metrics_port)]
    uvicorn_server(router, metrics_port, log_level).run(sockets=sockets)
