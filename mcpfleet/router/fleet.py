"""The fleet endpoint (`/mcp`): one MCP server over every server of the environment. The router answers
the handshake and the lists itself, from its listings; calls are unwrapped and forwarded through the
per-server path (docs/router.md, "The fleet endpoint")."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from mcp.shared.inbound import (
    MCP_PARAM_HEADER_PREFIX,
    NAME_BEARING_METHODS,
    encode_header_value,
    mcp_param_headers,
    x_mcp_header_map,
)
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LOG_LEVEL_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
)
from mcp_types.jsonrpc import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND
from mcp_types.methods import CLIENT_REQUESTS
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS
from yarl import URL

from mcpfleet.router import names, sse, strictjson
from mcpfleet.router.access import ToolAccess
from mcpfleet.router.messages import (
    FORBIDDEN,
    INTERNAL_ERROR,
    RATE_LIMITED,
    UNAUTHORIZED,
    Era,
    Message,
    Refusal,
    RequestId,
    check_routing_headers,
    era_of,
    read_message,
    single,
)
from mcpfleet.router.observe import Record, session_digest
from mcpfleet.router.ratelimit import Limits
from mcpfleet.router.sessions import Session, UnknownSession

if TYPE_CHECKING:
    from mcpfleet.router.app import Forwarding, Receive, Route, Router, Scope, Send
    from mcpfleet.router.listings import Listings, ServerListing

log = logging.getLogger("mcpfleet.router.fleet")

SESSION_HEADER: Final = "mcp-session-id"
SUBSCRIPTION_ID_META_KEY: Final = "io.modelcontextprotocol/subscriptionId"
LIST_KINDS: Final = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
}
"""List method -> the result member holding its items."""
CALL_METHODS: Final = frozenset(
    {
        "tools/call",
        "prompts/get",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
    }
)
LIST_TTL_MS: Final = 60_000
"""How long a modern client may keep a list page: a change also reaches it as a list_changed."""
DISCOVER_TTL_MS: Final = 300_000
KEEPALIVE_SECONDS: Final = 15.0
"""A comment line this often keeps idle notification streams open through proxies."""
VIEWS_KEPT: Final = 64
"""Sorted views kept per list kind, one per set of roles (least recently used dropped first)."""
SEGMENT_ROLES_KEPT: Final = 64
BACKENDS_KEPT: Final = 4096
"""Backend sessions of the router's own on legacy servers, per replica (least recently used closed)."""
OPEN_SECONDS: Final = 30.0
HANDSHAKE_ANSWER_BYTES: Final = 1024 * 1024
_DROPPED_FOR_LEGACY: Final = frozenset(
    {PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LOG_LEVEL_META_KEY}
)
"""`_meta` keys of the per-request envelope (2026-07-28), meaningless to a handshake-era server."""

try:
    _VERSION = version("mcpfleet")
except PackageNotFoundError:  # a source tree run without installing
    _VERSION = "0.0.0"
SERVER_INFO: Final = {"name": "mcpfleet", "title": "mcpfleet fleet endpoint", "version": _VERSION}
ROUTER_CLIENT_INFO: Final = {"name": "mcpfleet-router", "version": _VERSION}


def _dumps(value: Any) -> bytes:
    return strictjson.dumps(value)


# Lists: per server, per listing, the namespaced items serialized once; per set of roles, the sorted view.


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    """The namespaced name or URI: the sort key and what a cursor names."""
    original: str
    """The server's own name or URI."""
    blob: bytes
    """The namespaced item as JSON."""


@dataclass
class Segment:
    """One server's items of one kind, from one listing."""

    listing: object
    items: list[Item]
    by_roles: dict[frozenset[str], list[Item]] = field(default_factory=dict)


@dataclass(frozen=True)
class View:
    generation: int
    keys: list[str]
    blobs: list[bytes]


@dataclass(frozen=True)
class FleetServer:
    """A server as the fleet endpoint sees it."""

    name: str
    route: Route
    access: ToolAccess
    roles: frozenset[str]
    """Every role named in the server's access rules: who sees its resources, templates and prompts."""
    limits: Limits | None
    """Messages per minute on /mcp: the server's own, else the environment's; None: not counted."""

    def visible(self, roles: frozenset[str]) -> bool:
        return not self.roles.isdisjoint(roles)


def _items(server: str, listing: ServerListing, kind: str, servable: Callable[[str], bool]) -> list[Item]:
    """The namespaced items of one kind in a listing, sorted, each serialized once."""
    found: dict[str, Item] = {}
    wrap: Callable[[str, str], str] = names.namespace_uri
    raw: Iterable[tuple[Any, Mapping[str, Any]]]
    if kind == "tools":
        raw = ((entry.name, entry.definition) for entry in listing.tools if servable(entry.name))
        member, wrap = "name", names.namespace_name
    elif kind == "prompts":
        raw = ((p.get("name"), p) for p in listing.prompts)
        member, wrap = "name", names.namespace_name
    elif kind == "resources":
        raw = ((r.get("uri"), r) for r in listing.resources)
        member = "uri"
    else:
        raw = ((t.get("uriTemplate"), t) for t in listing.resource_templates)
        member = "uriTemplate"
    for original, definition in raw:
        if not isinstance(original, str) or not original:
            continue
        key = wrap(server, original)
        if key in found or (member == "name" and len(key) > names.MAX_NAME_LENGTH):
            continue  # a duplicate, or a name too long for clients (the fleet rule refuses it at review)
        document = dict(definition)
        document[member] = key
        try:
            blob = _dumps(document)
        except strictjson.NotStrictJson:
            continue
        found[key] = Item(key, original, blob)
    return [found[key] for key in sorted(found)]


