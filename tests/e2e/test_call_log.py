"""The servers' own record can show what the end-to-end tests assert never happens: reached directly, a
reference server records every copy of a repeated forwarding header and an Authorization header, so the
audit check (tests/e2e/audit.py) would see a client's copies had the gateway or the router passed them."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp_types import CLIENT_CAPABILITIES_META_KEY, PROTOCOL_VERSION_META_KEY

from tests.e2e.audit import ServerCall, check, json_lines
from tests.e2e.gateway import MODERN, request
from tests.examples.running import reference_server

pytestmark = pytest.mark.e2e


def test_a_server_records_every_copy_of_the_forwarding_headers_and_the_token(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    with reference_server(
        "units", "--replica-id", "units-direct", "--call-log", str(log), log_dir=tmp_path
    ) as units:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": "list_units",
                "arguments": {},
                "_meta": {PROTOCOL_VERSION_META_KEY: MODERN, CLIENT_CAPABILITIES_META_KEY: {}},
            },
        }
        status, _, answer = request(
            f"http://127.0.0.1:{units.port}/mcp",
            None,
            "a-token",
            body,
            [
                ("MCP-Protocol-Version", MODERN),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "list_units"),
                ("X-Request-ID", "gateway-id"),
                ("X-Request-ID", "client-id"),
                ("X-Forwarded-For", "127.0.0.1"),
                ("X-Forwarded-For", "203.0.113.66"),
                ("Forwarded", "for=203.0.113.66"),
            ],
        )
    assert status == 200, answer
    (entry,), _ = json_lines(log)
    call = ServerCall.from_line("units", entry)
    assert (call.method, call.tool, call.replica) == ("tools/call", "list_units", "units-direct")
    assert call.forwarding["x-request-id"] == ["gateway-id", "client-id"]
    assert call.forwarding["x-forwarded-for"] == ["127.0.0.1", "203.0.113.66"]
    assert call.forwarding["forwarded"] == ["for=203.0.113.66"]
    assert call.repeated == {"x-request-id", "x-forwarded-for"} and "authorization" in call.headers
    problems = check([], [call], recorded={"units"}).problems
    assert len(problems) == 5, problems
