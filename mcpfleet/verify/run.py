"""Verify a fleet: every enabled server listed through the gateway in both protocol modes, concurrently."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import anyio

from mcpfleet.catalog.models import Tool
from mcpfleet.fleet import Fleet
from mcpfleet.verify.compare import Drift, compare, disagreement
from mcpfleet.verify.listing import Limits, Listing, Mode, http_connector, list_tools, settle
from mcpfleet.verify.tokens import Tokens

ROUTE_PREFIX = "/servers"


@dataclass(frozen=True)
class Target:
    """One server to verify and where to reach it."""

    name: str
    transport: Literal["streamable-http", "sse", "stdio"]
    url: str
    declared: tuple[Tool, ...]
    token: str | None = None
    token_kind: Literal["shared", "own", "none"] = "none"

    @property
    def modes(self) -> tuple[Mode, ...]:
        # SSE is the legacy era's transport: there is no 2026-07-28 request to make over it.
        return ("sse",) if self.transport == "sse" else ("modern", "legacy")


@dataclass(frozen=True)
class ServerReport:
    """Everything verify learnt about one server."""

    target: Target
    listings: tuple[Listing, ...]
    drift: Drift | None
    """Against the first mode that listed (modern before legacy); None when nothing listed."""
    disagreeing: tuple[str, ...] = ()
    """Tools that modern and legacy listed differently."""
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def reachable(self) -> bool:
        return any(listing.status == "ok" for listing in self.listings)

    @property
    def agree(self) -> bool | None:
        """Whether modern and legacy listed the same tools; None unless both listed."""
        listed = [listing for listing in self.listings if listing.status == "ok"]
        return None if len(listed) < 2 else not self.disagreeing

    @property
    def problems(self) -> tuple[str, ...]:
        """Why this server fails verification; empty when it passes."""
        found = []
        if not self.reachable:
            # Answered with 401, 403 or 429: the server is there, this caller is not let in.
            refused = any(listing.refused_by is not None for listing in self.listings)
            found.append("refused" if refused else "unreachable")
        elif any(listing.status == "failed" for listing in self.listings):
            found.append("failed")
        if self.drift is not None and self.drift.found:
            found.append("drift")
        if self.disagreeing:
            found.append("disagree")
        return tuple(found)

    @property
    def status(self) -> str:
        return self.problems[0] if self.problems else "ok"


@dataclass(frozen=True)
class FleetReport:
    environment: str
    endpoint: str
    servers: tuple[ServerReport, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(not server.problems for server in self.servers)


def redact_userinfo(url: str) -> str:
    """The URL without user:password@, for reports."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def gateway_url(endpoint: str, name: str, transport: str) -> str:
    """Where the gateway serves a server: `/servers/<name>/mcp`, or `/servers/<name>/sse` for SSE."""
    return f"{endpoint.rstrip('/')}{ROUTE_PREFIX}/{name}/{'sse' if transport == 'sse' else 'mcp'}"


def targets(
    fleet: Fleet, endpoint: str, tokens: Tokens | None, direct: Mapping[str, str] | None = None
) -> tuple[list[Target], list[str]]:
    """The fleet's servers with their URLs and tokens, and notes about the token file.

    direct maps server names to URLs that replace the gateway layout (tests reach servers directly)."""
    found: list[Target] = []
    notes: list[str] = []
    for server in fleet.servers:
        spec = server.spec
        url = (direct or {}).get(spec.name) or gateway_url(endpoint, spec.name, spec.transport.type)
        token = tokens.for_server(spec.name) if tokens is not None else None
        kind: Literal["shared", "own", "none"] = "none"
        if tokens is not None and token is not None:
            kind = "shared" if tokens.shared is not None else "own"
        found.append(Target(spec.name, spec.transport.type, url, tuple(spec.tools), token, kind))
    if tokens is not None and tokens.shared is None:
        names = {target.name for target in found}
        unknown = sorted(set(tokens.per_server) - names)
        if unknown:
            notes.append(
                f"{tokens.source} has tokens for servers not enabled in {fleet.environment}:"
                f" {', '.join(unknown)}"
            )
        missing = sorted(names - set(tokens.per_server))
        if missing:
            notes.append(f"{tokens.source} has no token for: {', '.join(missing)} (tried without one)")
    return found, notes


async def verify_server(target: Target, limits: Limits, tls: ssl.SSLContext | None = None) -> ServerReport:
    connect = http_connector(target.url, target.token, limits, tls)
    listings = settle(tuple([await list_tools(mode, connect, limits, target.token) for mode in target.modes]))
    listed = [listing for listing in listings if listing.status == "ok"]
    drift = compare(target.declared, listed[0].tools) if listed else None
    disagreeing = disagreement(listed[0].tools, listed[1].tools) if len(listed) == 2 else ()
    notes = []
    if target.transport == "sse":
        notes.append("SSE transport: listed over SSE with the legacy protocol; 2026-07-28 has no SSE form")
    return ServerReport(target, listings, drift, disagreeing, tuple(notes))


Done = Callable[[ServerReport], None]
"""Told each server's report as soon as it is verified (progress)."""


async def verify_targets(
    found: Sequence[Target],
    limits: Limits,
    concurrency: int,
    tls: ssl.SSLContext | None = None,
    done: Done | None = None,
) -> list[ServerReport]:
    """Verify every target, at most concurrency at once; reports in the order of found."""
    reports: dict[int, ServerReport] = {}
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(index: int, target: Target) -> None:
        async with limiter:
            reports[index] = await verify_server(target, limits, tls)
        if done is not None:
            done(reports[index])

    async with anyio.create_task_group() as group:
        for index, target in enumerate(found):
            group.start_soon(one, index, target)
    return [reports[index] for index in range(len(found))]


def verify_fleet(
    fleet: Fleet,
    endpoint: str,
    tokens: Tokens | None = None,
    *,
    limits: Limits | None = None,
    concurrency: int = 8,
    direct: Mapping[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
    done: Done | None = None,
) -> FleetReport:
    """List every server of fleet through the gateway at endpoint and compare with the catalog.

    tls: whom to trust (see `trusting`); done: told each server's report as it is ready."""
    found, notes = targets(fleet, endpoint, tokens, direct)
    reports = anyio.run(verify_targets, found, limits or Limits(), concurrency, tls, done)
    return FleetReport(fleet.environment, redact_userinfo(endpoint), tuple(reports), tuple(notes))
