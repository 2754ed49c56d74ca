"""A Python HTTP hop that checks nothing: the floor under the MCP router in the gateway benchmark.

    python -m scripts.bench_hop --port PORT --route /servers/text/mcp=http://127.0.0.1:PORT/mcp ...

Built from exactly what the router is built from and set up the same way (uvicorn on uvloop and
httptools, one pooled aiohttp client), it forwards each request on a known public path to its server
(headers but Authorization and hop-by-hop ones, the body as read) and streams the answer back; it
answers `/healthz` for HAProxy's checks. Whatever the router costs beyond this hop is its own work:
parsing, checks, sessions, audit and metrics.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

HEALTH_PATH = "/healthz"
DROPPED_REQUEST = frozenset({b"authorization", b"connection", b"keep-alive", b"content-length"})
DROPPED_RESPONSE = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"server", b"date"})


class Hop:
    """The ASGI app: route by exact path, forward, stream back."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes = routes
        self.http: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.forward(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # As the router's pool: many connections, kept alive, nothing added or decoded.
                self.http = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=30),
                    auto_decompress=False,
                    skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.http is not None:
                    await self.http.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        upstream = self.routes.get(scope["path"])
        if upstream is None or self.http is None:
            status, body = (200, b"ok\n") if scope["path"] == HEALTH_PATH else (404, b"not found\n")
            headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body", False):
                break
        forwarded = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name not in DROPPED_REQUEST
        ]
        async with self.http.request(
            scope["method"], upstream, data=b"".join(chunks), headers=forwarded, allow_redirects=False
        ) as response:
            answer = [(n.lower(), v) for n, v in response.raw_headers if n.lower() not in DROPPED_RESPONSE]
            await send({"type": "http.response.start", "status": response.status, "headers": answer})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def route(text: str) -> tuple[str, str]:
    path, found, url = text.partition("=")
    if not found or not path.startswith("/") or not url.startswith("http://"):
        raise argparse.ArgumentTypeError(f"expected /public/path=http://host:port/path, not {text!r}")
    return path, url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_hop", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (default: %(default)s).")
    parser.add_argument("--port", type=int, required=True, help="Port to serve on.")
    parser.add_argument(
        "--route", type=route, action="append", required=True, help="PUBLIC_PATH=UPSTREAM_URL."
    )
    args = parser.parse_args(argv)
    uvicorn.run(
        Hop(dict(args.route)),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        server_header=False,
        date_header=False,
        proxy_headers=False,
        log_level="warning",
        timeout_keep_alive=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
