"""The attacker's kit: a caller holding a valid token and a role that may not run one tool, the bytes they
send through the gateway, and the same bytes sent straight to a server (to show a trick is a real weapon
when nothing but the server reads it)."""

from __future__ import annotations

import json
import re
import secrets
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tests.e2e.attacks import wire
from tests.e2e.attacks.stack import Stack
from tests.e2e.attacks.wire import Exchange, Headers
from tests.e2e.audit import ServerCall

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
MODERN_META = (
    ',"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    '"io.modelcontextprotocol/clientCapabilities":{},'
    '"io.modelcontextprotocol/clientInfo":{"name":"attacker","version":"0"}}'
)
INITIALIZE = (
    '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
    '"capabilities":{},"clientInfo":{"name":"attacker","version":"0"}}}'
)
INITIALIZED = '{"jsonrpc":"2.0","method":"notifications/initialized"}'
# A forwarded tool call: the honest message a template's tricks are made of.
CALL = '{"jsonrpc":"2.0","id":$ID,"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS$META}}'
ALLOWED_CALL = (
    '{"jsonrpc":"2.0","id":$ID,"method":"tools/call",'
    '"params":{"name":"$ALLOWED","arguments":$ALLOWED_ARGS$META}}'
)
REQUEST_ID = 7
Era = Literal["legacy", "modern"]


@dataclass(frozen=True)
class Target:
    """A server, the protocol era spoken to it, the attacker's roles there, the tool those roles may not
    run and one they may."""

    server: str
    era: Era
    roles: str
    forbidden: str
    forbidden_args: str
    allowed: str
    allowed_args: str
    escaped: str
    """The forbidden tool's name with one character written as a JSON \\u escape."""

    @property
    def path(self) -> str:
        return f"/servers/{self.server}/mcp"


@dataclass(frozen=True)
class Forbid:
    """A server record no case may cause: every given field must match for the record to count."""

    server: str | None = None
    tool: str | None = None
    session: str | None = None
    request_id: str | None = None
    forwarded_for: str | None = None

    def matches(self, call: ServerCall) -> bool:
        seen = {
            "server": call.server,
            "tool": call.tool,
            "session": call.session,
            "request_id": call.request_id,
            "forwarded_for": ",".join(call.forwarding.get("x-forwarded-for", [])) or None,
        }
        wanted = {
            "server": self.server,
            "tool": self.tool,
            "session": self.session,
            "request_id": self.request_id,
            "forwarded_for": self.forwarded_for,
        }
        return all(seen[key] == value for key, value in wanted.items() if value is not None)

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in vars(self).items() if v is not None)


@dataclass(frozen=True)
class Opened:
    """A legacy session as its owner sees it: sealed by the router, bound to the subject."""

    sealed: str
    subject: str


DEFAULT: Any = object()
"""Argument meaning: what the target's era does by default."""

# Values a client has no business choosing; the gateway owns them (docs/router.md).
MARKER_REQUEST_ID = "attacker-chosen-request-id"
MARKER_ADDRESS = "198.51.100.66"


