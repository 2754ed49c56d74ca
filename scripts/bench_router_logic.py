"""CPU the MCP router spends on its own work per message, without the network: what is left of its cost
once the HTTP hop (server, client, sockets) is taken away.

    python -m scripts.bench_router_logic [--env dev] [--calls 20000]

The router is built from the environment's router.json (examples/catalog) and a throwaway issuer, and its
ASGI handler is called in this process for a tools/call as each kind of client sends it through HAProxy
(headers, bearer token, body); only its upstream exchange (the request to the server and the relay of
its answer) is replaced by the server's answer, held in memory. Before timing, the router lists the
workloads' real servers once (started as `mcpfleet dev` starts them, then stopped), so the tool-pin
check of every call reads a listing the servers really served. Everything else runs: headers read,
token checked (from the router's cache after the first call, as for any caller's second message),
strict parse, routing headers, session opened (legacy), access, tool pin, upstream headers, audit
records built (not written), metrics. Printed: µs of CPU per message for each kind. The gateway
benchmark (scripts/bench_gateway.py) gives the whole hop's cost beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvloop
from cryptography.hazmat.primitives import serialization
from mcp_types import PROTOCOL_VERSION_META_KEY

from components.gateway.router_config import render_router_config
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.dev import process
from mcpfleet.dev.gateway import DEV_SUBJECT, mint_tokens, signing_key
from mcpfleet.errors import InvalidInput
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.router.app import Forwarding, Receive, Router, Scope, Send, build_app
from mcpfleet.router.local import new_session_keys
from mcpfleet.stacks.loader import load_stack_config
from scripts.bench_gateway import (
    CATALOG,
    ENVIRONMENTS,
    STACKS,
    WORKLOADS,
    BenchError,
    positive,
    start_servers,
)
from scripts.bench_gateway import Workload as GatewayWorkload

HOST = "127.0.0.1"
LISTED_SECONDS = 30.0
"""How long the router's first listing of the workloads' servers may take."""
# The answers the reference servers give (a modern JSON answer; a legacy one as its SSE event).
MODERN_ANSWER = (
    b'{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"15 words"}],"isError":false}}'
)
SERVER_SESSION = "0123456789abcdef0123456789abcdef"


class Offline(Router):
    """The router with its upstream exchange replaced by an answer in memory; all else is its own."""

    answer: tuple[bytes, bytes] = (b"application/json", MODERN_ANSWER)

    async def _forward(self, job: Forwarding, scope: Scope, receive: Receive, send: Send) -> None:
        content_type, body = self.answer
        job.record.status, job.record.outcome = 200, "ok"
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def load_fleet(env: str) -> Fleet:
    _, settings = load_stack_config(STACKS, env)
    return resolve_fleet(load_catalog(CATALOG), env, settings, f"stacks/Pulumi.{env}.yaml")  # type: ignore[arg-type]


@contextmanager
def offline_router(fleet: Fleet) -> Iterator[tuple[Offline, dict[str, str], dict[str, list[str]]]]:
    """The router of fleet's workload servers, a token per server from a throwaway issuer, and the
    servers' addresses; the router holds a listing of each server, taken from the real servers (stopped
    again before this yields: only the upstream exchange is replaced, never the listing it checks)."""
    key = signing_key(fleet.settings.gateway.auth.algorithm)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    names = {w.server for w in WORKLOADS.values()}
    local = dataclasses.replace(fleet, servers=tuple(s for s in fleet.servers if s.name in names))
    children: list[process.Child] = []
    with tempfile.TemporaryDirectory(prefix="bench-router-logic-") as run_dir:
        try:
            servers = start_servers(local, children, Path(run_dir))
            upstreams = {name: [server.address] for name, server in servers.items()}
            base = build_app(json.loads(render_router_config(local, upstreams)), pem, new_session_keys())
            router = Offline(base.config, base.verifier, base.sealer)
            uvloop.run(list_once(router))
        finally:
            for child in reversed(children):
                process.stop(child)
    yield router, mint_tokens(fleet, key), upstreams


async def list_once(router: Router) -> None:
    """The router's first round of listings, then its listing tasks stopped (the listings stay)."""
    listings = router.listings
    await listings.start()
    try:
        if not await listings.wait_listed(LISTED_SECONDS):
            raise BenchError(f"the router did not list the servers within {LISTED_SECONDS:.0f} s")
    finally:
        await listings.stop()
    if listings.down():
        raise BenchError(f"the router could not list {sorted(listings.down())}")


