"""The two configurations this program renders, together: HAProxy (haproxy.cfg as rendered) in front of the
real MCP router (router.json as rendered, run as its Deployment runs it) in front of the reference servers.

What the router decides is tested with the router (tests/router/); here, that what HAProxy hands it is
what the contract (docs/router.md) says it gets: the public path, the token, the gateway's own request id
and client address, and that the rendered router.json routes and guards each server as the catalog says.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from components.gateway.config import CONFIG_DIR_ENV, JWT_KEY_ENV, Upstream, render_gateway_config
from components.gateway.router_config import render_router_config
from components.manifests.gateway import ADDRESS_ENV, CONFIG_KEY, PLAIN_PORT
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.router.local import RunningRouter, new_session_keys, router_process
from mcpfleet.stacks.loader import load_stack_config
from tests.components.edge import ACM_ARN, REPO, with_gateway
from tests.examples.running import reference_server

pytestmark = pytest.mark.slow
T = TypeVar("T")

GATEWAY_ADDRESS = "127.0.0.161"
CLIENT_ADDRESS = "127.0.0.162"
MODERN = "2026-07-28"


@dataclasses.dataclass
class Chain:
    fleet: Fleet
    key: rsa.RSAPrivateKey
    router: RunningRouter
    gateway_log: Path

    def token(self, server: str, subject: str, roles: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": self.fleet.settings.gateway.auth.issuer,
            "aud": self.fleet.audience(server),
            "sub": subject,
            "roles": roles,
            "iat": now,
            "exp": now + 300,
        }
        return jwt.encode(claims, self.key, algorithm="RS256")

    def url(self, server: str) -> str:
        return f"http://{GATEWAY_ADDRESS}:{PLAIN_PORT}/servers/{server}/mcp"


def examples_fleet() -> Fleet:
    """dev's settings with TLS at the load balancer (plain HTTP here), the reference servers' catalog."""
    _, settings = load_stack_config(REPO / "stacks", "dev")
    fleet = resolve_fleet(
        load_catalog(REPO / "examples" / "catalog"), "dev", settings, "stacks/Pulumi.dev.yaml"
    )
    fleet = dataclasses.replace(fleet, servers=tuple(s for s in fleet.servers if s.name in ("notes", "text")))
    return with_gateway(fleet, tls="acm", acm_certificate_arn=ACM_ARN, cluster_issuer=None)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.fail("haproxy is not installed: `apt-get install -y haproxy` (HAProxy 2.6)")
    directory = tmp_path_factory.mktemp("chain")
    fleet = examples_fleet()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                reference_server(name, "--allowed-host", fleet.settings.domain, log_dir=directory)
            )
            for name in ("notes", "text")
        }
        router_json = render_router_config(
            fleet, upstreams={name: [f"127.0.0.1:{server.port}"] for name, server in servers.items()}
        )
        router = stack.enter_context(
            router_process(json.loads(router_json), pem, new_session_keys(), directory / "router")
        )
        config = render_gateway_config(
            fleet, upstreams=[Upstream(f"{router.host}:{router.port}", router.metrics_port)]
        )
        config_dir = directory / "gateway"
        config_dir.mkdir()
        for name, text in config.items():
            (config_dir / name).write_text(text, encoding="utf-8")
        (directory / "issuer.pem").write_bytes(pem)
        log = directory / "haproxy.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [haproxy, "-db", "-f", str(config_dir / CONFIG_KEY)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    CONFIG_DIR_ENV: str(config_dir),
                    JWT_KEY_ENV: str(directory / "issuer.pem"),
                    ADDRESS_ENV: GATEWAY_ADDRESS,
                },
            )
        stack.callback(process.wait, 10)
        stack.callback(process.terminate)
        running = Chain(fleet, key, router, log)
        wait_until_routed(running, process)
        yield running


def post(chain: Chain, server: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection(
        GATEWAY_ADDRESS, PLAIN_PORT, timeout=10, source_address=(CLIENT_ADDRESS, 0)
    )
    try:
        connection.request("POST", f"/servers/{server}/mcp", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        answer = (
            json.loads(data)
            if response.getheader("content-type", "").startswith("application/json")
            else data
        )
        return response.status, {k.lower(): v for k, v in response.getheaders()}, answer
    finally:
        connection.close()


def modern_call(
    chain: Chain, tool: str, token: str, extra: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "chain", "version": "0"},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"text": "a b c"}, "_meta": meta},
    }
    headers = {
        "Host": chain.fleet.settings.domain,
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
        **(extra or {}),
    }
    return post(chain, "text", json.dumps(body).encode(), headers)


def wait_until_routed(chain: Chain, process: subprocess.Popen[bytes]) -> None:
    """Until HAProxy's check finds the router up and a call goes through."""
    deadline = time.monotonic() + 30
    token = chain.token("text", "probe", "support")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"haproxy exited: {chain.gateway_log.read_text()}")
        try:
            if modern_call(chain, "word_count", token)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"nothing routed within 30 s:\n{chain.gateway_log.read_text()}")


