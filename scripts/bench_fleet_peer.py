"""fastmcp as an aggregator over a fleet: the peer the fleet benchmark runs beside the router's `/mcp`.

    python -m scripts.bench_fleet_peer --config peer.json [--list-cache on|off]

One FastMCP server mounting one proxy per fleet server (`create_proxy` + `mount(namespace=<server>)`,
as fastmcp documents composing servers), doing what it can of the router's fleet job:

- the bearer token checked (`JWTVerifier`: signature with the one algorithm, issuer, the fleet audience,
  expiry);
- each caller sees and may call only the tools its roles allow (`AuthMiddleware` with a check built
  from the catalog's access rules, the same rules router.json carries); fastmcp has no catalog pins, so
  drifted tools are not its concern;
- tools named `<server>_<tool>` (fastmcp's own namespacing);
- tools/list paginated with the router's page size (`list_page_size`);
- with `--list-cache on` (the default), list answers cached per token by `ResponseCachingMiddleware`
  (its documented list cache; tools/call answers are never cached), its size limit raised so that a
  fleet's list fits: with `off`, every tools/list asks every mounted server, fastmcp's default;
- each proxy holds one connected backend client (the fastest set-up; fastmcp warns that requests share
  its context, harmless for the stateless servers the benchmark calls), opened at start.

Served by uvicorn on uvloop and httptools, as the router is; one process, stateful front sessions for
legacy (2025-11-25) clients, and modern (2026-07-28) clients without a session.

The configuration file (written by scripts/bench_fleet.py):
    {"host": ..., "port": ..., "path": "/mcp", "allowedHosts": [...], "pageSize": 500,
     "auth": {"publicKeyFile": ..., "issuer": ..., "audience": ..., "algorithm": ..., "rolesClaim": ...},
     "servers": {"<name>": {"url": "http://...", "access": [{"tools": [...], "roles": [...]}]}}}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

# fastmcp's separator between a mount's namespace and the original name.
SEPARATOR = "_"
# Large enough for the lists of 1,000 servers (its default, 1 MiB, silently skips caching them).
CACHE_ITEM_BYTES = 256 * 1024 * 1024
CACHE_SECONDS = 300


class RoleCheck:
    """fastmcp auth check: the caller's roles (space-separated claim) against the server's access rules.

    A tool is allowed when a rule names it (or `*`) and one of the caller's roles; a server's other
    components when any rule names one of the caller's roles (the router's visibility rule)."""

    def __init__(self, servers: dict[str, list[dict[str, list[str]]]], roles_claim: str) -> None:
        self.roles_claim = roles_claim
        self.rules = {
            name: [(frozenset(rule["tools"]), frozenset(rule["roles"])) for rule in rules]
            for name, rules in servers.items()
        }

    def __call__(self, context: Any) -> bool:
        from fastmcp.tools.base import Tool

        token = context.token
        if token is None:
            return False
        claim = token.claims.get(self.roles_claim)
        roles = frozenset(claim.split(" ")) if isinstance(claim, str) else frozenset()
        component = context.component
        if isinstance(component, Tool):
            server, _, tool = component.name.partition(SEPARATOR)
            return any(
                (tool in tools or "*" in tools) and not roles.isdisjoint(allowed)
                for tools, allowed in self.rules.get(server, ())
            )
        server = getattr(component, "name", "").partition(SEPARATOR)[0]
        return any(not roles.isdisjoint(allowed) for _, allowed in self.rules.get(server, ()))


async def serve(config: dict[str, Any], list_cache: bool) -> None:
    from fastmcp import Client, FastMCP
    from fastmcp.server import create_proxy
    from fastmcp.server.auth.providers.jwt import JWTVerifier
    from fastmcp.server.middleware import AuthMiddleware
    from fastmcp.server.middleware.caching import ResponseCachingMiddleware
    from fastmcp.server.middleware.middleware import Middleware

    auth = config["auth"]
    verifier = JWTVerifier(
        public_key=Path(auth["publicKeyFile"]).read_text(encoding="ascii"),
        issuer=auth["issuer"],
        audience=auth["audience"],
        algorithm=auth["algorithm"],
    )
    servers: dict[str, dict[str, Any]] = config["servers"]
    middleware: list[Middleware] = []
    if list_cache:
        middleware.append(
            ResponseCachingMiddleware(
                list_tools_settings={"enabled": True, "ttl": CACHE_SECONDS},
                list_resources_settings={"enabled": True, "ttl": CACHE_SECONDS},
                list_prompts_settings={"enabled": True, "ttl": CACHE_SECONDS},
                call_tool_settings={"enabled": False},
                read_resource_settings={"enabled": False},
                get_prompt_settings={"enabled": False},
                max_item_size=CACHE_ITEM_BYTES,
            )
        )
    middleware.append(
        AuthMiddleware(auth=RoleCheck({n: s["access"] for n, s in servers.items()}, auth["rolesClaim"]))
    )
    fleet = FastMCP(name="fleet", auth=verifier, middleware=middleware, list_page_size=config["pageSize"])
    async with AsyncExitStack() as stack:
        for name, server in sorted(servers.items()):
            backend = await stack.enter_async_context(Client(server["url"]))
            fleet.mount(create_proxy(backend, name=name), namespace=name)
        await fleet.run_http_async(
            show_banner=False,
            transport="http",
            host=config["host"],
            port=config["port"],
            path=config["path"],
            log_level="warning",
            stateless_http=False,
            allowed_hosts=config["allowedHosts"],
            uvicorn_config={"http": "httptools", "access_log": False},
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_fleet_peer", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--config", type=Path, required=True, help="The peer's JSON configuration.")
    parser.add_argument(
        "--list-cache",
        choices=("on", "off"),
        default="on",
        help="Cache list answers per token (default: %(default)s).",
    )
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))

    import uvloop

    uvloop.run(serve(config, args.list_cache == "on"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
