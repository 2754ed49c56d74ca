"""JSON-RPC envelopes and routing headers: what is refused, with which status and code, and what passes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mcpfleet.router.messages import Message, Refusal, check_routing_headers, read_message

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add_note", "arguments": {}}}
MODERN = "2026-07-28"
META = "io.modelcontextprotocol/protocolVersion"


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def refusal(data: bytes) -> Refusal:
    with pytest.raises(Refusal) as caught:
        read_message(data)
    return caught.value


ENVELOPES = {
    "batch": ([CALL], -32600),
    "empty batch": ([], -32600),
    "string": ("tools/call", -32600),
    "number": (1, -32600),
    "null": (None, -32600),
    "no jsonrpc": ({"id": 1, "method": "ping"}, -32600),
    "jsonrpc 1.0": ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, -32600),
    "jsonrpc as number": ({"jsonrpc": 2.0, "id": 1, "method": "ping"}, -32600),
    "id true": ({**CALL, "id": True}, -32600),
    "id false": ({**CALL, "id": False}, -32600),
    "id float": ({**CALL, "id": 1.5}, -32600),
    "id null": ({**CALL, "id": None}, -32600),
    "id object": ({**CALL, "id": {"a": 1}}, -32600),
    "method not a string": ({"jsonrpc": "2.0", "id": 1, "method": ["tools/call"]}, -32600),
    "params an array": ({**CALL, "params": ["add_note"]}, -32600),
    "params a string": ({**CALL, "params": "add_note"}, -32600),
    "params null": ({**CALL, "params": None}, -32600),
    "unknown member": ({**CALL, "extra": 1}, -32600),
    "custom method": ({"jsonrpc": "2.0", "id": 1, "method": "admin/exec", "params": {}}, -32601),
    "tasks method": ({"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {}}, -32601),
    "server method": ({"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage", "params": {}}, -32601),
    "case-changed method": ({**CALL, "method": "Tools/call"}, -32601),
    "method with spaces": ({**CALL, "method": "tools/call "}, -32601),
    "tools/call as notification": ({k: v for k, v in CALL.items() if k != "id"}, -32601),
    "notification as request": ({"jsonrpc": "2.0", "id": 1, "method": "notifications/initialized"}, -32601),
    "tools/call without name": ({**CALL, "params": {"arguments": {}}}, -32602),
    "tool name not a string": ({**CALL, "params": {"name": ["add_note"]}}, -32602),
    "empty tool name": ({**CALL, "params": {"name": ""}}, -32602),
    "arguments not an object": ({**CALL, "params": {"name": "add_note", "arguments": [1]}}, -32602),
    "response with both": ({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}}, -32600),
    "response without id": ({"jsonrpc": "2.0", "result": {}}, -32600),
    "response with null id": ({"jsonrpc": "2.0", "id": None, "result": {}}, -32600),
    "result not an object": ({"jsonrpc": "2.0", "id": 1, "result": 1}, -32600),
    "error without code": ({"jsonrpc": "2.0", "id": 1, "error": {"message": "x"}}, -32600),
    "error code bool": ({"jsonrpc": "2.0", "id": 1, "error": {"code": True, "message": "x"}}, -32600),
}


@pytest.mark.parametrize(("value", "code"), ENVELOPES.values(), ids=list(ENVELOPES))
def test_envelope_refused(value: Any, code: int) -> None:
    refused = refusal(body(value))
    assert (refused.status, refused.code) == (400, code)
    answer = json.loads(refused.body())
    assert answer["jsonrpc"] == "2.0" and answer["error"]["code"] == code


def test_parse_errors_are_32700() -> None:
    refused = refusal(b'{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}')
    assert (refused.status, refused.code, refused.id) == (400, -32700, None)


def test_refusal_answers_with_the_request_id() -> None:
    assert refusal(body({**CALL, "method": "admin/exec"})).id == 1
    assert refusal(body({**CALL, "id": "abc", "params": {"name": 1}})).id == "abc"


def test_tool_and_canonical_body_come_from_the_parse() -> None:
    message = read_message(
        b'{"jsonrpc":"2.0","id":7,"method":"tools\\/call","params":{"\\u006eame":"digest"}}'
    )
    assert (message.kind, message.method, message.tool, message.id) == ("request", "tools/call", "digest", 7)
    assert message.body == b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"digest"}}'


@pytest.mark.parametrize(
    "value",
    [
        {"jsonrpc": "2.0", "id": "s1", "result": {}},
        {"jsonrpc": "2.0", "id": 3, "error": {"code": -32601, "message": "no"}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
    ],
)
def test_accepted(value: Any) -> None:
    read_message(body(value))


def check(message: Message, **headers: str | list[str]) -> str:
    folded = {k.replace("_", "-"): v if isinstance(v, list) else [v] for k, v in headers.items()}
    return check_routing_headers(message, folded)


def modern_call(tool: str = "add_note") -> Message:
    return read_message(body({**CALL, "params": {"name": tool, "_meta": {META: MODERN}}}))


HEADER_TRICKS = {
    "method header says ping": {"mcp_method": "ping"},
    "method header empty": {"mcp_method": ""},
    "method header comma list": {"mcp_method": "tools/call, ping"},
    "method header twice": {"mcp_method": ["tools/call", "tools/call"]},
    "method header other case": {"mcp_method": "Tools/Call"},
    "name header names another tool": {"mcp_name": "list_notes"},
    "name header empty": {"mcp_name": ""},
    "name header comma list": {"mcp_name": "add_note,list_notes"},
    "name header twice": {"mcp_name": ["add_note", "add_note"]},
    "name header base64 of another tool": {"mcp_name": "=?base64?bGlzdF9ub3Rlcw==?="},
    "name header malformed base64": {"mcp_name": "=?base64?!!?="},
    "version header unknown": {"mcp_protocol_version": "2099-01-01"},
    "version header empty": {"mcp_protocol_version": ""},
    "version header twice": {"mcp_protocol_version": ["2025-11-25", "2025-11-25"]},
    "version header comma list": {"mcp_protocol_version": "2025-11-25, 2026-07-28"},
}


@pytest.mark.parametrize("headers", HEADER_TRICKS.values(), ids=list(HEADER_TRICKS))
def test_routing_header_tricks_refused(headers: dict[str, Any]) -> None:
    message = read_message(body(CALL))
    with pytest.raises(Refusal) as caught:
        check(message, **headers)
    assert (caught.value.status, caught.value.code, caught.value.id) == (400, -32600, 1)


def test_headers_that_agree_pass_in_both_eras() -> None:
    legacy = read_message(body(CALL))
    assert check(legacy) == "legacy"
    assert (
        check(legacy, mcp_protocol_version="2025-11-25", mcp_method="tools/call", mcp_name="add_note")
        == "legacy"
    )
    encoded = "=?base64?" + base64.b64encode(b"add_note").decode() + "?="
    assert (
        check(modern_call(), mcp_protocol_version=MODERN, mcp_method="tools/call", mcp_name=encoded)
        == "modern"
    )
    # Modern requests may omit the method and name headers: the router sends them, rebuilt from the body.
    assert check(modern_call(), mcp_protocol_version=MODERN) == "modern"


def test_name_header_on_a_method_that_names_nothing() -> None:
    ping = read_message(body({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
    with pytest.raises(Refusal):
        check(ping, mcp_name="ping")


def test_method_header_on_a_response() -> None:
    response = read_message(body({"jsonrpc": "2.0", "id": 1, "result": {}}))
    with pytest.raises(Refusal):
        check(response, mcp_method="tools/call")


def test_protocol_version_header_and_body_must_agree() -> None:
    with pytest.raises(Refusal):  # modern transport, body without the version
        check(read_message(body(CALL)), mcp_protocol_version=MODERN)
    with pytest.raises(Refusal):  # body claims modern, transport says nothing (a server would read legacy)
        check(modern_call())
    with pytest.raises(Refusal):  # body claims modern, transport says legacy
        check(modern_call(), mcp_protocol_version="2025-11-25")
