"""One MCP message read strictly: its JSON-RPC envelope, method, tool, and agreement with routing headers.

The method and tool come from the parsed body only; `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version`,
where a client sends them, must agree with it exactly, or the message is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    decode_header_value,
)
from mcp_types import PROTOCOL_VERSION_META_KEY
from mcp_types.jsonrpc import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR
from mcp_types.methods import SPEC_CLIENT_METHODS, SPEC_CLIENT_NOTIFICATION_METHODS
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, KNOWN_PROTOCOL_VERSIONS

from mcpfleet.router import strictjson

# Codes of the router's own refusals that JSON-RPC does not define (docs/router.md).
UNAUTHORIZED: Final = -32001
FORBIDDEN: Final = -32003
INTERNAL_ERROR: Final = -32603
# The gateway's code for its 429s (components/gateway/config.py), used for the router's own on /mcp.
RATE_LIMITED: Final = -32029

# Client -> server methods the router forwards: every request and notification the SDK knows a client
# sends, in any protocol revision. Anything else (custom methods, server -> client methods) is refused.
REQUEST_METHODS: Final = SPEC_CLIENT_METHODS
NOTIFICATION_METHODS: Final = SPEC_CLIENT_NOTIFICATION_METHODS
ROUTING_HEADERS: Final = (MCP_METHOD_HEADER, MCP_NAME_HEADER, MCP_PROTOCOL_VERSION_HEADER)

Era = Literal["modern", "legacy"]
Kind = Literal["request", "notification", "response"]
RequestId = str | int


@dataclass
class Refusal(Exception):
    """A request the router answers itself: HTTP status, JSON-RPC error, and the refusal's metric reason."""

    status: int
    code: int
    message: str
    reason: str
    id: RequestId | None = None
    method: str | None = None
    """The method a refused message named, for the audit record."""

    def body(self) -> bytes:
        return strictjson.dumps(
            {"jsonrpc": "2.0", "id": self.id, "error": {"code": self.code, "message": self.message}}
        )


@dataclass(frozen=True)
class Message:
    """A message as the router read it, and the canonical bytes it forwards."""

    kind: Kind
    id: RequestId | None
    method: str | None
    """None for responses (a client answering a server's request)."""
    params: dict[str, Any] | None
    tool: str | None
    """The tool a `tools/call` names, else None."""
    body: bytes


_REQUEST_KEYS: Final = frozenset({"jsonrpc", "id", "method", "params"})
_RESULT_KEYS: Final = frozenset({"jsonrpc", "id", "result"})
_ERROR_KEYS: Final = frozenset({"jsonrpc", "id", "error"})


def _valid_id(value: Any) -> bool:
    # bool is an int in Python; JSON-RPC ids are strings or integers here (no floats, no null).
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def read_message(data: bytes) -> Message:
    """Parse and classify one JSON-RPC message, or raise Refusal (400 with the table's code)."""
    try:
        document, canonical = strictjson.parse(data)
    except strictjson.NotStrictJson as error:
        raise Refusal(400, PARSE_ERROR, f"Parse error: {error}", "parse") from None
    if isinstance(document, list):
        raise Refusal(400, INVALID_REQUEST, "Invalid Request: batches are not accepted", "batch")
    if not isinstance(document, dict):
        raise Refusal(400, INVALID_REQUEST, "Invalid Request: not a JSON-RPC message", "envelope")
    raw_id = document.get("id")
    request_id = raw_id if _valid_id(raw_id) else None
    if document.get("jsonrpc") != "2.0":
        raise Refusal(400, INVALID_REQUEST, 'Invalid Request: jsonrpc must be "2.0"', "envelope", request_id)
    if "method" in document:
        return _request(document, request_id, canonical)
    return _response(document, request_id, canonical)


