"""fastmcp's proxy in front of one MCP server: the peer the gateway benchmark runs beside the MCP router.

    python -m scripts.bench_peer --upstream http://127.0.0.1:PORT/mcp --port PORT --mode modern|legacy
        [--backend shared|fresh] --jwt-key issuer.pem --issuer URL --audience URL --algorithm ES256
        --allowed-host mcp.example.com

Set up as fastmcp documents its proxy, doing what it can of the router's job: the bearer token checked
(`JWTVerifier`: signature with the one algorithm, issuer, audience, expiry), each message parsed by its
server and sent on by its own client. It has no per-tool access rules by role and no session binding.

- modern clients (2026-07-28, a stateless server): `--backend shared` (the default) gives `create_proxy`
  one connected client for every request, its fastest set-up (fastmcp warns that concurrent requests
  share that client's context, harmless for a stateless server); `--backend fresh` is `create_proxy(url)`,
  its default, a new backend client per request.
- legacy clients (2025-11-25 sessions): a stateful front and `StatefulProxyClient`, one backend session
  per front session, so a session's state (the notes server's notebook) holds through the proxy.

Served by uvicorn on uvloop and httptools, as the router is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODES = ("modern", "legacy")
BACKENDS = ("shared", "fresh")


async def serve(args: argparse.Namespace) -> None:
    from fastmcp import Client
    from fastmcp.server import create_proxy
    from fastmcp.server.auth.providers.jwt import JWTVerifier
    from fastmcp.server.providers.proxy import FastMCPProxy, StatefulProxyClient

    verifier = JWTVerifier(
        public_key=args.jwt_key.read_text(encoding="ascii"),
        issuer=args.issuer,
        audience=args.audience,
        algorithm=args.algorithm,
    )
    options: dict[str, Any] = {
        "show_banner": False,
        "transport": "http",
        "host": args.host,
        "port": args.port,
        "path": args.path,
        "log_level": "warning",
        "stateless_http": args.mode == "modern",
        "allowed_hosts": args.allowed_host,
        "uvicorn_config": {"http": "httptools", "access_log": False},
    }
    if args.mode == "legacy":
        backend: StatefulProxyClient[Any] = StatefulProxyClient(args.upstream)
        proxy = FastMCPProxy(client_factory=backend.new_stateful, name="peer", auth=verifier)
        await proxy.run_http_async(**options)
    elif args.backend == "fresh":
        await create_proxy(args.upstream, name="peer", auth=verifier).run_http_async(**options)
    else:
        async with Client(args.upstream) as shared:
            await create_proxy(shared, name="peer", auth=verifier).run_http_async(**options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_peer", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--upstream", required=True, help="The server's MCP URL.")
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (default: %(default)s).")
    parser.add_argument("--port", type=int, required=True, help="Port to serve MCP on.")
    parser.add_argument("--path", default="/mcp", help="Path to serve MCP on (default: %(default)s).")
    parser.add_argument("--mode", choices=MODES, required=True, help="The clients' protocol era.")
    parser.add_argument("--backend", choices=BACKENDS, default="shared", help="Modern only (see above).")
    parser.add_argument("--jwt-key", type=Path, required=True, help="The issuer's public key (PEM).")
    parser.add_argument("--issuer", required=True, help="The tokens' issuer.")
    parser.add_argument("--audience", required=True, help="The server's token audience.")
    parser.add_argument("--algorithm", required=True, help="The issuer's signing algorithm.")
    parser.add_argument("--allowed-host", action="append", default=[], help="A Host clients send.")
    args = parser.parse_args(argv)

    import uvloop

    uvloop.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
