"""Answers relayed through the router: JSON answers, small (read whole) and large (streamed), arrive
intact and are inspected for the audit; a server stream ends upstream when its client goes away (the
router stops reading the pod and closes its connection) and is audited."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mcpfleet.router.app import WHOLE_BYTES
from mcpfleet.router.local import new_session_keys, router_thread
from tests.router.support import AuditLines, Issuer, router_config, server_entry

pytestmark = pytest.mark.slow

EVENT = b"event: message\r\ndata: {}\r\n\r\n"
REFUSED = b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class EndlessStream:
    """A server answering one GET with an SSE stream that never ends, noting when its peer hangs up. Any
    other request (the router's own attempts to list it) is refused: it is no MCP server to list."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.started = threading.Event()
        self.closed = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                connection.close()
                return
            data += chunk
        if not data.startswith(b"GET ") or self.started.is_set():
            connection.sendall(REFUSED)
            connection.close()
            return
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        connection.sendall(head)
        threading.Thread(target=self.watch, args=(connection,), daemon=True).start()
        self.started.set()
        try:
            while not self.closed.is_set():
                connection.sendall(b"%x\r\n%s\r\n" % (len(EVENT), EVENT))
                time.sleep(0.05)
        except OSError:
            pass

    def watch(self, connection: socket.socket) -> None:
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass
        self.closed.set()


def test_a_stream_whose_client_leaves_is_closed_upstream_and_audited() -> None:
    upstream = EndlessStream()
    issuer = Issuer()
    lines = AuditLines()
    entry = server_entry("feed", [upstream.address], ["noop"], [{"tools": ["*"], "roles": ["engineer"]}])
    with router_thread(
        router_config({"feed": entry}), issuer.public_pem, new_session_keys(), audit=lines
    ) as router:
        connection = http.client.HTTPConnection(router.host, router.port, timeout=10)
        headers = {
            "Authorization": f"Bearer {issuer.token('feed')}",
            "Accept": "text/event-stream",
            "X-Request-ID": "stream-1",
        }
        connection.request("GET", "/servers/feed/mcp", headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        assert response.readline().startswith(b"event: message")
        assert upstream.started.is_set() and not upstream.closed.is_set()
        connection.close()  # the client goes away mid-stream
        assert upstream.closed.wait(10), "the router kept reading the pod after its client left"
        deadline = time.monotonic() + 10
        while not any(line["event"] == "message" for line in lines.of("stream-1")):
            assert time.monotonic() < deadline, lines.lines
            time.sleep(0.05)
    assert [(line["event"], line["method"]) for line in lines.of("stream-1")] == [
        ("forward", "GET"),
        ("message", "GET"),
    ]
    (full,) = [line for line in lines.of("stream-1") if line["event"] == "message"]
    assert (full["outcome"], full["status"]) == ("ok", 200)


TOOL_SCHEMA = {"type": "object", "properties": {}}


class JsonAnswers(BaseHTTPRequestHandler):
    """Answers a tools/call with JSON: `small` a plain result, `large` a tool error padded past
    WHOLE_BYTES (so it is streamed, not read whole). Speaks just enough of the handshake-era protocol
    (initialize, tools/list; server/discover unknown) for the router to list its two tools."""

    def do_POST(self) -> None:
        message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if "id" not in message:
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        method = message["method"]
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
        if method == "initialize":
            answer["result"] = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "calc", "version": "1"},
            }
        elif method == "tools/list":
            tools = [{"name": name, "inputSchema": TOOL_SCHEMA} for name in ("small", "large")]
            answer["result"] = {"tools": tools}
        elif method == "tools/call":
            name = message["params"]["name"]
            result: dict[str, Any] = {"content": [{"type": "text", "text": "ok"}], "isError": False}
            if name == "large":
                text = "x" * (WHOLE_BYTES + 1000)
                result = {"content": [{"type": "text", "text": text}], "isError": True}
            answer["result"] = result
        else:
            answer["error"] = {"code": -32601, "message": "Method not found"}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def json_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), JsonAnswers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_json_answers_small_and_large_arrive_whole_and_are_inspected(json_server: str) -> None:
    issuer = Issuer()
    lines = AuditLines()
    rule = [{"tools": ["*"], "roles": ["engineer"]}]
    entry = server_entry("calc", [json_server], ["small", "large"], rule, stateless=True)
    with router_thread(
        router_config({"calc": entry}), issuer.public_pem, new_session_keys(), audit=lines
    ) as router:
        for tool, outcome in (("small", "ok"), ("large", "tool_error")):
            connection = http.client.HTTPConnection(router.host, router.port, timeout=10)
            body = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": tool}})
            headers = {
                "Authorization": f"Bearer {issuer.token('calc')}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
                "X-Request-ID": f"json-{tool}",
            }
            connection.request("POST", "/servers/calc/mcp", body.encode(), headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            connection.close()
            assert response.status == 200 and answer["id"] == 3, tool
            text = answer["result"]["content"][0]["text"]
            assert text == ("ok" if tool == "small" else "x" * (WHOLE_BYTES + 1000))
            deadline = time.monotonic() + 10
            while not [line for line in lines.of(f"json-{tool}") if line["event"] == "message"]:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            (full,) = [line for line in lines.of(f"json-{tool}") if line["event"] == "message"]
            assert (full["tool"], full["outcome"], full["status"]) == (tool, outcome, 200)
