"""Upstream pods: DNS resolution and re-resolution, the pick of a pod, and a router resolving a real name."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import uvicorn

from mcpfleet.router.app import UPSTREAM_IDLE_SECONDS
from mcpfleet.router.config import Upstream
from mcpfleet.router.local import new_session_keys, router_thread
from mcpfleet.router.upstreams import Endpoints, resolve
from tests.examples.running import reference_server
from tests.router.support import UNITS_TOOLS, Issuer, post_message, router_config, server_entry


def upstream(**fields: object) -> Upstream:
    return Upstream.model_validate({"path": "/mcp", **fields})


def test_fixed_addresses() -> None:
    endpoints = Endpoints(upstream(addresses=["127.0.0.1:8080", "[::1]:8081"]))
    assert endpoints.addresses == ["127.0.0.1:8080", "[::1]:8081"]
    assert endpoints.has("[::1]:8081") and not endpoints.has("127.0.0.2:8080")


def test_re_resolution_follows_dns_and_survives_its_failures() -> None:
    answers: list[object] = [["10.0.0.1:80", "10.0.0.2:80"], OSError("timeout"), [], ["10.0.0.3:80"]]

    async def resolver(host: str, port: int) -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, list)
        return answer

    endpoints = Endpoints(upstream(host="notes.team.svc.cluster.local", port=80), resolver)

    async def rounds() -> list[list[str]]:
        seen = []
        for _ in range(4):
            await endpoints.refresh()
            seen.append(list(endpoints.addresses))
        return seen

    assert asyncio.run(rounds()) == [
        ["10.0.0.1:80", "10.0.0.2:80"],
        ["10.0.0.1:80", "10.0.0.2:80"],  # a failed lookup keeps the known pods
        [],  # no record: no pod
        ["10.0.0.3:80"],
    ]


def test_resolve_every_address_of_a_name() -> None:
    found = asyncio.run(resolve("localhost", 8080))
    assert "127.0.0.1:8080" in found
    assert asyncio.run(resolve("no-such-host.invalid", 80)) == []


def test_pick_prefers_the_least_busy_and_takes_turns() -> None:
    endpoints = Endpoints(upstream(addresses=["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]))
    picks = {endpoints.pick() for _ in range(3)}
    assert picks == {"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
    endpoints.begin("127.0.0.1:1")
    endpoints.begin("127.0.0.1:2")
    assert endpoints.pick() == "127.0.0.1:3"
    assert endpoints.pick(frozenset({"127.0.0.1:3"})) in {"127.0.0.1:1", "127.0.0.1:2"}
    endpoints.end("127.0.0.1:1")
    endpoints.end("127.0.0.1:2")
    assert endpoints.outstanding == {}


@pytest.mark.slow
def test_router_in_process_resolves_a_name(tmp_path: Path) -> None:
    """`upstream.host` as in a cluster (here `localhost`): the router resolves it and reaches the pod;
    an address that refuses the connection (localhost's ::1, where the server does not listen) is
    passed over for the next one."""
    issuer = Issuer()
    # The router lists a server behind a name with the public domain as Host, as servers behind the gateway
    # see it: this one accepts it, as the catalog's servers do.
    with reference_server("units", "--allowed-host", "mcp.test.example", log_dir=tmp_path) as units:
        entry = server_entry(
            "units", [], UNITS_TOOLS, [{"tools": ["*"], "roles": ["engineer"]}], stateless=True
        )
        entry["upstream"] = {"host": "localhost", "port": units.port, "path": "/mcp"}
        with router_thread(router_config({"units": entry}), issuer.public_pem, new_session_keys()) as router:
            assert router.app is not None
            expected = set(asyncio.run(resolve("localhost", units.port)))
            assert set(router.app.endpoints["units"].addresses) == expected
            # Listed once its listing tried the address that answers (calls wait for a verdict).
            deadline = time.monotonic() + 20
            while router.app.listings.get("units") is None:
                assert time.monotonic() < deadline, "units was never listed"
                time.sleep(0.05)
            token = issuer.token("units")
            for _ in range(4):
                request = urllib.request.Request(
                    router.url("units"),
                    data=b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_units"}}',
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Accept": "application/json, text/event-stream",
                    },
                )
                with urllib.request.urlopen(request, timeout=10) as answer:
                    assert answer.status == 200
            with urllib.request.urlopen(router.metrics_url, timeout=5) as answer:
                metrics = answer.read().decode()
            assert f'mcp_router_upstream_endpoints{{server="units"}} {float(len(expected))}' in metrics


class _Connections(BaseHTTPRequestHandler):
    """A server that answers the router's listing (no tools) and pings, keeping each connection; it notes,
    for every ping, how many requests its connection had carried before it."""

    protocol_version = "HTTP/1.1"
    pings: ClassVar[list[int]] = []

    def setup(self) -> None:
        self.carried = 0
        super().setup()

    def do_POST(self) -> None:
        message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        method = message.get("method")
        if method == "ping":
            self.pings.append(self.carried)
        self.carried += 1
        if "id" not in message:  # a notification
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        result: dict[str, Any] = {}
        if method == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "0"},
            }
        elif method == "tools/list":
            result = {"tools": []}
        body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_router_lets_an_idle_pod_connection_go_before_the_pod_would() -> None:
    # uvicorn (the SDK's servers) and Node close an idle connection after 5 s; a message sent on one the
    # pod is closing fails with nothing received, and the router never resends a POST. So it lets go first.
    assert UPSTREAM_IDLE_SECONDS < uvicorn.Config(app="unused:app").timeout_keep_alive == 5
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Connections)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    issuer = Issuer()
    entry = server_entry("raw", [f"127.0.0.1:{server.server_address[1]}"], [], [], stateless=True)
    try:
        with router_thread(router_config({"raw": entry}), issuer.public_pem, new_session_keys()) as router:
            token = issuer.token("raw")

            def ping() -> int:
                message = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
                return post_message(router, "/servers/raw/mcp", token, message)[0]

            assert [ping(), ping()] == [200, 200]
            assert _Connections.pings[1] > 0  # a connection in use is kept
            time.sleep(UPSTREAM_IDLE_SECONDS + 0.5)
            assert ping() == 200
            # Every connection the router held had been idle longer than it keeps one: a new one.
            assert _Connections.pings[2] == 0, _Connections.pings
    finally:
        server.shutdown()
        server.server_close()
