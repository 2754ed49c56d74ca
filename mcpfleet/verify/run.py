"""Verify a fleet: every enabled server listed through the gateway in both protocol modes, concurrently, and
the fleet endpoint (`/mcp`) listed in both modes and checked against the whole catalog."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import anyio

from mcpfleet.catalog.models import Tool
from mcpfleet.fleet import FLEET_PATH, Fleet
from mcpfleet.verify.compare import Drift, compare, disagreement
from mcpfleet.verify.listing import MAX_PAGES, Limits, Listing, Mode, http_connector, list_tools, settle
from mcpfleet.verify.tokens import Tokens
from mcpfleet.verify.unified import (
    MAX_NAME_LENGTH,
    FleetCheck,
    UnpinnedTools,
    caller_roles,
    check,
    expected_pages,
)

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
    direct: bool = False
    """Reached at its own address (--server-url), not through the gateway's router."""

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
class EndpointTarget:
    """The fleet endpoint to verify, and what this caller should find listed there."""

    url: str
    token: str | None = None
    token_kind: Literal["shared", "own", "none"] = "none"
    roles: frozenset[str] | None = None
    """The roles the token names (None: no token, or not readable as a JWT)."""
    unpinned_tools: UnpinnedTools = "withhold"
    max_pages: int = MAX_PAGES

    @property
    def modes(self) -> tuple[Mode, ...]:
        return ("modern", "legacy")


@dataclass(frozen=True)
class EndpointReport:
    """Everything verify learnt about the fleet endpoint."""

    target: EndpointTarget
    listings: tuple[Listing, ...]
    check: FleetCheck | None
    """Against the first mode that listed (modern before legacy); None when nothing listed."""
    disagreeing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    name = FLEET_PATH

    @property
    def reachable(self) -> bool:
        return any(listing.status == "ok" for listing in self.listings)

    @property
    def agree(self) -> bool | None:
        listed = [listing for listing in self.listings if listing.status == "ok"]
        return None if len(listed) < 2 else not self.disagreeing

    @property
    def problems(self) -> tuple[str, ...]:
        found: list[str] = []
        if not self.reachable:
            refused = any(listing.refused_by is not None for listing in self.listings)
            found.append("refused" if refused else "unreachable")
        elif any(listing.status != "ok" for listing in self.listings):
            # The router answers both eras itself: an era it refuses is a failure, not a fact to report.
            found.append("failed")
        if self.check is not None:
            found += self.check.problems
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
    unified: EndpointReport | None = None
    """The fleet endpoint's report, when it was checked."""
    servers_checked: bool = True
    """False when only the fleet endpoint was asked for (`--endpoint URL/mcp`)."""

    @property
    def ok(self) -> bool:
        servers_ok = all(not server.problems for server in self.servers)
        return servers_ok and (self.unified is None or not self.unified.problems)


def redact_userinfo(url: str) -> str:
    """The URL without user:password@, for reports."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def gateway_url(endpoint: str, name: str, transport: str) -> str:
    """Where the gateway serves a server: `/servers/<name>/mcp`, or `/servers/<name>/sse` for SSE."""
    return f"{endpoint.rstrip('/')}{ROUTE_PREFIX}/{name}/{'sse' if transport == 'sse' else 'mcp'}"


def split_endpoint(endpoint: str) -> tuple[str, str | None]:
    """(the gateway's base URL, the fleet endpoint's URL when endpoint names it, else None)."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if path.endswith(FLEET_PATH):
        base = urlunsplit(parts._replace(path=path[: -len(FLEET_PATH)]))
        return base, urlunsplit(parts._replace(path=path))
    return endpoint, None


def fleet_endpoint_url(base: str) -> str:
    return f"{base.rstrip('/')}{FLEET_PATH}"


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
        reached_directly = spec.name in (direct or {})
        found.append(
            Target(spec.name, spec.transport.type, url, tuple(spec.tools), token, kind, reached_directly)
        )
    if tokens is not None and tokens.shared is None:
        names = {target.name for target in found}
        unknown = sorted(set(tokens.per_server) - names - {FLEET_PATH})
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
    if drift is not None and drift.removed and not target.direct:
        notes.append(
            "through the gateway, the router withholds a declared tool whose live definition no longer"
            " matches its pin: such a tool shows as removed here"
        )
    return ServerReport(target, listings, drift, disagreeing, tuple(notes))


def endpoint_target(fleet: Fleet, url: str, tokens: Tokens | None) -> EndpointTarget:
    token = tokens.for_endpoint(FLEET_PATH) if tokens is not None else None
    kind: Literal["shared", "own", "none"] = "none"
    if tokens is not None and token is not None:
        kind = "shared" if tokens.shared is not None else "own"
    return EndpointTarget(
        url=url,
        token=token,
        token_kind=kind,
        roles=caller_roles(token, fleet.settings.gateway.auth.roles_claim),
        unpinned_tools=fleet.settings.router.unpinned_tools,
        max_pages=expected_pages(fleet, MAX_PAGES),
    )