class Kit:
    """One case's attacker: subject, token, session (legacy), and everything sent, for the report."""

    def __init__(self, stack: Stack, target: Target, subject: str, source: str | None = None) -> None:
        self.stack = stack
        self.target = target
        self.subject = subject
        self.source = source
        """The address the attacker connects from."""
        self.exchanges: list[tuple[str, Exchange]] = []
        self.forbids: list[Forbid] = [Forbid(server=target.server, tool=target.forbidden)]
        self.checks: list[Callable[[], str | None]] = []
        self.figures: dict[str, Any] = {}
        """Measurements a case reports (what a flood left behind)."""
        self._session: Opened | None = None
        self._tls: ssl.SSLContext | None = None

    # Tokens

    def claims(
        self, server: str | None = None, subject: str | None = None, roles: Any = DEFAULT, **extra: Any
    ) -> dict[str, Any]:
        return self.stack.issuer.claims(
            server or self.target.server,
            subject or self.subject,
            self.target.roles if roles is DEFAULT else roles,
            **extra,
        )

    def token(
        self, server: str | None = None, subject: str | None = None, roles: Any = DEFAULT, **extra: Any
    ) -> str:
        return self.stack.issuer.sign(self.claims(server, subject, roles, **extra))

    # Sessions

    def open_session(
        self, server: str | None = None, token: str | None = None, subject: str | None = None
    ) -> Opened:
        """initialize and notifications/initialized through the gateway, as a legacy client does."""
        server = server or self.target.server
        subject = subject or self.subject
        token = token or self.token(server=server, subject=subject)
        path = f"/servers/{server}/mcp"
        first = self.send(
            self.post_bytes(INITIALIZE, path=path, token=token, session=None, era="legacy"), "setup"
        )
        reply = first.replies[0] if first.replies else None
        sealed = reply.header("mcp-session-id") if reply else None
        if reply is None or reply.status != 200 or not sealed:
            raise AssertionError(f"could not open a session on {server}:\n{first.describe()}")
        second = self.send(
            self.post_bytes(INITIALIZED, path=path, token=token, session=sealed, era="legacy"), "setup"
        )
        if not second.replies or second.replies[0].status != 202:
            raise AssertionError(f"notifications/initialized refused on {server}:\n{second.describe()}")
        return Opened(sealed, subject)

    def inner_session(self, request_id: str | None, seconds: float = 3.0) -> str:
        """The server's own session id, as the server recorded it for a request (its call log)."""
        deadline = time.monotonic() + seconds
        while request_id is not None and time.monotonic() < deadline:
            for call in self.stack.calls():
                if call.request_id == request_id and call.session:
                    return call.session
            time.sleep(0.05)
        raise AssertionError(f"no server recorded a session for request {request_id}")

    @property
    def session(self) -> Opened:
        if self._session is None:
            self._session = self.open_session()
        return self._session

    # Messages

    def fill(self, template: str | bytes) -> bytes:
        """A body template's bytes: $TOOL, $ARGS, $ALLOWED, $ALLOWED_ARGS, $ESCAPED, $ID and $META
        (the modern era's `_meta`, nothing in the legacy era) replaced; bytes pass unchanged."""
        if isinstance(template, bytes):
            return template
        target = self.target
        values = {
            "$ALLOWED_CALL": ALLOWED_CALL,
            "$CALL": CALL,
        }
        for key, value in values.items():
            template = template.replace(key, value)
        values = {
            "$ALLOWED_ARGS": target.allowed_args,
            "$ALLOWED": target.allowed,
            "$ARGS": target.forbidden_args,
            "$ESCAPED": target.escaped,
            "$TOOL": target.forbidden,
            "$META": MODERN_META if target.era == "modern" else "",
            "$ID": str(REQUEST_ID),
        }
        for key, value in values.items():
            template = template.replace(key, value)
        return template.encode("utf-8", "surrogatepass")

    def headers(
        self,
        *,
        token: str | None,
        session: str | None,
        era: Era,
        extra: Headers = (),
        drop: Iterable[str] = (),
        host: str | None = None,
    ) -> list[tuple[str, str]]:
        """What an honest client of this era sends, with the case's headers in place of any default of the
        same name (several of one name all kept), minus dropped names, then `Connection: close`."""
        defaults: list[tuple[str, str]] = [
            ("Host", host or self.stack.host),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ]
        if token is not None:
            defaults.append(("Authorization", f"Bearer {token}"))
        if era == "legacy":
            if session is not None:
                defaults += [("Mcp-Session-Id", session), ("MCP-Protocol-Version", LEGACY)]
        else:
            defaults += [
                ("MCP-Protocol-Version", MODERN),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", self.target.forbidden),
            ]
        replaced = {name.lower() for name, _ in extra} | {name.lower() for name in drop}
        kept = [(name, value) for name, value in defaults if name.lower() not in replaced]
        return [*kept, *extra, ("Connection", "close")]

    def post_bytes(
        self,
        body: str | bytes,
        headers: Headers = (),
        *,
        drop: Iterable[str] = (),
        path: str | None = None,
        token: str | None = DEFAULT,
        session: str | None = DEFAULT,
        era: Era | None = None,
        host: str | None = None,
        target: str | None = None,
    ) -> bytes:
        era = era or self.target.era
        if token is DEFAULT:
            token = self.token()
        if session is DEFAULT:
            session = self.session.sealed if era == "legacy" else None
        lines = self.headers(token=token, session=session, era=era, extra=headers, drop=drop, host=host)
        return wire.request("POST", target or path or self.target.path, lines, self.fill(body))

    # The wire

    def tls(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = self.stack.tls()
        return self._tls

    def send(
        self,
        data: bytes | Sequence[bytes],
        label: str = "attack",
        *,
        gateway: int = 0,
        idle: float = wire.READ_IDLE_SECONDS,
        pause: float = 0.0,
        expect_replies: int | None = None,
    ) -> Exchange:
        address = self.stack.gateways[gateway].address
        sock = wire.connect_tls(address, self.stack.port, self.tls(), self.stack.host, 10, self.source)
        result = wire.exchange(sock, data, idle=idle, pause=pause, expect_replies=expect_replies)
        self.exchanges.append((label, result))
        return result

    def post(self, body: str | bytes, headers: Headers = (), **options: Any) -> Exchange:
        gateway = options.pop("gateway", 0)
        return self.send(self.post_bytes(body, headers, **options), gateway=gateway)

    # Straight to a server

    def direct(self, body: bytes, headers: Headers, session: str | None) -> tuple[str, Exchange]:
        """The message as the case sent it, to the target's first replica: no gateway, no router. The
        request id marks the server's record of it."""
        replica = self.stack.replicas[self.target.server][0]
        request_id = f"direct-{secrets.token_hex(8)}"
        routing = {"authorization", "mcp-session-id", "connection", "x-request-id", "host"}
        lines = [("Host", self.stack.host), ("X-Request-ID", request_id)]
        lines += [(n, v) for n, v in headers if n.lower() not in routing]
        if session is not None:
            lines.append(("Mcp-Session-Id", session))
        lines.append(("Connection", "close"))
        sock = wire.connect_plain(replica.address, replica.port, timeout=10)
        return request_id, wire.exchange(sock, wire.request("POST", "/mcp", lines, body), expect_replies=1)

    def direct_session(self) -> str:
        """A session opened straight at the target's first replica (the server's own id)."""
        replica = self.stack.replicas[self.target.server][0]
        lines = [
            ("Host", self.stack.host),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Connection", "close"),
        ]
        sock = wire.connect_plain(replica.address, replica.port, timeout=10)
        first = wire.exchange(
            sock, wire.request("POST", "/mcp", lines, INITIALIZE.encode()), expect_replies=1
        )
        inner = first.replies[0].header("mcp-session-id") if first.replies else None
        if inner is None:
            raise AssertionError(f"no direct session on {replica.label}:\n{first.describe()}")
        lines += [("Mcp-Session-Id", inner), ("MCP-Protocol-Version", LEGACY)]
        sock = wire.connect_plain(replica.address, replica.port, timeout=10)
        wire.exchange(sock, wire.request("POST", "/mcp", lines, INITIALIZED.encode()), expect_replies=1)
        return inner


def random_token(size: int = 32) -> str:
    return secrets.token_urlsafe(size)


def flip(sealed: str) -> str:
    """The sealed id with one character of its ciphertext changed (still valid base64url)."""
    index = len(sealed) // 2
    swapped = "A" if sealed[index] != "A" else "B"
    return sealed[:index] + swapped + sealed[index + 1 :]


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def issued_by_gateway(request_id: str | None) -> bool:
    """HAProxy's unique ids are UUIDs (`unique-id-format %[uuid()]`)."""
    return request_id is not None and bool(_UUID.fullmatch(request_id))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
