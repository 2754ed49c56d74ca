"""The reference servers as real processes: both protocol eras, sessions, Host checks, /metrics, /healthz."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.catalog.toolhash import tool_hash
from tests.conftest import REPO
from tests.examples.running import REFERENCE_SERVERS, Running, honest_fleet, reference_server

pytestmark = pytest.mark.slow
__all__ = ["honest_fleet"]  # a fixture, used by name

MODERN = "2026-07-28"
EXAMPLES_CATALOG = REPO / "examples" / "catalog"


def listed_hashes(url: str, mode: str) -> dict[str, str]:
    async def run() -> dict[str, str]:
        async with Client(url, mode=mode, cache=None) as client:
            tools = (await client.list_tools()).tools
        return {t.name: tool_hash(t.name, t.description, t.input_schema) for t in tools}

    return anyio.run(run)


@pytest.mark.parametrize("name", [*REFERENCE_SERVERS, "everything"])
def test_catalog_pins_are_what_the_server_lists(honest_fleet: dict[str, Running], name: str) -> None:
    declared = {tool.name: tool.sha256 for tool in load_catalog(EXAMPLES_CATALOG).by_name()[name].tools}
    assert listed_hashes(honest_fleet[name].url, "legacy") == declared
    if name != "everything":  # a TypeScript SDK 1.x server: legacy protocol only
        assert listed_hashes(honest_fleet[name].url, MODERN) == declared


@pytest.mark.parametrize("name", REFERENCE_SERVERS)
def test_health_and_replica_header(honest_fleet: dict[str, Running], name: str) -> None:
    answer = httpx2.get(f"{honest_fleet[name].base}/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "server": name, "replica": f"{name}-1"}
    assert answer.headers["x-replica-id"] == f"{name}-1"


def post(url: str, body: dict[str, Any], **headers: str) -> httpx2.Response:
    return httpx2.post(
        url,
        json=body,
        headers={"Accept": "application/json, text/event-stream", **headers},
    )


def initialize(url: str, **headers: str) -> httpx2.Response:
    return post(
        url,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "tests", "version": "1"},
            },
        },
        **headers,
    )


def test_stateful_and_stateless_servers(honest_fleet: dict[str, Running]) -> None:
    # Legacy clients get a session from notes (stateful) and none from units (stateless).
    assert initialize(honest_fleet["notes"].url).headers.get("mcp-session-id")
    assert initialize(honest_fleet["units"].url).headers.get("mcp-session-id") is None


def test_notes_live_in_their_legacy_session(honest_fleet: dict[str, Running]) -> None:
    url = honest_fleet["notes"].url

    async def run() -> tuple[list[str], list[str], bool]:
        async with Client(url, mode="legacy") as first, Client(url, mode="legacy") as second:
            await first.call_tool("add_note", {"text": "buy milk", "tags": ["home"]})
            await first.call_tool("add_note", {"text": "ship release"})
            await second.call_tool("add_note", {"text": "other session"})
            mine = await first.call_tool("list_notes", {"tag": "home"})
            theirs = await second.call_tool("search_notes", {"query": "SESSION"})
        async with Client(url, mode=MODERN) as modern:
            sessionless = await modern.call_tool("list_notes", {})
        texts = [[note["text"] for note in (r.structured_content or {})["result"]] for r in (mine, theirs)]
        return texts[0], texts[1], sessionless.is_error

    mine, theirs, refused = anyio.run(run)
    assert mine == ["buy milk"]
    assert theirs == ["other session"]
    assert refused


def test_metrics_count_requests_tool_calls_and_errors(honest_fleet: dict[str, Running]) -> None:
    running = honest_fleet["units"]

    async def run() -> None:
        async with Client(running.url, mode=MODERN) as client:
            await client.call_tool("convert", {"value": 1, "from_unit": "km", "to_unit": "m"})
            await client.call_tool("calculate", {"expression": "1/0"})

    before = httpx2.get(f"{running.base}/metrics").text
    anyio.run(run)
    after = httpx2.get(f"{running.base}/metrics").text

    def value(text: str, series: str) -> float:
        line = next((line for line in text.splitlines() if line.startswith(series + " ")), f"{series} 0")
        return float(line.rsplit(" ", 1)[1])

    for series, delta in [
        ('mcp_server_tool_calls_total{outcome="ok",tool="convert"}', 1),
        ('mcp_server_tool_calls_total{outcome="error",tool="calculate"}', 1),
        ('mcp_server_errors_total{method="tools/call"}', 1),
        ('mcp_server_requests_total{method="tools/call"}', 2),
    ]:
        assert value(after, series) - value(before, series) == delta, series
    assert 'mcp_server_info{replica="units-1",server="units"} 1.0' in after


@pytest.fixture
def gateway_host_server(tmp_path: Path) -> Iterator[Running]:
    with reference_server("text", "--allowed-host", "mcp.dev.example.com", log_dir=tmp_path) as running:
        yield running


def test_host_header_must_be_allowed(gateway_host_server: Running) -> None:
    url = gateway_host_server.url
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert initialize(url, Host="mcp.dev.example.com").status_code == 200
    assert initialize(url, Host="evil.example.com").status_code == 421
    # The modern path checks the Host too.
    modern = post(
        url, ping, Host="evil.example.com", **{"MCP-Protocol-Version": MODERN, "Mcp-Method": "ping"}
    )
    assert modern.status_code == 421
    # Probes and scrapes address the pod IP: the plain endpoints take any Host.
    assert (
        httpx2.get(f"{gateway_host_server.base}/healthz", headers={"Host": "pod.internal:8080"}).status_code
        == 200
    )
    refused = httpx2.get(f"{gateway_host_server.base}/metrics").text
    assert 'mcp_server_http_responses_total{code="421",path="/mcp"} 2.0' in refused
