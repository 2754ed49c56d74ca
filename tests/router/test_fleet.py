"""The fleet endpoint (`/mcp`) as a real router process in front of real servers: the reference servers
(units, text, notes; 2026-07-28 and handshake era alike) and server-everything (handshake era only, with
resources, templates, prompts and completion). Two callers with different roles see different lists;
every listed tool runs and every other is refused (and never reaches a server); the mcp SDK's client
connects in both eras; a server restarted with a drifted tool loses it on /mcp and on its own route."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import mcp_types._v2025_11_25 as legacy_types
import mcp_types._v2026_07_28 as modern_types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import PromptReference, ResourceTemplateReference
from pydantic import BaseModel

from mcpfleet.catalog.toolhash import tool_hash
from mcpfleet.router import names
from mcpfleet.router.local import RunningRouter, new_session_keys, router_process
from tests.examples.running import Running, everything_script, everything_server
from tests.router.conftest import Server, start_server
from tests.router.servers import module_server
from tests.router.support import NOTES_ACCESS, NOTES_TOOLS, TEXT_TOOLS, UNITS_TOOLS, Issuer, router_config

pytestmark = pytest.mark.slow

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
AUDIENCE = "https://mcp.test.example/mcp"
EVERYTHING_TOOLS = ("echo", "get-sum", "get-resource-links", "get-tiny-image")
UNPINNED = "get-tiny-image"
"""Declared without a pin where unpinned tools are withheld: never listed, never run."""
ACCESS: dict[str, list[dict[str, Any]]] = {
    "units": [{"tools": ["*"], "roles": ["support", "engineer"]}],
    "text": [
        {"tools": ["word_count", "slugify"], "roles": ["support"]},
        {"tools": ["*"], "roles": ["engineer"]},
    ],
    "notes": [dict(rule) for rule in NOTES_ACCESS],
    "everything": [{"tools": ["*"], "roles": ["engineer"]}],
}
DECLARED = {"units": UNITS_TOOLS, "text": TEXT_TOOLS, "notes": NOTES_TOOLS, "everything": EVERYTHING_TOOLS}
SUPPORT_SEES = [
    "notes__add_note", "notes__list_notes", "text__slugify", "text__word_count",
    "units__calculate", "units__convert", "units__list_units",
]  # fmt: skip
ENGINEER_SEES = sorted(
    names.namespace_name(server, tool)
    for server, tools in DECLARED.items()
    for tool in tools
    if (server, tool) != ("everything", UNPINNED)
)
ARGUMENTS: dict[str, dict[str, Any]] = {
    "units__convert": {"value": 1, "from_unit": "km", "to_unit": "m"},
    "units__calculate": {"expression": "2 * 21"},
    "units__list_units": {},
    "text__word_count": {"text": "one two"},
    "text__slugify": {"text": "Hello World"},
    "text__digest": {"text": "x"},
    "text__change_case": {"text": "a b", "case": "upper"},
    "notes__add_note": {"text": "a note"},
    "notes__list_notes": {},
    "notes__search_notes": {"query": "note"},
    "notes__delete_note": {"id": 1},
    "everything__echo": {"message": "hi"},
    "everything__get-sum": {"a": 1, "b": 2},
    "everything__get-resource-links": {"count": 2},
    "everything__get-tiny-image": {},
    "everything__get-env": {},
}


def fleet_token(issuer: Issuer, roles: str, subject: str = "alice") -> str:
    return issuer.token("unused", subject, roles, aud=AUDIENCE)


def live_pins(url: str) -> dict[str, str]:
    """Each tool's hash as the server serves it now (what `mcpfleet pin` writes into the catalog)."""

    async def listing() -> dict[str, str]:
        async with (
            httpx2.AsyncClient(timeout=20) as http,
            Client(streamable_http_client(url, http_client=http), mode="legacy", cache=None) as client,
        ):
            tools = (await client.list_tools()).tools
            return {t.name: tool_hash(t.name, t.description, t.input_schema) for t in tools}

    return asyncio.run(listing())


def entry(
    name: str, address: str, tools: tuple[str, ...], pins: dict[str, str], stateless: bool
) -> dict[str, Any]:
    return {
        "publicPath": f"/servers/{name}/mcp",
        "transport": "streamable-http",
        "upstream": {"addresses": [address], "path": "/mcp"},
        "stateless": stateless,
        "tools": list(tools),
        "access": ACCESS.get(name, [{"tools": ["*"], "roles": ["engineer"]}]),
        "toolPins": {tool: pins[tool] for tool in tools if tool in pins},
    }


def with_fleet(config: dict[str, Any], page_size: int = 500, withhold: bool = True) -> dict[str, Any]:
    config["fleet"] = {"publicPath": "/mcp", "audience": AUDIENCE, "refreshSeconds": 5, "pageSize": page_size}
    config["unpinnedTools"] = "withhold" if withhold else "serve"
    return config


