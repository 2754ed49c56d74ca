"""The router as a real process in front of the real reference servers, driven by the mcp SDK's client in
both protocol eras and by raw HTTP as an attacker would; each check asserts what the servers executed."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import signal
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcpfleet.router.local import (
    RunningRouter,
    new_session_keys,
    router_process,
    session_keys_text,
    stop,
)
from mcpfleet.router.sessions import Sealer, UnknownSession
from tests.examples.running import Running
from tests.router.conftest import Stack, fleet_config, start_server
from tests.router.secret_volume import SecretVolume
from tests.router.servers import module_server
from tests.router.support import NOTES_ACCESS, NOTES_TOOLS, router_config, server_entry

pytestmark = pytest.mark.slow

MODERN = "2026-07-28"
LEGACY_VERSION = "2025-11-25"
# What a server may receive from the router (docs/router.md), beyond what HTTP itself adds.
ALLOWED_HEADERS = {
    "host", "content-type", "accept", "mcp-protocol-version", "mcp-session-id", "last-event-id", "mcp-method",
    "mcp-name", "x-request-id", "x-forwarded-for", "x-forwarded-proto", "content-length",
}  # fmt: skip


class SeenHeaders:
    def __init__(self) -> None:
        self.session_ids: list[str] = []

    async def __call__(self, response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            self.session_ids.append(response.headers["mcp-session-id"])


@asynccontextmanager
async def mcp_client(
    url: str, token: str, mode: str, seen: SeenHeaders | None = None
) -> AsyncIterator[Client]:
    hooks: dict[str, list[Any]] = {"response": [seen]} if seen is not None else {}
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, event_hooks=hooks, timeout=20
        ) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client,
    ):
        yield client


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def raw(
    router: RunningRouter,
    server: str,
    body: bytes | None,
    headers: Sequence[tuple[str, str]] = (),
    token: str | None = None,
    method: str = "POST",
    path: str | None = None,
    chunked: bool = False,
) -> tuple[int, dict[str, str], Any]:
    """One request with exactly these bytes and header lines (duplicates kept), as an attacker sends it."""
    connection = http.client.HTTPConnection(router.host, router.port, timeout=20)
    try:
        connection.putrequest(method, path or f"/servers/{server}/mcp", skip_accept_encoding=True)
        sent = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")]
        if token is not None:
            sent.append(("Authorization", f"Bearer {token}"))
        for name, value in [*sent, *headers]:
            connection.putheader(name, value)
        if body is not None and chunked:
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            connection.send(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        else:
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        kind = answer_headers.get("content-type", "")
        if kind.startswith("text/event-stream"):
            events = [line[5:].strip() for line in data.decode().splitlines() if line.startswith("data:")]
            payload: Any = json.loads(events[-1]) if events else None
        else:
            payload = json.loads(data) if data and kind.startswith("application/json") else data
        return response.status, answer_headers, payload
    finally:
        connection.close()


def call(tool: str, request_id: Any = 1, arguments: dict[str, Any] | None = None, **params: Any) -> bytes:
    message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call"}
    message["params"] = {"name": tool, "arguments": arguments or {}, **params}
    return json.dumps(message).encode()


def modern_call(tool: str, arguments: dict[str, Any] | None = None) -> bytes:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
    }
    return call(tool, arguments=arguments or {}, _meta=meta)


MODERN_HEADERS = [("MCP-Protocol-Version", MODERN)]
AUDIT_SECONDS = 10.0


def wait_for(router: RunningRouter, request_ids: set[str]) -> list[dict[str, Any]]:
    """The router's audit lines once each of request_ids has its full record (written as its answer
    ends, which may be just after the client has read the answer), or once AUDIT_SECONDS have passed."""
    deadline = time.monotonic() + AUDIT_SECONDS
    while True:
        lines = router.audit_lines()
        done = {line["request_id"] for line in lines if line["event"] == "message"}
        if request_ids <= done or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


# The SDK's clients, both eras


def test_legacy_session_through_the_router(stack: Stack) -> None:
    router = stack.routers[0]
    token = stack.issuer.token("notes", "alice", "support")
    seen = SeenHeaders()

    async def scenario() -> tuple[list[str], str]:
        async with mcp_client(router.url("notes"), token, "legacy", seen) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            await client.call_tool("add_note", {"text": "through the router"})
            listed = text_of(await client.call_tool("list_notes", {}))
            return names, listed

    names, listed = asyncio.run(scenario())
    # The list holds what this caller may call (support: add and list), never the engineers' tools.
    assert names == ["add_note", "list_notes"]
    assert "through the router" in listed
    sealed = set(seen.session_ids)
    assert len(sealed) == 1 and next(iter(sealed)).startswith("mf1.")
    # The server saw its own session id, never the sealed one, nor the caller's token.
    calls = [c for s in ("notes-a", "notes-b") for c in stack.servers[s].calls() if c["tool"] == "add_note"]
    own = {c["session"] for c in calls if c["session"]}
    assert own and not own & sealed
    assert all("authorization" not in c["headers"] and set(c["headers"]) <= ALLOWED_HEADERS for c in calls)


def test_modern_requests_carry_routing_headers_rebuilt_from_the_body(stack: Stack) -> None:
    token = stack.issuer.token("text", "alice", "support")
    before = len(stack.servers["text"].calls())

    async def scenario() -> str:
        async with mcp_client(stack.routers[1].url("text"), token, MODERN) as client:
            return text_of(await client.call_tool("word_count", {"text": "one two three"}))

    assert "3" in asyncio.run(scenario())
    new = stack.servers["text"].calls()[before:]
    ran = [c for c in new if c["tool"] == "word_count"]
    assert ran and {"mcp-method", "mcp-name", "mcp-protocol-version"} <= set(ran[0]["headers"])
    assert "authorization" not in ran[0]["headers"]


@pytest.mark.parametrize("mode", ["legacy", MODERN])
def test_forbidden_tool_does_not_run_in_either_era(stack: Stack, mode: str) -> None:
    token = stack.issuer.token("text", "bob", "support")
    text = stack.servers["text"]

    async def scenario() -> None:
        async with mcp_client(stack.routers[0].url("text"), token, mode) as client:
            with pytest.raises(MCPError, match="not allowed"):
                await client.call_tool("digest", {"text": "secret"})
            await client.call_tool("slugify", {"text": "Allowed Tool"})

    asyncio.run(scenario())
    assert "digest" not in text.tools_run()
    assert "slugify" in text.tools_run()


# Raw requests, as an attacker sends them: the forbidden tool (`digest` for support) never runs


def tricks(token: str) -> dict[str, tuple[bytes | None, list[tuple[str, str]], int]]:
    digest = call("digest", arguments={"text": "x"})
    return {
        "method header says ping": (digest, [("Mcp-Method", "ping")], 400),
        "method header empty": (digest, [("Mcp-Method", "")], 400),
        "method header comma list": (digest, [("Mcp-Method", "tools/call, ping")], 400),
        "name header names an allowed tool": (digest, [("Mcp-Name", "word_count")], 400),
        "two name headers": (digest, [("Mcp-Name", "word_count"), ("Mcp-Name", "digest")], 400),
        "modern headers name an allowed tool": (
            modern_call("digest"),
            [*MODERN_HEADERS, ("Mcp-Method", "tools/call"), ("Mcp-Name", "word_count")],
            400,
        ),
        "duplicate name, allowed last": (
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"digest","name":"word_count"}}',
            [],
            400,
        ),
        "duplicate name, allowed first": (
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"word_count","name":"digest"}}',
            [],
            400,
        ),
        "escaped key duplicate": (
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"word_count","\\u006eame":"digest"}}',
            [],
            400,
        ),
        "duplicate method": (
            b'{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"digest"}}',
            [],
            400,
        ),
        "NaN argument": (
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"digest","arguments":{"t":NaN}}}',
            [],
            400,
        ),
        "batch": (b"[" + digest + b"]", [], 400),
        "chunked body": (digest, [], 400),
        "oversized body": (call("digest", arguments={"text": "x" * 70000}), [], 400),
        "custom method": (
            b'{"jsonrpc":"2.0","id":1,"method":"tools/run","params":{"name":"digest"}}',
            [],
            400,
        ),
        "no token": (digest, [], 401),
    }


def test_attacks_never_run_the_forbidden_tool(stack: Stack) -> None:
    token = stack.issuer.token("text", "mallory", "support")
    text = stack.servers["text"]
    before = len(text.calls())
    for name, (body, headers, status) in tricks(token).items():
        answer = raw(
            stack.routers[0], "text", body, headers,
            token=None if name == "no token" else token, chunked=name == "chunked body",
        )  # fmt: skip
        assert answer[0] == status, name
        assert answer[2]["jsonrpc"] == "2.0" and "error" in answer[2], name
    assert "digest" not in text.tools_run()
    assert len(text.calls()) == before  # nothing at all reached the server


def test_escaped_values_are_forwarded_as_parsed(stack: Stack) -> None:
    """`tools\\/call` is tools/call to every reader: the router decides on it and forwards it unescaped."""
    token = stack.issuer.token("text", "mallory", "support")
    body = b'{"jsonrpc":"2.0","id":5,"method":"tools\\/call","params":{"name":"dig\\u0065st","arguments":{}}}'
    status, _, answer = raw(stack.routers[0], "text", body, token=token)
    assert (status, answer["error"]["code"]) == (403, -32003)
    assert "digest" not in stack.servers["text"].tools_run()


# Sessions


def open_session(
    stack: Stack, router: RunningRouter, subject: str, roles: str = "engineer"
) -> tuple[str, str]:
    """A legacy session opened with raw requests: (sealed id, token)."""
    token = stack.issuer.token("notes", subject, roles)
    client_info = {"name": "t", "version": "0"}
    params = {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": client_info}
    initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    status, headers, _ = raw(router, "notes", json.dumps(initialize).encode(), token=token)
    assert status == 200
    sealed = headers["mcp-session-id"]
    headers_in = [("Mcp-Session-Id", sealed), ("MCP-Protocol-Version", LEGACY_VERSION)]
    done = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
    assert raw(router, "notes", done, headers_in, token=token)[0] == 202
    return sealed, token


def session_headers(sealed: str) -> list[tuple[str, str]]:
    return [("Mcp-Session-Id", sealed), ("MCP-Protocol-Version", LEGACY_VERSION)]


def notes_calls(stack: Stack) -> int:
    return sum(len(stack.servers[s].calls()) for s in ("notes-a", "notes-b"))


def test_another_callers_session_is_refused(stack: Stack) -> None:
    router = stack.routers[0]
    sealed, alice = open_session(stack, router, "alice")
    add = call("add_note", arguments={"text": "alice's"})
    assert raw(router, "notes", add, session_headers(sealed), token=alice)[0] == 200
    bob = stack.issuer.token("notes", "bob", "engineer")
    before = notes_calls(stack)
    status, _, answer = raw(router, "notes", call("list_notes"), session_headers(sealed), token=bob)
    assert (status, answer["error"]["code"]) == (403, -32003)
    status, _, answer = raw(router, "notes", None, session_headers(sealed), token=bob, method="DELETE")
    assert (status, answer["error"]["code"]) == (403, -32003)
    status, _, _ = raw(router, "notes", None, session_headers(sealed), token=bob, method="GET")
    assert status == 403
    assert notes_calls(stack) == before
    # Alice's session is intact.
    status, _, answer = raw(router, "notes", call("list_notes"), session_headers(sealed), token=alice)
    assert status == 200 and "alice's" in json.dumps(answer)


@pytest.mark.parametrize(
    "session_id",
    ["random-session-id", "0" * 32, "mf1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""],
)
def test_random_and_forged_session_ids_create_nothing(stack: Stack, session_id: str) -> None:
    token = stack.issuer.token("notes", "mallory", "engineer")
    before = notes_calls(stack)
    status, _, answer = raw(
        stack.routers[0], "notes", call("list_notes"), session_headers(session_id), token=token
    )
    assert (status, answer["error"]["code"]) == (400, -32600)
    assert notes_calls(stack) == before


def test_sealed_id_of_another_server_is_refused(stack: Stack) -> None:
    sealed, _ = open_session(stack, stack.routers[0], "alice")
    token = stack.issuer.token("units", "alice", "engineer")
    status, _, _ = raw(stack.routers[0], "units", call("list_units"), session_headers(sealed), token=token)
    assert status == 400


def aged(stack: Stack, sealed: str, seconds: float, monkeypatch: pytest.MonkeyPatch) -> str:
    """The same session sealed again with the router's keys as if issued `seconds` ago."""
    session = Sealer(stack.keys).open(sealed)
    then = time.time() - seconds
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: then)  # the clock the sealer reads, for this seal only
        return Sealer(stack.keys).seal("http", session.server, session.subject, session.pod, session.inner)