def test_the_router_takes_the_gateways_request_id_and_client_address_not_the_clients(chain: Chain) -> None:
    spoofed = {
        "X-Request-ID": "chosen-by-the-client",
        "X-Forwarded-For": "203.0.113.7",
        "Forwarded": "for=203.0.113.7",
    }
    status, headers, answer = modern_call(
        chain, "word_count", chain.token("text", "carol", ["support"]), spoofed
    )
    assert status == 200, answer
    request_id = headers["x-request-id"]
    assert request_id != "chosen-by-the-client"
    deadline = time.monotonic() + 5
    records: list[dict[str, Any]] = []
    while not records and time.monotonic() < deadline:
        records = [r for r in chain.router.audit_records() if r.get("request_id") == request_id]
        time.sleep(0.05)
    [record] = records
    assert (record["client"], record["caller"], record["server"]) == (CLIENT_ADDRESS, "carol", "text")
    assert (record["method"], record["tool"], record["outcome"]) == ("tools/call", "word_count", "ok")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """coroutine on a loop of its own: asyncio.run would leave the thread without a current loop, which
    the Pulumi mock engine of later tests in this process needs."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


@asynccontextmanager
async def client(chain: Chain, server: str, token: str, mode: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}", "Host": chain.fleet.settings.domain}, timeout=20
        ) as http,
        Client(streamable_http_client(chain.url(server), http_client=http), mode=mode, cache=None) as session,
    ):
        yield session


def test_a_legacy_session_runs_through_both_and_the_catalogs_access_holds(chain: Chain) -> None:
    """notes: support may add and list, not delete (examples/catalog/servers/notes.yaml)."""
    token = chain.token("notes", "dave", "support")

    async def scenario() -> str:
        async with client(chain, "notes", token, "legacy") as session:
            await session.call_tool("add_note", {"text": "through haproxy and the router"})
            listed = await session.call_tool("list_notes", {})
            with pytest.raises(MCPError, match="not allowed"):
                await session.call_tool("delete_note", {"id": 1})
            return "\n".join(getattr(block, "text", "") for block in listed.content)

    assert "through haproxy and the router" in run(scenario())


def test_a_token_the_gateway_refuses_never_reaches_the_router(chain: Chain) -> None:
    before = len(chain.router.audit_records())
    mistyped = jwt.encode(
        {
            "iss": chain.fleet.settings.gateway.auth.issuer,
            "aud": chain.fleet.audience("text"),
            "sub": "eve",
            "roles": "support",
            "exp": str(int(time.time()) + 300),
        },
        chain.key,
        algorithm="RS256",
    )
    status, _, answer = modern_call(chain, "word_count", mistyped)
    assert (status, answer["error"]["code"]) == (401, -32001)
    time.sleep(0.3)
    assert len(chain.router.audit_records()) == before
