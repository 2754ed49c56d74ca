"""An MCP server whose lists change while it runs, and which says so: `python -m tests.router.changing_server
--port P`.

Built on the mcp SDK's MCPServer. Calling `grow` adds a tool, `reword` changes `echo`'s description (a
drift without a restart); either announces `notifications/tools/list_changed` to every client: on each
legacy (2025-11-25) session's standalone GET stream, and on every modern (2026-07-28) `subscriptions/listen`
stream. The reference servers never change their lists, so the router's listings are tested on this one.

Options shape what it serves: `--filler N` more tools (each with a `--filler-bytes` description) to test
the listing's bounds, `--legacy-only` to refuse `server/discover` as a server of the older era does,
`--quiet` to advertise no `listChanged` for legacy clients, `--ttl-ms` for the modern lists' cache hints,
`--no-listen` to serve no `subscriptions/listen`, `--stateless` for no legacy sessions, `--only-host` to
accept one Host header alone.
"""

from __future__ import annotations

import argparse
import functools
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import uvicorn
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp_types import METHOD_NOT_FOUND

from examples.servers.common import transport_security

DESCRIPTION = "Say the text back."
REWORDED = "Say the text back, and remember it for later."


class Sessions:
    """Server middleware: the latest request's session proxy of every legacy session (by its id, the last
    1,000), so a change reaches all of them; the proxy's standalone channel is the session's GET stream."""

    LIMIT = 1000

    def __init__(self) -> None:
        self.sessions: OrderedDict[str, ServerSession] = OrderedDict()

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        headers = getattr(ctx.request, "headers", None)
        session_id = headers.get("mcp-session-id") if headers is not None else None
        if session_id:
            self.sessions.pop(session_id, None)
            self.sessions[session_id] = ctx.session
            while len(self.sessions) > self.LIMIT:
                self.sessions.popitem(last=False)
        return await call_next(ctx)

    async def tools_changed(self) -> None:
        for session in list(self.sessions.values()):
            await session.send_tool_list_changed()  # never raises: a closed stream drops it


async def refuse_discover(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Server middleware of `--legacy-only`: `server/discover` is unknown, as on a 2025-era server."""
    if ctx.method == "server/discover":
        raise MCPError(METHOD_NOT_FOUND, "Method not found")
    return await call_next(ctx)


def build(
    filler: int = 0, filler_bytes: int = 64, legacy_only: bool = False, ttl_ms: int = 0, listen: bool = True
) -> tuple[MCPServer, Sessions]:
    lists: tuple[CacheableMethod, ...] = (
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "prompts/list",
    )
    hints = {method: CacheHint(ttl_ms=ttl_ms) for method in lists} if ttl_ms else {}
    server = MCPServer(
        "changing", version="0.1.0", cache_hints=hints or None, subscriptions=None if listen else False
    )
    sessions = Sessions()
    server.middleware.append(sessions)
    if legacy_only:
        server.middleware.append(refuse_discover)
    grown: list[str] = []

    def echo(text: str) -> str:
        return text

    server.add_tool(echo, description=DESCRIPTION)

    async def announce(ctx: Context[Any, Any]) -> None:
        await sessions.tools_changed()
        await ctx.notify_tools_changed()

    @server.tool()
    async def grow(ctx: Context[Any, Any]) -> str:
        """Add a tool and announce that the tool list changed."""
        name = f"grown_{len(grown) + 1}"
        grown.append(name)
        server.add_tool(echo, name=name, description=f"Grown tool number {len(grown)}.")
        await announce(ctx)
        return name

    @server.tool()
    async def reword(ctx: Context[Any, Any]) -> str:
        """Change the description of `echo` and announce that the tool list changed."""
        server.remove_tool("echo")
        server.add_tool(echo, description=REWORDED)
        await announce(ctx)
        return "echo reworded"

    for number in range(1, filler + 1):
        text = f"Filler tool {number}. " + "x" * max(0, filler_bytes - 20)
        server.add_tool(echo, name=f"filler_{number:04d}", description=text)

    @server.resource("changing://readme", description="What this server is for.")
    def readme() -> str:
        return "A server whose tools change."

    @server.resource("changing://notes/{name}", description="One note, by name.")
    def note(name: str) -> str:
        return f"note {name}"

    @server.prompt()
    def greet(name: str) -> str:
        """Greet someone."""
        return f"Hello, {name}."

    return server, sessions


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tests.router.changing_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--filler", type=int, default=0, help="More tools, to exceed the listing's bounds.")
    parser.add_argument("--filler-bytes", type=int, default=64, help="Description length of each filler.")
    parser.add_argument("--legacy-only", action="store_true", help="Refuse server/discover.")
    parser.add_argument("--quiet", action="store_true", help="Advertise no listChanged to legacy clients.")
    parser.add_argument("--ttl-ms", type=int, default=0, help="ttlMs of modern list answers.")
    parser.add_argument("--no-listen", action="store_true", help="Serve no subscriptions/listen.")
    parser.add_argument("--stateless", action="store_true", help="No legacy sessions (no GET stream).")
    parser.add_argument("--only-host", help="The one Host header /mcp accepts (default: loopback names).")
    args = parser.parse_args(argv)
    server, _ = build(args.filler, args.filler_bytes, args.legacy_only, args.ttl_ms, not args.no_listen)
    if not args.quiet:
        # MCPServer advertises listChanged to legacy clients only when told to; this server sends them.
        # MCPServer has no setting for it: its low-level server reads these options at each initialize.
        lowlevel = server._lowlevel_server
        lowlevel.create_initialization_options = functools.partial(  # type: ignore[method-assign]
            lowlevel.create_initialization_options,
            NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True),
        )
    app = server.streamable_http_app(
        stateless_http=args.stateless,
        transport_security=transport_security(
            (args.only_host,) if args.only_host else ("127.0.0.1:*", "localhost:*")
        ),
        host="127.0.0.1",
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
