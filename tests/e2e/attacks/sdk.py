"""The mcp SDK's own legacy client through the gateway, for the control that a real client still works."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.attacks.kit import Kit
from tests.e2e.attacks.wire import Exchange, Reply


def add_note(kit: Kit) -> Exchange:
    """initialize, tools/list and add_note with the SDK's client (2025-11-25); the add_note call's HTTP
    answer and its result, as one Reply."""
    url = f"https://{kit.stack.gateways[0].address}:{kit.stack.port}/servers/notes/mcp"
    token = kit.token()
    calls: list[httpx2.Response] = []

    async def seen(response: httpx2.Response) -> None:
        try:
            message = json.loads(response.request.content or b"{}")
        except ValueError:
            return
        if isinstance(message, dict) and message.get("method") == "tools/call":
            calls.append(response)

    async def scenario() -> Any:
        async with (
            httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {token}"},
                verify=kit.tls(),
                timeout=httpx2.Timeout(20.0),
                event_hooks={"response": [seen]},
            ) as http,
            Client(streamable_http_client(url, http_client=http), mode="legacy", cache=None) as client,
        ):
            await client.list_tools()
            return await client.call_tool("add_note", {"text": "through the SDK"})

    # anyio.run in a thread of its own: the test thread keeps no event loop behind.
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(anyio.run, scenario).result()
    if len(calls) != 1:
        raise AssertionError(f"the SDK client sent {len(calls)} tools/call requests, not one")
    response = calls[0]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result.model_dump(by_alias=True, mode="json")})
    headers = [(k.lower(), v) for k, v in response.headers.items()]
    headers = [(k, v) for k, v in headers if k != "content-type"] + [("content-type", "application/json")]
    reply = Reply(response.status_code, response.reason_phrase, headers, body.encode())
    exchange = Exchange(
        sent=b"(the mcp SDK's client: initialize, notifications/initialized, tools/list, tools/call)"
    )
    exchange.replies.append(reply)
    kit.exchanges.append(("attack", exchange))
    return exchange
