"""An answer that begins (200, an SSE stream) and ends without the answer to the request: the audit record
says `upstream_error`, unless the stream carried event ids (the server may close it for the client to
resume with Last-Event-ID, MCP's polling) and ended as a stream ends. A pod killed mid-answer (the
stream cut short) is tests/router/test_router_process.py's."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mcpfleet.router.local import RunningRouter, new_session_keys, router_thread
from tests.router.support import AuditLines, Issuer, post_message, router_config, server_entry

pytestmark = pytest.mark.slow

# What the upstream streams for each request id before it ends the stream (the final chunk).
STREAMS = {
    "silent": b": nothing to say\n\n",
    "resumable": b"id: ev-1\ndata: \n\n",
    "answered": b'event: message\ndata: {"jsonrpc":"2.0","id":"answered","result":{}}\n\n',
}


class Upstream(BaseHTTPRequestHandler):
    """Answers every POST with a 200 SSE stream holding STREAMS[the request's id], then ends it cleanly.
    The router's listings of it fail (no initialize answer), which leaves pings unaffected."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        stream = STREAMS.get(str(body.get("id")))
        if stream is None:
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(f"{len(stream):x}\r\n".encode() + stream + b"\r\n0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def router(upstream: str) -> Iterator[tuple[RunningRouter, Issuer, AuditLines]]:
    issuer = Issuer()
    lines = AuditLines()
    entry = server_entry("raw", [upstream], [], [], stateless=True)
    config = router_config({"raw": entry})
    with router_thread(config, issuer.public_pem, new_session_keys(), audit=lines) as r:
        yield r, issuer, lines


def ping(router: RunningRouter, token: str, rpc_id: str) -> tuple[int, bytes]:
    message = {"jsonrpc": "2.0", "id": rpc_id, "method": "ping"}
    return post_message(router, "/servers/raw/mcp", token, message, f"req-{rpc_id}")


@pytest.mark.parametrize(
    ("rpc_id", "outcome"),
    [("silent", "upstream_error"), ("resumable", "ok"), ("answered", "ok")],
)
def test_a_stream_ended_without_the_answer_is_an_upstream_error_unless_resumable(
    router: tuple[RunningRouter, Issuer, AuditLines], rpc_id: str, outcome: str
) -> None:
    running, issuer, lines = router
    status, body = ping(running, issuer.token("raw"), rpc_id)
    # The client gets the stream as the server sent it.
    assert (status, body) == (200, STREAMS[rpc_id])
    # The record is written as the answer ends, which may be just after the client read it.
    deadline = time.monotonic() + 5
    while not (full := [line for line in lines.of(f"req-{rpc_id}") if line["event"] == "message"]):
        assert time.monotonic() < deadline, "no audit record"
        time.sleep(0.01)
    assert [(r["outcome"], r["status"], r["method"]) for r in full] == [(outcome, 200, "ping")]