@dataclass
class Fleet:
    issuer: Issuer
    router: RunningRouter
    servers: dict[str, Server]
    everything: Running


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("fleet")
    issuer = Issuer()
    with ExitStack() as processes:
        servers = {
            name: start_server(processes, name, f"{name}-1", directory) for name in ("units", "text", "notes")
        }
        everything = processes.enter_context(everything_server(everything_script(), directory))
        addresses = {name: server.address for name, server in servers.items()}
        addresses["everything"] = f"127.0.0.1:{everything.port}"
        config: dict[str, Any] = {}
        for name, address in addresses.items():
            pins = live_pins(f"http://{address}/mcp")
            if name == "everything":
                pins.pop(UNPINNED)
            config[name] = entry(name, address, DECLARED[name], pins, stateless=name in ("units", "text"))
        router = processes.enter_context(
            router_process(
                with_fleet(router_config(config)), issuer.public_pem, new_session_keys(), directory
            )
        )
        yield Fleet(issuer, router, servers, everything)


# Raw HTTP, as any client (or attacker) sends it


def meta(version: str = MODERN) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
    }


def message(
    method: str, params: dict[str, Any] | None = None, rid: Any = 1, modern: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if rid is not None:
        body["id"] = rid
    params = dict(params or {})
    if modern:
        params["_meta"] = meta()
    if params:
        body["params"] = params
    return body


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and "error" in self.body, self.body
        error: dict[str, Any] = self.body["error"]
        return error

    @property
    def result(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and "result" in self.body, (self.status, self.body)
        result: dict[str, Any] = self.body["result"]
        return result


def post(
    router: RunningRouter,
    token: str | None,
    body: dict[str, Any],
    session: str | None = None,
    path: str = "/mcp",
    extra: list[tuple[str, str]] | None = None,
) -> Answer:
    """One POST; a body holding `_meta` gets the 2026-07-28 routing headers, as the SDK sends them."""
    headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")]
    params = body.get("params") or {}
    if "_meta" in params:
        headers += [("MCP-Protocol-Version", MODERN), ("Mcp-Method", body["method"])]
    elif session is not None:
        headers += [("Mcp-Session-Id", session), ("MCP-Protocol-Version", LEGACY)]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    headers += extra or []
    data = json.dumps(body).encode()
    connection = http.client.HTTPConnection(router.host, router.port, timeout=30)
    try:
        own_host = any(name.lower() == "host" for name, _ in extra or [])
        connection.putrequest("POST", path, skip_host=own_host, skip_accept_encoding=True)
        for name, value in [*headers, ("Content-Length", str(len(data)))]:
            connection.putheader(name, value)
        connection.endheaders(data)
        response = connection.getresponse()
        raw = response.read()
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()
    kind = answer_headers.get("content-type", "")
    payload: Any = raw
    if kind.startswith("text/event-stream"):
        events = [line[5:].strip() for line in raw.decode().splitlines() if line.startswith("data:")]
        payload = [json.loads(e) for e in events if e]
        answers = [p for p in payload if "id" in p and ("result" in p or "error" in p)]
        payload = answers[-1] if answers else payload
    elif raw and kind.startswith("application/json"):
        payload = json.loads(raw)
    return Answer(response.status, answer_headers, payload)


def legacy_session(router: RunningRouter, token: str) -> str:
    params = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
    answer = post(router, token, message("initialize", params, rid=0, modern=False))
    assert answer.status == 200, answer
    legacy_types.InitializeResult.model_validate(answer.result)
    sealed = answer.headers["mcp-session-id"]
    assert sealed.startswith("mf1.")
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert post(router, token, done, session=sealed).status == 202
    return sealed


def walk(router: RunningRouter, token: str, method: str = "tools/list", member: str = "tools") -> list[str]:
    """Every page of a list (modern raw requests), each page checked against the 2026-07-28 schema."""
    key = "name" if member in ("tools", "prompts") else ("uri" if member == "resources" else "uriTemplate")
    found: list[str] = []
    cursor: str | None = None
    models: dict[str, type[BaseModel]] = {
        "tools": modern_types.ListToolsResult,
        "prompts": modern_types.ListPromptsResult,
        "resources": modern_types.ListResourcesResult,
        "resourceTemplates": modern_types.ListResourceTemplatesResult,
    }
    model = models[member]
    while True:
        answer = post(router, token, message(method, {"cursor": cursor} if cursor else {}))
        assert answer.status == 200, answer
        model.model_validate(answer.result)
        assert answer.result["cacheScope"] == "private" and answer.result["resultType"] == "complete"
        found += [item[key] for item in answer.result[member]]
        cursor = answer.result.get("nextCursor")
        if cursor is None:
            return found


def tools_run(server: Server, tool: str) -> int:
    return sum(1 for c in server.calls() if c["method"] == "tools/call" and c["tool"] == tool)


@asynccontextmanager
async def sdk_client(url: str, token: str, mode: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client,
    ):
        yield client


# Who sees what


@pytest.mark.parametrize(("roles", "expected"), [("support", SUPPORT_SEES), ("engineer", ENGINEER_SEES)])
def test_each_caller_lists_exactly_the_tools_it_may_call(
    fleet: Fleet, roles: str, expected: list[str]
) -> None:
    token = fleet_token(fleet.issuer, roles)
    assert walk(fleet.router, token) == expected
    sealed = legacy_session(fleet.router, token)
    answer = post(fleet.router, token, message("tools/list", modern=False), session=sealed)
    legacy_types.ListToolsResult.model_validate(answer.result)
    assert [tool["name"] for tool in answer.result["tools"]] == expected


def test_a_caller_named_in_no_rule_sees_nothing(fleet: Fleet) -> None:
    token = fleet_token(fleet.issuer, "visitor")
    for method, member in LISTS:
        assert walk(fleet.router, token, method, member) == []


LISTS = [
    ("tools/list", "tools"),
    ("prompts/list", "prompts"),
    ("resources/list", "resources"),
    ("resources/templates/list", "resourceTemplates"),
]


def test_listed_tools_are_as_the_servers_serve_them_but_for_the_name(fleet: Fleet) -> None:
    token = fleet_token(fleet.issuer, "engineer")
    answer = post(fleet.router, token, message("tools/list"))
    listed = {tool["name"]: tool for tool in answer.result["tools"]}
    direct = post_direct(fleet.servers["units"].address, message("tools/list"))
    for tool in direct["result"]["tools"]:
        mine = listed[f"units__{tool['name']}"]
        assert {**mine, "name": tool["name"]} == tool


def post_direct(address: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://{address}/mcp",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": MODERN,
            "Mcp-Method": body["method"],
        },
    )
    with urllib.request.urlopen(request, timeout=20) as answer:
        document: dict[str, Any] = json.loads(answer.read())
        return document


@pytest.mark.parametrize("era", ["modern", "legacy"])
@pytest.mark.parametrize("roles", ["support", "engineer"])
def test_every_listed_tool_runs_and_every_other_is_refused_before_any_server(
    fleet: Fleet, era: str, roles: str
) -> None:
    token = fleet_token(fleet.issuer, roles)
    session = legacy_session(fleet.router, token) if era == "legacy" else None
    listed = set(walk(fleet.router, token))
    candidates = sorted({*ARGUMENTS, "units__nope", "nope__convert", "convert", "units__", "__convert"})
    for name in candidates:
        split = names.split_name(name)
        server = fleet.servers.get(split[0]) if split is not None else None
        before = tools_run(server, split[1]) if server is not None and split is not None else 0
        body = message(
            "tools/call", {"name": name, "arguments": ARGUMENTS.get(name, {})}, modern=era == "modern"
        )
        answer = post(fleet.router, token, body, session=session)
        if name in listed:
            assert answer.status == 200, (name, answer)
            result = answer.result
            if split is not None and split[0] in ("units", "text"):
                # notes may answer with a tool error (no notebook without a session, no note 1): it ran.
                assert result.get("isError") is not True, (name, result)
            if server is not None and split is not None:
                assert tools_run(server, split[1]) == before + 1, name
        else:
            assert answer.status in (400, 403), (name, answer)
            assert answer.error["code"] == (-32003 if answer.status == 403 else -32602), name
            if server is not None and split is not None:
                assert tools_run(server, split[1]) == before, f"{name} reached its server"


def test_an_unpinned_tool_is_withheld_and_its_refusal_says_so(fleet: Fleet) -> None:
    token = fleet_token(fleet.issuer, "engineer")
    assert f"everything__{UNPINNED}" not in walk(fleet.router, token)
    answer = post(
        fleet.router, token, message("tools/call", {"name": f"everything__{UNPINNED}", "arguments": {}})
    )
    assert (answer.status, answer.error["code"]) == (403, -32003)
    assert "no pin" in answer.error["message"] and UNPINNED in answer.error["message"]
    # The same on the server's own route, for its own token.
    own = fleet.issuer.token("everything", "alice", "engineer")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": UNPINNED, "arguments": {}}}
    session = server_session(fleet.router, "everything", own)
    answer = post(fleet.router, own, body, session=session, path="/servers/everything/mcp")
    assert (answer.status, answer.error["code"]) == (403, -32003) and "no pin" in answer.error["message"]


def server_session(router: RunningRouter, server: str, token: str) -> str:
    params = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
    path = f"/servers/{server}/mcp"
    answer = post(router, token, message("initialize", params, rid=0, modern=False), path=path)
    sealed = answer.headers["mcp-session-id"]
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert post(router, token, done, session=sealed, path=path).status == 202
    return sealed


def test_a_servers_own_route_lists_only_what_the_caller_may_call(fleet: Fleet) -> None:
    token = fleet.issuer.token("text", "alice", "support")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    answer = post(
        fleet.router, token, body, path="/servers/text/mcp", extra=[("MCP-Protocol-Version", LEGACY)]
    )
    assert sorted(tool["name"] for tool in answer.result["tools"]) == ["slugify", "word_count"]
    own = fleet.issuer.token("everything", "alice", "engineer")
    session = server_session(fleet.router, "everything", own)
    answer = post(fleet.router, own, body, session=session, path="/servers/everything/mcp")
    assert sorted(tool["name"] for tool in answer.result["tools"]) == sorted(
        set(EVERYTHING_TOOLS) - {UNPINNED}
    )


# The mcp SDK's client, both eras


@pytest.mark.parametrize("mode", ["legacy", MODERN, "auto"])
def test_the_sdk_client_lists_and_calls_in_either_era(fleet: Fleet, mode: str) -> None:
    token = fleet_token(fleet.issuer, "engineer")

    async def scenario() -> None:
        async with sdk_client(fleet.router.base + "/mcp", token, mode) as client:
            assert client.protocol_version == (LEGACY if mode == "legacy" else MODERN)
            tools: list[str] = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor)
                tools += [tool.name for tool in page.tools]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert tools == ENGINEER_SEES
            converted = await client.call_tool(
                "units__convert", {"value": 2, "from_unit": "km", "to_unit": "m"}
            )
            assert not converted.is_error and "2000" in converted.content[0].text  # type: ignore[union-attr]
            echoed = await client.call_tool("everything__echo", {"message": "through the fleet"})
            assert "through the fleet" in echoed.content[0].text  # type: ignore[union-attr]
            links = await client.call_tool("everything__get-resource-links", {"count": 2})
            uris = [block.uri for block in links.content if block.type == "resource_link"]
            assert uris and all(uri.startswith("mcpfleet://everything/") for uri in uris)
            read = await client.read_resource(uris[0])
            assert [content.uri for content in read.contents] == [uris[0]]
            resources = (await client.list_resources()).resources
            assert resources and all(r.uri.startswith("mcpfleet://everything/") for r in resources)
            templates = (await client.list_resource_templates()).resource_templates
            assert all(t.uri_template.startswith("mcpfleet://everything/") for t in templates)
            prompts = [p.name for p in (await client.list_prompts()).prompts]
            assert "everything__args-prompt" in prompts
            prompt = await client.get_prompt("everything__args-prompt", {"city": "Lyon", "state": "ARA"})
            assert "Lyon" in prompt.messages[0].content.text  # type: ignore[union-attr]
            completion = await client.complete(
                PromptReference(type="ref/prompt", name="everything__completable-prompt"),
                {"name": "department", "value": "Eng"},
            )
            assert completion.completion.values == ["Engineering"]
            template = next(t.uri_template for t in templates if "text" in t.uri_template)
            completion = await client.complete(
                ResourceTemplateReference(type="ref/resource", uri=template),
                {"name": "resourceId", "value": "1"},
            )
            assert completion.completion.values

    asyncio.run(scenario())


