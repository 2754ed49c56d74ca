# ruff: noqa: E501  (the corpus is a table: one case per line, each line one trick)
"""The attacker's notebook: one case per trick, named for the trick.

Every case is played by a caller holding a valid token whose roles may not run one tool: `support` may add,
list and search notes but not `delete_note`; `support` may echo on server-everything but not `get-env`,
which prints the server's whole environment (examples/catalog). Each case says what it sends and what it
must come to; the runner (test_corpus.py) checks it against what the servers themselves recorded and
against the router's audit records.
"""

from __future__ import annotations

import base64
import gzip
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.attacks import forge, wire
from tests.e2e.attacks.cases import (
    Answered,
    Case,
    Closed,
    Expectation,
    Forwarded,
    Post,
    Raw,
    Refused,
    Served,
    Steps,
    case,
)
from tests.e2e.attacks.kit import (
    LEGACY,
    MARKER_ADDRESS,
    MARKER_REQUEST_ID,
    MODERN,
    Forbid,
    Kit,
    Opened,
    Target,
    flip,
)
from tests.e2e.attacks.wire import Exchange

NOTES = Target(
    "notes",
    "legacy",
    "support",
    "delete_note",
    '{"id":1}',
    "add_note",
    '{"text":"corpus"}',
    r"delete\u005fnote",
)
NOTES_MODERN = Target(
    "notes",
    "modern",
    "support",
    "delete_note",
    '{"id":1}',
    "add_note",
    '{"text":"corpus"}',
    r"delete\u005fnote",
)
EVERYTHING = Target(
    "everything", "legacy", "support", "get-env", "{}", "echo", '{"message":"corpus"}', r"get\u002denv"
)

CATEGORIES = (
    "routing-headers",
    "duplicate-keys",
    "escaped-keys",
    "escaped-values",
    "non-standard-json",
    "bodies",
    "batches",
    "methods",
    "sessions",
    "roles",
    "tokens",
    "paths",
    "smuggling",
    "controls",
)

# What the refusals look like (docs/router.md, "Refusals").
PARSE = Refused(400, -32700, "router")
INVALID = Refused(400, -32600, "router")
NO_METHOD = Refused(400, -32601, "router")
BAD_PARAMS = Refused(400, -32602, "router")
FORBIDDEN = Refused(403, -32003, "router")
ROUTER_401 = Refused(401, -32001, "router")
GATEWAY_401 = Refused(401, -32001, "haproxy")
NO_SERVER = Refused(
    404,
    -32600,
    "haproxy",
    "HAProxy answers 404 for a path that is not exactly a server's public path, before any token check"
    " or MCP answer (docs/router.md: unknown server)",
)
CHUNKED = Refused(
    411,
    -32600,
    "haproxy",
    "HAProxy refuses any Transfer-Encoding before buffering (411 Length Required): a body must declare"
    " its length so the size limit holds",
)
TOO_LARGE = Refused(
    413,
    -32600,
    "haproxy",
    "HAProxy refuses a declared Content-Length over maxBodyBytes (1 MiB) before reading it (413), and"
    " closes with the body unread",
    or_reset=True,
)
CONTROL_BYTES = Refused(
    400,
    -32600,
    "haproxy",
    "HAProxy 2.6's parser passes control bytes inside header values through; the gateway refuses them itself"
    " (the router's HTTP server would answer in words of its own, unaudited)",
)
HTTP_GARBAGE = Refused(
    400,
    None,
    "haproxy",
    "HAProxy's HTTP/1 parser refuses the request itself: its stock 400 page, no MCP answer",
)


# Bodies


def call_with(params: str) -> str:
    """A tools/call whose params object is written by hand."""
    return '{"jsonrpc":"2.0","id":$ID,"method":"tools/call","params":{' + params + "}}"


def meta_value(value: str) -> str:
    """The forbidden call carrying value (verbatim JSON text) in params._meta, where any server accepts it."""
    return call_with('"name":"$TOOL","arguments":$ARGS,"_meta":{"x":' + value + "}")


def method_call(method: str) -> str:
    """The forbidden call under another method name (written verbatim into the JSON string)."""
    return (
        '{"jsonrpc":"2.0","id":$ID,"method":"'
        + method
        + '","params":{"name":"$TOOL","arguments":$ARGS$META}}'
    )


def tool_call(tool: str, arguments: str, request_id: str = "$ID") -> str:
    """A plain tools/call of tool with arguments (JSON text)."""
    return call_with('"name":"' + tool + '","arguments":' + arguments).replace("$ID", request_id)


def modern_body(method: str, params: str) -> str:
    return '{"jsonrpc":"2.0","id":$ID,"method":"' + method + '","params":{' + params + "$META}}"


# Tokens an attacker makes


def roles(value: object) -> Callable[[Kit], str]:
    """A genuine token (the issuer's key) whose roles claim is value."""
    return lambda k: k.token(roles=value)


def payload(text: str) -> Callable[[Kit], str]:
    """A genuinely signed token whose payload is written by hand ($SUB, $AUD, $ISS, $NOW, $EXP filled)."""

    def build(k: Kit) -> str:
        claims = k.claims()
        filled = (
            text.replace("$SUB", k.subject)
            .replace("$AUD", claims["aud"])
            .replace("$ISS", claims["iss"])
            .replace("$NOW", str(claims["iat"]))
            .replace("$EXP", str(claims["exp"]))
        )
        return forge.rs256(k.stack.issuer.private_key, {"alg": "RS256", "typ": "JWT"}, filled.encode())

    return build


def engineer(k: Kit, **extra: Any) -> dict[str, Any]:
    """The claims the attacker wishes they had: their own subject, the engineer role."""
    return k.claims(roles="engineer", **extra)


def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def alg_none(alg: str, keep_signature: bool = False) -> Callable[[Kit], str]:
    def build(k: Kit) -> str:
        signature = k.token().split(".")[2] if keep_signature else ""
        return forge.unsigned({"alg": alg, "typ": "JWT"}, engineer(k), signature)

    return build


def hs_confusion(k: Kit) -> str:
    return forge.hs256(k.stack.issuer.public_pem, {"alg": "HS256", "typ": "JWT"}, engineer(k))


def hs_confusion_stripped(k: Kit) -> str:
    return forge.hs256(k.stack.issuer.public_pem.strip(), {"alg": "HS256", "typ": "JWT"}, engineer(k))


def own_key(header_extra: Callable[[rsa.RSAPrivateKey], dict[str, Any]]) -> Callable[[Kit], str]:
    """Signed with the attacker's own RSA key, the header pointing at that key one way or another."""

    def build(k: Kit) -> str:
        key = attacker_key()
        header = {"alg": "RS256", "typ": "JWT", **header_extra(key)}
        return forge.rs256(key, header, engineer(k))

    return build


def embedded_jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    return {"jwk": forge.jwk(key.public_key())}


