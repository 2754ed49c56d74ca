"""List one server's tools with the mcp client, in one protocol mode, within a bounded time.

Modern (2026-07-28) requests are stateless; legacy (2025-11-25) clients open a session with `initialize`;
SSE servers speak the legacy protocol over their own transport. Every outcome is a `Listing`, never an
exception: a refusal, a timeout or a dead address is a result to report.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import UNSUPPORTED_PROTOCOL_VERSION

from mcpfleet.verify.compare import ListedTool

Mode = Literal["modern", "legacy", "sse"]
Status = Literal["ok", "unsupported", "failed"]
MODERN_VERSION = "2026-07-28"
REPLICA_HEADER = "x-replica-id"
# A paginator that never ends must not hang the run; no real server has 100 pages of tools.
MAX_PAGES = 100
# Statuses that are the gateway's or the server's refusal of this caller or an outage, never an answer
# about which protocol the server speaks.
_REFUSALS = frozenset({401, 403, 407, 429})


@dataclass(frozen=True)
class Listing:
    """What one mode saw."""

    mode: Mode
    status: Status
    """`unsupported`: the server refused this protocol era but answered the other (see `settle`)."""
    tools: tuple[ListedTool, ...] = ()
    detail: str | None = None
    """Why the listing failed or is unsupported."""
    protocol: str | None = None
    """Protocol version in use once connected."""
    replica: str | None = None
    """The X-Replica-Id header of the last answer, when the server sends one."""
    pages: int = 0
    seconds: float = 0.0
    refused_by: int | None = None
    """The HTTP status that refused this client (401, 403, 407, 429), when one did."""


@dataclass
class _Seen:
    """HTTP answers seen during one listing: the last status and replica, for the report."""

    statuses: list[int] = field(default_factory=list)
    replica: str | None = None

    async def __call__(self, response: httpx2.Response) -> None:
        self.statuses.append(response.status_code)
        self.replica = response.headers.get(REPLICA_HEADER, self.replica)

    @property
    def refused(self) -> int | None:
        """The first status that refused the request outright (auth, rate limit, server error)."""
        return next((s for s in self.statuses if s in _REFUSALS or s >= 500), None)

    @property
    def refused_caller(self) -> int | None:
        """The first status that refused this caller (auth or rate limit) rather than failing."""
        return next((s for s in self.statuses if s in _REFUSALS), None)


@dataclass(frozen=True)
class Limits:
    """Time bounds of one listing."""

    timeout: float = 10.0
    """Seconds for the whole listing in one mode: connect, handshake and every page."""
    connect: float = 5.0
    """Seconds to open a TCP (and TLS) connection."""

    def http_timeout(self) -> httpx2.Timeout:
        return httpx2.Timeout(self.timeout, connect=min(self.connect, self.timeout))


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


class _ListingError(Exception):
    """The server answered, but its listing cannot be trusted (a cursor loop, endless pages)."""


def _describe(exc: BaseException, seen: _Seen, limits: Limits) -> tuple[str, MCPError | None]:
    """A one-line reason, and the MCP error when the server (or gateway) answered with one."""
    leaves = _leaves(exc)
    ours = next((leaf for leaf in leaves if isinstance(leaf, _ListingError)), None)
    if ours is not None:
        return str(ours), None
    # The most telling leaf: an MCP answer first, then the transport's own error.
    mcp_error = next((leaf for leaf in leaves if isinstance(leaf, MCPError)), None)
    status = seen.refused or next((s for s in reversed(seen.statuses) if s >= 400), None)
    http = f"HTTP {status}: " if status is not None else ""
    if mcp_error is not None:
        return f"{http}{mcp_error.message} (error {mcp_error.code})", mcp_error
    leaf = next((x for x in leaves if isinstance(x, httpx2.HTTPError | TimeoutError | OSError)), leaves[0])
    untrusted = _cause(leaf, ssl.SSLCertVerificationError)
    if untrusted is not None:
        reason = untrusted.verify_message or "certificate verify failed"
        return f"TLS: the certificate is not trusted ({reason}); trust its CA with --cacert FILE", None
    if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
        return f"no answer within {limits.timeout:g}s", None
    if isinstance(leaf, httpx2.HTTPStatusError):
        return f"HTTP {leaf.response.status_code} from {leaf.request.url.path}", None
    if isinstance(leaf, httpx2.ConnectError | OSError):
        return f"cannot connect: {leaf}".rstrip(": "), None
    return f"{http}{type(leaf).__name__}: {leaf}".rstrip(": "), None


def _cause(
    exc: BaseException, kind: type[ssl.SSLCertVerificationError]
) -> ssl.SSLCertVerificationError | None:
    """The exception of kind that exc wraps (its cause or context, at any depth), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