def request(workload: GatewayWorkload, token: str, host: str, session: str | None) -> tuple[Scope, bytes]:
    """A tools/call as HAProxy hands it to the router: the client's headers and the ones HAProxy sets."""
    params: dict[str, Any] = {"name": workload.tool, "arguments": workload.arguments}
    if workload.mode == "modern":
        params["_meta"] = {PROTOCOL_VERSION_META_KEY: workload.protocol}
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}, separators=(",", ":")
    ).encode()
    headers = [
        (b"host", host.encode()),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Bearer {token}".encode()),
        (b"x-request-id", b"0b5b0c2c-8a0a-4a55-a0d4-6a4f5e0d9a1f"),
        (b"x-forwarded-for", b"203.0.113.7"),
        (b"x-forwarded-proto", b"https"),
    ]
    if workload.mode == "modern":
        headers += [
            (b"mcp-protocol-version", workload.protocol.encode()),
            (b"mcp-method", b"tools/call"),
            (b"mcp-name", workload.tool.encode()),
        ]
    else:
        headers += [(b"mcp-protocol-version", b"2025-11-25")]
        assert session is not None
        headers.append((b"mcp-session-id", session.encode()))
    path = f"/servers/{workload.server}/mcp"
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": (HOST, 40000),
        "server": (HOST, 8090),
    }
    return scope, body


async def cpu_per_message(router: Offline, scope: Scope, body: bytes, calls: int) -> float:
    """µs of CPU per message, after one unmeasured message (which fills the token cache)."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await router.handle(scope, receive, send)
    if statuses != [200]:
        raise RuntimeError(f"the router refused the benchmark's message: HTTP {statuses}")
    started = time.process_time()
    for _ in range(calls):
        await router.handle(scope, receive, send)
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"the router refused a message: {sorted(set(statuses))}")
    return spent / calls * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_router_logic", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--env", default="dev", choices=ENVIRONMENTS, help="Stack (default: %(default)s).")
    parser.add_argument(
        "--calls", type=positive, default=20000, help="Messages per kind (default: %(default)s)."
    )
    args = parser.parse_args(argv)
    try:
        fleet = load_fleet(args.env)
    except InvalidInput as exc:
        print(f"bench_router_logic: {exc}", file=sys.stderr)
        return 1
    try:
        with offline_router(fleet) as (router, tokens, upstreams):
            return timed(router, tokens, upstreams, fleet, args.env, args.calls)
    except BenchError as exc:
        print(f"bench_router_logic: {exc}", file=sys.stderr)
        return 1


def timed(
    router: Offline,
    tokens: dict[str, str],
    upstreams: dict[str, list[str]],
    fleet: Fleet,
    env: str,
    calls: int,
) -> int:
    print(f"router logic, environment {env}: {calls} messages per kind, µs of CPU per message")
    for mode, workload in WORKLOADS.items():
        session = None
        if mode == "legacy":
            pod = upstreams[workload.server][0]
            session = router.sealer.seal("http", workload.server, DEV_SUBJECT, pod, SERVER_SESSION)
            event = b"event: message\r\ndata: " + MODERN_ANSWER + b"\r\n\r\n"
            router.answer = (b"text/event-stream", event)
        else:
            router.answer = (b"application/json", MODERN_ANSWER)
        scope, body = request(workload, tokens[workload.server], fleet.settings.domain, session)
        spent = uvloop.run(cpu_per_message(router, scope, body, calls))
        print(f"  {mode:<7} {workload.server}/{workload.tool}: {spent:.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