def _request(document: dict[str, Any], request_id: RequestId | None, canonical: bytes) -> Message:
    if not document.keys() <= _REQUEST_KEYS:
        raise Refusal(
            400, INVALID_REQUEST, "Invalid Request: unknown envelope member", "envelope", request_id
        )
    method = document["method"]
    if not isinstance(method, str):
        raise Refusal(
            400, INVALID_REQUEST, "Invalid Request: method must be a string", "envelope", request_id
        )
    kind: Kind = "request" if "id" in document else "notification"
    if kind == "request" and request_id is None:
        raise Refusal(400, INVALID_REQUEST, "Invalid Request: id must be a string or an integer", "envelope")
    params = document.get("params")
    if "params" in document and not isinstance(params, dict):
        raise Refusal(
            400, INVALID_REQUEST, "Invalid Request: params must be an object", "envelope", request_id
        )
    allowed = REQUEST_METHODS if kind == "request" else NOTIFICATION_METHODS
    if method not in allowed:
        raise Refusal(400, METHOD_NOT_FOUND, "Method not found", "method", request_id, method)
    tool: str | None = None
    if method == "tools/call":
        name = params.get("name") if params is not None else None
        if not isinstance(name, str) or not name:
            raise Refusal(
                400, INVALID_PARAMS, "Invalid params: tools/call needs a tool name", "envelope", request_id
            )
        arguments = params.get("arguments") if params is not None else None
        if arguments is not None and not isinstance(arguments, dict):
            raise Refusal(
                400, INVALID_PARAMS, "Invalid params: arguments must be an object", "envelope", request_id
            )
        tool = name
    return Message(kind, request_id, method, params, tool, canonical)


def _response(document: dict[str, Any], request_id: RequestId | None, canonical: bytes) -> Message:
    keys = document.keys()
    if request_id is None or keys not in (_RESULT_KEYS, _ERROR_KEYS):
        raise Refusal(
            400, INVALID_REQUEST, "Invalid Request: not a request, notification or response", "envelope"
        )
    if "result" in document and not isinstance(document["result"], dict):
        raise Refusal(
            400, INVALID_REQUEST, "Invalid Request: result must be an object", "envelope", request_id
        )
    if "error" in document:
        error = document["error"]
        code = error.get("code") if isinstance(error, dict) else None
        if not isinstance(error, dict) or isinstance(code, bool) or not isinstance(code, int):
            raise Refusal(400, INVALID_REQUEST, "Invalid Request: malformed error", "envelope", request_id)
        if not isinstance(error.get("message"), str):
            raise Refusal(400, INVALID_REQUEST, "Invalid Request: malformed error", "envelope", request_id)
    return Message("response", request_id, None, None, None, canonical)


def single(
    headers: Mapping[str, Sequence[str]], name: str, request_id: RequestId | None = None
) -> str | None:
    """The one value of a header, None when absent; refused when repeated (readers would disagree)."""
    values = headers.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise Refusal(
            400,
            INVALID_REQUEST,
            f"Invalid Request: {name} header appears more than once",
            "header",
            request_id,
        )
    return values[0]


def era_of(
    headers: Mapping[str, Sequence[str]], request_id: RequestId | None = None
) -> tuple[Era, str | None]:
    """The protocol era as the servers decide it (the MCP-Protocol-Version header), and that header."""
    version = single(headers, MCP_PROTOCOL_VERSION_HEADER, request_id)
    if version is None:
        return "legacy", None
    if version not in KNOWN_PROTOCOL_VERSIONS:
        raise Refusal(
            400, INVALID_REQUEST, "Invalid Request: unknown MCP-Protocol-Version", "header", request_id
        )
    return ("legacy" if version in HANDSHAKE_PROTOCOL_VERSIONS else "modern"), version


def check_routing_headers(message: Message, headers: Mapping[str, Sequence[str]]) -> Era:
    """Every routing header present agrees with the body, exactly once each; returns the era."""
    rid = message.id
    era, version = era_of(headers, rid)
    method_header = single(headers, MCP_METHOD_HEADER, rid)
    name_header = single(headers, MCP_NAME_HEADER, rid)

    def disagree(what: str) -> Refusal:
        return Refusal(
            400, INVALID_REQUEST, f"Invalid Request: {what} does not match the body", "header", rid
        )

    if method_header is not None and method_header != message.method:
        raise disagree(MCP_METHOD_HEADER)
    name_key = NAME_BEARING_METHODS.get(message.method or "")
    if name_header is not None:
        body_name = (
            message.params.get(name_key) if name_key is not None and message.params is not None else None
        )
        if body_name is None or decode_header_value(name_header) != body_name:
            raise disagree(MCP_NAME_HEADER)
    meta = message.params.get("_meta") if message.params is not None else None
    body_version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
    if era == "modern" and message.kind != "response" and body_version != version:
        raise disagree(MCP_PROTOCOL_VERSION_HEADER)
    if body_version is not None and body_version != version:
        # A body claiming a revision the transport header does not name would be served as another era.
        raise disagree(MCP_PROTOCOL_VERSION_HEADER)
    return era