def test_a_session_older_than_the_max_age_gets_404(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions live 24 h by default (sessionMaxAgeSeconds): an older sealed id is refused with 404, so
    the client starts a new session, and nothing reaches the server; a younger one is served."""
    router = stack.routers[0]
    sealed, token = open_session(stack, router, "judy")
    add = call("add_note", arguments={"text": "judy's"})
    assert raw(router, "notes", add, session_headers(sealed), token=token)[0] == 200
    younger = aged(stack, sealed, 23 * 3600, monkeypatch)
    status, _, answer = raw(router, "notes", call("list_notes"), session_headers(younger), token=token)
    assert status == 200 and "judy's" in json.dumps(answer)
    before = notes_calls(stack)
    older = aged(stack, sealed, 24 * 3600 + 60, monkeypatch)
    for method, body in (("POST", call("list_notes")), ("GET", None), ("DELETE", None)):
        status, _, answer = raw(router, "notes", body, session_headers(older), token=token, method=method)
        assert (status, answer["error"]["code"]) == (404, -32001), method
    assert notes_calls(stack) == before
    assert raw(router, "notes", call("list_notes"), session_headers(sealed), token=token)[0] == 200


def test_session_survives_the_loss_of_a_router_replica(stack: Stack, tmp_path: Path) -> None:
    """Opened through one router process, continued through another after the first was killed."""
    with router_process(stack.config, stack.issuer.public_pem, stack.keys, tmp_path / "doomed") as doomed:
        sealed, token = open_session(stack, doomed, "carol")
        add = call("add_note", arguments={"text": "kept"})
        assert raw(doomed, "notes", add, session_headers(sealed), token=token)[0] == 200
        assert doomed.process is not None
        stop(doomed.process, signal.SIGKILL)
    status, _, answer = raw(
        stack.routers[1], "notes", call("list_notes"), session_headers(sealed), token=token
    )
    assert status == 200 and "kept" in json.dumps(answer)


def sealing_key(sealed: str, keys: dict[str, bytes]) -> str:
    """Which of keys (by name) sealed a session id."""
    for name, key in keys.items():
        try:
            Sealer([key]).open(sealed)
        except UnknownSession:
            continue
        return name
    raise AssertionError("sealed with none of the keys")


def until(check: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds:.0f}s: {what}"
        time.sleep(0.2)


def test_session_keys_rotate_without_a_restart(stack: Stack, tmp_path: Path) -> None:
    """The Secret is updated in place, as the kubelet does (a symlink swap): the router re-reads it. New
    key first and old second: old sessions go on, new ones are sealed with the new key; then the old key
    dropped: its sessions are unknown (400) and nothing reaches the server. A file that does not read
    changes nothing."""
    old, new = new_session_keys(2)
    keys = {"old": old, "new": new}
    volume = SecretVolume(tmp_path, "session-keys")
    with router_process(stack.config, stack.issuer.public_pem, [old], tmp_path) as router:
        assert volume.path.read_text() == session_keys_text([old])  # the router's own file, replaced below
        before, token = open_session(stack, router, "kate")
        assert sealing_key(before, keys) == "old"

        volume.keys([new, old])
        opened: list[str] = []

        def sealed_with_the_new_key() -> bool:
            opened.append(open_session(stack, router, "kate")[0])
            return sealing_key(opened[-1], keys) == "new"

        until(sealed_with_the_new_key, "new sessions sealed with the new key")
        during = opened[-1]
        for sealed in (before, during):
            assert raw(router, "notes", call("list_notes"), session_headers(sealed), token=token)[0] == 200

        volume.write("not base64!\n")
        until(lambda: "session-keys:1: not base64" in router_log(router), "the bad file reported")
        assert raw(router, "notes", call("list_notes"), session_headers(before), token=token)[0] == 200

        volume.keys([new])
        until(
            lambda: raw(router, "notes", call("list_notes"), session_headers(before), token=token)[0] == 400,
            "sessions sealed with the dropped key refused",
        )
        calls = notes_calls(stack)
        status, _, answer = raw(router, "notes", call("list_notes"), session_headers(before), token=token)
        assert (status, answer["error"]["code"]) == (400, -32600)
        assert notes_calls(stack) == calls
        assert raw(router, "notes", call("list_notes"), session_headers(during), token=token)[0] == 200
        assert "reloaded" in router_log(router) and base64.b64encode(new).decode() not in router_log(router)


def router_log(router: RunningRouter) -> str:
    return router.log.read_text(encoding="utf-8") if router.log is not None else ""


def test_session_whose_pod_is_gone_gets_404(tmp_path: Path, stack: Stack) -> None:
    with ExitStack() as processes:
        lone = start_server(processes, "notes", "notes-lone", tmp_path)
        config = router_config({"notes": server_entry("notes", [lone.address], NOTES_TOOLS, NOTES_ACCESS)})
        router = processes.enter_context(
            router_process(config, stack.issuer.public_pem, stack.keys, tmp_path)
        )
        sealed, token = open_session(stack, router, "dave")
        stop(lone.running.process)
        # tools/list: a tools/call of a server the router cannot list any more is refused (503) before
        # its session is tried; the session's own refusal is the subject here.
        listing = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
        status, _, answer = raw(router, "notes", listing, session_headers(sealed), token=token)
        assert (status, answer["error"]["code"]) == (404, -32001)


def test_stateless_requests_spread_over_replicas(stack: Stack) -> None:
    token = stack.issuer.token("notes", "erin", "engineer")
    before = {s: len(stack.servers[s].calls()) for s in ("notes-a", "notes-b")}
    for _ in range(6):
        status, _, _ = raw(stack.routers[0], "notes", modern_call("list_notes"), MODERN_HEADERS, token=token)
        assert status == 200
    grew = [s for s in before if len(stack.servers[s].calls()) > before[s]]
    assert grew == ["notes-a", "notes-b"]


# Forwarding headers and the audit record


def test_client_forwarding_headers_never_reach_the_server(stack: Stack) -> None:
    token = stack.issuer.token("units", "frank", "support")
    units = stack.servers["units"]
    spoofed = [
        ("X-Request-ID", "client-one"), ("X-Request-ID", "client-two"),
        ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "7.7.7.7"), ("Forwarded", "for=8.8.8.8"),
        ("Cookie", "session=1"), ("X-Api-Key", "k"),
    ]  # fmt: skip
    before = len(units.calls())
    assert raw(stack.routers[0], "units", call("list_units"), spoofed, token=token)[0] == 200
    seen = units.calls()[before:]
    assert len(seen) == 1
    assert seen[0]["request_id"] not in ("client-one", "client-two")
    assert seen[0]["forwarded_for"] == "127.0.0.1"
    assert set(seen[0]["headers"]) <= ALLOWED_HEADERS
    # HAProxy's own single, well-formed values are kept.
    haproxy = [("X-Request-ID", "7F000001:A1B2_0001"), ("X-Forwarded-For", "203.0.113.9")]
    assert raw(stack.routers[0], "units", call("list_units"), haproxy, token=token)[0] == 200
    last = units.calls()[-1]
    assert (last["request_id"], last["forwarded_for"]) == ("7F000001:A1B2_0001", "203.0.113.9")


def test_audit_names_the_tool_the_server_ran(stack: Stack) -> None:
    router = stack.routers[1]
    token = stack.issuer.token("text", "grace", "support")
    ids = {"audit-1": "word_count", "audit-2": "slugify", "audit-3": "digest"}
    for request_id, tool in ids.items():
        raw(
            router, "text", call(tool, arguments={"text": "a b"}), [("X-Request-ID", request_id)], token=token
        )
    # A full record is written as its answer ends, which may be just after the client has read it.
    lines = wait_for(router, set(ids))
    records = {r["request_id"]: r for r in lines if r["event"] == "message"}
    ran = {c["request_id"]: c["tool"] for c in stack.servers["text"].calls() if c["request_id"] in ids}
    assert ran == {"audit-1": "word_count", "audit-2": "slugify"}
    for request_id, tool in ran.items():
        record = records[request_id]
        assert (record["tool"], record["outcome"], record["caller"], record["server"]) == (
            tool, "ok", "grace", "text",
        )  # fmt: skip
    refused = records["audit-3"]
    assert (refused["tool"], refused["outcome"], refused["status"], refused["rpc_code"]) == (
        "digest", "refused", 403, -32003,
    )  # fmt: skip
    text = router.audit.read_text() if router.audit else ""
    assert token not in text and "a b" not in text


def test_each_forwarded_message_has_a_forward_record_then_its_full_record(stack: Stack) -> None:
    router = stack.routers[0]
    token = stack.issuer.token("text", "heidi", "support")
    ids = {"ahead-1": "word_count", "ahead-2": "digest"}
    for request_id, tool in ids.items():
        arguments = {"text": "private words"}
        raw(router, "text", call(tool, arguments=arguments), [("X-Request-ID", request_id)], token=token)
    lines = wait_for(router, {"ahead-1", "ahead-2"})
    mine = [line for line in lines if line["request_id"] in ids]
    # word_count was forwarded: its forward record, then its full record; digest was refused: no forward.
    assert [line["event"] for line in mine if line["request_id"] == "ahead-1"] == ["forward", "message"]
    assert [line["event"] for line in mine if line["request_id"] == "ahead-2"] == ["message"]
    forward = mine[0]
    assert forward == {
        "event": "forward", "time": forward["time"], "request_id": "ahead-1", "caller": "heidi",
        "server": "text", "method": "tools/call", "tool": "word_count", "session": None, "era": "legacy",
        "endpoint": "server",
    }  # fmt: skip
    text = router.audit.read_text() if router.audit else ""
    assert "private words" not in text and token not in text


@dataclass
class InFlight:
    """A long_job call of ivan's running on the slow server behind a router process."""

    server: Running
    router: RunningRouter
    answers: list[Any]
    """What the client got: raw()'s answer, or the error it raised."""
    thread: threading.Thread
    calls: Path

    def running(self) -> list[dict[str, Any]]:
        """The long_job calls the server has started, from its call log."""
        lines = self.calls.read_text().splitlines() if self.calls.exists() else []
        return [c for c in map(json.loads, lines) if c["tool"] == "long_job"]


@contextmanager
def long_job_in_flight(stack: Stack, tmp_path: Path, request_id: str) -> Iterator[InFlight]:
    """Yields once the slow server (a real MCP server whose tool never finishes: the router lists every
    server it fronts) runs the call; the test then kills one side. The client is joined on the way out."""
    calls = tmp_path / "slow-calls.jsonl"
    command = ["--port", "{port}", "--call-log", str(calls)]
    with module_server("tests.router.slow_server", command, tmp_path) as slow:
        address = f"127.0.0.1:{slow.port}"
        rule = ({"tools": ["*"], "roles": ["engineer"]},)
        config = router_config({"slow": server_entry("slow", [address], ["long_job"], rule)})
        token = stack.issuer.token("slow", "ivan", "engineer")
        answers: list[Any] = []
        with router_process(config, stack.issuer.public_pem, stack.keys, tmp_path) as router:
            body = call("long_job", arguments={"secret": "argument value"})

            def client() -> None:
                try:
                    answers.append(raw(router, "slow", body, [("X-Request-ID", request_id)], token=token))
                except (OSError, http.client.HTTPException) as error:
                    answers.append(error)

            flight = InFlight(slow, router, answers, threading.Thread(target=client), calls)
            flight.thread.start()
            deadline = time.monotonic() + 20
            while not flight.running():
                assert time.monotonic() < deadline, "the router never forwarded the message"
                time.sleep(0.02)
            try:
                yield flight
            finally:
                flight.thread.join(20)


def test_a_message_in_flight_when_its_router_is_killed_keeps_its_forward_record(
    stack: Stack, tmp_path: Path
) -> None:
    with long_job_in_flight(stack, tmp_path, "in-flight-1") as flight:
        assert flight.router.process is not None
        stop(flight.router.process, signal.SIGKILL)
        flight.thread.join(20)
        # The router's own listing requests have records of their own (event "listing").
        lines = [line for line in flight.router.audit_lines() if line["event"] != "listing"]
    assert flight.running()[0]["request_id"] == "in-flight-1"
    assert isinstance(flight.answers[0], Exception)  # the answer died with the router
    assert [(line["event"], line["request_id"], line["tool"], line["caller"]) for line in lines] == [
        ("forward", "in-flight-1", "long_job", "ivan")
    ]
    assert "argument value" not in json.dumps(lines)


def test_a_call_whose_server_is_killed_mid_answer_is_audited_as_unanswered(
    stack: Stack, tmp_path: Path
) -> None:
    # The SDK starts a call's SSE answer (200 and its headers) before the tool runs: a pod killed then
    # leaves a 200 that never carries the answer. The router must not record that as answered.
    with long_job_in_flight(stack, tmp_path, "cut-1") as flight:
        stop(flight.server.process, signal.SIGKILL)
        flight.thread.join(20)
        lines = wait_for(flight.router, {"cut-1"})
        with urllib.request.urlopen(flight.router.metrics_url, timeout=5) as answer:
            metrics = answer.read().decode()
    status, _, payload = flight.answers[0]
    assert (status, payload) == (200, None)  # the answer began, then ended with no message in it
    full = [line for line in lines if line["event"] == "message" and line["request_id"] == "cut-1"]
    assert [(r["outcome"], r["status"], r["rpc_code"], r["tool"]) for r in full] == [
        ("upstream_error", 200, None, "long_job")
    ]
    series = 'mcp_router_requests_total{code="",method="tools/call",outcome="upstream_error",server="slow"'
    assert f'{series},tool="long_job"}} 1.0' in metrics


def test_metrics_and_health(stack: Stack) -> None:
    router = stack.routers[0]
    with urllib.request.urlopen(router.metrics_url, timeout=5) as answer:
        metrics = answer.read().decode()
    assert 'mcp_router_upstream_endpoints{server="notes"} 2.0' in metrics
    assert (
        'mcp_router_requests_total{code="",method="tools/call",outcome="ok",server="text",tool="slugify"}'
        in metrics
    )
    assert "mcp_router_request_duration_seconds_bucket" in metrics
    assert 'mcp_router_refusals_total{reason="access",server="text"}' in metrics
    with urllib.request.urlopen(f"http://{router.host}:{router.metrics_port}/healthz", timeout=5) as answer:
        assert json.loads(answer.read())["status"] == "ok"


def test_unknown_server_and_paths(stack: Stack) -> None:
    token = stack.issuer.token("notes", "alice", "engineer")
    for path in (
        "/servers/nope/mcp",
        "/servers/notes/mcp/",
        "/servers/notes/%6dcp",
        "/servers/notes/../notes/mcp",
    ):
        status, _, answer = raw(stack.routers[0], "notes", call("list_notes"), token=token, path=path)
        assert (status, answer["error"]["code"]) == (404, -32001), path


def test_fleet_config_is_what_the_fixture_runs(stack: Stack) -> None:
    assert fleet_config(stack.servers) == stack.config