class Catalog:
    """The fleet's lists as each caller sees them, rebuilt only where a listing changed."""

    def __init__(
        self,
        servers: Mapping[str, FleetServer],
        listings: Listings,
        servable: Callable[[str, str], bool],
    ) -> None:
        self.servers = servers
        self.listings = listings
        self.servable = servable
        by_name = sorted(servers, key=names.name_prefix)
        by_uri = sorted(servers, key=names.uri_prefix)
        self.order = {"tools": by_name, "prompts": by_name, "resources": by_uri, "resourceTemplates": by_uri}
        self._segments: dict[tuple[str, str], Segment] = {}
        self._views: dict[str, OrderedDict[frozenset[str], View]] = {k: OrderedDict() for k in self.order}

    def view(self, kind: str, roles: frozenset[str]) -> View:
        generation = self.listings.generation
        views = self._views[kind]
        view = views.get(roles)
        if view is not None and view.generation == generation:
            views.move_to_end(roles)
            return view
        keys: list[str] = []
        blobs: list[bytes] = []
        for name in self.order[kind]:
            items = self._segment_items(kind, name, roles)
            if items:
                keys.extend(item.key for item in items)
                blobs.extend(item.blob for item in items)
        view = View(generation, keys, blobs)
        views[roles] = view
        views.move_to_end(roles)
        while len(views) > VIEWS_KEPT:
            views.popitem(last=False)
        return view

    def warm(self, name: str) -> None:
        """Serialize a server's items as soon as its listing changes (called by the listings), so the
        first list after a change, or after the start, does not do it for every server at once."""
        if name in self.servers and self.listings.get(name) is not None:
            for kind in self.order:
                self._segment(kind, name)

    def _segment(self, kind: str, name: str) -> Segment | None:
        listing = self.listings.get(name)
        if listing is None:
            self._segments.pop((kind, name), None)
            return None  # not listed (yet), or down: left out
        segment = self._segments.get((kind, name))
        if segment is None or segment.listing is not listing:
            segment = Segment(listing, _items(name, listing, kind, lambda tool: self.servable(name, tool)))
            self._segments[(kind, name)] = segment
        return segment

    def _segment_items(self, kind: str, name: str, roles: frozenset[str]) -> list[Item]:
        server = self.servers[name]
        if not server.visible(roles):
            return []
        segment = self._segment(kind, name)
        if segment is None:
            return []
        if kind != "tools":
            return segment.items
        items = segment.by_roles.get(roles)
        if items is None:
            access = server.access
            items = [item for item in segment.items if access.allows(item.original, roles)]
            if len(segment.by_roles) >= SEGMENT_ROLES_KEPT:
                segment.by_roles.clear()
            segment.by_roles[roles] = items
        return items

    def tool(self, name: str, tool: str) -> Mapping[str, Any] | None:
        """The live definition of a tool, as listed."""
        listing = self.listings.get(name)
        if listing is None:
            return None
        for entry in listing.tools:
            if entry.name == tool:
                return entry.definition
        return None


def page(view: View, cursor: str | None, size: int) -> tuple[list[bytes], str | None]:
    """One page after the cursor's name, and the cursor of the next page (None on the last)."""
    start = 0
    if cursor is not None:
        start = bisect.bisect_right(view.keys, names.decode_cursor(cursor))
    end = start + size
    items = view.blobs[start:end]
    following = names.encode_cursor(view.keys[end - 1]) if end < len(view.keys) else None
    return items, following


# Rewriting what servers answer: their URIs back to the fleet's, ids back to the client's.


def _rewrite_uri(server: str, holder: Any, member: str = "uri") -> bool:
    if isinstance(holder, dict):
        uri = holder.get(member)
        if isinstance(uri, str):
            holder[member] = names.namespace_uri(server, uri)
            return True
    return False


def _rewrite_content(server: str, blocks: Any) -> bool:
    """resource_link and embedded resource blocks in a content list."""
    changed = False
    if isinstance(blocks, list):
        for block in blocks:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "resource_link":
                changed |= _rewrite_uri(server, block)
            elif kind == "resource":
                changed |= _rewrite_uri(server, block.get("resource"))
    return changed