async def _list_pages(client: Client, max_pages: int) -> tuple[list[ListedTool], int]:
    tools: list[ListedTool] = []
    cursor: str | None = None
    cursors: set[str] = set()
    for page in range(1, max_pages + 1):
        result = await client.list_tools(cursor=cursor)
        tools.extend(ListedTool(t.name, t.description, t.input_schema) for t in result.tools)
        cursor = result.next_cursor
        if cursor is None:
            return tools, page
        if cursor in cursors:
            raise _ListingError(f"the server repeated cursor {cursor!r} after page {page}")
        cursors.add(cursor)
    raise _ListingError(f"more than {max_pages} pages of tools")


Connector = Callable[[Mode, _Seen], AbstractAsyncContextManager[Client]]


async def list_tools(
    mode: Mode, connect: Connector, limits: Limits, token: str | None = None, max_pages: int = MAX_PAGES
) -> Listing:
    """List every page of tools in mode; bounded by limits.timeout and max_pages, whatever the server
    does."""
    seen = _Seen()
    started = time.monotonic()
    status: Status = "failed"
    detail: str | None
    try:
        with anyio.fail_after(limits.timeout):
            async with connect(mode, seen) as client:
                if mode == "modern":
                    # The SDK's own era test (`mode="auto"`): a server that refuses server/discover is a
                    # legacy-only server, a fact to report, not an outage.
                    try:
                        await client.session.send_discover(MODERN_VERSION)
                    except MCPError as exc:
                        if seen.refused is None:
                            status = "unsupported"
                        raise exc from None
                tools, pages = await _list_pages(client, max_pages)
                protocol = client.protocol_version
        return Listing(
            mode, "ok", tuple(tools), None, protocol, seen.replica, pages, time.monotonic() - started
        )
    except Exception as exc:
        detail, mcp_error = _describe(exc, seen, limits)
        if mode != "modern" and mcp_error is not None and mcp_error.code == UNSUPPORTED_PROTOCOL_VERSION:
            status = "unsupported"
    if token:
        # Servers and gateways echo requests in their errors now and then: a token never reaches the report.
        detail = detail.replace(token, "<token>")
    elapsed = time.monotonic() - started
    return Listing(mode, status, (), detail, None, seen.replica, 0, elapsed, seen.refused_caller)


def settle(listings: tuple[Listing, ...]) -> tuple[Listing, ...]:
    """An era refusal means "speaks the other era" only when the other era listed: otherwise it failed."""
    if any(listing.status == "ok" for listing in listings):
        return listings
    return tuple(
        replace(listing, status="failed") if listing.status == "unsupported" else listing
        for listing in listings
    )


def trusting(cafile: Path) -> ssl.SSLContext:
    """A TLS client context that trusts the CAs in cafile (PEM) and no others, as `curl --cacert` does;
    raises CaFileError naming the file when it cannot be read or holds no certificate."""
    try:
        context = ssl.create_default_context(cafile=str(cafile))
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise CaFileError(f"--cacert {cafile}: no PEM certificate in it") from None
        raise CaFileError(f"--cacert {cafile}: cannot read it ({exc.strerror or exc})") from None
    if context.cert_store_stats()["x509"] == 0:
        raise CaFileError(f"--cacert {cafile}: no PEM certificate in it")
    return context


class CaFileError(Exception):
    """A --cacert file that gives no certificate to trust."""


def http_connector(
    url: str, token: str | None, limits: Limits, tls: ssl.SSLContext | None = None
) -> Connector:
    """Connect over Streamable HTTP at url (modern or legacy) or over SSE (mode `sse`); tls, when given,
    decides which certificates are trusted (else the system's, or SSL_CERT_FILE's)."""
    verify: ssl.SSLContext | bool = tls if tls is not None else True

    @asynccontextmanager
    async def connect(mode: Mode, seen: _Seen) -> AsyncIterator[Client]:
        hooks: dict[str, list[Callable[..., Any]]] = {"response": [seen]}
        if mode == "sse":

            def factory(
                headers: dict[str, str] | None = None,
                timeout: httpx2.Timeout | None = None,
                auth: httpx2.Auth | None = None,
            ) -> httpx2.AsyncClient:
                return httpx2.AsyncClient(
                    headers=headers, timeout=timeout, auth=auth, event_hooks=hooks, verify=verify
                )

            transport = sse_client(
                url,
                headers=_headers(token),
                timeout=min(limits.connect, limits.timeout),
                sse_read_timeout=limits.timeout,
                httpx_client_factory=factory,
            )
            async with Client(transport, mode="legacy", cache=None) as client:
                yield client
            return
        async with httpx2.AsyncClient(
            headers=_headers(token), timeout=limits.http_timeout(), event_hooks=hooks, verify=verify
        ) as http:
            transport = streamable_http_client(url, http_client=http)
            client_mode = MODERN_VERSION if mode == "modern" else "legacy"
            async with Client(transport, mode=client_mode, cache=None) as client:
                yield client

    return connect
