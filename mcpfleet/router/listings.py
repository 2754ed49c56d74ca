"""The router's own client of every server: each server's lists as it serves them, cached and kept fresh,
and per tool a verdict against its catalog pin (docs/router.md, "The fleet endpoint": run-time tool pins).

Interface, for the fleet endpoint and the per-server routes:

- `Listings(config, endpoints, metrics, audit, **tuning)` (tuning: the fields of `Tuning`; audit: the
  router's audit sink, which gets a record of each request the listings send). Built anywhere; `await
  start()` launches the first round (every server, at most `concurrency` listed at once) and returns at
  once; `await wait_listed(timeout)` waits for that round to end (True) or the timeout (False); `await
  stop()` ends every listing task and closes their connections (one start and one stop per object).
- `get(server)`: the `ServerListing` (raw JSON objects as served), or None while the server is not listed
  yet or cannot be listed (no stale listing is kept). `generation` bumps whenever any listing changes;
  `add_listener(callback)` is called `(server, kinds)` on each change, kinds among "tools", "resources"
  (resources and templates) and "prompts", from the listing task (a callback must not block or raise).
- `verdict(server, tool)`, `servable(server, tool)` (pinned, or unpinned where `unpinnedTools` is
  "serve"), `check_definition(server, definition)` (the verdict of a tool object as an answer holds it,
  independent of the cache), `refusal_text(server, tool)` (why a tool is not served, without the
  "Forbidden: " the refusal adds; a drift names both hash prefixes).
- `refresh(server)`: list the server again now, and return once that attempt ended.
- Also: `verdict_servable(verdict)`, `down()` (servers without a listing now), `ServerListing.tool(name)`,
  `.cut` (items left out by the bounds, by kind) and `.ttl_ms`; `tool_hash` and `definition_hash` (the
  catalog's hash of a tool).

A server is listed on one pod (`Endpoints.pick`) with the mcp SDK's own `Client` (`mode="auto"`:
`server/discover`, else the legacy `initialize`), every page of each list its capabilities offer. Each HTTP
request of that client carries an `X-Request-ID` of the router's own (`listing-<uuid4>`) and gets an audit
record (`"event": "listing"`: server, pod, method, status, outcome) once answered or failed. Where the
capabilities say `listChanged`, the connection is held and listened on (modern: `subscriptions/listen`;
legacy: the session's GET stream, or the SSE stream) and a change is listed again at once; otherwise the
listing is renewed every `fleet.refreshSeconds`, sooner when a modern answer's `ttlMs` says so (never
more often than every `min_ttl_seconds`). A listing that fails on one pod is tried at once on the
server's other pods, the listing in force kept meanwhile; once every pod failed in turn, the server is
left out (`get` None, verdicts `unknown`, `mcp_router_listing_up` 0) and retried with backoff up to
`retry_cap_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import anyio
import httpx2
import mcp_types as types
from anyio.abc import TaskStatus
from mcp import Client
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import PromptsListChanged, ResourcesListChanged, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import find_invalid_x_mcp_header
from pydantic import RootModel

from mcpfleet.router.config import DEFAULT_MAX_TOOLS_PER_SERVER, DEFAULT_REFRESH_SECONDS, RouterConfig, Server
from mcpfleet.router.observe import AuditSink, Metrics, discard, listing_line
from mcpfleet.router.upstreams import Endpoints

log = logging.getLogger("mcpfleet.router.listings")

Verdict = Literal["pinned", "drifted", "unpinned", "undeclared", "missing", "unknown"]
Era = Literal["modern", "legacy"]
ListKind = Literal["tools", "resources", "resource_templates", "prompts"]
LIST_KINDS: Final[tuple[ListKind, ...]] = ("tools", "resources", "resource_templates", "prompts")
# Listener kinds: what a client of the fleet endpoint is told changed (templates travel with resources, as
# `notifications/resources/list_changed` covers both).
CHANGE_KIND: Final[Mapping[ListKind, str]] = {
    "tools": "tools",
    "resources": "resources",
    "resource_templates": "resources",
    "prompts": "prompts",
}
MAX_PAGES: Final = 1000
"""A paginator that never ends is a broken server: more pages than this fail the listing."""
CLIENT_INFO: Final = types.Implementation(name="mcpfleet-router", version="1")
HASH_SHOWN: Final = 12
"""Hex digits of a hash a refusal shows."""
NAME_SHOWN: Final = 128
"""Characters of a tool name a refusal repeats (a client's name may be anything)."""
LISTING_ID_PREFIX: Final = "listing-"
"""The X-Request-ID of every request the router's own client sends a server: `listing-<uuid4>`. HAProxy
issues bare UUIDs and replaces whatever a client sends, so no client's message carries one."""


class _Raw(RootModel[dict[str, Any]]):
    """A result as the server sent it, after the SDK validated it against the negotiated revision."""


_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_REQUESTS: Final[Mapping[ListKind, tuple[Callable[..., Any], str]]] = {
    "tools": (types.ListToolsRequest, "tools"),
    "resources": (types.ListResourcesRequest, "resources"),
    "resource_templates": (types.ListResourceTemplatesRequest, "resourceTemplates"),
    "prompts": (types.ListPromptsRequest, "prompts"),
}
_NOTIFICATIONS: Final[Mapping[type, str]] = {
    types.ToolListChangedNotification: "tools",
    types.PromptListChangedNotification: "prompts",
    types.ResourceListChangedNotification: "resources",
}
_EVENTS: Final[Mapping[type, str]] = {
    ToolsListChanged: "tools",
    PromptsListChanged: "prompts",
    ResourcesListChanged: "resources",
}


def tool_hash(name: Any, description: Any, input_schema: Any) -> str:
    """The hash the catalog pins (`mcpfleet.catalog.toolhash.tool_hash`): sha256 of the canonical JSON of
    name, description (absent: "") and inputSchema. Repeated here because the router's image carries
    mcpfleet/router alone; tests/router/test_listings.py holds the two equal."""
    document = {"name": name, "description": description or "", "inputSchema": input_schema}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def definition_hash(definition: Mapping[str, Any]) -> str:
    """tool_hash of a tool object as served."""
    return tool_hash(definition.get("name"), definition.get("description"), definition.get("inputSchema"))


@dataclass(frozen=True, slots=True)
class ToolEntry:
    """One tool of a listing: its raw JSON object as served and its verdict against the catalog pin."""

    name: str
    definition: Mapping[str, Any]
    verdict: Verdict
    live_hash: str
    pinned_hash: str | None


@dataclass(frozen=True, slots=True)
class ServerListing:
    """Everything one server lists, as it served it, at listed_at (time.time())."""

    server: str
    era: Era
    protocol_version: str
    capabilities: Mapping[str, Any]
    tools: tuple[ToolEntry, ...]
    resources: tuple[Mapping[str, Any], ...]
    resource_templates: tuple[Mapping[str, Any], ...]
    prompts: tuple[Mapping[str, Any], ...]
    listed_at: float
    cut: Mapping[str, int] = field(default_factory=dict)
    """Items served beyond the bounds and left out, by list kind (absent: none)."""
    ttl_ms: int | None = None
    """The shortest `ttlMs` of the modern answers (None: legacy, or none given)."""
    by_name: Mapping[str, ToolEntry] = field(default_factory=dict, repr=False, compare=False)

    def tool(self, name: str) -> ToolEntry | None:
        return self.by_name.get(name)

    def items(self, kind: ListKind) -> tuple[Any, ...]:
        return getattr(self, kind)  # type: ignore[no-any-return]

    def same_as(self, other: ServerListing) -> bool:
        """Equal in everything a client of the router could see (listed_at aside)."""
        return (
            self.era == other.era
            and self.protocol_version == other.protocol_version
            and self.capabilities == other.capabilities
            and all(self.items(kind) == other.items(kind) for kind in LIST_KINDS)
        )

    def changed_kinds(self, other: ServerListing | None) -> frozenset[str]:
        """The change kinds whose lists differ from other's (None: every kind this listing holds)."""
        if other is None:
            return frozenset(CHANGE_KIND[kind] for kind in LIST_KINDS if self.items(kind))
        return frozenset(CHANGE_KIND[kind] for kind in LIST_KINDS if self.items(kind) != other.items(kind))


@dataclass(frozen=True)
class Tuning:
    """How the listings run; the defaults are the contract's (docs/router.md), tests shorten them."""

    concurrency: int = 32
    """Servers listed at once (connect, handshake and every page)."""
    timeout: float = 10.0
    """Seconds for one listing: every page of every list (and each request on a held connection)."""
    connect_timeout: float = 5.0
    refresh_seconds: float | None = None
    """Default: `fleet.refreshSeconds`, else 300."""
    max_items: int | None = None
    """Items per list; default: `fleet.maxToolsPerServer`, else 1,000."""
    max_bytes: int = 4 * 1024 * 1024
    """Bytes of a server's whole listing (each item as compact JSON)."""
    min_ttl_seconds: float = 5.0
    """A modern `ttlMs` renews a listing at most this often."""
    min_relist_seconds: float = 1.0
    """Change notifications arriving closer than this are listed once (a chatty server costs one
    listing a second at most)."""
    retry_seconds: float = 1.0
    retry_cap_seconds: float = 60.0
    pod_check_seconds: float = 5.0
    """How often a held connection checks that its pod is still among the server's endpoints."""
    host: str | None = None
    """Host header of the router's requests. Default: the public domain (from auth.audiencePrefix) for a
    server behind a Service name, which the servers accept as they do behind the gateway; the pod's own
    address for fixed addresses (one machine: loopback servers accept loopback hosts)."""


class ListingError(Exception):
    """A server's answers that cannot make a listing (a cursor loop, endless pages, no pod)."""


class _Watch:
    """One server: its listing, the signals its connection raises, and the task that keeps it fresh."""

    def __init__(self, name: str, server: Server, endpoints: Endpoints) -> None:
        self.name = name
        self.server = server
        self.endpoints = endpoints
        self.declared = frozenset(server.tools)
        self.pins = server.tool_pins
        self.listing: ServerListing | None = None
        self.withheld: set[tuple[str, str]] = set()
        self.task: asyncio.Task[None] | None = None
        # Signals: set by the connection's callbacks (only the current connection's count) and refresh().
        self.wake = asyncio.Event()
        self.kinds: set[str] = set()
        self.lost = False
        self.requested = False
        self.connection = 0
        # Attempts, for refresh() and wait_listed().
        self.attempts = 0
        self.busy = False
        self.attempted = asyncio.Event()
        self.last_listed = -math.inf
        self.deadline = 0.0
        self.failures = 0

    def signal(self, connection: int, kinds: Iterable[str] = (), lost: bool = False) -> None:
        if connection != self.connection:
            return  # a connection already closed: its news is not about the current one
        self.kinds.update(kinds)
        self.lost = self.lost or lost
        self.wake.set()

    def request(self) -> None:
        self.requested = True
        self.wake.set()

    async def wait(self, seconds: float) -> None:
        """Until a signal, or seconds passed."""
        if seconds > 0 and not self.wake.is_set():
            with anyio.move_on_after(seconds):
                await self.wake.wait()

    def take(self) -> tuple[set[str], bool, bool]:
        taken = (self.kinds, self.lost, self.requested)
        self.kinds, self.lost, self.requested = set(), False, False
        self.wake.clear()
        return taken

    def finished(self) -> None:
        """One attempt (listing or failure) ended."""
        self.attempts += 1
        done, self.attempted = self.attempted, asyncio.Event()
        done.set()


class _Connection:
    """What one connection's HTTP exchanges and notifications tell its watch."""

    def __init__(self, watch: _Watch) -> None:
        watch.connection += 1
        self.watch = watch
        self.number = watch.connection
        self.gets = 0
        self.stream_status: int | None = None
        self.stream_answered = asyncio.Event()
        self.session_id = False
        self.subscribed = False
        """Modern: changes come as the subscription's events (the SDK hands them here too: once is enough)."""

    async def on_request(self, request: httpx2.Request) -> None:
        if request.method == "GET":
            self.gets += 1
            if self.gets > 1:
                # The SDK reopens a dropped GET stream by itself: notifications may have been missed, and
                # the server may be another process now. Connect afresh and list again.
                self.watch.signal(self.number, lost=True)

    async def on_response(self, response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            self.session_id = True
        if response.request.method == "GET":
            if self.stream_status is None:
                self.stream_status = response.status_code
                self.stream_answered.set()
            elif response.status_code != 200:
                self.watch.signal(self.number, lost=True)

    async def on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            self.watch.signal(self.number, lost=True)
            return
        kind = _NOTIFICATIONS.get(type(message))
        if kind is not None and not self.subscribed:
            self.watch.signal(self.number, kinds=(kind,))


def _listing_method(request: httpx2.Request) -> str:
    """What a listing request is, for its audit record: the JSON-RPC method of a POST (`response` when
    it answers the server), else the HTTP method (a session's GET stream, its DELETE)."""
    if request.method != "POST":
        return request.method
    try:
        document = json.loads(request.content)
    except (httpx2.RequestNotRead, ValueError):
        return "POST"
    if isinstance(document, dict):
        method = document.get("method")
        if isinstance(method, str):
            return method[:NAME_SHOWN]
        if "result" in document or "error" in document:
            return "response"
    return "POST"


class _AuditedClient(httpx2.AsyncClient):
    """The listing's HTTP client: every request it sends carries an X-Request-ID of the router's own
    (`listing-<uuid4>`, replacing none: the router sends no other), and has an audit record (`"event":
    "listing"`) once it is answered, or failed unanswered. So each message a server ran for a listing is
    accounted for, as each message a client sent is by the forward and full records."""

    def __init__(self, *, server: str, pod: str, audit: AuditSink, **options: Any) -> None:
        super().__init__(**options)
        self._server = server
        self._pod = pod
        self._audit = audit

    async def send(
        self,
        request: httpx2.Request,
        *,
        stream: bool = False,
        auth: Any = httpx2.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx2.USE_CLIENT_DEFAULT,
    ) -> httpx2.Response:
        request_id = LISTING_ID_PREFIX + str(uuid.uuid4())
        request.headers["X-Request-ID"] = request_id
        method = _listing_method(request)
        started = time.perf_counter()
        status, outcome = 0, "upstream_error"
        try:
            response = await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
            status = response.status_code
            outcome = "ok" if 200 <= status < 300 else "http_error"
            return response
        finally:
            # Written when the answer starts (a stream's when it opens), or when the request failed.
            latency_ms = (time.perf_counter() - started) * 1000
            line = listing_line(request_id, self._server, self._pod, method, status, outcome, latency_ms)
            try:
                self._audit(line)
            except OSError:
                log.exception("writing the audit record of listing request %s failed", request_id)


class _Budget:
    """The bounds of one server's listing: items per list, bytes overall; what does not fit is cut."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.bytes = 0
        self.full = False

    def admit(self, count: int, item: Any) -> bool:
        if self.full or count >= self.max_items:
            return False
        size = len(_COMPACT.encode(item).encode("utf-8"))
        if self.bytes + size > self.max_bytes:
            self.full = True  # what follows is cut too, so the cut does not depend on item sizes
            return False
        self.bytes += size
        return True


def _reason(error: BaseException) -> str:
    """One line saying why a listing failed (never a token: the router sends none to servers)."""
    leaves: list[BaseException] = [error]
    while any(isinstance(leaf, BaseExceptionGroup) for leaf in leaves):
        leaves = [
            x
            for leaf in leaves
            for x in (leaf.exceptions if isinstance(leaf, BaseExceptionGroup) else [leaf])
        ]
    leaf = next((x for x in leaves if isinstance(x, MCPError | ListingError)), leaves[0])
    if isinstance(leaf, MCPError):
        return f"{leaf.message} (error {leaf.code})"
    if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
        return "no answer in time"
    if isinstance(leaf, httpx2.ConnectError | ConnectionError):
        return f"cannot connect ({leaf})".replace(" ()", "")
    if isinstance(leaf, httpx2.HTTPStatusError):
        return f"HTTP {leaf.response.status_code}"
    text = str(leaf)
    return f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__


def _cancelling() -> bool:
    """Whether the running task is being cancelled (a cancellation another error may have replaced)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _shown(name: str) -> str:
    return repr(name if len(name) <= NAME_SHOWN else name[:NAME_SHOWN] + "...")


class Listings:
    """Every server's listing and tool verdicts, for one router replica (see the module docstring)."""

    def __init__(
        self,
        config: RouterConfig,
        endpoints: Mapping[str, Endpoints],
        metrics: Metrics,
        audit: AuditSink = discard,
        **tuning: Any,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.audit = audit
        self.tuning = Tuning(**tuning)
        fleet = config.fleet
        self.refresh_seconds = float(
            self.tuning.refresh_seconds
            if self.tuning.refresh_seconds is not None
            else (fleet.refresh_seconds if fleet is not None else DEFAULT_REFRESH_SECONDS)
        )
        self.max_items = (
            self.tuning.max_items
            if self.tuning.max_items is not None
            else (fleet.max_tools_per_server if fleet is not None else DEFAULT_MAX_TOOLS_PER_SERVER)
        )
        self.generation = 0
        self._watches = {
            name: _Watch(name, server, endpoints[name]) for name, server in config.servers.items()
        }
        self._listeners: list[Callable[[str, frozenset[str]], None]] = []
        self._public_host = urlsplit(config.auth.audience_prefix).netloc or None
        # One TLS context for every HTTP client: building one per client costs ~20 ms of CPU each. The
        # pods are reached over plain HTTP, so it is never used for a handshake.
        self._tls: ssl.SSLContext | None = None
        self._slots: asyncio.Semaphore | None = None
        self._first_round = asyncio.Event()
        self._tried = 0
        self._started = False
        self._stopping = False

    # Lifecycle

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._tls = ssl.create_default_context()
        self._slots = asyncio.Semaphore(self.tuning.concurrency)
        for watch in self._watches.values():
            self.metrics.listing_up.labels(watch.name).set(0)
            watch.task = asyncio.create_task(self._watch(watch), name=f"listing {watch.name}")
            watch.task.add_done_callback(self._ended)
        if not self._watches:
            self._first_round.set()

    async def stop(self) -> None:
        self._stopping = True
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        pending = {task for task in tasks if not task.done()}
        while pending:
            _, pending = await asyncio.wait(pending, timeout=1.0)
            for task in pending:
                task.cancel()  # a cancellation swallowed on the way out is asked for again
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                log.debug("listing task %s ended: %s", task.get_name(), _reason(task.exception()))  # type: ignore[arg-type]
        for watch in self._watches.values():
            watch.task = None

    async def wait_listed(self, timeout: float) -> bool:
        """True once every server was listed or failed to be, at least once; False at the timeout."""
        with anyio.move_on_after(timeout):
            await self._first_round.wait()
        return self._first_round.is_set()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not self._stopping and not task.cancelled() and task.exception() is not None:
            log.error("a listing task ended: %s", _reason(task.exception()), exc_info=task.exception())  # type: ignore[arg-type]

    # What the routes ask

    def get(self, server: str) -> ServerListing | None:
        watch = self._watches.get(server)
        return watch.listing if watch is not None else None

    def verdict(self, server: str, tool: str) -> Verdict:
        watch = self._watches.get(server)
        if watch is None or tool not in watch.declared:
            return "undeclared"  # closed to everyone, whatever a server serves
        listing = watch.listing
        if listing is None:
            return "unknown"
        entry = listing.by_name.get(tool)
        return entry.verdict if entry is not None else "missing"

    def servable(self, server: str, tool: str) -> bool:
        return self.verdict_servable(self.verdict(server, tool))

    def verdict_servable(self, verdict: Verdict) -> bool:
        return verdict == "pinned" or (verdict == "unpinned" and self.config.unpinned_tools == "serve")

    def check_definition(self, server: str, definition: Mapping[str, Any]) -> Verdict:
        """The verdict of a tool object as an answer carries it: by its own hash, not the cache's."""
        watch = self._watches.get(server)
        name = definition.get("name")
        if watch is None or not isinstance(name, str):
            return "undeclared"
        return self._judge(watch, name, definition_hash(definition))

    def refusal_text(self, server: str, tool: str) -> str:
        """Why a call of tool is refused, for the refusal's message after "Forbidden: "."""
        verdict = self.verdict(server, tool)
        shown = _shown(tool)
        if verdict == "drifted":
            listing = self.get(server)
            entry = listing.by_name.get(tool) if listing is not None else None
            if entry is not None and entry.pinned_hash is not None:
                return (
                    f"tool {shown} changed since it was approved (pinned {entry.pinned_hash[:HASH_SHOWN]}...,"
                    f" live {entry.live_hash[:HASH_SHOWN]}...)"
                )
            return f"tool {shown} changed since it was approved"
        if verdict == "unpinned":
            return f"tool {shown} has no approved definition (no pin), and unpinned tools are withheld here"
        if verdict == "missing":
            return f"tool {shown} is not served by server {server!r} now"
        if verdict == "unknown":
            return f"server {server!r} is not listed yet"
        if verdict == "undeclared":
            return f"tool {shown} is not declared for server {server!r}"
        return f"tool {shown} is approved"

    def add_listener(self, callback: Callable[[str, frozenset[str]], None]) -> None:
        self._listeners.append(callback)

    async def refresh(self, server: str) -> None:
        """List server again now; returns once that attempt ended (listed, or failed and left out)."""
        watch = self._watches[server]
        if watch.task is None or watch.task.done():
            raise RuntimeError("the listings are not running (start() first)")
        # An attempt under way may have begun before the change the caller knows of: wait for the next.
        target = watch.attempts + (2 if watch.busy else 1)
        watch.request()
        while watch.attempts < target:
            await watch.attempted.wait()

    def down(self) -> frozenset[str]:
        """Servers without a listing now (not listed yet, or failing)."""
        return frozenset(name for name, watch in self._watches.items() if watch.listing is None)

    # Verdicts

    def _judge(self, watch: _Watch, name: str, live_hash: str) -> Verdict:
        if name not in watch.declared:
            return "undeclared"
        pinned = watch.pins.get(name)
        if pinned is None:
            return "unpinned"
        return "pinned" if pinned == live_hash else "drifted"

    # Keeping one server's listing fresh

    async def _watch(self, watch: _Watch) -> None:
        tried: set[str] = set()
        while True:
            try:
                outcome = await self._connect(watch, tried)
            except Exception as error:
                if self._stopping or _cancelling():
                    # The SDK's clean-up can turn a cancellation into its own error: stop all the same.
                    raise asyncio.CancelledError from error
                if watch.endpoints.pick(exclude=frozenset(tried)) is not None:
                    # Another pod may answer (a pod killed is resolved until DNS drops it): the server is
                    # down, and its listing dropped, only once every pod failed in turn.
                    log.debug("%s: listing failed on %s (%s)", watch.name, sorted(tried), _reason(error))
                    continue
                tried.clear()
                watch.failures += 1
                self._down(watch, error)
                self._finished(watch)
                delay = min(
                    self.tuning.retry_cap_seconds,
                    self.tuning.retry_seconds * 2 ** min(watch.failures - 1, 20),
                )
                # Jittered, so servers that failed together are not all retried in the same instant.
                await watch.wait(delay * random.uniform(0.5, 1.0))
                watch.take()
                continue
            tried.clear()
            watch.failures = 0
            if outcome == "timer":
                await watch.wait(watch.deadline - time.monotonic())
                watch.take()
            else:
                await anyio.sleep(
                    max(0.0, watch.last_listed + self.tuning.min_relist_seconds - time.monotonic())
                )

    async def _connect(self, watch: _Watch, tried: set[str]) -> Literal["timer", "reconnect"]:
        """One connection to one pod (one not in tried, which gets it): list; then, where the server
        announces changes, hold it and list again on each. "timer": wait for the next renewal;
        "reconnect": the connection was lost, connect again."""
        pod = watch.endpoints.pick(exclude=frozenset(tried))
        if pod is None:
            raise ListingError("no pod to list")
        tried.add(pod)
        connection = _Connection(watch)
        slots = self._slots
        assert slots is not None, "start() first"
        await slots.acquire()
        held = True
        watch.busy = True
        outcome: Literal["timer", "reconnect"] | None = None
        listed = False
        try:
            # Entered outside any timeout scope (it spans the whole hold): the SDK bounds the handshake by
            # read_timeout_seconds and the HTTP client bounds connecting.
            async with self._client(watch, pod, connection) as client:
                with anyio.fail_after(self.tuning.timeout):
                    listing = await self._list(watch, client)
                slots.release()
                held = False
                watch.busy = False
                self._store(watch, listing)
                self._finished(watch)
                listed = True
                kinds = self._listened_kinds(listing)
                streaming = bool(kinds) and await self._streams(watch, client, connection)
                watch.deadline = time.monotonic() + self._renewal(listing, streaming)
                if streaming:
                    outcome = await self._hold(watch, client, pod, connection, listing, kinds)
                else:
                    outcome = "timer"
        except Exception as error:
            if not listed or self._stopping or _cancelling():
                raise
            # Listed on this connection, then it broke (while held, or closing): the next connection
            # decides whether the server is down.
            log.debug("%s: the connection ended (%s)", watch.name, _reason(error))
            return outcome or "reconnect"
        finally:
            watch.busy = False
            if held:
                slots.release()
        return outcome

    async def _streams(self, watch: _Watch, client: Client, connection: _Connection) -> bool:
        """Whether this connection carries change notifications (legacy: its GET stream opened)."""
        if watch.server.transport == "sse" or client.session.discover_result is not None:
            return True  # the SSE stream is the connection; modern: subscriptions/listen, opened in _hold
        if not connection.session_id:
            return False  # a stateless legacy server has no stream to open
        with anyio.move_on_after(self.tuning.timeout):
            await connection.stream_answered.wait()
        return connection.stream_status == 200

    def _listened_kinds(self, listing: ServerListing) -> frozenset[str]:
        caps = listing.capabilities
        return frozenset(
            kind
            for kind in ("tools", "resources", "prompts")
            if isinstance(caps.get(kind), dict) and caps[kind].get("listChanged") is True
        )

    def _renewal(self, listing: ServerListing, streaming: bool) -> float:
        """Seconds until the listing is renewed without being told of a change. A modern answer's ttlMs
        counts where no change stream is held: with one, the server says when its lists change."""
        seconds = self.refresh_seconds
        if not streaming and listing.era == "modern" and listing.ttl_ms is not None:
            seconds = min(seconds, max(self.tuning.min_ttl_seconds, listing.ttl_ms / 1000))
        return seconds

    async def _hold(
        self,
        watch: _Watch,
        client: Client,
        pod: str,
        connection: _Connection,
        listing: ServerListing,
        kinds: frozenset[str],
    ) -> Literal["timer", "reconnect"]:
        outcome: Literal["timer", "reconnect"] = "timer"
        async with anyio.create_task_group() as group:
            try:
                listening = True
                if client.session.discover_result is not None:
                    listening = await group.start(self._listen, watch, client, connection, kinds)
                if listening:
                    outcome = await self._keep(watch, client, pod, connection)
                else:
                    # Advertised, yet refused: renew on the timer, as without listChanged.
                    watch.deadline = time.monotonic() + self._renewal(listing, False)
            finally:
                group.cancel_scope.cancel()
        return outcome

    async def _listen(
        self,
        watch: _Watch,
        client: Client,
        connection: _Connection,
        kinds: frozenset[str],
        *,
        task_status: TaskStatus[bool] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """A modern server's `subscriptions/listen` stream: each event is a change to list again."""
        acknowledged = False
        try:
            async with client.listen(
                tools_list_changed="tools" in kinds,
                prompts_list_changed="prompts" in kinds,
                resources_list_changed="resources" in kinds,
            ) as subscription:
                acknowledged = connection.subscribed = True
                task_status.started(True)
                async for event in subscription:
                    kind = _EVENTS.get(type(event))
                    if kind is not None:
                        watch.signal(connection.number, kinds=(kind,))
        except Exception as error:
            if not acknowledged:
                log.info(
                    "%s: subscriptions/listen refused (%s); renewing on a timer", watch.name, _reason(error)
                )
                task_status.started(False)
                return
        watch.signal(connection.number, lost=True)

    async def _keep(
        self, watch: _Watch, client: Client, pod: str, connection: _Connection
    ) -> Literal["timer", "reconnect"]:
        """List again on a held connection: on an announced change, a refresh() or the renewal's time."""
        slots = self._slots
        assert slots is not None
        while True:
            await watch.wait(min(watch.deadline - time.monotonic(), self.tuning.pod_check_seconds))
            if not watch.endpoints.has(pod):
                return "reconnect"  # the pod left the Service: its session goes with it
            if watch.lost:
                watch.take()
                return "reconnect"
            if not (watch.kinds or watch.requested or time.monotonic() >= watch.deadline):
                continue
            if not watch.requested:
                # Changes announced in a burst are listed once.
                await anyio.sleep(
                    max(0.0, watch.last_listed + self.tuning.min_relist_seconds - time.monotonic())
                )
            _, lost, _ = watch.take()
            if lost:
                return "reconnect"
            await slots.acquire()
            watch.busy = True
            try:
                with anyio.fail_after(self.tuning.timeout):
                    listing = await self._list(watch, client)
            except Exception as error:
                if self._stopping or _cancelling():
                    raise
                # The connection may be what failed: connect afresh before leaving the server out.
                log.debug("%s: listing on the held connection failed (%s)", watch.name, _reason(error))
                return "reconnect"
            finally:
                watch.busy = False
                slots.release()
            watch.deadline = time.monotonic() + self._renewal(listing, True)
            self._store(watch, listing)
            self._finished(watch)

    @asynccontextmanager
    async def _client(self, watch: _Watch, pod: str, connection: _Connection) -> AsyncIterator[Client]:
        upstream = watch.server.upstream
        url = f"http://{pod}{upstream.path}"
        host = self.tuning.host or (self._public_host if upstream.host is not None else None)
        headers = {"Host": host} if host else {}
        hooks: dict[str, list[Callable[..., Any]]] = {
            "request": [connection.on_request],
            "response": [connection.on_response],
        }
        options: dict[str, Any] = {
            "cache": None,
            "message_handler": connection.on_message,
            "read_timeout_seconds": self.tuning.timeout,
            "client_info": CLIENT_INFO,
        }
        tls = self._tls
        assert tls is not None, "start() first"
        audited: dict[str, Any] = {"server": watch.name, "pod": pod, "audit": self.audit}
        if watch.server.transport == "sse":

            def factory(
                headers: dict[str, str] | None = None,
                timeout: httpx2.Timeout | None = None,
                auth: httpx2.Auth | None = None,
            ) -> httpx2.AsyncClient:
                return _AuditedClient(
                    **audited, headers=headers, timeout=timeout, auth=auth, event_hooks=hooks, verify=tls
                )

            transport = sse_client(
                url,
                headers=headers,
                timeout=self.tuning.connect_timeout,
                # An idle stream is kept: SSE servers send keep-alive comments; a dead one shows at renewal.
                sse_read_timeout=self.refresh_seconds + 60,
                httpx_client_factory=factory,
            )
            async with Client(transport, mode="legacy", **options) as client:
                yield client
            return
        # No read timeout on the client: held streams idle for long. Each request is bounded by the
        # session's read_timeout_seconds, each listing by fail_after.
        timeout = httpx2.Timeout(self.tuning.timeout, connect=self.tuning.connect_timeout, read=None)
        async with (
            _AuditedClient(
                **audited, headers=headers, timeout=timeout, event_hooks=hooks, verify=tls
            ) as http,
            Client(streamable_http_client(url, http_client=http), mode="auto", **options) as client,
        ):
            yield client

    async def _list(self, watch: _Watch, client: Client) -> ServerListing:
        """Every page of every list the server's capabilities offer, bounded, and each tool's verdict."""
        session = client.session
        era: Era = "modern" if session.discover_result is not None else "legacy"
        capabilities = client.server_capabilities.model_dump(by_alias=True, exclude_none=True, mode="json")
        offered = {
            "tools": client.server_capabilities.tools is not None,
            "resources": client.server_capabilities.resources is not None,
            "resource_templates": client.server_capabilities.resources is not None,
            "prompts": client.server_capabilities.prompts is not None,
        }
        budget = _Budget(self.max_items, self.tuning.max_bytes)
        ttls: list[int] = []
        lists: dict[ListKind, list[dict[str, Any]]] = {}
        cut: dict[str, int] = {}
        for kind in LIST_KINDS:  # tools first: the byte bound cuts the rest before a server's tools
            if not offered[kind]:
                lists[kind] = []
                continue
            items, left_out = await self._walk(session, kind, budget, ttls)
            if kind == "tools":
                items, invalid = self._valid_tools(watch, era, items)
                left_out += invalid
            lists[kind] = items
            if left_out:
                cut[kind] = left_out
        entries = []
        by_name: dict[str, ToolEntry] = {}
        for definition in lists["tools"]:
            name = definition["name"]
            live = definition_hash(definition)
            entry = ToolEntry(name, definition, self._judge(watch, name, live), live, watch.pins.get(name))
            entries.append(entry)
            by_name[name] = entry
        return ServerListing(
            server=watch.name,
            era=era,
            protocol_version=client.protocol_version,
            capabilities=capabilities,
            tools=tuple(entries),
            resources=tuple(lists["resources"]),
            resource_templates=tuple(lists["resource_templates"]),
            prompts=tuple(lists["prompts"]),
            listed_at=time.time(),
            cut=cut,
            ttl_ms=min(ttls) if era == "modern" and ttls else None,
            by_name=by_name,
        )

    async def _walk(
        self, session: ClientSession, kind: ListKind, budget: _Budget, ttls: list[int]
    ) -> tuple[list[dict[str, Any]], int]:
        """Every page of one list: the items within the budget, and how many were cut."""
        request_type, key = _REQUESTS[kind]
        items: list[dict[str, Any]] = []
        cut = 0
        cursor: str | None = None
        cursors: set[str] = set()
        for _ in range(MAX_PAGES):
            params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
            page = (await session.send_request(request_type(params=params), _Raw)).root
            ttl = page.get("ttlMs")
            if isinstance(ttl, int) and not isinstance(ttl, bool):
                ttls.append(ttl)
            for item in page.get(key) or ():
                if budget.admit(len(items), item):
                    items.append(item)
                else:
                    cut += 1
            cursor = page.get("nextCursor")
            if cursor is None:
                return items, cut
            if cursor in cursors:
                raise ListingError(f"the server repeated the {key} cursor {cursor[:40]!r}")
            cursors.add(cursor)
        raise ListingError(f"more than {MAX_PAGES} pages of {key}")

    def _valid_tools(
        self, watch: _Watch, era: Era, tools: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], int]:
        """Tools a client may use: the first of each name, and on 2026-07-28 none with an invalid
        x-mcp-header (the SDK's clients drop those, so `mcpfleet verify` never sees them either)."""
        kept: list[dict[str, Any]] = []
        names: set[str] = set()
        for tool in tools:
            name = tool["name"]
            if name in names:
                log.warning("%s lists tool %s twice; the first is kept", watch.name, _shown(name))
                continue
            if (
                era == "modern"
                and (problem := find_invalid_x_mcp_header(tool.get("inputSchema"))) is not None
            ):
                log.warning(
                    "%s: tool %s left out: invalid x-mcp-header (%s)", watch.name, _shown(name), problem
                )
                continue
            names.add(name)
            kept.append(tool)
        return kept, len(tools) - len(kept)

    # Publishing a listing, or its absence

    def _store(self, watch: _Watch, listing: ServerListing) -> None:
        previous = watch.listing
        watch.listing = listing
        watch.last_listed = time.monotonic()
        name = watch.name
        metrics = self.metrics
        metrics.listing_up.labels(name).set(1)
        metrics.listing_refresh.labels(name, "ok").inc()
        for kind in LIST_KINDS:
            metrics.listing_items.labels(name, kind).set(len(listing.items(kind)))
            metrics.listing_cut.labels(name, kind).set(listing.cut.get(kind, 0))
            if listing.cut.get(kind) and (
                previous is None or previous.cut.get(kind) != listing.cut.get(kind)
            ):
                log.warning(
                    "%s serves %d %s beyond the listing's bounds; left out", name, listing.cut[kind], kind
                )
        withheld: set[tuple[str, str]] = set()
        for entry in listing.tools:
            if entry.verdict == "drifted" or (
                entry.verdict == "unpinned" and not self.verdict_servable("unpinned")
            ):
                withheld.add((entry.name, entry.verdict))
        self._set_withheld(watch, withheld)
        for entry in listing.tools:
            if entry.verdict == "drifted" and (previous is None or previous.by_name.get(entry.name) != entry):
                log.warning(
                    "%s: tool %s drifted from its pin (pinned %s..., live %s...): withheld",
                    name,
                    _shown(entry.name),
                    (entry.pinned_hash or "")[:HASH_SHOWN],
                    entry.live_hash[:HASH_SHOWN],
                )
        if previous is None:
            log.info("%s listed: %d tools (%s)", name, len(listing.tools), listing.era)
        if previous is None or not listing.same_as(previous):
            self._changed(name, listing.changed_kinds(previous))

    def _down(self, watch: _Watch, error: BaseException) -> None:
        previous = watch.listing
        watch.listing = None
        name = watch.name
        metrics = self.metrics
        metrics.listing_up.labels(name).set(0)
        metrics.listing_refresh.labels(name, "error").inc()
        for kind in LIST_KINDS:
            metrics.listing_items.labels(name, kind).set(0)
            metrics.listing_cut.labels(name, kind).set(0)
        self._set_withheld(watch, set())
        if previous is not None or watch.failures == 1:
            log.warning("%s: cannot be listed, left out until it is (%s)", name, _reason(error))
        else:
            log.debug("%s: still cannot be listed (%s)", name, _reason(error))
        if previous is not None:
            self._changed(name, previous.changed_kinds(None))

    def _set_withheld(self, watch: _Watch, withheld: set[tuple[str, str]]) -> None:
        gauge = self.metrics.tool_withheld
        for tool, reason in watch.withheld - withheld:
            with contextlib.suppress(KeyError):
                gauge.remove(watch.name, tool, reason)
        for tool, reason in withheld - watch.withheld:
            gauge.labels(watch.name, tool, reason).set(1)
        watch.withheld = withheld

    def _changed(self, server: str, kinds: frozenset[str]) -> None:
        self.generation += 1
        if not kinds:
            return
        for callback in list(self._listeners):
            try:
                callback(server, kinds)
            except Exception:  # one listener's fault must not stop the others or the listing
                log.exception("a listings listener failed")

    def _finished(self, watch: _Watch) -> None:
        watch.finished()
        if watch.attempts == 1:
            self._tried += 1
            if self._tried == len(self._watches):
                self._first_round.set()