class FleetAnswer:
    """Rewrites a server's answer to a forwarded fleet message: resource URIs in the result become the
    fleet's, an id the router replaced is given back, and a handshake-era server's result gets what a
    2026-07-28 client requires of a result (`resultType`; `ttlMs` and `cacheScope` where cacheable).
    Called on every JSON-RPC message of the answer (the answer itself and notifications on its stream);
    says whether it changed the document."""

    __slots__ = ("method", "modernize", "restore", "server")

    def __init__(
        self, server: str, method: str, restore: tuple[RequestId, RequestId] | None, modernize: bool
    ) -> None:
        self.server = server
        self.method = method
        self.restore = restore
        self.modernize = modernize

    def __call__(self, document: dict[str, Any]) -> bool:
        changed = False
        if "method" in document:
            if document.get("method") == "notifications/resources/updated":
                changed = _rewrite_uri(self.server, document.get("params"))
            return changed
        if self.restore is not None and document.get("id") == self.restore[0]:
            document["id"] = self.restore[1]
            changed = True
        result = document.get("result")
        if not isinstance(result, dict):
            return changed
        method = self.method
        if self.modernize and "resultType" not in result:
            result["resultType"] = "complete"
            if method == "resources/read":
                result.setdefault("ttlMs", 0)
                result.setdefault("cacheScope", "private")
            changed = True
        if method == "tools/call":
            changed |= _rewrite_content(self.server, result.get("content"))
        elif method == "resources/read":
            contents = result.get("contents")
            if isinstance(contents, list):
                for entry in contents:
                    changed |= _rewrite_uri(self.server, entry)
        elif method == "prompts/get":
            messages = result.get("messages")
            if isinstance(messages, list):
                for message in messages:
                    if isinstance(message, dict):
                        changed |= _rewrite_content(self.server, [message.get("content")])
        return changed


# Sessions of the router's own on handshake-era servers.


@dataclass(frozen=True)
class Backend:
    """A session the router opened on a legacy server for one client (or one caller)."""

    pod: str | None
    """The pod holding it; None when the server keeps no session (any pod answers)."""
    session: str | None
    version: str


class Backends:
    """Backend sessions by (client key, server), least recently used closed first, per replica."""

    def __init__(self, router: Router, limit: int = BACKENDS_KEPT) -> None:
        self.router = router
        self.limit = limit
        self._kept: OrderedDict[tuple[str, str], Backend] = OrderedDict()
        self._opening: dict[tuple[str, str], asyncio.Future[Backend]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._kept)

    async def get(
        self, key: tuple[str, str], route: Route, version: str, headers: list[tuple[str, str]]
    ) -> Backend:
        backend = self._kept.get(key)
        if backend is not None:
            self._kept.move_to_end(key)
            return backend
        pending = self._opening.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise
                return await self.get(key, route, version, headers)
        future: asyncio.Future[Backend] = asyncio.get_running_loop().create_future()
        self._opening[key] = future
        try:
            backend = await self._open(route, version, headers, frozenset())
        except asyncio.CancelledError:
            future.cancel()  # the opener's client left: a waiter opens again itself
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters get it, nobody else needs to
            raise
        finally:
            self._opening.pop(key, None)
        future.set_result(backend)
        self._kept[key] = backend
        while len(self._kept) > self.limit:
            (_, server), old = self._kept.popitem(last=False)
            self._close_later(server, old)
        return backend

    async def replace(
        self,
        key: tuple[str, str],
        old: Backend,
        route: Route,
        version: str,
        headers: list[tuple[str, str]],
        exclude: frozenset[str],
    ) -> Backend:
        """A new session in place of one the server no longer knows (or whose pod is gone)."""
        if self._kept.get(key) == old:
            del self._kept[key]
        backend = await self._open(route, version, headers, exclude)
        self._kept[key] = backend
        return backend

    def close_client(self, client: str) -> None:
        """A fleet session ended: end the sessions opened for it."""
        for key in [key for key in self._kept if key[0] == client]:
            self._close_later(key[1], self._kept.pop(key))

    def _close_later(self, server: str, backend: Backend) -> None:
        if backend.session is None or backend.pod is None:
            return
        task = asyncio.create_task(self._close(server, backend))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, server: str, backend: Backend) -> None:
        http = self.router.http
        route = self.router.server_routes.get(server)
        if http is None or route is None or backend.pod is None or backend.session is None:
            return
        url = URL(f"http://{backend.pod}{route.config.upstream.path}", encoded=True)
        headers = {"Mcp-Session-Id": backend.session, "MCP-Protocol-Version": backend.version}
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with asyncio.timeout(5):
                response = await http.request("DELETE", url, headers=headers)
                response.release()

    async def close(self) -> None:
        for task in list(self._closing):
            task.cancel()
        for task in list(self._closing):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _open(
        self, route: Route, version: str, headers: list[tuple[str, str]], exclude: frozenset[str]
    ) -> Backend:
        """initialize and notifications/initialized, as a client with no optional capabilities (so a
        server never asks it for sampling, roots or elicitation it cannot relay)."""
        http = self.router.http
        assert http is not None, "the router's lifespan has not started"
        endpoints = route.endpoints
        tried = set(exclude)
        body = _dumps(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": ROUTER_CLIENT_INFO},
            }
        )
        base = [(name, value) for name, value in headers if name.lower() not in ("mcp-session-id",)]
        while True:
            pod = endpoints.pick(frozenset(tried))
            if pod is None or pod in tried:
                raise Refusal(502, INTERNAL_ERROR, "No server replica is available", "no-endpoint")
            url = URL(f"http://{pod}{route.config.upstream.path}", encoded=True)
            try:
                async with asyncio.timeout(OPEN_SECONDS):
                    async with http.request("POST", url, data=body, headers=base) as response:
                        answer = await response.content.read(HANDSHAKE_ANSWER_BYTES)
                        status = response.status
                        session = response.headers.get("Mcp-Session-Id")
                        kind = response.headers.get("Content-Type", "")
                    result = _handshake_result(answer, kind) if status == 200 else None
                    if result is None:
                        raise Refusal(
                            502, INTERNAL_ERROR, "The server refused the router's session", "backend-session"
                        )
                    agreed = result.get("protocolVersion")
                    agreed = agreed if isinstance(agreed, str) else version
                    follow = [*base, ("MCP-Protocol-Version", agreed)]
                    if session is not None:
                        follow.append(("Mcp-Session-Id", session))
                    note = _dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
                    async with http.request("POST", url, data=note, headers=follow) as response:
                        await response.read()
            except aiohttp.ClientConnectorError:
                tried.add(pod)
                if len(tried) < len(endpoints.addresses) + len(exclude):
                    continue
                raise Refusal(502, INTERNAL_ERROR, "The server could not be reached", "upstream") from None
            except (aiohttp.ClientError, TimeoutError):
                raise Refusal(502, INTERNAL_ERROR, "The server could not be reached", "upstream") from None
            return Backend(pod if session is not None else None, session, agreed)


