"""An unexpected failure inside the router (a bug, or a library raising what nobody foresaw) is still
answered with a JSON-RPC error, audited and counted, and logged without the message or the token."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from mcpfleet.router import app as router_app
from mcpfleet.router.local import RunningRouter, new_session_keys, router_thread
from tests.examples.running import reference_server
from tests.router.support import (
    UNITS_TOOLS,
    AuditLines,
    Issuer,
    post_message,
    router_config,
    server_entry,
)

pytestmark = pytest.mark.slow

SECRET_TEXT = "boom: text that may quote a message or a token"


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with reference_server("units", log_dir=tmp_path_factory.mktemp("units")) as running:
        yield f"127.0.0.1:{running.port}"


@pytest.fixture
def router(units: str) -> Iterator[tuple[RunningRouter, Issuer, AuditLines]]:
    issuer = Issuer()
    lines = AuditLines()
    entry = server_entry("units", [units], UNITS_TOOLS, [{"tools": ["*"], "roles": ["engineer"]}], True)
    with router_thread(
        router_config({"units": entry}), issuer.public_pem, new_session_keys(), audit=lines
    ) as r:
        yield r, issuer, lines


def post(router: RunningRouter, token: str, request_id: str, rpc_id: int) -> tuple[int, bytes]:
    message = {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call", "params": {"name": "list_units"}}
    return post_message(router, "/servers/units/mcp", token, message, request_id)


def metrics(router: RunningRouter) -> str:
    connection = http.client.HTTPConnection(router.host, router.metrics_port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        return connection.getresponse().read().decode()
    finally:
        connection.close()


ERROR_SERIES = (
    'mcp_router_requests_total{code="-32603",method="tools/call",outcome="error",server="units",'
    'tool="list_units"}'
)


def test_a_failure_before_the_answer_is_a_500_with_a_json_rpc_error(
    router: tuple[RunningRouter, Issuer, AuditLines],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    running, issuer, lines = router
    token = issuer.token("units")

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(SECRET_TEXT)

    caplog.set_level(logging.ERROR, logger="mcpfleet.router")
    with monkeypatch.context() as patch:
        patch.setattr(aiohttp.ClientSession, "request", failing)
        status, body = post(running, token, "broken-1", 7)
    assert status == 500
    assert json.loads(body) == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32603, "message": "Internal error"},
    }
    full = [line for line in lines.of("broken-1") if line["event"] == "message"]
    assert [(r["outcome"], r["status"], r["rpc_code"], r["tool"]) for r in full] == [
        ("error", 500, -32603, "list_units")
    ]
    assert f"{ERROR_SERIES} 1.0" in metrics(running)
    logged = caplog.text
    assert "internal error on request broken-1" in logged and "RuntimeError" in logged
    assert SECRET_TEXT not in logged and token not in logged
    # The router goes on serving.
    assert post(running, token, "after-1", 8)[0] == 200


def test_a_failure_during_the_answer_cuts_it_and_is_audited(
    router: tuple[RunningRouter, Issuer, AuditLines], monkeypatch: pytest.MonkeyPatch
) -> None:
    running, issuer, lines = router
    token = issuer.token("units")

    def failing(self: Any, chunk: bytes) -> None:
        raise ValueError(SECRET_TEXT)

    with monkeypatch.context() as patch:
        patch.setattr(router_app._Outcome, "feed_sse", failing)
        patch.setattr(router_app._Outcome, "feed_json", failing)
        with pytest.raises(http.client.HTTPException):
            post(running, token, "broken-2", 9)
    full = [line for line in lines.of("broken-2") if line["event"] == "message"]
    # The answer had started (its status sent) when the router failed: the client sees it cut short.
    assert [(r["outcome"], r["status"], r["rpc_code"]) for r in full] == [("error", 200, -32603)]
    assert f"{ERROR_SERIES} 1.0" in metrics(running)
    assert post(running, token, "after-2", 10)[0] == 200
