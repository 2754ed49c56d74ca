"""SSE-transport servers through the router: the announced message endpoint comes back through the
router, sealed to the caller and the pod, and posts to it get the same checks as any message."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from mcpfleet.router.local import RunningRouter, free_port, new_session_keys, router_process
from tests.examples.running import _process
from tests.router.support import UNITS_TOOLS, Issuer, router_config, server_entry

pytestmark = pytest.mark.slow

ACCESS = ({"tools": ["convert", "list_units"], "roles": ["support"]}, {"tools": ["*"], "roles": ["engineer"]})


class SseStack:
    def __init__(self, router: RunningRouter, issuer: Issuer, call_log: Path) -> None:
        self.router = router
        self.issuer = issuer
        self.call_log = call_log

    def tools_run(self) -> list[str]:
        if not self.call_log.exists():
            return []
        lines = self.call_log.read_text(encoding="utf-8").splitlines()
        return [entry["tool"] for entry in map(json.loads, lines) if entry["method"] == "tools/call"]


@pytest.fixture(scope="module")
def sse_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SseStack]:
    directory = tmp_path_factory.mktemp("router-sse")
    port = free_port()
    call_log = directory / "calls.jsonl"
    command = [
        sys.executable,
        "-m",
        "tests.router.sse_server",
        "--port",
        str(port),
        "--call-log",
        str(call_log),
    ]
    issuer = Issuer("ES256")
    with _process("units-sse", command, port, directory / "server.log", None, dict(os.environ)):
        entry = server_entry(
            "legacy", [f"127.0.0.1:{port}"], UNITS_TOOLS, ACCESS, stateless=True, transport="sse", path="/sse"
        )
        config = router_config({"legacy": entry}, algorithm="ES256")
        with router_process(config, issuer.public_pem, new_session_keys(), directory) as router:
            yield SseStack(router, issuer, call_log)


def run_client(stack: SseStack, token: str, tool: str, arguments: dict[str, Any]) -> Any:
    async def scenario() -> Any:
        url = stack.router.url("legacy", "sse")
        async with Client(
            sse_client(url, headers={"Authorization": f"Bearer {token}"}), mode="legacy"
        ) as client:
            return await client.call_tool(tool, arguments)

    return asyncio.run(scenario())


def test_sse_client_through_the_router(sse_stack: SseStack) -> None:
    token = sse_stack.issuer.token("legacy", "alice", "support")
    result = run_client(sse_stack, token, "list_units", {})
    assert not result.is_error
    assert "list_units" in sse_stack.tools_run()


def test_forbidden_tool_over_sse_does_not_run(sse_stack: SseStack) -> None:
    """Refused with 403 on the POST itself (the stream may be held by another router replica); the SDK's
    SSE client does not surface a POST's status, so this speaks raw HTTP while the stream stays open."""
    token = sse_stack.issuer.token("legacy", "bob", "support")
    headers = {"Authorization": f"Bearer {token}"}
    router = sse_stack.router

    def message(request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        params = {"name": tool, "arguments": arguments}
        return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}

    async def scenario() -> tuple[int, int, str]:
        async with (
            httpx2.AsyncClient(timeout=10) as http,
            http.stream("GET", router.url("legacy", "sse"), headers=headers) as stream,
        ):
            lines = stream.aiter_lines()
            endpoint = ""
            async for line in lines:
                if line.startswith("data:"):
                    endpoint = line[5:].strip()
                    break
            info = {"name": "t", "version": "0"}
            params = {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": info}
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
            await http.post(router.base + endpoint, json=init, headers=headers)
            done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await http.post(router.base + endpoint, json=done, headers=headers)
            refused = await http.post(
                router.base + endpoint, json=message(1, "calculate", {"expression": "1+1"}), headers=headers
            )
            allowed = await http.post(
                router.base + endpoint,
                json=message(2, "convert", {"value": 1, "from_unit": "m", "to_unit": "cm"}),
                headers=headers,
            )
            answer = ""
            async for line in lines:
                if line.startswith("data:") and '"id":2' in line.replace(" ", ""):
                    answer = line
                    break
            return refused.status_code, allowed.status_code, answer

    refused, allowed, answer = asyncio.run(scenario())
    assert (refused, allowed) == (403, 202)
    assert answer
    assert "calculate" not in sse_stack.tools_run()
    assert "convert" in sse_stack.tools_run()


def announced_endpoint(router: RunningRouter, token: str) -> str:
    """Open the stream and read the endpoint event the router announces."""

    async def read() -> str:
        async with (
            httpx2.AsyncClient(timeout=10) as http,
            http.stream(
                "GET", router.url("legacy", "sse"), headers={"Authorization": f"Bearer {token}"}
            ) as answer,
        ):
            async for line in answer.aiter_lines():
                if line.startswith("data:"):
                    return line[5:].strip()
        raise AssertionError("no endpoint event")

    return asyncio.run(read())


def test_endpoint_is_rewritten_and_bound_to_the_caller(sse_stack: SseStack) -> None:
    alice = sse_stack.issuer.token("legacy", "alice", "engineer")
    endpoint = announced_endpoint(sse_stack.router, alice)
    assert re.fullmatch(r"/servers/legacy/message\?session=mf1\.[A-Za-z0-9_-]+", endpoint)
    assert "session_id" not in endpoint
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    bob = sse_stack.issuer.token("legacy", "bob", "engineer")
    url = sse_stack.router.base + endpoint
    answer = httpx2.post(url, json=body, headers={"Authorization": f"Bearer {bob}"}, timeout=10)
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, -32003)
    forged = httpx2.post(
        sse_stack.router.base + "/servers/legacy/message?session=session_id%3Dabc",
        json=body, headers={"Authorization": f"Bearer {alice}"}, timeout=10,
    )  # fmt: skip
    assert forged.status_code == 400
