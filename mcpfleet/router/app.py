"""The router as an ASGI app: refuse what cannot be read or is not allowed, forward the canonical message
to a pod, stream the answer back, and audit each message (before it is sent upstream, and once it ends).
Per-server routes (`/servers/<name>/...`) and the fleet endpoint (`/mcp`, mcpfleet/router/fleet.py) share
the checks, the forwarding and the relay."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import logging
import re
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urljoin, urlsplit

import aiohttp
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PARAM_HEADER_PREFIX,
    NAME_BEARING_METHODS,
    encode_header_value,
)
from mcp_types.jsonrpc import INVALID_REQUEST
from yarl import URL

from mcpfleet.router import sse, strictjson
from mcpfleet.router.access import ToolAccess
from mcpfleet.router.config import SSE_MESSAGE_SEGMENT, RouterConfig, Server
from mcpfleet.router.keyfile import KeyFile
from mcpfleet.router.listings import Listings
from mcpfleet.router.messages import (
    FORBIDDEN,
    INTERNAL_ERROR,
    NOTIFICATION_METHODS,
    REQUEST_METHODS,
    UNAUTHORIZED,
    Era,
    Message,
    Refusal,
    check_routing_headers,
    era_of,
    read_message,
    single,
)
from mcpfleet.router.observe import AuditSink, Metrics, Record, discard, session_digest
from mcpfleet.router.ratelimit import RateLimiter
from mcpfleet.router.sessions import Sealer, Session, UnknownSession
from mcpfleet.router.tokens import Caller, InvalidToken, TokenVerifier
from mcpfleet.router.upstreams import RESOLVE_SECONDS, Endpoints, Resolver, resolve

if TYPE_CHECKING:
    from mcpfleet.router.fleet import FleetEndpoint

log = logging.getLogger("mcpfleet.router")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SESSION_HEADER: Final = "mcp-session-id"
CONNECT_SECONDS: Final = 5.0
# An idle connection to a pod is closed after this long, before the pod closes it: uvicorn (the SDK's
# servers) and Node's http server close theirs after 5 s idle, and a message sent on a connection the
# pod is closing fails with nothing received (502). POSTs are never retried (the pod may have run
# the message), so the router must be the side that lets an idle connection go first.
UPSTREAM_IDLE_SECONDS: Final = 3.0
# A tool may run long; past this without response headers the pod is deemed stuck (504).
HEADERS_SECONDS: Final = 300.0
# JSON answers are inspected for the audit outcome up to this size; larger ones relay uninspected.
INSPECT_BYTES: Final = 4 * 1024 * 1024
# JSON answers up to this size (with a Content-Length) are read whole and relayed in one piece.
WHOLE_BYTES: Final = 64 * 1024
# Answers the router rewrites (the fleet's, tools/list filtered by pins and access) are read whole or event by
# event up to this size; a larger one is cut rather than relayed unfiltered.
REWRITE_BYTES: Final = 16 * 1024 * 1024
LISTED_AT_START_SECONDS: Final = 10.0
"""How long the start waits for the first listing of every server before it reports ready anyway."""
_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9._~+/-]+=*)$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$", re.ASCII)
_DIGITS = re.compile(r"^[0-9]{1,12}$")
# Response headers that describe one hop, not the message; uvicorn frames the answer itself.
_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-connection",
        b"proxy-authenticate",
        b"server",
        b"date",
        b"mcp-session-id",
    }
)
_JSON: Final = b"application/json"
# What the audit record and metrics call a message that has no JSON-RPC method.
_PSEUDO_METHODS: Final = frozenset({"GET", "DELETE", "response"})
MAX_LOGGED_METHOD: Final = 100
MAX_ADDRESS_LENGTH: Final = 64
"""Longer than any IPv4 or IPv6 address in text, a zone included."""


@dataclass
class Route:
    """One server as the router serves it."""

    name: str
    config: Server
    access: ToolAccess
    endpoints: Endpoints
    audience: str
    kind: str
    """`mcp` (Streamable HTTP endpoint), `sse-stream` or `sse-message`."""


@dataclass
class Forwarding:
    """Everything a forwarded request needs, gathered by the checks."""

    route: Route
    caller: Caller
    record: Record
    headers: list[tuple[str, str]]
    pod: str | None = None
    session: Session | None = None
    sealed: str | None = None
    message: Message | None = None
    path: str = ""
    body: bytes | None = None
    answer: Callable[[dict[str, Any]], bool] | None = None
    """Rewrites each JSON-RPC message of the answer in place, saying whether it changed it (the fleet's
    URIs and ids, tools/list filtered by pins and access); None relays the answer as it comes."""
    reopen: Callable[[Forwarding, frozenset[str]], Awaitable[None]] | None = None
    """Replaces the router's own backend session once, when the server no longer knows it (fleet)."""
    fleet: bool = False
    """Sent by the fleet endpoint: the server's session id is the router's own, never relayed."""