def _handshake_result(answer: bytes, kind: str) -> dict[str, Any] | None:
    """The result of an initialize answer, JSON or the first message of an SSE stream."""
    documents: list[bytes] = []
    if kind.split(";", 1)[0].strip().lower() == "text/event-stream":
        parser = sse.SseParser()
        documents = [e.data.encode() for e in parser.feed(answer + b"\n\n") if e.event == "message"]
    else:
        documents = [answer]
    for data in documents:
        try:
            document = json.loads(data)
        except ValueError:
            continue
        if isinstance(document, dict) and isinstance(document.get("result"), dict):
            result: dict[str, Any] = document["result"]
            return result
    return None


# Notification streams: a legacy session's GET stream, a modern client's subscriptions/listen.

LIST_CHANGED: Final = {
    "tools": "notifications/tools/list_changed",
    "prompts": "notifications/prompts/list_changed",
    "resources": "notifications/resources/list_changed",
}
LISTEN_FILTERS: Final = {
    "toolsListChanged": "tools",
    "promptsListChanged": "prompts",
    "resourcesListChanged": "resources",
}


def change_kinds(kinds: Iterable[str]) -> set[str]:
    """What a listing change means to clients: templates are announced as resources, as MCP does."""
    out: set[str] = set()
    for kind in kinds:
        lowered = kind.lower()
        if "tool" in lowered:
            out.add("tools")
        elif "prompt" in lowered:
            out.add("prompts")
        elif "resource" in lowered or "template" in lowered:
            out.add("resources")
    return out


@dataclass(eq=False)
class Listener:
    roles: frozenset[str]
    wanted: frozenset[str]
    client: str | None
    """The fleet session's id, for a legacy stream (DELETE ends it)."""
    pending: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False


class Hub:
    """Open notification streams, told of every listing change that concerns their caller."""

    def __init__(self, servers: Mapping[str, FleetServer]) -> None:
        self.servers = servers
        self.listeners: set[Listener] = set()

    def changed(self, server: str, kinds: Iterable[str]) -> None:
        what = change_kinds(kinds)
        entry = self.servers.get(server)
        if not what or entry is None:
            return
        for listener in self.listeners:
            if entry.visible(listener.roles):
                wanted = what & listener.wanted
                if wanted:
                    listener.pending |= wanted
                    listener.wake.set()

    def end(self, client: str | None = None) -> None:
        """Close the streams of one fleet session, or (None) every stream."""
        for listener in self.listeners:
            if client is None or listener.client == client:
                listener.closed = True
                listener.wake.set()


# The endpoint.


LOOPBACK_HOSTS: Final = ("localhost", "127.0.0.1", "[::1]")
"""Names a browser sends only for a page of this machine's own: DNS rebinding never produces them."""


@dataclass(frozen=True)
class AllowedHosts:
    """DNS-rebinding protection of the fleet endpoint, as the mcp SDK's servers apply it on per-server
    routes (TransportSecuritySettings): the Host must be the public domain or a loopback name, any port;
    an Origin, when a browser sends one, must be http(s):// of such a host. The router answers /mcp
    itself, so it checks what the servers check behind their own routes (the gateway passes Host as the
    client sent it)."""

    names: frozenset[str]

    @classmethod
    def of(cls, audience: str, extra: Iterable[str] = ()) -> AllowedHosts:
        public = URL(audience).raw_host
        names = {
            *LOOPBACK_HOSTS,
            *((public,) if public else ()),
            *(name.removesuffix(":*") for name in extra),
        }
        return cls(frozenset(name.lower() for name in names))

    def allows(self, host: str) -> bool:
        """host (a Host header, or an Origin's authority) names an allowed host, with any port or none."""
        host = host.lower()
        if host.startswith("["):  # an IPv6 literal
            end = host.find("]") + 1
            name, rest = host[:end], host[end:] if end else "?"
        else:
            name, colon, port = host.partition(":")
            rest = colon + port
        return (not rest or (rest[0] == ":" and rest[1:].isdigit())) and name in self.names

    def check(self, headers: Mapping[str, list[str]]) -> None:
        host = single(headers, "host")
        if host is None or not self.allows(host):
            raise Refusal(421, INVALID_REQUEST, "Misdirected Request: invalid Host header", "host")
        origin = single(headers, "origin")
        if origin is not None:
            scheme, sep, rest = origin.partition("://")
            if not sep or scheme.lower() not in ("http", "https") or "/" in rest or not self.allows(rest):
                raise Refusal(403, FORBIDDEN, "Forbidden: invalid Origin header", "origin")