async def verify_endpoint(
    fleet: Fleet, target: EndpointTarget, limits: Limits, tls: ssl.SSLContext | None = None
) -> EndpointReport:
    """Both eras' listings of the fleet endpoint, the first that listed checked against the catalog."""
    connect = http_connector(target.url, target.token, limits, tls)
    listings = tuple(
        [await list_tools(mode, connect, limits, target.token, target.max_pages) for mode in target.modes]
    )
    listed = [listing for listing in listings if listing.status == "ok"]
    found = check(fleet, listed[0].tools, target.roles, target.unpinned_tools) if listed else None
    disagreeing = disagreement(listed[0].tools, listed[1].tools) if len(listed) == 2 else ()
    notes = []
    if target.roles is None:
        notes.append(
            "the token's roles could not be read (no token, or not a JWT): the tools this caller may call"
            " were not checked for being listed"
        )
    elif found is not None and found.too_long:
        notes.append(f"not served, names over {MAX_NAME_LENGTH} characters: {', '.join(found.too_long)}")
    return EndpointReport(target, listings, found, disagreeing, tuple(notes))


Done = Callable[[ServerReport | EndpointReport], None]
"""Told each server's report, and the fleet endpoint's, as soon as it is verified (progress)."""


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


@dataclass(frozen=True)
class Plan:
    """What one verify run checks: the servers (unless only the fleet endpoint was asked for) and the
    fleet endpoint (when asked for, or when the token file holds a token for it)."""

    fleet: Fleet
    endpoint: str
    servers: tuple[Target, ...]
    unified: EndpointTarget | None
    notes: tuple[str, ...]
    servers_checked: bool

    @property
    def count(self) -> int:
        return len(self.servers) + (self.unified is not None)


def plan(
    fleet: Fleet, endpoint: str, tokens: Tokens | None = None, direct: Mapping[str, str] | None = None
) -> Plan:
    """endpoint is the gateway's base URL (every server, and the fleet endpoint when the token file has a
    `/mcp` token), or the fleet endpoint's URL (`.../mcp`: it alone)."""
    base, unified_url = split_endpoint(endpoint)
    if unified_url is not None:
        notes = []
        if tokens is not None and tokens.shared is None and not tokens.names(FLEET_PATH):
            notes.append(f"{tokens.source} has no token for {FLEET_PATH} (tried without one)")
        target = endpoint_target(fleet, unified_url, tokens)
        return Plan(fleet, redact_userinfo(unified_url), (), target, tuple(notes), False)
    found, notes = targets(fleet, base, tokens, direct)
    unified = None
    if tokens is not None and tokens.names(FLEET_PATH):
        unified = endpoint_target(fleet, fleet_endpoint_url(base), tokens)
    elif tokens is not None:
        notes.append(
            f"the fleet endpoint {FLEET_PATH} is not checked: {tokens.source} holds no {FLEET_PATH!r} token"
            f" (or check it alone: --endpoint {fleet_endpoint_url(redact_userinfo(base))})"
        )
    return Plan(fleet, redact_userinfo(endpoint), tuple(found), unified, tuple(notes), True)


async def _verify_all(
    planned: Plan, limits: Limits, concurrency: int, tls: ssl.SSLContext | None, done: Done | None
) -> tuple[list[ServerReport], EndpointReport | None]:
    unified: list[EndpointReport] = []

    async def endpoint(target: EndpointTarget) -> None:
        unified.append(await verify_endpoint(planned.fleet, target, limits, tls))
        if done is not None:
            done(unified[0])

    async with anyio.create_task_group() as group:
        if planned.unified is not None:
            group.start_soon(endpoint, planned.unified)
        reports = await verify_targets(planned.servers, limits, concurrency, tls, done)
    return reports, (unified[0] if unified else None)


def run_plan(
    planned: Plan,
    *,
    limits: Limits | None = None,
    concurrency: int = 8,
    tls: ssl.SSLContext | None = None,
    done: Done | None = None,
) -> FleetReport:
    reports, unified = anyio.run(_verify_all, planned, limits or Limits(), concurrency, tls, done)
    return FleetReport(
        planned.fleet.environment,
        planned.endpoint,
        tuple(reports),
        planned.notes,
        unified,
        planned.servers_checked,
    )


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
    """List every server of fleet through the gateway at endpoint and compare with the catalog, and the
    fleet endpoint as `plan` says.

    tls: whom to trust (see `trusting`); done: told each report as it is ready."""
    return run_plan(
        plan(fleet, endpoint, tokens, direct), limits=limits, concurrency=concurrency, tls=tls, done=done
    )