def _method_label(method: str | None) -> str:
    """Metric label of a method: the forwarded ones by name, anything a client made up as `other`."""
    if method is None:
        return ""
    if method in REQUEST_METHODS or method in NOTIFICATION_METHODS or method in _PSEUDO_METHODS:
        return method
    return "other"


def collect_headers(scope: Scope) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return headers


class Router:
    """The ASGI app. Build with `build_app`; its lifespan opens the HTTP pool and the DNS refresher."""

    def __init__(
        self,
        config: RouterConfig,
        verifier: TokenVerifier,
        sealer: Sealer,
        resolver: Resolver = resolve,
        resolve_seconds: float = RESOLVE_SECONDS,
        audit: AuditSink = discard,
        key_file: KeyFile | None = None,
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.audit = audit
        # Hosts the fleet endpoint accepts besides the public domain and loopback (fleet.AllowedHosts).
        self.allowed_hosts = allowed_hosts
        self.key_file = key_file
        self.verifier = verifier
        self.sealer = sealer
        self.resolve_seconds = resolve_seconds
        self.metrics = Metrics()
        self.routes: dict[str, Route] = {}
        self.server_routes: dict[str, Route] = {}
        """The Streamable HTTP route of each server that has one, by name: what the fleet forwards to."""
        self.endpoints: dict[str, Endpoints] = {}
        prefix = config.auth.audience_prefix
        for name, server in config.servers.items():
            endpoints = Endpoints(server.upstream, resolver)
            self.endpoints[name] = endpoints
            access = ToolAccess(server.tools, server.access)
            kinds = {server.public_path: "mcp" if server.transport == "streamable-http" else "sse-stream"}
            if server.transport == "sse":
                kinds[f"/servers/{name}/{SSE_MESSAGE_SEGMENT}"] = "sse-message"
            for path, kind in kinds.items():
                self.routes[path] = Route(name, server, access, endpoints, prefix + name, kind)
                if kind == "mcp":
                    self.server_routes[name] = self.routes[path]
            self.metrics.endpoints.labels(name).set(len(endpoints.addresses))
        # The router's own listing of every server: the tool pins are enforced from it on every route.
        self.listings = Listings(config, self.endpoints, self.metrics, audit)
        self.rates = RateLimiter()
        self.fleet: FleetEndpoint | None = None
        if config.fleet is not None:
            from mcpfleet.router.fleet import FleetEndpoint  # it builds on this module

            self.fleet = FleetEndpoint(self, self.listings)
        self.http: aiohttp.ClientSession | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._key_watcher: asyncio.Task[None] | None = None

    # Lifespan

    async def startup(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=1000, limit_per_host=0, keepalive_timeout=UPSTREAM_IDLE_SECONDS
        )
        self.http = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_SECONDS, connect=CONNECT_SECONDS),
        )
        await self.refresh()
        if any(e.dynamic for e in self.endpoints.values()):
            self._refresher = asyncio.create_task(self._refresh_forever())
        if self.key_file is not None:
            self._key_watcher = asyncio.create_task(self.key_file.watch())
        await self.listings.start()
        # Ready once every server was listed (or failed to be), so the first calls find verdicts; a slow
        # fleet does not hold the start longer than this.
        await self.listings.wait_listed(LISTED_AT_START_SECONDS)

    async def shutdown(self) -> None:
        if self.fleet is not None:
            await self.fleet.close()
        await self.listings.stop()
        for task in (self._refresher, self._key_watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.http is not None:
            await self.http.close()

    async def refresh(self) -> None:
        await asyncio.gather(*(e.refresh() for e in self.endpoints.values() if e.dynamic))
        for name, endpoints in self.endpoints.items():
            self.metrics.endpoints.labels(name).set(len(endpoints.addresses))

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resolve_seconds)
            try:
                await self.refresh()
            except Exception:  # keep refreshing whatever one round raised
                log.exception("refreshing upstream addresses failed")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # One request

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = collect_headers(scope)
        record = Record(request_id=_request_id(headers), client=_client(headers, scope))
        reply = _Reply(send)
        send = reply
        job: Forwarding | None = None
        try:
            path = scope["raw_path"].decode("latin-1")
            route = self.routes.get(path)
            if route is not None:
                job = await self._server_request(route, scope, receive, headers, record)
            elif self.fleet is not None and path == self.fleet.path:
                record.endpoint = "fleet"
                # The fleet answers the handshake and lists itself; a call comes back to be forwarded.
                job = await self.fleet.handle(scope, receive, send, headers, record)
            else:
                raise Refusal(404, UNAUTHORIZED, "Unknown server", "server")
            if job is not None:
                await self._forward(job, scope, receive, send)
        except Refusal as refusal:
            if refusal.method is not None:
                record.method = refusal.method[:MAX_LOGGED_METHOD]
            record.outcome, record.status, record.rpc_code = "refused", refusal.status, refusal.code
            self.metrics.refusals.labels(record.server or "", refusal.reason).inc()
            if not reply.started:
                await _answer(send, refusal)
        except Exception as error:  # a bug or the unforeseen: answered, audited and counted all the same
            message = job.message if job is not None else None
            await self._internal_error(error, record, reply, message.id if message is not None else None)
        seconds = time.perf_counter() - started
        record.latency_ms = seconds * 1000
        self.metrics.observe(record, seconds, _method_label(record.method), self._tool_label(record))
        try:
            self.audit(record.line())
        except OSError:
            log.exception("writing the audit record of request %s failed", record.request_id)

    async def _internal_error(self, error: Exception, record: Record, reply: _Reply, rpc_id: Any) -> None:
        """500 with a JSON-RPC error when nothing was answered yet; an answer already under way is cut (the
        client sees it end early, never a complete-looking answer). Logged without the exception's own
        text, which may quote the message or the token: its type and where it was raised."""
        log.error(
            "internal error on request %s (server %s, %s): %s\n%s",
            record.request_id,
            record.server,
            record.method,
            type(error).__name__,
            "".join(traceback.format_tb(error.__traceback__)).rstrip(),
        )
        record.outcome, record.rpc_code = "error", INTERNAL_ERROR
        if not reply.started:
            record.status = 500
            await _answer(reply, Refusal(500, INTERNAL_ERROR, "Internal error", "internal", rpc_id))

    async def _server_request(
        self, route: Route, scope: Scope, receive: Receive, headers: Mapping[str, list[str]], record: Record
    ) -> Forwarding:
        record.server = route.name
        caller = self.authenticate(headers, route.audience)
        record.caller = caller.subject
        # The gateway admitted it against the server's limits; /mcp's count includes it (ratelimit.py).
        self.rates.note(route.name, caller.subject)
        job = Forwarding(route, caller, record, [])
        verb = scope["method"]
        if verb == "POST":
            await self._post(job, scope, receive, headers)
        elif verb == "GET" and route.kind != "sse-message":
            record.method = "GET"
            self._stream(job, headers)
        elif verb == "DELETE" and route.kind == "mcp":
            record.method = "DELETE"
            self._delete(job, headers)
        else:
            raise Refusal(405, INVALID_REQUEST, "Method not allowed", "http-method")
        return job

    def _tool_label(self, record: Record) -> str:
        if record.tool is None or record.server is None:
            return ""
        server = self.config.servers.get(record.server)
        return record.tool if server is not None and record.tool in server.tools else "other"

    def authenticate(self, headers: Mapping[str, list[str]], audience: str) -> Caller:
        values = headers.get("authorization") or []
        if len(values) != 1:
            raise Refusal(401, UNAUTHORIZED, "Unauthorized: one bearer token needed", "auth")
        match = _BEARER.fullmatch(values[0])
        if match is None:
            raise Refusal(401, UNAUTHORIZED, "Unauthorized: one bearer token needed", "auth")
        try:
            return self.verifier.verify(match.group(1), audience)
        except InvalidToken as error:
            raise Refusal(401, UNAUTHORIZED, f"Unauthorized: {error}", "auth") from None

    async def _post(
        self, job: Forwarding, scope: Scope, receive: Receive, headers: Mapping[str, list[str]]
    ) -> None:
        record = job.record
        self.check_content_type(headers)
        body = await self.read_body(headers, receive)
        message = read_message(body)
        record.method = message.method if message.kind != "response" else "response"
        record.tool = message.tool
        era = check_routing_headers(message, headers)
        record.era = era
        route = job.route
        job.message = message
        job.body = message.body
        if route.kind == "sse-message":
            self._sse_session(job, scope)
        else:
            self._session(job, headers, message.id)
            job.path = route.config.upstream.path
        if message.tool is not None:
            if not route.access.allows(message.tool, job.caller.roles):
                raise Refusal(
                    403, FORBIDDEN, "Forbidden: this tool is not allowed for the caller", "access", message.id
                )
            self.check_servable(route.name, message.tool, message.id)
        elif message.method == "tools/list" and message.kind == "request":
            job.answer = self._tools_filter(route, job.caller.roles, message.id)
        job.headers = self._upstream_headers(
            headers, job, era, accept_default="application/json, text/event-stream"
        )
        job.headers.append(("Content-Type", "application/json"))

    # Tool pins, enforced at run time (docs/router.md)

    def tool_servable(self, server: str, tool: str) -> bool:
        return self.listings.servable(server, tool)

    def check_servable(self, server: str, tool: str, request_id: Any) -> None:
        """Refuse a call of a tool the latest listing does not serve: 403 naming the drift (or why else
        it is withheld), 503 while the server is not listed."""
        if self.listings.servable(server, tool):
            return
        verdict = self.listings.verdict(server, tool)
        if verdict == "unknown":
            raise Refusal(
                503, INTERNAL_ERROR, "The server is not listed yet: try again later", "not-listed", request_id
            )
        if verdict == "drifted":
            self.metrics.tool_drift_refusals.labels(server, tool).inc()
        text = self.listings.refusal_text(server, tool)
        raise Refusal(403, FORBIDDEN, f"Forbidden: {text}", f"tool-{verdict}", request_id)

    def _tools_filter(
        self, route: Route, roles: frozenset[str], wanted: Any
    ) -> Callable[[dict[str, Any]], bool]:
        """Keeps, in the answer to a tools/list, the tools the caller may call and whose live definition
        (as this very answer serves it) is servable."""
        listings, access, server = self.listings, route.access, route.name

        def rewrite(document: dict[str, Any]) -> bool:
            if wanted is not None and document.get("id") != wanted:
                return False
            result = document.get("result")
            tools = result.get("tools") if isinstance(result, dict) else None
            if not isinstance(tools, list):
                return False
            kept = [
                tool
                for tool in tools
                if isinstance(tool, dict)
                and isinstance(tool.get("name"), str)
                and access.allows(tool["name"], roles)
                and listings.verdict_servable(listings.check_definition(server, tool))
            ]
            if len(kept) == len(tools):
                return False
            assert isinstance(result, dict)
            result["tools"] = kept
            return True

        return rewrite

    @staticmethod
    def check_content_type(headers: Mapping[str, list[str]]) -> None:
        content_type = single(headers, "content-type") or ""
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise Refusal(
                415, INVALID_REQUEST, "Invalid Request: Content-Type must be application/json", "content-type"
            )

    async def read_body(self, headers: Mapping[str, list[str]], receive: Receive) -> bytes:
        limit = self.config.max_body_bytes
        if headers.get("transfer-encoding"):
            raise Refusal(400, INVALID_REQUEST, "Invalid Request: chunked bodies are not accepted", "size")
        length_text = single(headers, "content-length")
        if length_text is None or not _DIGITS.fullmatch(length_text):
            raise Refusal(400, INVALID_REQUEST, "Invalid Request: Content-Length needed", "size")
        length = int(length_text)
        if length > limit:
            raise Refusal(400, INVALID_REQUEST, "Invalid Request: body too large", "size")
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                raise Refusal(400, INVALID_REQUEST, "Invalid Request: body incomplete", "size")
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > length:
                raise Refusal(
                    400, INVALID_REQUEST, "Invalid Request: body longer than Content-Length", "size"
                )
            chunks.append(chunk)
            if not event.get("more_body", False):
                break
        if size != length:
            raise Refusal(400, INVALID_REQUEST, "Invalid Request: body shorter than Content-Length", "size")
        return b"".join(chunks)

    def _open(self, job: Forwarding, sealed: str, kind: str, request_id: Any) -> None:
        try:
            session = self.sealer.open(sealed)
        except UnknownSession:
            raise Refusal(
                400, INVALID_REQUEST, "Invalid Request: unknown session", "session", request_id
            ) from None
        if session.server != job.route.name or session.kind != kind:
            raise Refusal(400, INVALID_REQUEST, "Invalid Request: unknown session", "session", request_id)
        if session.subject != job.caller.subject:
            raise Refusal(
                403,
                FORBIDDEN,
                "Forbidden: the session belongs to another caller",
                "session-owner",
                request_id,
            )
        if time.time() - session.issued > self.config.session_max_age_seconds:
            raise Refusal(
                404, UNAUTHORIZED, "Session expired: start a new session", "session-expired", request_id
            )
        if not job.route.endpoints.has(session.pod):
            raise Refusal(
                404, UNAUTHORIZED, "Session not found: start a new session", "session-gone", request_id
            )
        job.session, job.sealed, job.pod = session, sealed, session.pod
        job.record.session = session_digest(session.inner)

    def _session(self, job: Forwarding, headers: Mapping[str, list[str]], request_id: Any) -> None:
        sealed = single(headers, SESSION_HEADER, request_id)
        if sealed is not None:
            self._open(job, sealed, "http", request_id)

    def _sse_session(self, job: Forwarding, scope: Scope) -> None:
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        tokens = [value for key, value in query if key == "session"]
        request_id = job.message.id if job.message else None
        if len(tokens) != 1 or len(query) != 1:
            raise Refusal(400, INVALID_REQUEST, "Invalid Request: unknown session", "session", request_id)
        self._open(job, tokens[0], "sse", request_id)
        assert job.session is not None
        job.path = job.session.inner

    def _stream(self, job: Forwarding, headers: Mapping[str, list[str]]) -> None:
        for name in (MCP_METHOD_HEADER, MCP_NAME_HEADER):
            if name in headers:
                raise Refusal(
                    400, INVALID_REQUEST, f"Invalid Request: {name} on a request without a body", "header"
                )
        era, _ = era_of(headers)
        job.record.era = era
        job.path = job.route.config.upstream.path
        if job.route.kind == "mcp":
            self._session(job, headers, None)
        job.headers = self._upstream_headers(headers, job, era, accept_default="text/event-stream")

    def _delete(self, job: Forwarding, headers: Mapping[str, list[str]]) -> None:
        for name in (MCP_METHOD_HEADER, MCP_NAME_HEADER):
            if name in headers:
                raise Refusal(
                    400, INVALID_REQUEST, f"Invalid Request: {name} on a request without a body", "header"
                )
        era, _ = era_of(headers)
        job.record.era = era
        if single(headers, SESSION_HEADER) is None:
            raise Refusal(400, INVALID_REQUEST, "Invalid Request: no session to end", "session")
        self._session(job, headers, None)
        job.path = job.route.config.upstream.path
        job.headers = self._upstream_headers(headers, job, era, accept_default=None)

    def _upstream_headers(
        self, headers: Mapping[str, list[str]], job: Forwarding, era: Era, accept_default: str | None
    ) -> list[tuple[str, str]]:
        """Only the allowlisted headers (docs/router.md), each once; never Authorization."""
        rid = job.message.id if job.message else None
        out: list[tuple[str, str]] = []
        host = single(headers, "host", rid)
        if host is not None:
            out.append(("Host", host))
        accept = single(headers, "accept", rid) or accept_default
        if accept is not None:
            out.append(("Accept", accept))
        version = single(headers, "mcp-protocol-version", rid)
        if version is not None:
            out.append(("MCP-Protocol-Version", version))
        if job.session is not None and job.session.kind == "http":
            out.append(("Mcp-Session-Id", job.session.inner))
        last_event = single(headers, "last-event-id", rid)
        if last_event is not None:
            out.append(("Last-Event-ID", last_event))
        message = job.message
        if era == "modern" and message is not None and message.method is not None:
            # The server checks these against the body it receives; they are rebuilt from the parsed body.
            out.append(("Mcp-Method", message.method))
            name_key = NAME_BEARING_METHODS.get(message.method)
            value = message.params.get(name_key) if name_key and message.params is not None else None
            if isinstance(value, str):
                out.append(("Mcp-Name", encode_header_value(value)))
            prefix = MCP_PARAM_HEADER_PREFIX.lower()
            for name, _values in headers.items():
                if name.startswith(prefix):
                    # Mirrors of tool arguments: the server compares each with the body it receives.
                    out.append((name, single(headers, name, rid) or ""))
        out.append(("X-Request-ID", job.record.request_id))
        if job.record.client is not None:
            out.append(("X-Forwarded-For", job.record.client))
        proto = single(headers, "x-forwarded-proto", rid)
        if proto in ("http", "https"):
            out.append(("X-Forwarded-Proto", proto))
        return out

    # Forwarding

    async def _forward(self, job: Forwarding, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.http is not None, "the router's lifespan has not started"
        endpoints = job.route.endpoints
        request_id = job.message.id if job.message else None
        tried: frozenset[str] = frozenset()
        announced = False
        reopened = False
        while True:
            pod = job.pod or endpoints.pick(tried)
            if pod is None:
                raise Refusal(
                    502, INTERNAL_ERROR, "No server replica is available", "no-endpoint", request_id
                )
            if not announced:
                # Write-ahead: the record of what is about to run is written before the server can run
                # it, so a replica killed mid-answer still leaves it. Once: a retry on another pod is
                # the same message, and a refused connection sent nothing.
                self.audit(job.record.forward_line())
                announced = True
            url = URL(f"http://{pod}{job.path}", encoded=True)
            endpoints.begin(pod)
            try:
                async with asyncio.timeout(HEADERS_SECONDS):
                    response = await self.http.request(
                        scope["method"], url, data=job.body, headers=job.headers, allow_redirects=False
                    )
            except aiohttp.ClientConnectorError:
                endpoints.end(pod)
                if job.session is not None:
                    # The pod holding the session is gone: MCP clients start a new session on 404.
                    raise Refusal(
                        404,
                        UNAUTHORIZED,
                        "Session not found: start a new session",
                        "session-gone",
                        request_id,
                    ) from None
                if job.pod is not None:
                    # The router's own session's pod is gone (fleet): one new session elsewhere.
                    if job.reopen is not None and not reopened:
                        reopened = True
                        await job.reopen(job, frozenset({pod}))
                        continue
                    await self._failed(job, send, 502, "The server could not be reached")
                    return
                tried = tried | {pod}
                if len(tried) < len(endpoints.addresses):
                    continue  # nothing was sent: another pod may take it
                await self._failed(job, send, 502, "The server could not be reached")
                return
            except TimeoutError:
                endpoints.end(pod)
                await self._failed(job, send, 504, "The server timed out")
                return
            except aiohttp.ClientError:
                endpoints.end(pod)
                await self._failed(job, send, 502, "The server failed to answer")
                return
            if response.status == 404 and job.reopen is not None and not reopened:
                # The server no longer knows the router's own session (restarted): it ran nothing.
                response.release()
                endpoints.end(pod)
                reopened = True
                await job.reopen(job, frozenset())
                continue
            try:
                await self._relay(job, pod, response, receive, send)
            finally:
                response.release()
                endpoints.end(pod)
            return

    async def _failed(self, job: Forwarding, send: Send, status: int, text: str) -> None:
        record = job.record
        record.outcome, record.status, record.rpc_code = "upstream_error", status, INTERNAL_ERROR
        request_id = job.message.id if job.message else None
        await _answer(send, Refusal(status, INTERNAL_ERROR, text, "upstream", request_id))

    async def _relay(
        self, job: Forwarding, pod: str, response: aiohttp.ClientResponse, receive: Receive, send: Send
    ) -> None:
        record = job.record
        record.status = response.status
        out: list[tuple[bytes, bytes]] = []
        session_value: bytes | None = None
        content_type = b""
        rewrite = job.answer
        for name, value in response.raw_headers:
            lower = name.lower()
            if lower == b"mcp-session-id":
                session_value = value
            elif lower not in _HOP_BY_HOP and (rewrite is None or lower != b"content-length"):
                out.append((lower, value))
                if lower == b"content-type":
                    content_type = value.split(b";", 1)[0].strip().lower()
        if session_value is not None and not job.fleet:
            out.append(
                (b"mcp-session-id", self._seal_answer(job, pod, session_value.decode("latin-1")).encode())
            )
        stream_sse = content_type == b"text/event-stream"
        if job.route.kind == "sse-stream" and stream_sse and response.status == 200:
            await self._relay_sse_transport(job, pod, response, out, receive, send)
            return
        watcher = _Outcome(job)
        if rewrite is not None and (stream_sse or content_type == _JSON):
            await self._relay_rewritten(job, response, out, stream_sse, watcher, rewrite, receive, send)
            return
        if rewrite is not None and response.content_length is not None:
            out.append((b"content-length", str(response.content_length).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        if stream_sse:
            watcher.left = await until_disconnect(
                receive, self._pump(response, send, watcher, watcher.feed_sse)
            )
        else:
            inspect = content_type == _JSON
            length = response.content_length
            if inspect and length is not None and length <= WHOLE_BYTES:
                # The common answer, small JSON of known length: read whole, relayed in one send.
                try:
                    body = await response.read()
                except aiohttp.ClientError:
                    body = b""  # the pod went away mid-answer: end the answer here, as the pod did
                    watcher.cut = True
                watcher.feed_json(body)
                await send({"type": "http.response.body", "body": body, "more_body": False})
            else:
                await self._pump(response, send, watcher, watcher.feed_json if inspect else None)
            if inspect:
                watcher.finish_json()
        watcher.settle(response.status)

    async def _relay_rewritten(
        self,
        job: Forwarding,
        response: aiohttp.ClientResponse,
        out: list[tuple[bytes, bytes]],
        stream_sse: bool,
        watcher: _Outcome,
        rewrite: Callable[[dict[str, Any]], bool],
        receive: Receive,
        send: Send,
    ) -> None:
        """An answer the router rewrites: each JSON-RPC message is read once (which also finds the audit
        outcome), rewritten, and re-serialized only when it changed. JSON whole, SSE event by event; past
        REWRITE_BYTES the answer is cut, never relayed unrewritten. The fleet's answers drop SSE event ids:
        a client resumes nothing on /mcp."""
        status = response.status
        if not stream_sse:
            try:
                body = await response.content.read(REWRITE_BYTES + 1)
            except aiohttp.ClientError:
                body = b""
                watcher.cut = True
            if len(body) > REWRITE_BYTES:
                await self._failed(job, send, 502, "The server's answer is too large to relay")
                return
            document = _document(body)
            if document is not None:
                if rewrite(document):
                    body = strictjson.dumps(document)
                watcher.document(document)
            out.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            watcher.settle(status)
            return
        await send({"type": "http.response.start", "status": status, "headers": out})
        parser = sse.SseParser(REWRITE_BYTES)
        keep_ids = not job.fleet

        async def pump() -> None:
            try:
                async for chunk in response.content.iter_any():
                    pieces: list[bytes] = []
                    for event in parser.feed(chunk):
                        data = event.data
                        if event.event == "message":
                            document = _document(data.encode("utf-8"))
                            if document is not None:
                                if rewrite(document):
                                    data = strictjson.dumps(document).decode("utf-8")
                                watcher.document(document)
                        kept_id = event.id if keep_ids else None
                        if kept_id:
                            watcher.resumable = True
                        pieces.append(sse.encode(sse.Event(event.event, data, kept_id)))
                    if parser.overflowed:
                        break  # an event too large to rewrite: the answer ends here
                    if pieces:
                        body = b"".join(pieces)
                        await send({"type": "http.response.body", "body": body, "more_body": True})
            except aiohttp.ClientError:
                watcher.cut = True  # the pod went away mid-answer: end the answer here, as the pod did
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        watcher.left = await until_disconnect(receive, pump())
        watcher.settle(status)

    def _seal_answer(self, job: Forwarding, pod: str, inner: str) -> str:
        if job.session is not None and job.sealed is not None and inner == job.session.inner:
            return job.sealed
        sealed = self.sealer.seal("http", job.route.name, job.caller.subject, pod, inner)
        job.record.session = session_digest(inner)
        return sealed

    async def _pump(
        self,
        response: aiohttp.ClientResponse,
        send: Send,
        watcher: _Outcome,
        feed: Callable[[bytes], None] | None,
    ) -> None:
        try:
            async for chunk in response.content.iter_any():
                if feed is not None:
                    feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except aiohttp.ClientError:
            watcher.cut = True  # the pod went away mid-answer: end the answer here, as the pod did
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _relay_sse_transport(
        self,
        job: Forwarding,
        pod: str,
        response: aiohttp.ClientResponse,
        out: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
    ) -> None:
        """An SSE-transport stream: its `endpoint` event rewritten to come back through the router, sealed,
        and every answer listing tools filtered as a tools/list answer is on other routes (the answers to
        posts come on this stream, which another replica's posts also reach, so any such answer is)."""
        await send({"type": "http.response.start", "status": 200, "headers": out})
        base = f"http://{pod}{job.path}"
        parser = sse.SseParser(REWRITE_BYTES)
        rewritten = False
        tools_filter = self._tools_filter(job.route, job.caller.roles, None)

        async def pump() -> None:
            nonlocal rewritten
            try:
                async for chunk in response.content.iter_any():
                    pieces: list[bytes] = []
                    for event in parser.feed(chunk):
                        if not rewritten and event.event == "endpoint":
                            target = urlsplit(urljoin(base, event.data.strip()))
                            inner = target.path + (f"?{target.query}" if target.query else "")
                            sealed = self.sealer.seal("sse", job.route.name, job.caller.subject, pod, inner)
                            public = f"/servers/{job.route.name}/{SSE_MESSAGE_SEGMENT}?session={sealed}"
                            event = sse.Event("endpoint", public, event.id)
                            rewritten = True
                        elif event.event == "message" and '"tools"' in event.data:
                            document = _document(event.data.encode("utf-8"))
                            if document is not None and tools_filter(document):
                                data = strictjson.dumps(document).decode("utf-8")
                                event = sse.Event(event.event, data, event.id)
                        pieces.append(sse.encode(event))
                    if parser.overflowed:
                        break  # an event too large to inspect: the stream ends here
                    if pieces:
                        await send(
                            {"type": "http.response.body", "body": b"".join(pieces), "more_body": True}
                        )
            except aiohttp.ClientError:
                pass
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        await until_disconnect(receive, pump())
        job.record.outcome = "ok"


class _Reply:
    """The ASGI send of one request, noting whether the answer has started (a failure after that point
    can no longer be answered with a 500)."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class _Outcome:
    """Finds the answer to the forwarded request in the response, for the audit record and metrics."""

    def __init__(self, job: Forwarding) -> None:
        self.job = job
        message = job.message
        self.wanted = message.id if message is not None and message.kind == "request" else None
        self.parser = sse.SseParser() if self.wanted is not None else None
        self.buffer: list[bytes] = []
        self.size = 0
        self.found = False
        self.unread = False
        """Part of the answer was past what is inspected (an SSE event over 1 MiB, JSON over 4 MiB)."""
        self.cut = False
        """The pod's answer broke off: the connection was lost mid-answer."""
        self.left = False
        """The client went away before the answer ended."""
        self.resumable = False
        """The stream carried event ids the client got: it may resume it (Last-Event-ID) for the answer."""

    def feed_sse(self, chunk: bytes) -> None:
        if self.parser is None or self.found:
            return
        for event in self.parser.feed(chunk):
            if event.id:
                self.resumable = True
            if event.event == "message" and self._answer(event.data.encode("utf-8")):
                return
        self.unread = self.parser.overflowed

    def feed_json(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= INSPECT_BYTES:
            self.buffer.append(chunk)
        else:
            self.unread = True

    def finish_json(self) -> None:
        if self.size <= INSPECT_BYTES and self.buffer:
            self._answer(b"".join(self.buffer))

    def _answer(self, data: bytes) -> bool:
        document = _document(data)
        return document is not None and self.document(document)

    def document(self, document: dict[str, Any]) -> bool:
        """Takes one JSON-RPC message of the answer; True once it is the answer to the request."""
        if self.found or ("result" not in document and "error" not in document):
            return False
        if self.wanted is not None and document.get("id") != self.wanted:
            return False
        self.found = True
        record = self.job.record
        if "error" in document:
            error = document["error"]
            code = error.get("code") if isinstance(error, dict) else None
            record.outcome = "rpc_error"
            record.rpc_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        else:
            result = document["result"]
            record.outcome = (
                "tool_error" if isinstance(result, dict) and result.get("isError") is True else "ok"
            )
        return True

    def settle(self, status: int) -> None:
        record = self.job.record
        if self.found:
            return
        if status >= 500:
            record.outcome, record.rpc_code = "upstream_error", None
        elif status >= 400:
            record.outcome = "rpc_error"
        elif self.wanted is not None and not self.left and (self.cut or not (self.unread or self.resumable)):
            # A request's answer began (2xx) and ended without the answer to it: the pod broke off
            # (killed after its SDK sent the stream's headers, before the tool even ran: the chunked
            # answer ends short) or sent none. Nobody answered the caller, whatever the status said.
            record.outcome, record.rpc_code = "upstream_error", None
        else:
            # A notification's or response's 202; an answer too large to inspect, or a stream with event
            # ids (the server may close it for the client to resume, MCP's polling), that ended as the
            # pod ended it; or a client that left first (not the server's failure).
            record.outcome = "ok"


def _document(data: bytes) -> dict[str, Any] | None:
    """A JSON object as a server sent it, or None (not JSON, or not an object)."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


async def until_disconnect(receive: Receive, work: Awaitable[None]) -> bool:
    """Run a long answer until it ends or the client goes away (then stop reading the pod); True when
    the client went away first.

    The answer runs in this task; one watcher task cancels it if the client leaves first. Only while
    `work` is suspended can the watcher run, so its cancellation always lands in `work`, and is taken
    back here (any other cancellation, a shutdown's, goes on)."""
    current = asyncio.current_task()
    assert current is not None
    left = False

    async def watch() -> None:
        nonlocal left
        while (await receive())["type"] != "http.disconnect":
            pass
        left = True
        current.cancel()

    watcher = asyncio.create_task(watch())
    try:
        await work
    except asyncio.CancelledError:
        if not left or current.uncancel() > 0:
            raise
    finally:
        watcher.cancel()
    return left


async def _answer(send: Send, refusal: Refusal) -> None:
    body = refusal.body()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if refusal.status == 401:
        headers.append((b"www-authenticate", b'Bearer error="invalid_token"'))
    elif refusal.status == 429:
        # As the gateway's 429s: the count is over the last minute.
        headers.append((b"retry-after", b"60"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_id(headers: Mapping[str, list[str]]) -> str:
    """HAProxy's unique id when it sent exactly one well-formed id, else one of our own."""
    values = headers.get("x-request-id") or []
    if len(values) == 1 and _REQUEST_ID.fullmatch(values[0]):
        return values[0]
    return uuid.uuid4().hex


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> str | None:
    """An IP address in its canonical form, or None. Cached (short texts only, so the cache stays small):
    clients come back, and parsing one costs more than the rest of the request's header handling."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _client(headers: Mapping[str, list[str]], scope: Scope) -> str | None:
    """The client address HAProxy saw (one valid IP), else the peer's own address."""
    values = headers.get("x-forwarded-for") or []
    if len(values) == 1:
        candidate = values[0].strip()
        address = _address(candidate) if len(candidate) <= MAX_ADDRESS_LENGTH else None
        if address is not None:
            return address
    peer = scope.get("client")
    return str(peer[0]) if peer else None


def build_app(
    config: RouterConfig | Mapping[str, Any],
    jwt_key_pem: bytes,
    session_keys: list[bytes],
    resolver: Resolver = resolve,
    resolve_seconds: float = RESOLVE_SECONDS,
    audit: AuditSink = discard,
) -> Router:
    """The router for a configuration (a RouterConfig, or the dict form of router.json, as tests build it);
    audit receives its audit lines (`observe.write_to(1)`: stdout, as deployed)."""
    from mcpfleet.router.config import parse_config

    parsed = config if isinstance(config, RouterConfig) else parse_config(dict(config))
    verifier = TokenVerifier(parsed.auth, jwt_key_pem)
    return Router(parsed, verifier, Sealer(session_keys), resolver, resolve_seconds, audit)
