"""Listing one server: every page in both modes, bounded time, and failures as results, not exceptions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.server import Server
from mcp.shared.exceptions import MCPError
from mcp_types import ListToolsResult, PaginatedRequestParams
from mcp_types import Tool as McpTool

from mcpfleet.verify.listing import Connector, Limits, Listing, Mode, list_tools, settle

SCHEMA = {"type": "object", "properties": {}}


def paginated_server(pages: list[list[str]], cursors: list[str | None]) -> Server[Any]:
    """A server answering tools/list in pages; page i is reached with cursors[i - 1]."""

    async def on_list_tools(ctx: Any, params: PaginatedRequestParams | None) -> ListToolsResult:
        cursor = params.cursor if params else None
        index = 0 if cursor is None else int(cursor.removeprefix("page-"))
        tools = [McpTool(name=name, description=f"{name} tool", input_schema=SCHEMA) for name in pages[index]]
        return ListToolsResult(tools=tools, next_cursor=cursors[index])

    return Server("paginated", on_list_tools=on_list_tools)


def in_process(server: Server[Any]) -> Connector:
    @asynccontextmanager
    async def connect(mode: Mode, seen: Any) -> AsyncIterator[Client]:
        async with Client(server, mode="2026-07-28" if mode == "modern" else "legacy", cache=None) as client:
            yield client

    return connect


def failing(exc: BaseException) -> Connector:
    @asynccontextmanager
    async def connect(mode: Mode, seen: Any) -> AsyncIterator[Client]:
        raise exc
        yield  # an async generator, for asynccontextmanager

    return connect


def run(mode: Mode, connect: Connector, limits: Limits | None = None, token: str | None = None) -> Listing:
    return anyio.run(list_tools, mode, connect, limits or Limits(timeout=5), token)


@pytest.mark.parametrize("mode", ["modern", "legacy"])
def test_follows_every_page(mode: Mode) -> None:
    server = paginated_server([["a", "b"], ["c"], ["d", "e"]], ["page-1", "page-2", None])
    listing = run(mode, in_process(server))
    assert listing.status == "ok", listing.detail
    assert [tool.name for tool in listing.tools] == ["a", "b", "c", "d", "e"]
    assert listing.pages == 3


def test_a_cursor_loop_is_refused() -> None:
    server = paginated_server([["a"], ["b"]], ["page-1", "page-1"])
    listing = run("legacy", in_process(server))
    assert listing.status == "failed"
    assert listing.detail == "the server repeated cursor 'page-1' after page 2"


def test_a_silent_server_is_bounded_by_the_timeout() -> None:
    @asynccontextmanager
    async def never(mode: Mode, seen: Any) -> AsyncIterator[Client]:
        await anyio.sleep(60)
        raise AssertionError("unreachable")
        yield

    started = time.monotonic()
    listing = run("modern", never, Limits(timeout=0.3))
    assert time.monotonic() - started < 2
    assert (listing.status, listing.detail) == ("failed", "no answer within 0.3s")


def test_connection_refused_is_a_result() -> None:
    refused = ExceptionGroup("task group", [httpx2.ConnectError("Connection refused")])
    listing = run("legacy", failing(refused))
    assert (listing.status, listing.detail) == ("failed", "cannot connect: Connection refused")


def test_legacy_refused_by_a_modern_only_server_is_unsupported() -> None:
    refusal = MCPError(-32022, "Unsupported protocol version", {"supported": ["2026-07-28"]})
    listing = run("legacy", failing(refusal))
    assert listing.status == "unsupported"


def test_an_era_refusal_without_the_other_era_answering_is_a_failure() -> None:
    unsupported = Listing("modern", "unsupported", detail="Not Found (error -32601)")
    failed = Listing("legacy", "failed", detail="cannot connect")
    assert [listing.status for listing in settle((unsupported, failed))] == ["failed", "failed"]
    ok = Listing("legacy", "ok")
    assert [listing.status for listing in settle((unsupported, ok))] == ["unsupported", "ok"]


def test_an_echoed_token_is_redacted() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln"
    listing = run("legacy", failing(MCPError(-32001, f"bad token {token}")), token=token)
    assert listing.detail is not None and token not in listing.detail
    assert "bad token <token>" in listing.detail