def x5c_chain(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "id.mcp.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return {"x5c": [base64.b64encode(der).decode()]}


def kid_traversal(k: Kit) -> str:
    # The classic: a kid naming an empty file, an HMAC keyed with its (empty) content.
    header = {"alg": "HS256", "typ": "JWT", "kid": "../../../../../../../../dev/null"}
    return forge.hs256(b"", header, engineer(k))


def other_algorithm(alg: str) -> Callable[[Kit], str]:
    """The issuer's real key, but an algorithm other than the pinned RS256."""

    def build(k: Kit) -> str:
        import jwt

        return jwt.encode(engineer(k), k.stack.issuer.private_key, algorithm=alg)

    return build


def real_key(**header: object) -> Callable[[Kit], str]:
    """The issuer's real key and algorithm, extra JOSE header members."""
    return lambda k: k.stack.issuer.sign(engineer(k), header)


def claims(**values: object) -> Callable[[Kit], str]:
    """Genuinely signed, engineer role, claims replaced by values (None removes a claim)."""

    def build(k: Kit) -> str:
        data = {**engineer(k), **values}
        return k.stack.issuer.sign({key: value for key, value in data.items() if value is not None})

    return build


def stripped_signature(k: Kit) -> str:
    header, body, _ = k.stack.issuer.sign(engineer(k)).split(".")
    return f"{header}.{body}."


def tampered_payload(k: Kit) -> str:
    header, _, signature = k.token().split(".")
    return f"{header}.{forge.b64url(forge.compact(engineer(k)))}.{signature}"


def padded_segments(k: Kit) -> str:
    # Standard base64 with padding: some decoders accept it, JWS (RFC 7515) does not.
    header, body, signature = k.stack.issuer.sign(engineer(k)).split(".")

    def pad(part: str) -> str:
        return part + "=" * (-len(part) % 4)

    return f"{pad(header)}.{pad(body)}.{pad(signature)}"


def text_engineer(k: Kit) -> str:
    """A genuine token for the text server, where the attacker is an engineer (text lets engineers run
    everything); the path tricks try to spend it on notes."""
    return k.token(server="text", roles="engineer")


# Sessions


def victim_session(k: Kit, server: str, roles: str = "engineer") -> tuple[str, Opened, str]:
    """Another caller (victor) opens a session and runs a tool in it (a note, an echo); returns the
    victim's token, the session as the victim holds it, and the server's own id for it. Nothing may run
    in that session while the attacker tries."""
    subject = f"victor-{k.subject}"
    token = k.token(server=server, subject=subject, roles=roles)
    opened = k.open_session(server=server, token=token, subject=subject)
    tool, arguments = (
        ("add_note", '{"text":"victor"}') if server == "notes" else ("echo", '{"message":"victor"}')
    )
    body = tool_call(tool, arguments, request_id="1")
    done = k.send(
        k.post_bytes(body, token=token, session=opened.sealed, path=f"/servers/{server}/mcp"), "setup"
    )
    inner = k.inner_session(done.replies[0].request_id if done.replies else None)
    k.forbids.append(Forbid(server=server, session=inner))
    return token, opened, inner


def still_alive(k: Kit, server: str, token: str, sealed: str) -> None:
    """After the window: the victim's session still works (nobody ended it)."""

    def check() -> str | None:
        body = '{"jsonrpc":"2.0","id":2,"method":"ping"}'
        answer = k.send(
            k.post_bytes(body, token=token, session=sealed, path=f"/servers/{server}/mcp"), "check"
        )
        if not answer.replies or answer.replies[0].status != 200:
            return f"the victim's session no longer works after the attack:\n{answer.describe()}"
        return None

    k.checks.append(check)


def hijack_call(server: str, tool: str, arguments: str, attacker_roles: str) -> Callable[[Kit], Exchange]:
    """The attacker calls tool inside the victim's session with the attacker's own token."""

    def run(k: Kit) -> Exchange:
        _, opened, _ = victim_session(k, server)
        token = k.token(server=server, roles=attacker_roles)
        body = tool_call(tool, arguments)
        return k.send(k.post_bytes(body, token=token, session=opened.sealed, path=f"/servers/{server}/mcp"))

    return run


def hijack_verb(server: str, verb: str) -> Callable[[Kit], Exchange]:
    """DELETE (end) or GET (listen to) the victim's session with the attacker's own token."""

    def run(k: Kit) -> Exchange:
        victim_token, opened, _ = victim_session(k, server)
        sealed = opened.sealed
        lines = [
            ("Host", k.stack.host),
            ("Authorization", f"Bearer {k.token(server=server)}"),
            ("Accept", "text/event-stream" if verb == "GET" else "application/json, text/event-stream"),
            ("Mcp-Session-Id", sealed),
            ("MCP-Protocol-Version", LEGACY),
            ("Connection", "close"),
        ]
        answer = k.send(wire.request(verb, f"/servers/{server}/mcp", lines), idle=2.0)
        still_alive(k, server, victim_token, sealed)
        return answer

    return run


def with_session_id(value: Callable[[Kit], str], *, also_own: bool = False) -> Callable[[Kit], Exchange]:
    """The allowed call under a session id of the attacker's making: the tool would run if the id
    opened a session, so any refusal is the session check's (and the allowed tool must not run)."""

    def run(k: Kit) -> Exchange:
        session = value(k)
        headers = [("Mcp-Session-Id", session)]
        if also_own:
            headers = [("Mcp-Session-Id", k.session.sealed), ("Mcp-Session-Id", session)]
        k.forbids.append(Forbid(server=k.target.server, tool=k.target.allowed))
        return k.post("$ALLOWED_CALL", [*headers, ("MCP-Protocol-Version", LEGACY)], session=None)

    return run


def victims_inner_id(k: Kit) -> str:
    return victim_session(k, "notes")[2]


def session_from(server: str) -> Callable[[Kit], str]:
    return lambda k: k.open_session(server=server).sealed


def random_session_flood(k: Kit) -> Exchange:
    """300 session ids of the attacker's making, of every kind: afterwards the routers hold no more
    than before (no series per id, memory flat), the gateways' tables grew by this caller at most, and
    no server heard of any of it."""
    from tests.e2e.attacks import observe

    before = observe.state(k.stack)
    kinds: list[Callable[[], str]] = [
        lambda: "mf1." + secrets.token_urlsafe(120),
        lambda: str(uuid.uuid4()),
        lambda: secrets.token_hex(16),
        lambda: "mf1." + secrets.token_urlsafe(8),
    ]
    last: Exchange | None = None
    for _ in range(6):
        requests = []
        for index in range(50):
            session = kinds[index % len(kinds)]()
            raw = k.post_bytes(
                "$ALLOWED_CALL", [("Mcp-Session-Id", session), ("MCP-Protocol-Version", LEGACY)], session=None
            )
            if index < 49:
                raw = raw.replace(b"Connection: close\r\n", b"Connection: keep-alive\r\n")
            requests.append(raw)
        answer = k.send(b"".join(requests), expect_replies=50, idle=10.0)
        statuses = {reply.status for reply in answer.replies}
        if len(answer.replies) != 50 or statuses != {400}:
            return answer
        last = answer
    k.forbids.append(Forbid(server=k.target.server, tool=k.target.allowed))

    def check() -> str | None:
        after = observe.state(k.stack)
        k.figures["flood"] = observe.growth(before, after)
        return observe.unchanged(before, after)

    k.checks.append(check)
    assert last is not None
    last.replies = last.replies[-1:]
    return last


# Smuggling


def hidden(k: Kit) -> bytes:
    """The request hidden inside another: an allowed call the caller could make openly, with a request id
    and a client address of the attacker's choosing. Should it ever reach a router as a request of its
    own, past the gateway, those values would show in the routers' and servers' records."""
    return k.post_bytes(
        "$ALLOWED_CALL", [("X-Request-ID", MARKER_REQUEST_ID), ("X-Forwarded-For", MARKER_ADDRESS)]
    )


def outer_headers(k: Kit, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [
        ("Host", k.stack.host),
        ("Authorization", f"Bearer {k.token()}"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Session-Id", k.session.sealed),
        ("MCP-Protocol-Version", LEGACY),
        *extra,
    ]


def forbidden_call(k: Kit) -> bytes:
    return k.fill("$CALL")


def cl_te(k: Kit) -> bytes:
    body = b"0\r\n\r\n" + hidden(k)
    lines = outer_headers(k, ("Content-Length", str(len(body))), ("Transfer-Encoding", "chunked"))
    return wire.request("POST", k.target.path, lines, body, length=False)


def te_cl(k: Kit) -> bytes:
    inner = hidden(k)
    body = f"{len(inner):x}\r\n".encode() + inner + b"\r\n0\r\n\r\n"
    lines = outer_headers(k, ("Transfer-Encoding", "chunked"), ("Content-Length", "4"))
    return wire.request("POST", k.target.path, lines, body, length=False)


def te_variant(value: str, name: str = "Transfer-Encoding") -> Callable[[Kit], bytes]:
    """Chunked framing under an obfuscated Transfer-Encoding, Content-Length covering the first chunk only:
    a reader that misses the obfuscation reads the hidden request as the next one."""

    def build(k: Kit) -> bytes:
        call = forbidden_call(k)
        first = f"{len(call):x}\r\n".encode() + call + b"\r\n"
        body = first + b"0\r\n\r\n" + hidden(k)
        lines = outer_headers(k, (name, value), ("Content-Length", str(len(first) + 5)))
        return wire.request("POST", k.target.path, lines, body, length=False)

    return build


def double_length(first: int | None, second: int | None, joined: bool = False) -> Callable[[Kit], bytes]:
    def build(k: Kit) -> bytes:
        call = forbidden_call(k)
        body = call + hidden(k)
        a = len(call) if first is None else first
        b = len(body) if second is None else second
        lengths = (
            [("Content-Length", f"{a}, {b}")]
            if joined
            else [("Content-Length", str(a)), ("Content-Length", str(b))]
        )
        return wire.request("POST", k.target.path, outer_headers(k, *lengths), body, length=False)

    return build


def equal_lengths(k: Kit) -> bytes:
    size = len(forbidden_call(k))
    return double_length(size, size)(k)


def two_authorizations(k: Kit) -> bytes:
    """The attacker's genuine token first (HAProxy checks it), an unsigned engineer token second."""
    own, forged = k.token(), alg_none("none")(k)
    return k.post_bytes("$CALL", [("Authorization", f"Bearer {own}"), ("Authorization", f"Bearer {forged}")])


def obs_fold(k: Kit) -> bytes:
    raw = k.post_bytes("$CALL", [("Mcp-Method", "tools/call")])
    return raw.replace(b"Mcp-Method: tools/call\r\n", b"Mcp-Method: ping\r\n tools/call\r\n")


def obs_fold_request_id(k: Kit) -> bytes:
    raw = k.post_bytes("$ALLOWED_CALL", [("X-Trace", "a")])
    return raw.replace(
        b"X-Trace: a\r\n", b"X-Trace: a\r\n X-Request-ID: " + MARKER_REQUEST_ID.encode() + b"\r\n"
    )


def bare_lf(k: Kit) -> bytes:
    lines = outer_headers(k)
    return wire.request(
        "POST", k.target.path, [*lines, ("Connection", "close")], forbidden_call(k), eol=b"\n"
    )


def http10(k: Kit) -> bytes:
    lines = [*outer_headers(k), ("Connection", "keep-alive")]
    return wire.request("POST", k.target.path, lines, forbidden_call(k), version="HTTP/1.0") + hidden(k)


def expect_continue(k: Kit) -> list[bytes]:
    call = forbidden_call(k)
    head = wire.request(
        "POST",
        k.target.path,
        [
            *outer_headers(k),
            ("Expect", "100-continue"),
            ("Content-Length", str(len(call))),
            ("Connection", "close"),
        ],
        None,
        length=False,
    )
    return [head, call]


def client_forwarding_headers(k: Kit) -> bytes:
    return k.post_bytes(
        "$ALLOWED_CALL",
        [
            ("X-Request-ID", MARKER_REQUEST_ID),
            ("X-Forwarded-For", MARKER_ADDRESS),
            ("Forwarded", f"for={MARKER_ADDRESS}"),
            ("X-Forwarded-Proto", "http"),
        ],
    )


def header_value_with_cr(k: Kit) -> bytes:
    raw = k.post_bytes("$CALL", [("X-Note", "a")])
    return raw.replace(b"X-Note: a", b"X-Note: a\rX-Request-ID: " + MARKER_REQUEST_ID.encode())


def header_value_with(byte: bytes, name: str = "X-Note") -> Callable[[Kit], bytes]:
    """The forbidden call with one control byte inside a header's value."""

    def build(k: Kit) -> bytes:
        raw = k.post_bytes("$CALL", [(name, "a")])
        return raw.replace(f"{name}: a".encode(), f"{name}: a".encode() + byte + b"b")

    return build


def space_before_colon(k: Kit) -> bytes:
    raw = k.post_bytes("$CALL", [("Mcp-Method", "ping")])
    return raw.replace(b"Mcp-Method: ping", b"Mcp-Method : ping")


def pipelined(k: Kit) -> bytes:
    first = k.post_bytes("$ALLOWED_CALL").replace(b"Connection: close\r\n", b"")
    return first + k.post_bytes("$CALL")


def h2_preface(k: Kit) -> bytes:
    return b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + forbidden_call(k)


def websocket_upgrade(k: Kit) -> bytes:
    return k.post_bytes(
        "$CALL",
        [
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", base64.b64encode(secrets.token_bytes(16)).decode()),
            ("Sec-WebSocket-Version", "13"),
        ],
    ).replace(b"Connection: close\r\n", b"")


def huge_header(k: Kit) -> bytes:
    return k.post_bytes("$CALL", [("X-Padding", "a" * 70000)])


def absolute_form(authority: str) -> Callable[[Kit], bytes]:
    def build(k: Kit) -> bytes:
        return k.post_bytes("$CALL", token=text_engineer(k), target=f"https://{authority}/servers/notes/mcp")

    return build


def two_hosts(k: Kit) -> bytes:
    raw = k.post_bytes("$CALL", token=text_engineer(k), path="/servers/text/mcp")
    return raw.replace(b"Host: ", b"Host: evil.example\r\nHost: ", 1)


def path_raw(path: str) -> Callable[[Kit], bytes]:
    """The forbidden call to a path written verbatim, with a genuine engineer token for text."""
    return lambda k: k.post_bytes("$CALL", token=text_engineer(k), target=path)


def too_long_session(k: Kit) -> str:
    return "mf1." + "A" * 4096


def content_length(value: str) -> Callable[[Kit], bytes]:
    def build(k: Kit) -> bytes:
        raw = k.post_bytes("$CALL")
        head, _, body = raw.partition(b"\r\n\r\n")
        head = b"\r\n".join(line for line in head.split(b"\r\n") if not line.startswith(b"Content-Length"))
        return head + f"\r\nContent-Length: {value}\r\n\r\n".encode() + body

    return build


def declared_longer(k: Kit) -> bytes:
    raw = k.post_bytes("$CALL")
    return raw.replace(b"Content-Length: ", b"Content-Length: 1", 1)


def oversized(size: int) -> Callable[[Kit], bytes]:
    def build(k: Kit) -> bytes:
        pad = "x" * size
        return k.post_bytes(call_with('"name":"$TOOL","arguments":$ARGS,"_meta":{"pad":"' + pad + '"}'))

    return build


def past_the_buffer(k: Kit) -> bytes:
    # json_query sees only HAProxy's buffer (16 kB): the tool's name comes after 200 kB of padding.
    pad = "x" * 200_000
    return k.post_bytes(call_with('"_meta":{"pad":"' + pad + '"},"arguments":$ARGS,"name":"$TOOL"'))


def gzip_body(k: Kit) -> bytes:
    return k.post_bytes(gzip.compress(k.fill("$CALL")), [("Content-Encoding", "gzip")])


def utf16_body(k: Kit) -> bytes:
    return k.post_bytes(k.fill("$CALL").decode().encode("utf-16"))


# The corpus


def _routing_headers() -> list[Case]:
    c = "routing-headers"
    # fmt: off
    return [
        case("mcp-method says ping", c, NOTES, Post("$CALL", [("Mcp-Method", "ping")], direct=True), INVALID),
        case("mcp-method empty", c, NOTES, Post("$CALL", [("Mcp-Method", "")], direct=True), INVALID),
        case("mcp-method names initialize", c, NOTES, Post("$CALL", [("Mcp-Method", "initialize")], direct=True), INVALID),
        case("mcp-method comma list tools/call, ping", c, NOTES, Post("$CALL", [("Mcp-Method", "tools/call, ping")], direct=True), INVALID),
        case("mcp-method comma list ping, tools/call", c, NOTES, Post("$CALL", [("Mcp-Method", "ping,tools/call")], direct=True), INVALID),
        case("mcp-method sent twice, ping first", c, NOTES, Post("$CALL", [("Mcp-Method", "ping"), ("Mcp-Method", "tools/call")], direct=True), INVALID),
        case("mcp-method in two letter cases", c, NOTES, Post("$CALL", [("MCP-METHOD", "ping"), ("mcp-method", "tools/call")], direct=True), INVALID),
        case("mcp-method value in another case", c, NOTES, Post("$CALL", [("Mcp-Method", "Tools/Call")], direct=True), INVALID),
        case("mcp-name names the allowed tool", c, NOTES, Post("$CALL", [("Mcp-Name", "$ALLOWED")], direct=True), INVALID),
        case("mcp-name empty", c, NOTES, Post("$CALL", [("Mcp-Name", "")], direct=True), INVALID),
        case("mcp-name comma list", c, NOTES, Post("$CALL", [("Mcp-Name", "add_note,delete_note")], direct=True), INVALID),
        case("mcp-name sent twice, allowed first", c, NOTES, Post("$CALL", [("Mcp-Name", "add_note"), ("Mcp-Name", "delete_note")], direct=True), INVALID),
        case("mcp-name in two letter cases", c, NOTES, Post("$CALL", [("MCP-NAME", "add_note"), ("mcp-name", "delete_note")], direct=True), INVALID),
        case("mcp-name value in another case", c, NOTES, Post("$CALL", [("Mcp-Name", "Delete_Note")], direct=True), INVALID),
        case("mcp-name base64 sentinel of the allowed tool", c, NOTES, Post("$CALL", [("Mcp-Name", "=?base64?YWRkX25vdGU=?=")], direct=True), INVALID),
        case("mcp-name honest: agreeing headers grant nothing", c, NOTES, Post("$CALL", [("Mcp-Method", "tools/call"), ("Mcp-Name", "delete_note")], direct=True), FORBIDDEN),
        case("mcp-protocol-version unknown", c, NOTES, Post("$CALL", [("MCP-Protocol-Version", "2099-01-01")]), INVALID),
        case("mcp-protocol-version empty", c, NOTES, Post("$CALL", [("MCP-Protocol-Version", "")]), INVALID),
        case("mcp-protocol-version comma list", c, NOTES, Post("$CALL", [("MCP-Protocol-Version", "2025-11-25, 2026-07-28")]), INVALID),
        case("mcp-protocol-version sent twice", c, NOTES, Post("$CALL", [("MCP-Protocol-Version", LEGACY), ("MCP-Protocol-Version", MODERN)]), INVALID),
        case("mcp-protocol-version in two letter cases", c, NOTES, Post("$CALL", [("MCP-PROTOCOL-VERSION", LEGACY), ("mcp-protocol-version", LEGACY)]), INVALID),
        case("modern: mcp-name names the allowed tool", c, NOTES_MODERN, Post("$CALL", [("Mcp-Name", "add_note")], direct=False), INVALID),
        case("modern: mcp-method says ping", c, NOTES_MODERN, Post("$CALL", [("Mcp-Method", "ping")], direct=False), INVALID),
        case("modern: mcp-name sent twice", c, NOTES_MODERN, Post("$CALL", [("Mcp-Name", "add_note"), ("Mcp-Name", "delete_note")]), INVALID),
        case("modern header over a body without _meta", c, NOTES_MODERN, Post(call_with('"name":"$TOOL","arguments":$ARGS')), INVALID),
        case("legacy header over a modern body", c, NOTES_MODERN, Post("$CALL", [("MCP-Protocol-Version", LEGACY)]), INVALID),
        case("modern without routing headers", c, NOTES_MODERN, Post("$CALL", drop=("Mcp-Method", "Mcp-Name")), FORBIDDEN),
        case("everything: mcp-name names echo", c, EVERYTHING, Post("$CALL", [("Mcp-Name", "echo")], direct=True), INVALID),
        case("everything: mcp-method says ping", c, EVERYTHING, Post("$CALL", [("Mcp-Method", "ping")], direct=True), INVALID),
    ]
    # fmt: on


def _duplicate_keys() -> list[Case]:
    c = "duplicate-keys"
    # fmt: off
    return [
        case("duplicate method, ping first", c, NOTES, Post('{"jsonrpc":"2.0","id":$ID,"method":"ping","method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
        case("duplicate params, allowed first", c, NOTES, Post('{"jsonrpc":"2.0","id":$ID,"method":"tools/call","params":{"name":"$ALLOWED","arguments":$ALLOWED_ARGS},"params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
        case("duplicate name, allowed first", c, NOTES, Post(call_with('"name":"$ALLOWED","name":"$TOOL","arguments":$ARGS'), direct=True), PARSE),
        case("duplicate jsonrpc", c, NOTES, Post('{"jsonrpc":"1.0","jsonrpc":"2.0","id":$ID,"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
        case("duplicate id", c, NOTES, Post('{"jsonrpc":"2.0","id":"a","id":$ID,"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
        case("duplicate key in arguments", c, NOTES, Post(call_with('"name":"$TOOL","arguments":{"id":2,"id":1}'), direct=True), PARSE),
        case("duplicate key in _meta", c, NOTES, Post(call_with('"name":"$TOOL","arguments":$ARGS,"_meta":{"k":1,"k":2}'), direct=True), PARSE),
        case("duplicate key four levels down", c, NOTES, Post(call_with('"name":"$TOOL","arguments":$ARGS,"_meta":{"a":{"b":{"c":1,"c":2}}}'), direct=True), PARSE),
        case("duplicate name inside arguments", c, NOTES, Post(call_with('"name":"$TOOL","arguments":{"id":1,"name":"add_note","name":"x"}'), direct=True), PARSE),
        case("modern: duplicate name, allowed first", c, NOTES_MODERN, Post(modern_body("tools/call", '"name":"$ALLOWED","name":"$TOOL","arguments":$ARGS'), [("Mcp-Name", "add_note")], direct=False), PARSE),
        case("everything: duplicate name, echo first", c, EVERYTHING, Post(call_with('"name":"$ALLOWED","name":"$TOOL","arguments":$ARGS'), direct=True), PARSE),
        case("everything: duplicate method, ping first", c, EVERYTHING, Post('{"jsonrpc":"2.0","id":$ID,"method":"ping","method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
        case("everything: duplicate params, echo first", c, EVERYTHING, Post('{"jsonrpc":"2.0","id":$ID,"method":"tools/call","params":{"name":"$ALLOWED","arguments":$ALLOWED_ARGS},"params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
    ]
    # fmt: on


def _escaped_keys() -> list[Case]:
    c = "escaped-keys"
    # fmt: off
    return [
        case(r"\u006dethod after method ping", c, NOTES, Post(r'{"jsonrpc":"2.0","id":$ID,"method":"ping","\u006dethod":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
        case(r"\u006Dethod upper-case hex after method ping", c, NOTES, Post(r'{"jsonrpc":"2.0","id":$ID,"method":"ping","\u006Dethod":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
        case(r"n\u0061me after the allowed name", c, NOTES, Post(call_with(r'"name":"$ALLOWED","n\u0061me":"$TOOL","arguments":$ARGS'), direct=True), PARSE),
        case(r"\u0070arams after allowed params", c, NOTES, Post(r'{"jsonrpc":"2.0","id":$ID,"method":"tools/call","params":{"name":"$ALLOWED","arguments":$ALLOWED_ARGS},"\u0070arams":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
        case(r"\u0069d after id", c, NOTES, Post(r'{"jsonrpc":"2.0","id":"a","\u0069d":$ID,"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
        case(r"j\u0073onrpc after jsonrpc", c, NOTES, Post(r'{"jsonrpc":"1.0","j\u0073onrpc":"2.0","id":$ID,"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
        case(r"escaped duplicate in arguments", c, NOTES, Post(call_with(r'"name":"$TOOL","arguments":{"id":2,"\u0069d":1}'), direct=True), PARSE),
        case(r"escaped duplicate in _meta", c, NOTES, Post(call_with(r'"name":"$TOOL","arguments":$ARGS,"_meta":{"k":1,"\u006b":2}'), direct=True), PARSE),
        case(r"\u006dethod alone is still the method", c, NOTES, Post(r'{"jsonrpc":"2.0","id":$ID,"\u006dethod":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), FORBIDDEN),
        case(r"n\u0061me alone is still the name", c, NOTES, Post(call_with(r'"n\u0061me":"$TOOL","arguments":$ARGS'), direct=True), FORBIDDEN),
        case(r"every key escaped", c, NOTES, Post(r'{"\u006a\u0073\u006f\u006e\u0072\u0070\u0063":"2.0","\u0069\u0064":$ID,"\u006d\u0065\u0074\u0068\u006f\u0064":"tools/call","\u0070\u0061\u0072\u0061\u006d\u0073":{"\u006e\u0061\u006d\u0065":"$TOOL","arguments":$ARGS}}', direct=True), FORBIDDEN),
        case(r"everything: n\u0061me after echo", c, EVERYTHING, Post(call_with(r'"name":"$ALLOWED","n\u0061me":"$TOOL","arguments":$ARGS'), direct=True), PARSE),
        case(r"everything: \u006dethod after method ping", c, EVERYTHING, Post(r'{"jsonrpc":"2.0","id":$ID,"method":"ping","\u006dethod":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), PARSE),
    ]
    # fmt: on


def _escaped_values() -> list[Case]:
    c = "escaped-values"
    # fmt: off
    return [
        case(r"tools\/call", c, NOTES, Post(method_call(r"tools\/call"), direct=True), FORBIDDEN),
        case(r"tools\u002fcall", c, NOTES, Post(method_call(r"tools\u002fcall"), direct=True), FORBIDDEN),
        case(r"delete\u005fnote", c, NOTES, Post(call_with(r'"name":"$ESCAPED","arguments":$ARGS'), direct=True), FORBIDDEN),
        case(r"delete\u005Fnote upper-case hex", c, NOTES, Post(call_with(r'"name":"delete\u005Fnote","arguments":$ARGS'), direct=True), FORBIDDEN),
        case(r"\u0064elete_note", c, NOTES, Post(call_with(r'"name":"\u0064elete_note","arguments":$ARGS'), direct=True), FORBIDDEN),
        case("every character of the name escaped", c, NOTES, Post(call_with(r'"name":"\u0064\u0065\u006c\u0065\u0074\u0065\u005f\u006e\u006f\u0074\u0065","arguments":$ARGS'), direct=True), FORBIDDEN),
        case(r"escaped name with mcp-name naming the allowed tool", c, NOTES, Post(call_with(r'"name":"$ESCAPED","arguments":$ARGS'), [("Mcp-Name", "add_note")], direct=True), INVALID),
        case(r"mcp-name carrying the JSON escape literally", c, NOTES, Post(call_with(r'"name":"$ESCAPED","arguments":$ARGS'), [("Mcp-Name", r"delete\u005fnote")], direct=True), INVALID),
        case("modern: escaped name, honest headers", c, NOTES_MODERN, Post(modern_body("tools/call", r'"name":"$ESCAPED","arguments":$ARGS'), direct=True), FORBIDDEN),
        case("fullwidth low line lookalike", c, NOTES, Post(call_with('"name":"delete\uff3fnote","arguments":$ARGS'), direct=False), FORBIDDEN),
        case("name with a trailing NUL", c, NOTES, Post(call_with(r'"name":"delete_note\u0000","arguments":$ARGS'), direct=False), FORBIDDEN),
        case("overlong UTF-8 low line", c, NOTES, Post(b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete\xc1\x9fnote","arguments":{"id":1}}}', direct=False), PARSE),
        case(r"everything: get\u002denv", c, EVERYTHING, Post(call_with(r'"name":"$ESCAPED","arguments":$ARGS'), direct=True), FORBIDDEN),
        case(r"everything: tools\/call", c, EVERYTHING, Post(method_call(r"tools\/call"), direct=True), FORBIDDEN),
    ]
    # fmt: on


def _non_standard_json() -> list[Case]:
    c = "non-standard-json"
    body = (
        '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_note","arguments":{"id":1}}}'
    )
    # fmt: off
    return [
        case("NaN", c, NOTES, Post(meta_value("NaN"), direct=True), PARSE),
        case("Infinity", c, NOTES, Post(meta_value("Infinity"), direct=True), PARSE),
        case("-Infinity", c, NOTES, Post(meta_value("-Infinity"), direct=True), PARSE),
        case("1e400 overflows to infinity", c, NOTES, Post(meta_value("1e400"), direct=True), PARSE),
        case("-1e400", c, NOTES, Post(meta_value("-1e400"), direct=True), PARSE),
        case("integer of 5000 digits", c, NOTES, Post(meta_value("9" * 5000), direct=False), PARSE),
        case("leading byte-order mark", c, NOTES, Post(b"\xef\xbb\xbf" + body.encode(), direct=False), PARSE),
        case("trailing garbage", c, NOTES, Post(body + "x", direct=False), PARSE),
        case("a second document after the first", c, NOTES, Post(body + body, direct=False), PARSE),
        case("block comment", c, NOTES, Post(body.replace('"id":1', '"id":1/* engineer */'), direct=False), PARSE),
        case("line comment", c, NOTES, Post(body.replace('{"id":1}', '{"id":1 // engineer\n}'), direct=False), PARSE),
        case("single quotes", c, NOTES, Post(body.replace('"delete_note"', "'delete_note'"), direct=False), PARSE),
        case("unquoted key", c, NOTES, Post(body.replace('"name"', "name"), direct=False), PARSE),
        case("trailing comma", c, NOTES, Post(body.replace('{"id":1}', '{"id":1,}'), direct=False), PARSE),
        case("lone high surrogate", c, NOTES, Post(meta_value(r'"\ud800"'), direct=False), PARSE),
        case("lone low surrogate", c, NOTES, Post(meta_value(r'"\udc00"'), direct=False), PARSE),
        case("invalid UTF-8 byte", c, NOTES, Post(body.encode().replace(b'"id":1}', b'"id":1,"x":"\xff"}'), direct=False), PARSE),
        case("raw control character in a string", c, NOTES, Post(body.replace('"id":1}', '"id":1,"x":"a\tb"}'), direct=False), PARSE),
        case("hexadecimal number", c, NOTES, Post(body.replace('"id":1', '"id":0x1'), direct=False), PARSE),
        case("nesting 100000 deep", c, NOTES, Post(meta_value("[" * 100_000 + "]" * 100_000), direct=False), PARSE),
        case("everything: lone surrogate", c, EVERYTHING, Post(meta_value(r'"\ud800"'), direct=True), PARSE),
        case("everything: 1e400", c, EVERYTHING, Post(meta_value("1e400"), direct=True), PARSE),
        case("everything: integer of 5000 digits", c, EVERYTHING, Post(meta_value("9" * 5000), direct=True), PARSE),
        case("everything: NaN", c, EVERYTHING, Post(meta_value("NaN"), direct=False), PARSE),
    ]
    # fmt: on


def _bodies() -> list[Case]:
    c = "bodies"
    # fmt: off
    return [
        case("declared length just over the limit", c, NOTES, Raw(oversized(1024 * 1024)), TOO_LARGE),
        case("two megabytes", c, NOTES, Raw(oversized(2 * 1024 * 1024)), TOO_LARGE),
        case("the tool's name past HAProxy's buffer", c, NOTES, Raw(past_the_buffer), FORBIDDEN),
        case("chunked body", c, NOTES, Raw(lambda k: wire.request("POST", k.target.path, outer_headers(k, ("Transfer-Encoding", "chunked"), ("Connection", "close")), wire.chunked(forbidden_call(k), 16), length=False)), CHUNKED),
        case("chunked body, Transfer-Encoding in capitals", c, NOTES, Raw(lambda k: wire.request("POST", k.target.path, outer_headers(k, ("TRANSFER-ENCODING", "CHUNKED"), ("Connection", "close")), wire.chunked(forbidden_call(k)), length=False)), CHUNKED),
        case("Content-Length shorter than the body", c, NOTES, Raw(content_length("60")), PARSE),
        case("Content-Length longer than the body", c, NOTES, Raw(declared_longer, idle=13.0), Refused(408, None, "haproxy", "HAProxy waits `timeout http-request` (10 s) for the declared body, then answers 408 itself; nothing is forwarded")),
        case("Content-Length with a plus sign", c, NOTES, Raw(content_length("+99")), HTTP_GARBAGE),
        case("negative Content-Length", c, NOTES, Raw(content_length("-1")), HTTP_GARBAGE),
        case("gzip-encoded body", c, NOTES, Raw(gzip_body), PARSE),
        case("UTF-16 body", c, NOTES, Raw(utf16_body), PARSE),
        case("empty body", c, NOTES, Post(b""), PARSE),
        case("a JSON string, not a message", c, NOTES, Post('"tools/call delete_note"'), INVALID),
        case("text/plain content type", c, NOTES, Post("$CALL", [("Content-Type", "text/plain")]), Refused(415, -32600, "router", "the router refuses a body not declared as application/json with 415 (not in docs/router.md's refusal table)")),
        case("no content type", c, NOTES, Post("$CALL", drop=("Content-Type",)), Refused(415, -32600, "router", "as text/plain: 415 from the router")),
    ]
    # fmt: on


def _batches() -> list[Case]:
    c = "batches"
    # fmt: off
    return [
        case("batch of the forbidden call", c, NOTES, Post("[$CALL]", direct=False), INVALID),
        case("batch mixing allowed and forbidden", c, NOTES, Post("[$ALLOWED_CALL,$CALL]", direct=False), INVALID),
        case("batch nested in a batch", c, NOTES, Post("[[$CALL]]", direct=False), INVALID),
        case("empty batch", c, NOTES, Post("[]"), INVALID),
        case("batch of notifications", c, NOTES, Post('[{"jsonrpc":"2.0","method":"notifications/initialized"}]'), INVALID),
        case("params holding a batch", c, NOTES, Post('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":[$CALL]}'), INVALID),
        case("everything: batch mixing echo and get-env", c, EVERYTHING, Post("[$ALLOWED_CALL,$CALL]", direct=True), INVALID),
        case("everything: batch of get-env", c, EVERYTHING, Post("[$CALL]", direct=True), INVALID),
    ]
    # fmt: on


def _methods() -> list[Case]:
    c = "methods"
    # fmt: off
    return [
        case("Tools/call", c, NOTES, Post(method_call("Tools/call"), direct=False), NO_METHOD),
        case("TOOLS/CALL", c, NOTES, Post(method_call("TOOLS/CALL"), direct=False), NO_METHOD),
        case("tools/call with a trailing space", c, NOTES, Post(method_call("tools/call "), direct=False), NO_METHOD),
        case("tools/call with a leading space", c, NOTES, Post(method_call(" tools/call"), direct=False), NO_METHOD),
        case("tools/call with a trailing NUL", c, NOTES, Post(method_call(r"tools/call\u0000"), direct=False), NO_METHOD),
        case("tools//call", c, NOTES, Post(method_call("tools//call"), direct=False), NO_METHOD),
        case("tools/call/", c, NOTES, Post(method_call("tools/call/"), direct=False), NO_METHOD),
        case("notifications/tools/call", c, NOTES, Post('{"jsonrpc":"2.0","method":"notifications/tools/call","params":{"name":"$TOOL","arguments":$ARGS}}', direct=False), NO_METHOD),
        # Straight to notes, its call log records this notification but the tool does not run (the
        # note survives): not probed, the server's record would overstate it.
        case("tools/call as a notification", c, NOTES, Post('{"jsonrpc":"2.0","method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}'), NO_METHOD),
        case("response-shaped message carrying a method", c, NOTES, Post('{"jsonrpc":"2.0","id":$ID,"result":{},"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}'), INVALID),
        case("error-shaped message carrying a method", c, NOTES, Post('{"jsonrpc":"2.0","id":$ID,"error":{"code":1,"message":"x"},"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}'), INVALID),
        case("extra envelope member naming the allowed tool", c, NOTES, Post('{"jsonrpc":"2.0","id":$ID,"method":"tools/call","tool":"$ALLOWED","params":{"name":"$TOOL","arguments":$ARGS}}', direct=True), INVALID),
        case("id null", c, NOTES, Post('{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}'), INVALID),
        case("id an object", c, NOTES, Post('{"jsonrpc":"2.0","id":{"a":1},"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}'), INVALID),
        case("id true", c, NOTES, Post('{"jsonrpc":"2.0","id":true,"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}'), INVALID),
        case("jsonrpc 1.0", c, NOTES, Post('{"jsonrpc":"1.0","id":$ID,"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}'), INVALID),
        case("jsonrpc missing", c, NOTES, Post('{"id":$ID,"method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}'), INVALID),
        case("name as a list", c, NOTES, Post(call_with('"name":["$TOOL"],"arguments":$ARGS')), BAD_PARAMS),
        case("name as an object", c, NOTES, Post(call_with('"name":{"name":"$TOOL"},"arguments":$ARGS')), BAD_PARAMS),
        case("arguments as a list", c, NOTES, Post(call_with('"name":"$TOOL","arguments":[1]')), BAD_PARAMS),
        case("name with a trailing space", c, NOTES, Post(call_with('"name":"delete_note ","arguments":$ARGS'), direct=False), FORBIDDEN),
        case("name in capitals", c, NOTES, Post(call_with('"name":"DELETE_NOTE","arguments":$ARGS'), direct=False), FORBIDDEN),
        case("sampling/createMessage, a server's method", c, NOTES, Post(method_call("sampling/createMessage")), NO_METHOD),
        case("prompts/get naming the tool", c, NOTES, Post(method_call("prompts/get")), Forwarded(200, True, "prompts/get is a client method; notes has no such prompt and says so")),
        case("tools/list carrying the tool's name", c, NOTES, Post(method_call("tools/list")), Forwarded(200, False, "tools/list runs no tool")),
        case("completion/complete naming the tool", c, NOTES, Post('{"jsonrpc":"2.0","id":$ID,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"$TOOL"},"argument":{"name":"id","value":"1"}}}'), Forwarded(200, True, "completions name prompts and resources, never tools")),
        case("everything: tasks/get", c, EVERYTHING, Post('{"jsonrpc":"2.0","id":$ID,"method":"tasks/get","params":{"taskId":"x","name":"$TOOL"}}'), NO_METHOD),
        case("everything: tasks/result", c, EVERYTHING, Post('{"jsonrpc":"2.0","id":$ID,"method":"tasks/result","params":{"taskId":"x","name":"$TOOL"}}'), NO_METHOD),
        case("everything: tasks/list", c, EVERYTHING, Post('{"jsonrpc":"2.0","id":$ID,"method":"tasks/list","params":{}}'), NO_METHOD),
        case("everything: task-augmented get-env", c, EVERYTHING, Post(call_with('"name":"$TOOL","arguments":$ARGS,"task":{"ttl":60000}')), FORBIDDEN),
        case("everything: Tools/call", c, EVERYTHING, Post(method_call("Tools/call"), direct=False), NO_METHOD),
        # Not probed: as with notes, the server records the notification, which runs no tool.
        case("everything: tools/call as a notification", c, EVERYTHING, Post('{"jsonrpc":"2.0","method":"tools/call","params":{"name":"$TOOL","arguments":$ARGS}}'), NO_METHOD),
    ]
    # fmt: on


def _sessions() -> list[Case]:
    c = "sessions"
    # fmt: off
    return [
        case("another caller's session: list their notes", c, NOTES, Steps(hijack_call("notes", "list_notes", "{}", "support")), Refused(403, -32003, "router")),
        case("another caller's session: an engineer deletes their note", c, NOTES, Steps(hijack_call("notes", "delete_note", '{"id":1}', "engineer")), Refused(403, -32003, "router")),
        case("another caller's session: DELETE it", c, NOTES, Steps(hijack_verb("notes", "DELETE")), Refused(403, -32003, "router")),
        case("another caller's session: GET its stream", c, NOTES, Steps(hijack_verb("notes", "GET")), Refused(403, -32003, "router")),
        case("everything: another caller's session: echo in it", c, EVERYTHING, Steps(hijack_call("everything", "echo", '{"message":"x"}', "support")), Refused(403, -32003, "router")),
        case("everything: another caller's session: DELETE it", c, EVERYTHING, Steps(hijack_verb("everything", "DELETE")), Refused(403, -32003, "router")),
        case("everything: another caller's session: GET its stream", c, EVERYTHING, Steps(hijack_verb("everything", "GET")), Refused(403, -32003, "router")),
        case("random sealed-looking session id", c, NOTES, Steps(with_session_id(lambda k: "mf1." + secrets.token_urlsafe(120))), INVALID),
        case("random UUID session id", c, NOTES, Steps(with_session_id(lambda k: str(uuid.uuid4()))), INVALID),
        case("the server's own id of another caller's session", c, NOTES, Steps(with_session_id(victims_inner_id)), INVALID),
        case("a session sealed for another server", c, NOTES, Steps(with_session_id(session_from("everything"))), INVALID),
        case("own session id with one character changed", c, NOTES, Steps(with_session_id(lambda k: flip(k.session.sealed))), INVALID),
        case("own session id truncated", c, NOTES, Steps(with_session_id(lambda k: k.session.sealed[:-6])), INVALID),
        case("empty session id", c, NOTES, Steps(with_session_id(lambda k: "")), INVALID),
        case("4 kB session id", c, NOTES, Steps(with_session_id(too_long_session)), INVALID),
        case("own session id and a random one", c, NOTES, Steps(with_session_id(lambda k: "mf1." + secrets.token_urlsafe(120), also_own=True)), INVALID),
        case("everything: random UUID session id", c, EVERYTHING, Steps(with_session_id(lambda k: str(uuid.uuid4()))), INVALID),
        case("300 random session ids leave no state", c, NOTES, Steps(random_session_flood), INVALID, settle=0.5),
    ]
    # fmt: on


def _roles() -> list[Case]:
    c = "roles"
    # fmt: off
    return [
        case("notengineer", c, NOTES, Post("$CALL", token=roles("notengineer")), FORBIDDEN),
        case("engineers", c, NOTES, Post("$CALL", token=roles("engineers")), FORBIDDEN),
        case("Engineer", c, NOTES, Post("$CALL", token=roles("Engineer")), FORBIDDEN),
        case("ENGINEER", c, NOTES, Post("$CALL", token=roles("ENGINEER")), FORBIDDEN),
        case("comma-separated support,engineer", c, NOTES, Post("$CALL", token=roles("support,engineer")), FORBIDDEN),
        case("semicolon-separated support;engineer", c, NOTES, Post("$CALL", token=roles("support;engineer")), FORBIDDEN),
        case("tab-separated support<TAB>engineer", c, NOTES, Post("$CALL", token=roles("support\tengineer")), ROUTER_401),
        case("newline-separated support<LF>engineer", c, NOTES, Post("$CALL", token=roles("support\nengineer")), ROUTER_401),
        case("no-break-space-separated", c, NOTES, Post("$CALL", token=roles("support\u00a0engineer")), ROUTER_401),
        case("em-space-separated", c, NOTES, Post("$CALL", token=roles("support\u2003engineer")), ROUTER_401),
        case("unit-separator-separated", c, NOTES, Post("$CALL", token=roles("support\u001fengineer")), ROUTER_401),
        case("engineer with a trailing NUL", c, NOTES, Post("$CALL", token=roles("engineer\u0000")), ROUTER_401),
        case("list entry holding two roles", c, NOTES, Post("$CALL", token=roles(["support engineer"])), ROUTER_401),
        case("list of roles none of which may delete", c, NOTES, Post("$CALL", token=roles(["support", "analyst"])), FORBIDDEN),
        case("empty roles", c, NOTES, Post("$CALL", token=roles("")), FORBIDDEN),
        case("roles claim missing", c, NOTES, Post("$CALL", token=claims(roles=None)), FORBIDDEN),
        case("roles nested list", c, NOTES, Post("$CALL", token=roles(["support", ["engineer"]])), ROUTER_401),
        case("roles an object", c, NOTES, Post("$CALL", token=roles({"engineer": True})), ROUTER_401),
        case("roles true", c, NOTES, Post("$CALL", token=roles(True)), GATEWAY_401),
        case("roles a number", c, NOTES, Post("$CALL", token=roles(1)), GATEWAY_401),
        case("roles list starting with a number", c, NOTES, Post("$CALL", token=roles([1, "engineer"])), GATEWAY_401),
        case("roles list with a number after a role", c, NOTES, Post("$CALL", token=roles(["support", 1])), ROUTER_401),
        case("roles null", c, NOTES, Post("$CALL", token=roles(None)), ROUTER_401),
        case("roles claim twice, engineer last", c, NOTES, Post("$CALL", token=payload('{"iss":"$ISS","aud":"$AUD","sub":"$SUB","roles":"support","roles":"engineer","iat":$NOW,"exp":$EXP}')), ROUTER_401),
        case(r"roles claim twice, r\u006fles escaped", c, NOTES, Post("$CALL", token=payload(r'{"iss":"$ISS","aud":"$AUD","sub":"$SUB","roles":"support","r\u006fles":"engineer","iat":$NOW,"exp":$EXP}')), ROUTER_401),
        case("Roles claim beside roles", c, NOTES, Post("$CALL", token=claims(roles="support", Roles="engineer")), FORBIDDEN),
        case("roles in request headers", c, NOTES, Post("$CALL", [("X-Roles", "engineer"), ("X-Forwarded-Roles", "engineer"), ("Roles", "engineer")]), FORBIDDEN),
        case("everything: roles support analyst sre", c, EVERYTHING, Post("$CALL", token=roles("support analyst sre")), FORBIDDEN),
        case("everything: engineer inside a longer word", c, EVERYTHING, Post("$CALL", token=roles("support_engineer")), FORBIDDEN),
    ]
    # fmt: on


def _tokens() -> list[Case]:
    c = "tokens"
    own = own_key
    # fmt: off
    return [
        case("alg none", c, NOTES, Post("$CALL", token=alg_none("none")), GATEWAY_401),
        case("alg None", c, NOTES, Post("$CALL", token=alg_none("None")), GATEWAY_401),
        case("alg none with a signature kept", c, NOTES, Post("$CALL", token=alg_none("none", keep_signature=True)), GATEWAY_401),
        case("HS256 keyed with the issuer's public PEM", c, NOTES, Post("$CALL", token=hs_confusion), GATEWAY_401),
        case("HS256 keyed with the PEM without its newline", c, NOTES, Post("$CALL", token=hs_confusion_stripped), GATEWAY_401),
        case("embedded jwk of the attacker's key", c, NOTES, Post("$CALL", token=own(embedded_jwk)), GATEWAY_401),
        case("jku pointing at the attacker's keys", c, NOTES, Post("$CALL", token=own(lambda key: {"jku": "https://attacker.example/jwks.json", "kid": "1"})), GATEWAY_401),
        case("x5u pointing at the attacker's certificate", c, NOTES, Post("$CALL", token=own(lambda key: {"x5u": "https://attacker.example/cert.pem"})), GATEWAY_401),
        case("x5c carrying the attacker's certificate", c, NOTES, Post("$CALL", token=own(x5c_chain)), GATEWAY_401),
        case("kid path traversal to /dev/null, HS256 with an empty key", c, NOTES, Post("$CALL", token=kid_traversal), GATEWAY_401),
        case("RS512 with the issuer's own key", c, NOTES, Post("$CALL", token=other_algorithm("RS512")), GATEWAY_401),
        case("PS256 with the issuer's own key", c, NOTES, Post("$CALL", token=other_algorithm("PS256")), GATEWAY_401),
        case("crit header the router cannot honour", c, NOTES, Post("$CALL", token=real_key(crit=["exp"])), ROUTER_401),
        case("expired", c, NOTES, Post("$CALL", token=claims(exp=1_600_000_000, iat=1_599_999_000)), GATEWAY_401),
        case("nbf an hour ahead", c, NOTES, Post("$CALL", token=lambda k: claims(nbf=k.claims()["iat"] + 3600)(k)), GATEWAY_401),
        case("exp a string", c, NOTES, Post("$CALL", token=lambda k: claims(exp=str(k.claims()["exp"]))(k)), GATEWAY_401),
        case("exp a numeric-looking string in exponent form", c, NOTES, Post("$CALL", token=claims(exp="4.1e9")), GATEWAY_401),
        case("exp overflowing to infinity", c, NOTES, Post("$CALL", token=payload('{"iss":"$ISS","aud":"$AUD","sub":"$SUB","roles":"engineer","iat":$NOW,"exp":1e400}')), GATEWAY_401),
        case("iat a string", c, NOTES, Post("$CALL", token=lambda k: claims(iat=str(k.claims()["iat"]))(k)), GATEWAY_401),
        case("iat true", c, NOTES, Post("$CALL", token=claims(iat=True)), GATEWAY_401),
        case("iat a day ahead", c, NOTES, Post("$CALL", token=lambda k: claims(iat=k.claims()["iat"] + 86400)(k)), ROUTER_401),
        case("aud lists only another server", c, NOTES, Post("$CALL", token=lambda k: claims(aud=[k.stack.issuer.audience("text")])(k)), GATEWAY_401),
        case("aud lists another server first", c, NOTES, Post("$CALL", token=lambda k: claims(aud=[k.stack.issuer.audience("text"), k.stack.issuer.audience("notes")])(k)), Refused(401, -32001, "haproxy", "HAProxy compares the audience string or a list's first entry only; the router would accept this list")),
        case("aud a number", c, NOTES, Post("$CALL", token=claims(aud=1)), GATEWAY_401),
        case("aud an object", c, NOTES, Post("$CALL", token=lambda k: claims(aud={"notes": k.stack.issuer.audience("notes")})(k)), GATEWAY_401),
        case("aud of notes with a trailing slash", c, NOTES, Post("$CALL", token=lambda k: claims(aud=k.stack.issuer.audience("notes") + "/")(k)), GATEWAY_401),
        case("aud of notes with a dot-dot suffix", c, NOTES, Post("$CALL", token=lambda k: claims(aud=k.stack.issuer.audience("text") + "/../notes")(k)), GATEWAY_401),
        case("iss of another issuer", c, NOTES, Post("$CALL", token=claims(iss="https://id.attacker.example/")), GATEWAY_401),
        case("iss with a trailing space", c, NOTES, Post("$CALL", token=lambda k: claims(iss=k.claims()["iss"] + " ")(k)), GATEWAY_401),
        case("signature stripped", c, NOTES, Post("$CALL", token=stripped_signature), GATEWAY_401),
        case("payload swapped under a genuine signature", c, NOTES, Post("$CALL", token=tampered_payload), GATEWAY_401),
        case("padded base64 segments", c, NOTES, Post("$CALL", token=padded_segments), GATEWAY_401),
        case("exp claim twice, far future last", c, NOTES, Post("$CALL", token=payload('{"iss":"$ISS","aud":"$AUD","sub":"$SUB","roles":"engineer","iat":$NOW,"exp":1600000000,"exp":$EXP}')), GATEWAY_401),
        case("sub claim twice", c, NOTES, Post("$CALL", token=payload('{"iss":"$ISS","aud":"$AUD","sub":"victor","sub":"$SUB","roles":"engineer","iat":$NOW,"exp":$EXP}')), ROUTER_401),
        case("two Authorization headers, forged engineer second", c, NOTES, Raw(two_authorizations), ROUTER_401),
        case("token for text spent on notes", c, NOTES, Post("$CALL", token=text_engineer), GATEWAY_401),
    ]
    # fmt: on


def _paths() -> list[Case]:
    c = "paths"

    def p(name: str, target: str, *expect: Expectation) -> Case:
        return case(name, c, NOTES_MODERN, Raw(path_raw(target)), *(expect or (NO_SERVER,)))

    # fmt: off
    return [
        p("encoded slash /servers/notes%2fmcp", "/servers/notes%2fmcp"),
        p("encoded slash upper-case /servers/notes%2Fmcp", "/servers/notes%2Fmcp"),
        p("dot segment /servers/./notes/mcp", "/servers/./notes/mcp"),
        p("leading double slash //servers/notes/mcp", "//servers/notes/mcp"),
        p("double slash /servers//notes/mcp", "/servers//notes/mcp"),
        p("trailing slash /servers/notes/mcp/", "/servers/notes/mcp/"),
        p("upper-case /SERVERS/notes/mcp", "/SERVERS/notes/mcp"),
        p("upper-case server /servers/NOTES/mcp", "/servers/NOTES/mcp"),
        p("dot-dot from text /servers/text/../notes/mcp", "/servers/text/../notes/mcp"),
        p("encoded dot-dot /servers/text/%2e%2e/notes/mcp", "/servers/text/%2e%2e/notes/mcp"),
        p("dot-dot after the endpoint /servers/text/mcp/../../notes/mcp", "/servers/text/mcp/../../notes/mcp"),
        p("path parameter /servers/notes/mcp;text", "/servers/notes/mcp;text"),
        p("path parameter in the name /servers/notes;x/mcp", "/servers/notes;x/mcp"),
        p("encoded letter /servers/%6eotes/mcp", "/servers/%6eotes/mcp"),
        p("encoded endpoint /servers/notes/%6dcp", "/servers/notes/%6dcp"),
        p("encoded NUL /servers/notes/mcp%00", "/servers/notes/mcp%00"),
        p("text's path with notes in the query", "/servers/text/mcp?/servers/notes/mcp", FORBIDDEN),
        p("notes's path with text in the query", "/servers/notes/mcp?server=text", GATEWAY_401),
        p("backslash /servers\\notes\\mcp", "/servers\\notes\\mcp"),
        p("fragment /servers/notes/mcp#text", "/servers/notes/mcp#text", HTTP_GARBAGE),
        case("absolute-form target naming the gateway", c, NOTES_MODERN, Raw(lambda k: absolute_form(k.stack.host)(k)), GATEWAY_401),
        case("absolute-form target naming another host", c, NOTES_MODERN, Raw(absolute_form("text.internal.example")), Refused(400, None, "haproxy", "HAProxy's parser refuses an absolute-form target whose authority is not the Host header: its stock 400 page")),
        case("two Host headers", c, NOTES_MODERN, Raw(two_hosts), HTTP_GARBAGE),
        case("Host naming the server's loopback", c, NOTES, Post("$CALL", host="127.0.0.1"), FORBIDDEN),
        case("Host naming another site", c, NOTES, Post("$CALL", host="attacker.example"), FORBIDDEN),
        case("the metadata path answers metadata only", c, NOTES, Post("$CALL", path="/.well-known/oauth-protected-resource/servers/notes/mcp"), Answered(200, "HAProxy answers RFC 9728 metadata on this path to any method; nothing is forwarded")),
    ]
    # fmt: on


def _smuggling() -> list[Case]:
    c = "smuggling"
    slow = 1.0
    # fmt: off
    return [
        case("CL.TE: Content-Length and chunked, request hidden after the last chunk", c, NOTES, Raw(cl_te), CHUNKED, settle=slow),
        case("TE.CL: chunked with a short Content-Length", c, NOTES, Raw(te_cl), CHUNKED, settle=slow),
        case("TE.TE: Transfer-Encoding xchunked", c, NOTES, Raw(te_variant("xchunked")), Refused(400, None, "haproxy", "HAProxy's parser refuses a transfer coding it does not know: its stock 400 page"), settle=slow),
        case("Transfer-Encoding chunked, identity", c, NOTES, Raw(te_variant("chunked, identity")), Refused(400, None, "haproxy", "HAProxy's parser refuses chunked that is not the last coding: its stock 400 page"), settle=slow),
        case("Transfer-Encoding with a tab before chunked", c, NOTES, Raw(te_variant("\tchunked")), CHUNKED, settle=slow),
        case("Transfer-Encoding: chunked in capitals", c, NOTES, Raw(te_variant("CHUNKED")), CHUNKED, settle=slow),
        case("Transfer-Encoding with a space before the colon", c, NOTES, Raw(lambda k: te_variant("chunked")(k).replace(b"Transfer-Encoding:", b"Transfer-Encoding :")), HTTP_GARBAGE, settle=slow),
        case("two Content-Length headers that differ", c, NOTES, Raw(double_length(None, None)), HTTP_GARBAGE, settle=slow),
        case("one Content-Length listing two values", c, NOTES, Raw(double_length(None, None, joined=True)), HTTP_GARBAGE, settle=slow),
        # HAProxy merges equal lengths; the hidden request then arrives as a request of its own, with the
        # gateway's request id and address, and is served as such.
        case("two equal Content-Length headers", c, NOTES, Raw(equal_lengths), FORBIDDEN, Served("add_note"), settle=slow),
        # HAProxy unfolds obs-fold into one value, "ping tools/call", which the router finds does not match.
        case("obs-fold continuing mcp-method", c, NOTES, Raw(obs_fold), INVALID, settle=slow),
        # Unfolded, the would-be header is the text of X-Trace's value: the gateway's own id still wins.
        case("obs-fold hiding an X-Request-ID", c, NOTES, Raw(obs_fold_request_id), Served("add_note"), settle=slow),
        case("bare LF line endings", c, NOTES, Raw(bare_lf), FORBIDDEN, settle=slow),
        case("HTTP/1.0 keep-alive with a request behind", c, NOTES, Raw(http10), FORBIDDEN, Served("add_note"), settle=slow),
        case("Expect: 100-continue", c, NOTES, Raw(expect_continue, pause=0.3), Answered(100, "HAProxy's interim 100 Continue, then the router's answer"), FORBIDDEN),
        case("client-chosen X-Request-ID, X-Forwarded-For and Forwarded", c, NOTES, Raw(client_forwarding_headers), Served("add_note")),
        case("bare CR inside a header value", c, NOTES, Raw(header_value_with_cr), HTTP_GARBAGE),
        case("NUL inside a header value", c, NOTES, Raw(header_value_with(b"\x00")), CONTROL_BYTES),
        case("SOH inside a header value", c, NOTES, Raw(header_value_with(b"\x01")), CONTROL_BYTES),
        case("DEL inside a header value", c, NOTES, Raw(header_value_with(b"\x7f")), CONTROL_BYTES),
        case("NUL inside mcp-method", c, NOTES, Raw(header_value_with(b"\x00", "Mcp-Method")), CONTROL_BYTES),
        case("space before a header's colon", c, NOTES, Raw(space_before_colon), HTTP_GARBAGE),
        case("pipelined: allowed call, then the forbidden one", c, NOTES, Raw(pipelined), Served("add_note"), FORBIDDEN, settle=slow),
        case("HTTP/2 preface on an HTTP/1.1 connection", c, NOTES, Raw(h2_preface), Closed("the TLS listener offers http/1.1 only; HAProxy closes on an HTTP/2 preface without answering")),
        case("WebSocket upgrade on the MCP endpoint", c, NOTES, Raw(websocket_upgrade), FORBIDDEN, settle=slow),
        case("70 kB header", c, NOTES, Raw(huge_header), Refused(400, None, "haproxy", "HAProxy refuses headers beyond its buffer with its stock 400 page, and closes with the rest unread", or_reset=True)),
    ]
    # fmt: on


def _controls() -> list[Case]:
    c = "controls"
    # fmt: off
    return [
        case("support adds a note", c, NOTES, Post("$ALLOWED_CALL"), Served("add_note")),
        case("support echoes on everything", c, EVERYTHING, Post("$ALLOWED_CALL"), Served("echo")),
        case("engineer deletes a note", c, NOTES, Steps(engineer_deletes), Served("delete_note")),
        case("engineer runs get-env", c, EVERYTHING, Post("$CALL", token=roles("engineer")), Served("get-env")),
        case("sre, listed after support, deletes a note", c, NOTES, Post("$CALL", token=roles(["support", "sre"])), Served("delete_note", tool_error=True)),
        case("space-separated roles naming engineer", c, NOTES, Post("$CALL", token=roles("support engineer")), Served("delete_note", tool_error=True)),
        case("modern support adds a note (sessionless: the tool says so)", c, NOTES_MODERN, Post("$ALLOWED_CALL", [("Mcp-Name", "add_note")]), Served("add_note", tool_error=True)),
        case("modern engineer deletes (sessionless: the tool says so)", c, NOTES_MODERN, Post("$CALL", token=roles("engineer")), Served("delete_note", tool_error=True)),
        case("text engineer token on text", c, NOTES_MODERN, Raw(lambda k: k.post_bytes(modern_body("tools/call", '"name":"word_count","arguments":{"text":"a b"}'), [("Mcp-Name", "word_count")], token=text_engineer(k), path="/servers/text/mcp")), Served("word_count", server="text")),
        case("the mcp SDK's legacy client adds a note", c, NOTES, Steps(sdk_client_adds_note), Served("add_note")),
    ]
    # fmt: on


def engineer_deletes(k: Kit) -> Exchange:
    token = k.token(roles="engineer")
    add = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"to delete"}}}'
    k.send(k.post_bytes(add, token=token), "setup")
    return k.post("$CALL", token=token)


def sdk_client_adds_note(k: Kit) -> Exchange:
    """The mcp SDK's own client (legacy, 2025-11-25) through the gateway: initialize, list, call."""
    from tests.e2e.attacks import sdk

    return sdk.add_note(k)


def _all() -> list[Case]:
    cases = [
        *_routing_headers(),
        *_duplicate_keys(),
        *_escaped_keys(),
        *_escaped_values(),
        *_non_standard_json(),
        *_bodies(),
        *_batches(),
        *_methods(),
        *_sessions(),
        *_roles(),
        *_tokens(),
        *_paths(),
        *_smuggling(),
        *_controls(),
    ]
    return cases


CASES: list[Case] = _all()
BY_NAME: dict[str, Case] = {c.name: c for c in CASES}
