"""A server whose one tool never finishes: `python -m tests.router.slow_server --port P --call-log F`.

A real MCP server (the mcp SDK's MCPServer, the reference servers' HTTP surface), so the router can list
it; `long_job` runs until the process ends, which is a tool still running when a router dies."""

from __future__ import annotations

import anyio
from mcp.server.mcpserver import MCPServer

from examples.servers.common import ServerSpec, serve


def build(drift: bool = False) -> MCPServer:
    server = MCPServer("slow", version="0.1.0")

    @server.tool()
    async def long_job(secret: str) -> str:
        """Work on the secret for an hour."""
        await anyio.sleep(3600)
        return "done"

    return server


SPEC = ServerSpec(name="slow", stateless=True, build=build)

if __name__ == "__main__":
    serve(SPEC)