class FleetEndpoint:
    """`/mcp`: authenticates with the fleet audience, answers what the router can, hands calls back to
    the router's forwarding path."""

    def __init__(self, router: Router, listings: Listings) -> None:
        fleet = router.config.fleet
        assert fleet is not None
        self.router = router
        self.path: str = fleet.public_path
        self.audience: str = fleet.audience
        self.hosts = AllowedHosts.of(fleet.audience, router.allowed_hosts)
        self.page_size: int = fleet.page_size
        self.listings = listings
        servers: dict[str, FleetServer] = {}
        for name, route in router.server_routes.items():
            roles = frozenset(role for rule in route.config.access for role in rule.roles)
            rates = route.config.rate_limits or fleet.rate_limits
            limits = None
            if rates is not None:
                limits = Limits(rates.per_caller_per_minute, rates.per_server_per_minute)
            servers[name] = FleetServer(name, route, route.access, roles, limits)
        self.servers = servers
        self.catalog = Catalog(servers, listings, router.tool_servable)
        self.hub = Hub(servers)
        self.backends = Backends(router)
        self._ids = itertools.count(1)
        self._param_headers: dict[tuple[int, str, str], dict[tuple[str, ...], str]] = {}
        listings.add_listener(self._changed)
        instructions = (
            f"Every MCP server of the {router.config.environment} environment behind one endpoint: tools and"
            " prompts are named <server>__<name>, resources mcpfleet://<server>/<uri>. Only what the"
            " caller may use is listed."
        )
        capabilities = {
            "tools": {"listChanged": True},
            "resources": {"listChanged": True},
            "prompts": {"listChanged": True},
            "completions": {},
        }
        self.instructions = instructions
        self.capabilities = capabilities

    def _changed(self, server: str, kinds: frozenset[str]) -> None:
        self.catalog.warm(server)
        self.hub.changed(server, kinds)

    async def close(self) -> None:
        self.hub.end()
        await self.backends.close()

    # Entry

    async def handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: Mapping[str, list[str]],
        record: Record,
    ) -> Forwarding | None:
        """Answer the request, or return the forwarding of a call for the router to run."""
        record.server = ""
        self.hosts.check(headers)
        caller = self.router.authenticate(headers, self.audience)
        record.caller = caller.subject
        verb = scope["method"]
        if verb == "POST":
            return await self._post(scope, receive, send, headers, record, caller)
        if verb == "GET":
            record.method = "GET"
            await self._get_stream(receive, send, headers, record, caller)
            return None
        if verb == "DELETE":
            record.method = "DELETE"
            await self._delete(send, headers, record, caller)
            return None
        raise Refusal(405, INVALID_REQUEST, "Method not allowed", "http-method")

    def _open_session(
        self, headers: Mapping[str, list[str]], caller: Any, request_id: RequestId | None
    ) -> Session:
        sealed = single(headers, SESSION_HEADER, request_id)
        if sealed is None:
            raise Refusal(
                400,
                INVALID_REQUEST,
                "Invalid Request: Mcp-Session-Id needed (initialize first)",
                "session",
                request_id,
            )
        router = self.router
        try:
            session = router.sealer.open(sealed)
        except UnknownSession:
            raise Refusal(
                400, INVALID_REQUEST, "Invalid Request: unknown session", "session", request_id
            ) from None
        if session.kind != "fleet":
            raise Refusal(400, INVALID_REQUEST, "Invalid Request: unknown session", "session", request_id)
        if session.subject != caller.subject:
            raise Refusal(
                403,
                FORBIDDEN,
                "Forbidden: the session belongs to another caller",
                "session-owner",
                request_id,
            )
        if time.time() - session.issued > router.config.session_max_age_seconds:
            raise Refusal(
                404, UNAUTHORIZED, "Session expired: start a new session", "session-expired", request_id
            )
        return session

    async def _post(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: Mapping[str, list[str]],
        record: Record,
        caller: Any,
    ) -> Forwarding | None:
        router = self.router
        router.check_content_type(headers)
        body = await router.read_body(headers, receive)
        message = read_message(body)
        record.method = message.method if message.kind != "response" else "response"
        era = check_routing_headers(message, headers)
        record.era = era
        rid = message.id
        if message.kind == "response":
            raise Refusal(
                400,
                INVALID_REQUEST,
                "Invalid Request: the fleet endpoint sends no requests to answer",
                "envelope",
                rid,
            )
        method = message.method or ""
        params = message.params or {}
        if era == "legacy" and method == "initialize":
            await self._initialize(send, message, record, caller)
            return None
        session: Session | None = None
        if era == "legacy":
            session = self._open_session(headers, caller, rid)
            record.session = session_digest(session.inner)
            version = single(headers, "mcp-protocol-version", rid) or LATEST_HANDSHAKE_VERSION
        else:
            version = single(headers, "mcp-protocol-version", rid) or ""
            meta = params.get("_meta")
            if not isinstance(meta, dict) or CLIENT_CAPABILITIES_META_KEY not in meta:
                raise Refusal(
                    400,
                    INVALID_PARAMS,
                    f"Invalid params: params._meta must carry {CLIENT_CAPABILITIES_META_KEY}",
                    "envelope",
                    rid,
                )
        if message.kind == "notification":
            record.outcome, record.status = "ok", 202
            await _send(send, 202, b"", None)
            return None
        if (method, version) not in CLIENT_REQUESTS:
            raise Refusal(400, METHOD_NOT_FOUND, "Method not found", "method", rid, method)
        if method in CALL_METHODS:
            return await self._call(message, params, headers, record, caller, era, session)
        if method in LIST_KINDS:
            result = self._list(method, params, caller.roles, era, rid)
        elif method == "ping":
            result = b"{}"
        elif method == "server/discover":
            result = self._discover()
        elif method == "subscriptions/listen":
            await self._listen(receive, send, message, record, caller)
            return None
        else:
            raise Refusal(400, METHOD_NOT_FOUND, "Method not found", "method", rid, method)
        record.outcome, record.status = "ok", 200
        await _send(send, 200, _envelope(rid, result), None)
        return None

    # What the router answers itself

    async def _initialize(self, send: Send, message: Message, record: Record, caller: Any) -> None:
        params = message.params or {}
        asked = params.get("protocolVersion")
        agreed = asked if asked in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
        inner = secrets.token_hex(16)
        sealed = self.router.sealer.seal("fleet", "", caller.subject, "", inner)
        record.session = session_digest(inner)
        result = _dumps(
            {
                "protocolVersion": agreed,
                "capabilities": self.capabilities,
                "serverInfo": SERVER_INFO,
                "instructions": self.instructions,
            }
        )
        record.outcome, record.status = "ok", 200
        await _send(send, 200, _envelope(message.id, result), sealed)

    def _discover(self) -> bytes:
        return _dumps(
            {
                "supportedVersions": list(MODERN_PROTOCOL_VERSIONS),
                "capabilities": self.capabilities,
                "instructions": self.instructions,
                "resultType": "complete",
                "ttlMs": DISCOVER_TTL_MS,
                "cacheScope": "public",
                "_meta": {SERVER_INFO_META_KEY: SERVER_INFO},
            }
        )

    def _list(
        self, method: str, params: Mapping[str, Any], roles: frozenset[str], era: Era, rid: RequestId | None
    ) -> bytes:
        member = LIST_KINDS[method]
        cursor = params.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise Refusal(400, INVALID_PARAMS, "Invalid params: cursor must be a string", "cursor", rid)
        view = self.catalog.view(member, roles)
        try:
            items, following = page(view, cursor, self.page_size)
        except names.BadCursor:
            raise Refusal(400, INVALID_PARAMS, "Invalid params: invalid cursor", "cursor", rid) from None
        parts = [b'{"', member.encode(), b'":[', b",".join(items), b"]"]
        if following is not None:
            parts.append(b',"nextCursor":"' + following.encode() + b'"')
        if era == "modern":
            parts.append(_MODERN_LIST_TAIL)
        parts.append(b"}")
        return b"".join(parts)

    # Notification streams

    async def _get_stream(
        self, receive: Receive, send: Send, headers: Mapping[str, list[str]], record: Record, caller: Any
    ) -> None:
        era, _ = era_of(headers)
        record.era = era
        session = self._open_session(headers, caller, None)
        record.session = session_digest(session.inner)
        accept = (single(headers, "accept") or "").lower()
        if "text/event-stream" not in accept:
            raise Refusal(406, INVALID_REQUEST, "Not Acceptable: the stream is text/event-stream", "accept")
        listener = Listener(caller.roles, frozenset(LIST_CHANGED), session.inner)
        record.outcome, record.status = "ok", 200
        await self._stream(receive, send, listener, None)

    async def _listen(
        self, receive: Receive, send: Send, message: Message, record: Record, caller: Any
    ) -> None:
        params = message.params or {}
        asked = params.get("notifications")
        if not isinstance(asked, dict):
            raise Refusal(
                400, INVALID_PARAMS, "Invalid params: notifications must be an object", "envelope", message.id
            )
        honored = {key: True for key in LISTEN_FILTERS if asked.get(key) is True}
        wanted = frozenset(LISTEN_FILTERS[key] for key in honored)
        listener = Listener(caller.roles, wanted, None)
        record.outcome, record.status = "ok", 200
        await self._stream(receive, send, listener, (message.id, honored))

    async def _stream(
        self,
        receive: Receive,
        send: Send,
        listener: Listener,
        subscription: tuple[RequestId | None, dict[str, bool]] | None,
    ) -> None:
        """The SSE stream of one listener until the client leaves or the stream is ended (DELETE of
        its session, or the router stopping: then a listen stream gets its closing result)."""
        from mcpfleet.router.app import until_disconnect

        meta: dict[str, Any] | None = None
        if subscription is not None:
            meta = {SUBSCRIPTION_ID_META_KEY: subscription[0]}
        hub = self.hub
        hub.listeners.add(listener)
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }

        async def run() -> None:
            await send(start)
            if subscription is not None:
                ack = {"notifications": subscription[1], "_meta": meta}
                await send(_event({"method": "notifications/subscriptions/acknowledged", "params": ack}))
            while not listener.closed:
                try:
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        await listener.wake.wait()
                except TimeoutError:
                    await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
                    continue
                listener.wake.clear()
                kinds, listener.pending = listener.pending, set()
                for kind in sorted(kinds):
                    note: dict[str, Any] = {"method": LIST_CHANGED[kind]}
                    if meta is not None:
                        note["params"] = {"_meta": meta}
                    await send(_event(note))
            tail = b""
            if subscription is not None:
                result = {"_meta": meta, "resultType": "complete"}
                tail = _event({"id": subscription[0], "result": result})["body"]
            await send({"type": "http.response.body", "body": tail, "more_body": False})

        try:
            await until_disconnect(receive, run())
        finally:
            hub.listeners.discard(listener)

    async def _delete(
        self, send: Send, headers: Mapping[str, list[str]], record: Record, caller: Any
    ) -> None:
        era, _ = era_of(headers)
        record.era = era
        session = self._open_session(headers, caller, None)
        record.session = session_digest(session.inner)
        self.hub.end(session.inner)
        self.backends.close_client(session.inner)
        record.outcome, record.status = "ok", 200
        await _send(send, 200, b"", None)

    # Calls

    def _target(
        self, method: str, params: dict[str, Any], caller: Any, rid: RequestId | None, record: Record
    ) -> tuple[FleetServer, dict[str, Any], str]:
        """The server a call names, the params with the server's own name or URI, and that name."""
        if method in ("tools/call", "prompts/get"):
            namespaced = params.get("name")
            split = names.split_name(namespaced) if isinstance(namespaced, str) else None
            what = "tool" if method == "tools/call" else "prompt"
        elif method == "completion/complete":
            ref = params.get("ref")
            ref_type = ref.get("type") if isinstance(ref, dict) else None
            member = "name" if ref_type == "ref/prompt" else "uri"
            value = ref.get(member) if isinstance(ref, dict) else None
            if ref_type == "ref/prompt":
                split = names.split_name(value) if isinstance(value, str) else None
            else:
                split = names.split_uri(value) if isinstance(value, str) else None
            what = "reference"
        else:
            uri = params.get("uri")
            split = names.split_uri(uri) if isinstance(uri, str) else None
            what = "resource"
        server = self.servers.get(split[0]) if split is not None else None
        if split is None or server is None:
            raise Refusal(400, INVALID_PARAMS, f"Invalid params: unknown {what}", "fleet-unknown", rid)
        original = split[1]
        if method == "tools/call":
            record.tool = original
        out = dict(params)
        if method in ("tools/call", "prompts/get"):
            out["name"] = original
        elif method == "completion/complete":
            ref = dict(params["ref"])
            ref["name" if ref.get("type") == "ref/prompt" else "uri"] = original
            out["ref"] = ref
        else:
            out["uri"] = original
        return server, out, original

    def _check_call(
        self, method: str, server: FleetServer, original: str, caller: Any, rid: RequestId | None
    ) -> ServerListing:
        name = server.name
        if method == "tools/call":
            if not server.access.allows(original, caller.roles):
                raise Refusal(
                    403, FORBIDDEN, "Forbidden: this tool is not allowed for the caller", "access", rid
                )
            self.router.check_servable(name, original, rid)
        elif not server.visible(caller.roles):
            raise Refusal(403, FORBIDDEN, "Forbidden: this server is not open to the caller", "access", rid)
        listing = self.listings.get(name)
        if listing is None:
            raise Refusal(503, INTERNAL_ERROR, "The server is not listed yet", "not-listed", rid)
        if method == "prompts/get" and not any(p.get("name") == original for p in listing.prompts):
            raise Refusal(400, INVALID_PARAMS, "Invalid params: unknown prompt", "fleet-unknown", rid)
        return listing

    async def _call(
        self,
        message: Message,
        params: dict[str, Any],
        headers: Mapping[str, list[str]],
        record: Record,
        caller: Any,
        era: Era,
        session: Session | None,
    ) -> Forwarding:
        from mcpfleet.router.app import Forwarding

        method = message.method or ""
        rid = message.id
        server, out, original = self._target(method, params, caller, rid, record)
        listing = self._check_call(method, server, original, caller, rid)
        record.server = server.name
        if server.limits is not None:
            # The server's own limits hold here as on its route, where the gateway counts them.
            passed = self.router.rates.admit(server.name, caller.subject, server.limits)
            if passed is not None:
                text = f"Too many requests: rate limit reached for this {passed} of {server.name}"
                raise Refusal(429, RATE_LIMITED, text, "rate-limited", rid)
        route = server.route
        # The server is spoken to in the client's era where it speaks it: a 2026-07-28 server per request
        # (the era it was listed in), a handshake-era one through a session of the router's own. A legacy
        # client of a server that keeps sessions gets such a session even where the server also speaks
        # 2026-07-28 (every SDK server does), so its state lives on as on the server's own route.
        modern_server = listing.era == "modern" and (era == "modern" or route.config.stateless)
        handshake = listing.protocol_version if listing.era == "legacy" else LATEST_HANDSHAKE_VERSION
        meta = out.get("_meta")
        if modern_server:
            meta = dict(meta) if isinstance(meta, dict) else {}
            meta[PROTOCOL_VERSION_META_KEY] = listing.protocol_version
            if era == "legacy":
                meta[CLIENT_CAPABILITIES_META_KEY] = {}
                meta[CLIENT_INFO_META_KEY] = ROUTER_CLIENT_INFO
            out["_meta"] = meta
        elif isinstance(meta, dict) and not meta.keys().isdisjoint(_DROPPED_FOR_LEGACY):
            kept = {k: v for k, v in meta.items() if k not in _DROPPED_FOR_LEGACY}
            if kept:
                out["_meta"] = kept
            else:
                del out["_meta"]
        forwarded_id: RequestId | None = rid
        restore: tuple[RequestId, RequestId] | None = None
        client_key = session.inner if session is not None else "caller:" + caller.subject
        if not modern_server and session is None and rid is not None:
            # A modern caller's requests share one backend session per caller: ids its clients chose
            # independently could collide there, so the server sees one of the router's own.
            forwarded_id = f"mcpfleet-{next(self._ids)}"
            restore = (forwarded_id, rid)
        body = _dumps({"jsonrpc": "2.0", "id": forwarded_id, "method": method, "params": out})
        base = self._base_headers(headers, record)
        job = Forwarding(route, caller, record, [], message=message, body=body)
        job.path = route.config.upstream.path
        job.answer = FleetAnswer(server.name, method, restore, era == "modern" and not modern_server)
        job.fleet = True
        if modern_server:
            job.headers = [
                *base,
                ("MCP-Protocol-Version", listing.protocol_version),
                *self._modern_headers(method, out, headers, era, server.name, original, rid),
            ]
            return job
        key = (client_key, server.name)
        backends = self.backends
        backend = await backends.get(key, route, handshake, base)
        self._bind(job, base, backend)

        async def reopen(job: Forwarding, exclude: frozenset[str]) -> None:
            fresh = await backends.replace(key, backend, route, handshake, base, exclude)
            self._bind(job, base, fresh)

        job.reopen = reopen
        return job

    @staticmethod
    def _bind(job: Forwarding, base: list[tuple[str, str]], backend: Backend) -> None:
        job.pod = backend.pod
        headers = [*base, ("MCP-Protocol-Version", backend.version)]
        if backend.session is not None:
            headers.append(("Mcp-Session-Id", backend.session))
        job.headers = headers

    def _base_headers(self, headers: Mapping[str, list[str]], record: Record) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        host = single(headers, "host")
        if host is not None:
            out.append(("Host", host))
        out.append(("Accept", "application/json, text/event-stream"))
        out.append(("Content-Type", "application/json"))
        out.append(("X-Request-ID", record.request_id))
        if record.client is not None:
            out.append(("X-Forwarded-For", record.client))
        proto = single(headers, "x-forwarded-proto")
        if proto in ("http", "https"):
            out.append(("X-Forwarded-Proto", proto))
        return out

    def _modern_headers(
        self,
        method: str,
        params: Mapping[str, Any],
        headers: Mapping[str, list[str]],
        era: Era,
        server: str,
        original: str,
        rid: RequestId | None,
    ) -> list[tuple[str, str]]:
        """Mcp-Method, Mcp-Name (the server's own name), and for tools/call the Mcp-Param-* headers: the
        modern client's own (they mirror arguments, unchanged), or for a legacy client built from the
        listed schema, as a modern client would."""
        out = [("Mcp-Method", method)]
        name_key = NAME_BEARING_METHODS.get(method)
        value = params.get(name_key) if name_key is not None else None
        if isinstance(value, str):
            out.append(("Mcp-Name", encode_header_value(value)))
        if method != "tools/call":
            return out
        if era == "modern":
            prefix = MCP_PARAM_HEADER_PREFIX.lower()
            for name in headers:
                if name.startswith(prefix):
                    out.append((name, single(headers, name, rid) or ""))
            return out
        mapping = self._param_map(server, original)
        arguments = params.get("arguments")
        if mapping and isinstance(arguments, dict):
            out.extend(mcp_param_headers(mapping, arguments).items())
        return out

    def _param_map(self, server: str, tool: str) -> dict[tuple[str, ...], str]:
        listing = self.listings.get(server)
        key = (id(listing), server, tool)
        mapping = self._param_headers.get(key)
        if mapping is None:
            definition = self.catalog.tool(server, tool)
            schema = definition.get("inputSchema") if definition is not None else None
            mapping = x_mcp_header_map(schema) if isinstance(schema, dict) else {}
            if len(self._param_headers) > 4096:
                self._param_headers.clear()
            self._param_headers[key] = mapping
        return mapping


_MODERN_LIST_TAIL: Final = (
    b',"resultType":"complete","ttlMs":'
    + str(LIST_TTL_MS).encode()
    + b',"cacheScope":"private","_meta":'
    + _dumps({SERVER_INFO_META_KEY: SERVER_INFO})
)


def _envelope(rid: RequestId | None, result: bytes) -> bytes:
    return b'{"jsonrpc":"2.0","id":' + _dumps(rid) + b',"result":' + result + b"}"


def _event(message: dict[str, Any]) -> dict[str, Any]:
    data = _dumps({"jsonrpc": "2.0", **message})
    body = b"event: message\ndata: " + data + b"\n\n"
    return {"type": "http.response.body", "body": body, "more_body": True}


async def _send(send: Send, status: int, body: bytes, session: str | None) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    if session is not None:
        headers.append((b"mcp-session-id", session.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
