"""What the router's tests share: an identity provider that signs real tokens, and router configurations."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcpfleet.router.local import RunningRouter

ISSUER = "https://id.test.example"
AUDIENCE_PREFIX = "https://mcp.test.example/servers/"


class Issuer:
    """Signs tokens as an identity provider would, with a key made for the test run."""

    def __init__(self, algorithm: str = "RS256") -> None:
        self.algorithm = algorithm
        if algorithm.startswith(("RS", "PS")):
            self.private_key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            self.private_key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(algorithm)
        self.public_pem = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def claims(
        self, server: str, subject: str = "alice", roles: Any = "engineer", **extra: Any
    ) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE_PREFIX + server,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        if roles is not None:
            claims["roles"] = roles
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not DROP}

    def token(self, server: str, subject: str = "alice", roles: Any = "engineer", **extra: Any) -> str:
        return jwt.encode(
            self.claims(server, subject, roles, **extra), self.private_key, algorithm=self.algorithm
        )


DROP = object()
"""A claim value meaning: leave this claim out."""


def auth_section(algorithm: str = "RS256") -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "algorithm": algorithm,
        "audiencePrefix": AUDIENCE_PREFIX,
        "rolesClaim": "roles",
        "subjectClaim": "sub",
    }


def server_entry(
    name: str,
    addresses: Sequence[str],
    tools: Sequence[str],
    access: Sequence[Mapping[str, Any]],
    stateless: bool = False,
    transport: str = "streamable-http",
    path: str = "/mcp",
) -> dict[str, Any]:
    public = f"/servers/{name}/mcp" if transport == "streamable-http" else f"/servers/{name}/sse"
    return {
        "publicPath": public,
        "transport": transport,
        "upstream": {"addresses": list(addresses), "path": path},
        "stateless": stateless,
        "tools": list(tools),
        "access": [dict(rule) for rule in access],
    }


def router_config(servers: Mapping[str, Mapping[str, Any]], algorithm: str = "RS256") -> dict[str, Any]:
    return {
        "environment": "test",
        "auth": auth_section(algorithm),
        "maxBodyBytes": 65536,
        # The reference servers' tools carry no pins here: served, as in dev. Tests of pins set their own.
        "unpinnedTools": "serve",
        "servers": dict(servers),
    }


NOTES_TOOLS = ("add_note", "list_notes", "search_notes", "delete_note")
UNITS_TOOLS = ("convert", "calculate", "list_units")
TEXT_TOOLS = ("word_count", "slugify", "digest", "change_case")
# support may add and list notes; engineers may do everything.
NOTES_ACCESS = (
    {"tools": ["add_note", "list_notes"], "roles": ["support", "engineer"]},
    {"tools": ["*"], "roles": ["engineer"]},
)


class AuditLines:
    """The audit sink of an in-process router (`router_thread(..., audit=...)`): every line it wrote."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def __call__(self, line: bytes) -> None:
        self.lines.append(json.loads(line))

    def of(self, request_id: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["request_id"] == request_id]


def post_message(
    router: RunningRouter, path: str, token: str, message: Mapping[str, Any], request_id: str | None = None
) -> tuple[int, bytes]:
    """One JSON-RPC message POSTed to the router as an MCP client sends it: the status and the raw answer."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    connection = http.client.HTTPConnection(router.host, router.port, timeout=10)
    try:
        connection.request("POST", path, json.dumps(message).encode(), headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