def test_a_legacy_client_keeps_its_state_on_a_server_that_keeps_sessions(fleet: Fleet) -> None:
    """notes holds notes per MCP session: through /mcp a legacy client gets a session of the router's own
    on notes, so what it added is there on its next call (and not in another client's)."""
    token = fleet_token(fleet.issuer, "engineer")

    async def scenario() -> tuple[str, str]:
        async with sdk_client(fleet.router.base + "/mcp", token, "legacy") as first:
            await first.call_tool("notes__add_note", {"text": "kept through the fleet"})
            mine = (await first.call_tool("notes__list_notes", {})).model_dump_json()
        async with sdk_client(fleet.router.base + "/mcp", token, "legacy") as second:
            theirs = (await second.call_tool("notes__list_notes", {})).model_dump_json()
        return mine, theirs

    mine, theirs = asyncio.run(scenario())
    assert "kept through the fleet" in mine and "kept through the fleet" not in theirs


def test_a_modern_callers_concurrent_requests_with_one_id_reach_a_legacy_server_apart(fleet: Fleet) -> None:
    """Modern requests of one caller share the router's session on a handshake-era server; two clients
    using the same request id at once still each get their own answer."""
    token = fleet_token(fleet.issuer, "engineer")
    answers: dict[str, Answer] = {}

    def one(text: str) -> None:
        body = message("tools/call", {"name": "everything__echo", "arguments": {"message": text}}, rid=7)
        answers[text] = post(fleet.router, token, body)

    threads = [threading.Thread(target=one, args=(f"client {i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for text, answer in answers.items():
        assert answer.body["id"] == 7 and answer.result["content"][0]["text"] == f"Echo: {text}"
        modern_types.CallToolResult.model_validate(answer.result)
    assert len(answers) == 6


# Resources, prompts and completion, by role


def test_resources_and_prompts_of_a_server_are_closed_to_callers_it_names_in_no_rule(fleet: Fleet) -> None:
    engineer = fleet_token(fleet.issuer, "engineer")
    support = fleet_token(fleet.issuer, "support")
    uri = walk(fleet.router, engineer, "resources/list", "resources")[0]
    assert walk(fleet.router, support, "resources/list", "resources") == []
    assert walk(fleet.router, support, "prompts/list", "prompts") == []
    read = post(fleet.router, support, message("resources/read", {"uri": uri}))
    assert (read.status, read.error["code"]) == (403, -32003)
    prompt = post(fleet.router, support, message("prompts/get", {"name": "everything__simple-prompt"}))
    assert (prompt.status, prompt.error["code"]) == (403, -32003)
    ref = {"type": "ref/prompt", "name": "everything__completable-prompt"}
    done = post(
        fleet.router,
        support,
        message("completion/complete", {"ref": ref, "argument": {"name": "x", "value": ""}}),
    )
    assert (done.status, done.error["code"]) == (403, -32003)
    read = post(fleet.router, engineer, message("resources/read", {"uri": uri}))
    modern_types.ReadResourceResult.model_validate(read.result)
    assert [c["uri"] for c in read.result["contents"]] == [uri]


@pytest.mark.parametrize(
    "uri", ["demo://resource/static/document/features.md", "mcpfleet://nope/x", "mcpfleet://everything", ""]
)
def test_a_uri_not_of_the_fleet_is_refused(fleet: Fleet, uri: str) -> None:
    answer = post(
        fleet.router, fleet_token(fleet.issuer, "engineer"), message("resources/read", {"uri": uri})
    )
    assert (answer.status, answer.error["code"]) == (400, -32602)


# Tokens and sessions


def test_tokens_of_one_audience_open_nothing_else(fleet: Fleet) -> None:
    server_token = fleet.issuer.token("units", "alice", "engineer")
    answer = post(fleet.router, server_token, message("tools/list"))
    assert (answer.status, answer.error["code"]) == (401, -32001)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    answer = post(fleet.router, fleet_token(fleet.issuer, "engineer"), body, path="/servers/units/mcp")
    assert (answer.status, answer.error["code"]) == (401, -32001)
    assert post(fleet.router, None, message("tools/list")).status == 401


def test_fleet_sessions_are_the_routers_own_and_bound_to_their_caller(fleet: Fleet) -> None:
    alice = fleet_token(fleet.issuer, "engineer", "alice")
    bob = fleet_token(fleet.issuer, "engineer", "bob")
    sealed = legacy_session(fleet.router, alice)
    listing = message("tools/list", modern=False)
    assert post(fleet.router, alice, listing, session=sealed).status == 200
    assert post(fleet.router, bob, listing, session=sealed).status == 403
    assert post(fleet.router, alice, listing).status == 400  # a legacy request needs its session
    assert post(fleet.router, alice, listing, session=sealed[:-4] + "AAAA").status == 400
    # A session of a server's own route does not open /mcp, nor the reverse.
    own = fleet.issuer.token("everything", "alice", "engineer")
    per_server = server_session(fleet.router, "everything", own)
    assert post(fleet.router, alice, listing, session=per_server).status == 400
    answer = post(fleet.router, own, listing, session=sealed, path="/servers/everything/mcp")
    assert answer.status == 400
    # DELETE ends it for this router: the session's id still opens (it is sealed), its streams end.
    request = urllib.request.Request(
        fleet.router.base + "/mcp",
        method="DELETE",
        headers={
            "Authorization": f"Bearer {alice}",
            "Mcp-Session-Id": sealed,
            "MCP-Protocol-Version": LEGACY,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer_:
        assert answer_.status == 200


def test_hosts_and_origins_other_than_the_public_domain_or_loopback_are_refused(fleet: Fleet) -> None:
    # DNS-rebinding protection, as the SDK's servers give it on their own routes: /mcp is the router's.
    token = fleet_token(fleet.issuer, "engineer")
    public = urlsplit(AUDIENCE).hostname or ""
    listing = message("tools/list")
    for host in (public, f"{public}:443", public.upper(), "localhost", "127.0.0.1:8443", "[::1]:9"):
        answer = post(fleet.router, token, listing, extra=[("Host", host)])
        assert answer.status == 200, (host, answer)
    for host in ("evil.example.com", f"{public}.evil.example.com", f"{public}:x", f"{public}:", "[::1"):
        answer = post(fleet.router, token, listing, extra=[("Host", host)])
        assert (answer.status, answer.error["code"]) == (421, -32600), host
        assert answer.error["message"] == "Misdirected Request: invalid Host header"
    # Before the token: a rebinding page learns nothing of it.
    assert post(fleet.router, None, listing, extra=[("Host", "evil.example.com")]).status == 421
    for origin in (f"https://{public}", "http://localhost:3000", f"https://{public}:443"):
        assert post(fleet.router, token, listing, extra=[("Origin", origin)]).status == 200, origin
    for origin in ("https://evil.example.com", "null", f"https://{public}/path", f"ftp://{public}"):
        answer = post(fleet.router, token, listing, extra=[("Origin", origin)])
        assert (answer.status, answer.error["message"]) == (403, "Forbidden: invalid Origin header"), origin


def test_bad_cursors_are_invalid_params(fleet: Fleet) -> None:
    token = fleet_token(fleet.issuer, "engineer")
    for cursor in ("not base64!", "dW5pdHM=", 7):
        answer = post(fleet.router, token, message("tools/list", {"cursor": cursor}))
        assert (answer.status, answer.error["code"]) == (400, -32602), cursor


def test_modern_requests_need_the_envelope_and_get_cache_hints(fleet: Fleet) -> None:
    token = fleet_token(fleet.issuer, "engineer")
    discover = post(fleet.router, token, message("server/discover"))
    result = modern_types.DiscoverResult.model_validate(discover.result)
    assert MODERN in result.supported_versions and result.capabilities.tools is not None
    bare = message("tools/list")
    del bare["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"]
    answer = post(fleet.router, token, bare)
    assert (answer.status, answer.error["code"]) == (400, -32602)
    # ping and initialize belong to the handshake era.
    assert post(fleet.router, token, message("ping")).error["code"] == -32601


# Audit and metrics


def test_audit_records_name_the_endpoint_and_the_server_that_ran(fleet: Fleet) -> None:
    token = fleet_token(fleet.issuer, "engineer")
    post(fleet.router, token, message("tools/list"), extra=[("X-Request-ID", "fleet-list-1")])
    body = message("tools/call", {"name": "units__convert", "arguments": ARGUMENTS["units__convert"]})
    post(fleet.router, token, body, extra=[("X-Request-ID", "fleet-call-1")])
    deadline = time.monotonic() + 10
    while True:
        records = {line["request_id"]: line for line in fleet.router.audit_records()}
        if {"fleet-list-1", "fleet-call-1"} <= records.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    listed, called = records["fleet-list-1"], records["fleet-call-1"]
    assert (listed["endpoint"], listed["server"], listed["method"], listed["outcome"]) == (
        "fleet", "", "tools/list", "ok",
    )  # fmt: skip
    assert (called["endpoint"], called["server"], called["tool"], called["outcome"]) == (
        "fleet", "units", "convert", "ok",
    )  # fmt: skip
    forward = [line for line in fleet.router.forward_records() if line["request_id"] == "fleet-call-1"]
    assert [(f["server"], f["tool"], f["endpoint"]) for f in forward] == [("units", "convert", "fleet")]
    with urllib.request.urlopen(fleet.router.metrics_url, timeout=5) as answer:
        metrics = answer.read().decode()
    assert 'method="tools/call",outcome="ok",server="units",tool="convert"' in metrics


# Pages over a large fleet


def test_pages_walk_a_large_fleet_in_order_without_gaps_or_repeats(tmp_path: Path) -> None:
    """120 servers (one real process behind all of them), 3 tools each, 7 a page: the walk gives every
    tool once, in code-point order, whatever page it starts after."""
    issuer = Issuer()
    with ExitStack() as processes:
        units = start_server(processes, "units", "units-many", tmp_path)
        servers = (
            [f"s{i}" for i in range(100)] + [f"s{i}-b" for i in range(10)] + [f"a{i}" for i in range(10)]
        )
        config = {
            name: entry(name, units.address, UNITS_TOOLS, {}, stateless=True) | {"access": ACCESS["units"]}
            for name in servers
        }
        router = processes.enter_context(
            router_process(
                with_fleet(router_config(config), page_size=7, withhold=False),
                issuer.public_pem,
                new_session_keys(),
                tmp_path,
            )
        )
        token = fleet_token(issuer, "support")
        expected = sorted(names.namespace_name(s, t) for s in servers for t in UNITS_TOOLS)
        until(lambda: len(walk(router, token)) == len(expected), "every server listed")
        assert walk(router, token) == expected
        # A cursor is the last name served: a walk may start after any name.
        middle = names.encode_cursor(expected[100])
        answer = post(router, token, message("tools/list", {"cursor": middle}))
        assert [t["name"] for t in answer.result["tools"]] == expected[101:108]


def until(check: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds:.0f}s: {what}"
        time.sleep(0.2)


# Drift, and the notifications it causes


class Stream:
    """A notification stream read in a thread: every JSON-RPC message that arrives on it."""

    def __init__(
        self, router: RunningRouter, method: str, headers: dict[str, str], body: bytes | None
    ) -> None:
        self.messages: list[dict[str, Any]] = []
        self.status = 0
        self.connection = http.client.HTTPConnection(router.host, router.port, timeout=60)
        self.connection.request(method, "/mcp", body=body, headers=headers)
        response = self.connection.getresponse()
        self.status = response.status
        self.response = response
        threading.Thread(target=self.read, daemon=True).start()

    def read(self) -> None:
        try:
            for line in self.response:
                if line.startswith(b"data:"):
                    self.messages.append(json.loads(line[5:]))
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # closed by the test (http.client drops its file under a reading thread)

    def methods(self) -> list[str]:
        return [m.get("method", "") for m in self.messages]

    def close(self) -> None:
        self.connection.close()


def test_a_server_restarted_with_a_drifted_tool_loses_it_everywhere(tmp_path: Path) -> None:
    issuer = Issuer()
    calls = tmp_path / "units-calls.jsonl"
    arguments = ["--port", "{port}", "--replica-id", "units-1", "--call-log", str(calls)]
    with ExitStack() as processes:
        honest = processes.enter_context(module_server("examples.servers.units", arguments, tmp_path))
        address = f"127.0.0.1:{honest.port}"
        pins = live_pins(f"http://{address}/mcp")
        config = with_fleet(
            router_config({"units": entry("units", address, UNITS_TOOLS, pins, stateless=True)})
        )
        router = processes.enter_context(
            router_process(config, issuer.public_pem, new_session_keys(), tmp_path)
        )
        token = fleet_token(issuer, "support")
        assert walk(router, token) == ["units__calculate", "units__convert", "units__list_units"]

        # Both eras' notification streams, open before the change.
        sealed = legacy_session(router, token)
        legacy_stream = Stream(
            router,
            "GET",
            {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", "Mcp-Session-Id": sealed,
             "MCP-Protocol-Version": LEGACY},
            None,
        )  # fmt: skip
        listen = message(
            "subscriptions/listen", {"notifications": {"toolsListChanged": True}}, rid="listen-1"
        )
        modern_stream = Stream(
            router,
            "POST",
            {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
             "Content-Type": "application/json", "MCP-Protocol-Version": MODERN,
             "Mcp-Method": "subscriptions/listen"},
            json.dumps(listen).encode(),
        )  # fmt: skip
        assert (legacy_stream.status, modern_stream.status) == (200, 200)
        until(lambda: bool(modern_stream.messages), "the listen stream acknowledged")
        ack = modern_stream.messages[0]
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        modern_types.SubscriptionsAcknowledgedNotification.model_validate(ack)
        assert ack["params"]["notifications"] == {"toolsListChanged": True}

        honest.process.terminate()
        honest.process.wait(10)
        with module_server("examples.servers.units", [*arguments, "--drift"], tmp_path, port=honest.port):
            until(
                lambda: walk(router, token) == ["units__calculate", "units__list_units"],
                "the drifted tool leaves the list",
            )
            ran_before = sum(1 for line in calls.read_text().splitlines() if '"convert"' in line)
            drifted = {"value": 1, "from_unit": "km", "to_unit": "m", "precision": 1}
            body = message("tools/call", {"name": "units__convert", "arguments": drifted})
            answer = post(router, token, body)
            assert (answer.status, answer.error["code"]) == (403, -32003)
            assert "changed since it was approved" in answer.error["message"]
            assert pins["convert"][:12] in answer.error["message"]
            own = issuer.token("units", "alice", "support")
            own_name = {**body["params"], "name": "convert"}
            direct = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": own_name}
            routed = post(router, own, direct, path="/servers/units/mcp")
            assert (routed.status, routed.error["code"]) == (403, -32003)
            assert "changed since it was approved" in routed.error["message"]
            listed = post(router, own, message("tools/list"), path="/servers/units/mcp")
            assert [t["name"] for t in listed.result["tools"]] == ["calculate", "list_units"]
            assert sum(1 for line in calls.read_text().splitlines() if '"convert"' in line) == ran_before
            until(lambda: "notifications/tools/list_changed" in legacy_stream.methods(), "legacy stream told")
            until(lambda: "notifications/tools/list_changed" in modern_stream.methods(), "listen stream told")
            note = next(
                m for m in modern_stream.messages if m["method"] == "notifications/tools/list_changed"
            )
            assert note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"
            with urllib.request.urlopen(router.metrics_url, timeout=5) as metrics_answer:
                metrics = metrics_answer.read().decode()
            assert 'mcp_router_tool_drift_refusals_total{server="units",tool="convert"} 2.0' in metrics
        legacy_stream.close()
        modern_stream.close()


def test_list_changed_reaches_only_callers_who_see_the_server(tmp_path: Path) -> None:
    """A change on a server a caller sees nothing of is not announced to it."""
    issuer = Issuer()
    with ExitStack() as processes:
        honest = processes.enter_context(
            module_server("examples.servers.units", ["--port", "{port}"], tmp_path)
        )
        address = f"127.0.0.1:{honest.port}"
        servers = {"units": entry("units", address, UNITS_TOOLS, {}, stateless=True)}
        config = with_fleet(router_config(servers), withhold=False)
        router = processes.enter_context(
            router_process(config, issuer.public_pem, new_session_keys(), tmp_path)
        )
        seen, unseen = fleet_token(issuer, "support"), fleet_token(issuer, "visitor")
        streams = {}
        for label, token in (("seen", seen), ("unseen", unseen)):
            listen = message("subscriptions/listen", {"notifications": {"toolsListChanged": True}}, rid=label)
            streams[label] = Stream(
                router,
                "POST",
                {"Authorization": f"Bearer {token}", "Accept": "text/event-stream",
                 "Content-Type": "application/json", "MCP-Protocol-Version": MODERN,
                 "Mcp-Method": "subscriptions/listen"},
                json.dumps(listen).encode(),
            )  # fmt: skip
        until(lambda: all(s.messages for s in streams.values()), "both acknowledged")
        honest.process.terminate()
        honest.process.wait(10)
        until(
            lambda: "notifications/tools/list_changed" in streams["seen"].methods(), "the caller who sees it"
        )
        time.sleep(1)
        assert streams["unseen"].methods() == ["notifications/subscriptions/acknowledged"]
        for stream in streams.values():
            stream.close()


def test_a_servers_session_the_router_holds_is_opened_again_after_a_restart(tmp_path: Path) -> None:
    """A legacy client's calls reach notes through a session of the router's own; notes restarted forgets
    it (404): the router opens a new one, once, and the call runs. The client's own session goes on."""
    issuer = Issuer()
    calls = tmp_path / "notes-calls.jsonl"
    arguments = ["--port", "{port}", "--replica-id", "notes-1", "--call-log", str(calls)]
    with ExitStack() as processes:
        first = processes.enter_context(module_server("examples.servers.notes", arguments, tmp_path))
        address = f"127.0.0.1:{first.port}"
        config = with_fleet(
            router_config({"notes": entry("notes", address, NOTES_TOOLS, {}, stateless=False)}),
            withhold=False,
        )
        router = processes.enter_context(
            router_process(config, issuer.public_pem, new_session_keys(), tmp_path)
        )
        token = fleet_token(issuer, "engineer")
        sealed = legacy_session(router, token)
        add = message(
            "tools/call", {"name": "notes__add_note", "arguments": {"text": "before"}}, modern=False
        )
        assert post(router, token, add, session=sealed).result.get("isError") is not True
        first.process.terminate()
        first.process.wait(10)
        with module_server("examples.servers.notes", arguments, tmp_path, port=first.port):
            until(lambda: len(walk(router, token)) == len(NOTES_TOOLS), "notes listed again")
            listing = message("tools/call", {"name": "notes__list_notes", "arguments": {}}, modern=False)
            answer = post(router, token, listing, session=sealed)
            assert answer.status == 200 and answer.result.get("isError") is not True, answer
            assert "before" not in json.dumps(answer.result)  # a new session on a new process
            ran = [json.loads(line) for line in calls.read_text().splitlines()]
            sessions = {c["session"] for c in ran if c["tool"] in ("add_note", "list_notes")}
            assert len(sessions) == 2 and None not in sessions


def test_a_servers_rate_limits_hold_on_the_fleet_endpoint_and_across_its_route(tmp_path: Path) -> None:
    """On /mcp the router counts what the gateway counts on a server's route (ratelimit.py): the
    server's own limits (5 per caller, 8 in all, per minute), else the environment's. Past a caller's
    limit: 429, Retry-After and -32029, before any server; other callers go on until the server's
    limit; what a caller sent on the server's own route counts too."""
    issuer = Issuer()
    with ExitStack() as processes:
        units = start_server(processes, "units", "units-1", tmp_path)
        text = start_server(processes, "text", "text-1", tmp_path)
        config = router_config(
            {
                "units": entry("units", units.address, UNITS_TOOLS, {}, stateless=True)
                | {"rateLimits": {"perCallerPerMinute": 5, "perServerPerMinute": 8}},
                "text": entry("text", text.address, TEXT_TOOLS, {}, stateless=True),
            }
        )
        config = with_fleet(config, withhold=False)
        config["fleet"]["rateLimits"] = {"perCallerPerMinute": 1000, "perServerPerMinute": 10000}
        router = processes.enter_context(
            router_process(config, issuer.public_pem, new_session_keys(), tmp_path)
        )
        convert = message("tools/call", {"name": "units__convert", "arguments": ARGUMENTS["units__convert"]})
        alice, bob, carol = (fleet_token(issuer, "support", who) for who in ("alice", "bob", "carol"))
        until(lambda: "units__convert" in walk(router, alice), "units listed")

        assert [post(router, alice, convert).status for _ in range(5)] == [200] * 5
        refused = post(router, alice, convert)
        assert (refused.status, refused.headers["retry-after"], refused.error["code"]) == (429, "60", -32029)
        assert "rate limit reached for this caller of units" in refused.error["message"]
        assert tools_run(units, "convert") == 5  # the sixth never reached the server
        # Another server keeps the environment's limits.
        word_count = message("tools/call", {"name": "text__word_count", "arguments": {"text": "a b"}})
        assert post(router, alice, word_count).status == 200

        # bob has a caller's limit of his own, up to the server's 8 in all.
        assert [post(router, bob, convert).status for _ in range(3)] == [200] * 3
        refused = post(router, bob, convert)
        assert (refused.status, refused.error["code"]) == (429, -32029)
        assert "rate limit reached for this server of units" in refused.error["message"]
        assert tools_run(units, "convert") == 8

        # carol's calls on units' own route (where the gateway counts them) count on /mcp too.
        route_token = issuer.token("units", "carol", "support")
        list_units = message("tools/call", {"name": "list_units", "arguments": {}}, modern=False)
        own_route = post(router, route_token, list_units, path="/servers/units/mcp")
        assert own_route.status == 200, own_route
        assert post(router, carol, convert).status == 429

        def refusals() -> list[dict[str, Any]]:
            return [r for r in router.audit_records() if r["status"] == 429]

        # Each record is written as its answer ends, which may be just after the client read it.
        until(lambda: len(refusals()) >= 3, "the refusals' audit records")
        records = refusals()
        assert [(r["endpoint"], r["caller"], r["server"], r["tool"], r["outcome"]) for r in records] == [
            ("fleet", "alice", "units", "convert", "refused"),
            ("fleet", "bob", "units", "convert", "refused"),
            ("fleet", "carol", "units", "convert", "refused"),
        ]
        with urllib.request.urlopen(router.metrics_url, timeout=5) as answer:
            metrics = answer.read().decode()
    assert 'mcp_router_refusals_total{reason="rate-limited",server="units"} 3.0' in metrics
